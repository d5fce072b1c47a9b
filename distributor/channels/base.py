"""The small interface every channel implements, and the rendering they share.

A channel declares its platform facts as class attributes (kind, limit, how length is counted,
default API base) and implements `send`. Rendering (template, hashtags, UTM, exact fitting) lives
here so every platform gets it the same way. `send` raises `ChannelError`; it never returns False.
"""

from __future__ import annotations

import os
import stat
from abc import ABC, abstractmethod
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import jinja2

from distributor import text as textlib
from distributor.channel_state import ChannelState, MemoryChannelState
from distributor.channels.fit import fit
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, SiteSettings
from distributor.urls import with_params

TEMPLATES = Path(__file__).parent / "templates"

_ENVIRONMENTS = {
    escape: jinja2.Environment(autoescape=escape, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    for escape in (False, True)
}


@lru_cache(maxsize=256)
def compiled(source: str, autoescape: bool) -> jinja2.Template:
    """A template compiled once per source text: compiling costs more than rendering, and keying on
    the text (not the file name) means an operator's edited template file takes effect at once."""
    return _ENVIRONMENTS[autoescape].from_string(source)


_files: dict[str, tuple[tuple[int, int], str]] = {}  # path -> ((mtime, size), text)


def _template_file(path: str, info: os.stat_result) -> str:
    """An operator's template file, read again only when it changed (a stat per post, not a read)."""
    version = (info.st_mtime_ns, info.st_size)
    known = _files.get(path)
    if known is not None and known[0] == version:
        return known[1]
    text = Path(path).read_text(encoding="utf-8")
    _files[path] = (version, text)
    return text


@lru_cache(maxsize=64)
def _packaged_template(kind: str) -> str:
    """The template shipped for `kind` (or the default one): read once per process."""
    candidate = TEMPLATES / f"{kind}.j2"
    if not candidate.is_file():
        candidate = TEMPLATES / "default.j2"
    return candidate.read_text(encoding="utf-8")


class Channel(ABC):
    kind: ClassVar[str]
    settings_model: ClassVar[type[ChannelSettings]] = ChannelSettings
    default_api_base: ClassVar[str] = ""
    limit: ClassVar[int] = 10_000  # in the unit `length` counts
    markup: ClassVar[str] = "text"  # "html": template variables are HTML-escaped
    max_hashtags: ClassVar[int] = 3
    idempotent: ClassVar[bool] = False  # the platform dedupes our idempotency key
    supports_readback: ClassVar[bool] = False  # `find_existing` can tell whether a post exists
    # Whether `edit` changes a published post in place / `delete` removes it. Plain attributes, not
    # ClassVar: a channel whose abilities depend on its configuration (Slack: webhook or bot token)
    # sets them per instance in `__init__`; read them on the instance.
    can_edit: bool = False
    can_delete: bool = False
    # Why not, in the operator's words (shown in the ledger and the retraction report).
    cannot_edit: ClassVar[str] = "this platform does not let a published post be edited"
    cannot_delete: ClassVar[str] = "this platform does not let a published post be deleted"

    def __init__(self, settings: ChannelSettings, site: SiteSettings, data_dir: Path = Path("data")) -> None:
        self.settings = settings
        self.site = site
        self.data_dir = data_dir  # for files a channel keeps (outbox, image cache)
        # Persistent per-channel state (refreshed tokens, sessions); the pipeline sets the Redis one.
        self.state: ChannelState = MemoryChannelState()

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def api_base(self) -> str:
        return (self.settings.api_base or self.default_api_base).rstrip("/")

    # --- rendering -------------------------------------------------------------------------------

    def length(self, text: str) -> int:
        """Length as the platform counts it (graphemes unless a subclass says otherwise)."""
        return textlib.grapheme_length(text)

    def text_limit(self, article: Article) -> int:
        """The limit for this article's post (a caption may be shorter than a message)."""
        return self.limit

    def template_source(self) -> str:
        configured = self.settings.template
        if configured:
            if "{{" not in configured:
                try:
                    info = os.stat(configured)
                except (OSError, ValueError):
                    return configured  # not a file: the text itself is the template
                if stat.S_ISREG(info.st_mode):
                    return _template_file(configured, info)
            return configured
        return _packaged_template(self.kind)

    def link(self, article: Article) -> str:
        """The link this channel posts: the article URL with UTM tags (unless turned off), or with
        `track_clicks` our counting redirect `/r/{id}/{channel}`, which leads to that same URL."""
        if self.settings.track_clicks:
            return f"{self.site.public_url.rstrip('/')}/r/{quote(article.id, safe='')}/{quote(self.name, safe='')}"
        return self.landing(article.url)

    def landing(self, url: str) -> str:
        """Where a reader of this channel's post lands: `url` with the channel's UTM tags."""
        if not self.settings.utm:
            return url
        return with_params(
            url,
            {"utm_source": self.kind, "utm_medium": "social", "utm_campaign": self.settings.utm_campaign},
        )

    def context(self, article: Article) -> dict[str, Any]:
        labels = list(dict.fromkeys([*article.categories, *article.tags]))
        tags = [t for t in (textlib.hashtag(label) for label in labels) if t][: self.max_hashtags]
        published: datetime = article.published
        return {
            "title": article.title,
            "summary": article.summary,
            "url": self.link(article),
            "hashtags": " ".join(tags),
            "hashtag_list": tags,
            "image": article.image,
            "site": self.site.title,
            "published": published.strftime("%d/%m/%Y %H:%M"),
            "category": article.categories[0] if article.categories else "",
            "author": article.author or "",
        }

    def render(self, article: Article) -> Post:
        template = compiled(self.template_source(), self.markup == "html")
        context = self.context(article)
        limit = self.text_limit(article)
        body = fit(lambda ctx: template.render(**ctx).strip(), context, self.length, limit)
        return Post(
            channel=self.name,
            kind=self.kind,
            article_id=article.id,
            text=body,
            url=context["url"],
            title=article.title,
            image=article.image,
            length=self.length(body),
            limit=limit,
            extra=self.extra(article, context),
        )

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        """Platform data beyond the text (summary for a card, description...)."""
        return {"summary": article.summary}

    # --- delivery --------------------------------------------------------------------------------

    @abstractmethod
    def send(self, post: Post, key: str) -> Receipt:
        """Publish `post`; `key` is stable per (article, channel) for idempotent platforms.

        Raises ChannelError, classified per the platform's answer.
        """

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """Change the published post `receipt` (what `send` returned, kept in the ledger) to `post`.

        Returns the post as it now stands (same id on most platforms). Raises ChannelError: permanent
        when the platform refuses (too old, deleted meanwhile) with its own message. A platform's
        "not modified" answer is a success, not an error.
        """
        raise ChannelError(self.cannot_edit, permanent=True)

    def delete(self, receipt: Receipt, key: str) -> None:
        """Remove the published post `receipt`. An already-deleted post is a success. Raises
        ChannelError with the platform's message when it refuses (e.g. a time limit passed)."""
        raise ChannelError(self.cannot_delete, permanent=True)

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """What the platform reports about our post `receipt` (shares, likes, replies...), metric ->
        count; None when this platform cannot tell. `receipt.data["article_url"]` is the article's
        own URL (for platforms that also count the URL itself). Raises ChannelError like `send`, and
        `EngagementUnavailable` when the account's API access does not include these reads."""
        return None

    def find_existing(self, post: Post, key: str) -> Receipt | None:
        """Read back whether `post` was already published (only where `supports_readback`)."""
        return None

    def check(self) -> str:
        """A read-only call that proves the credentials work; returns what it found."""
        return "no remote check for this channel type"

    def token_expiry(self) -> float | None:
        """Ask the platform when the configured credentials stop working and keep the answer in
        `self.state` as `expires_at` (unix time, or "never"), for the console. Read-only; None where
        the platform cannot tell (a channel that refreshes its own tokens records them as it goes)."""
        return None


class EngagementUnavailable(ChannelError):
    """The platform refuses engagement reads to this account for good (e.g. X's API tier): recorded
    once, not retried at every pull."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def count_of(value: Any) -> int:
    """A count from a platform's JSON answer; anything missing or unreadable is 0."""
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
