"""A WordPress site, read through its REST API (`/wp-json/wp/v2/posts`), oldest change first.

Each poll asks only for posts modified since the newest `modified_gmt` it has seen, ordered by
modification time, so new posts and edits both arrive and a poll cut short by `max_pages`
resumes where it stopped. Posts modified in the same second as the cursor are told apart by id.
`_embed` brings the featured image, the category and tag names and the author in one request.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from pydantic import Field, SecretStr, model_validator

from distributor.errors import SourceError
from distributor.normalize import Draft
from distributor.settings import _
from distributor.sources.base import PollResult
from distributor.sources.web import WebSource, WebSourceSettings, first, json_body, listed
from distributor.text import html_to_text

ACCEPT = "application/json"
MAX_SKIPPED_PAGES = 100  # pages holding only posts seen before, read in one poll
_WP_TIME = "%Y-%m-%dT%H:%M:%S"


class WordPressSourceSettings(WebSourceSettings):
    per_page: int = Field(default=50, ge=1, le=100)
    max_pages: int = Field(default=10, ge=1, le=1000)  # pages of new posts per poll; the rest later
    post_type: str = Field(default="posts", pattern=r"^[a-z0-9_-]+$")  # REST base of the type
    username: str | None = None
    application_password: SecretStr | None = None  # Users -> Profile -> Application Passwords

    @model_validator(mode="after")
    def _both_or_neither(self) -> WordPressSourceSettings:
        if bool(self.username) != bool(self.application_password):
            raise ValueError(_("username and application_password go together"))
        return self


class WordPressSource(WebSource):
    type = "wordpress"
    settings_model = WordPressSourceSettings
    settings: WordPressSourceSettings

    @property
    def endpoint(self) -> str:
        return f"{self.url.rstrip('/')}/wp-json/wp/v2/{self.settings.post_type}"

    def poll(self, state: dict[str, str]) -> PollResult:
        cursor = _Cursor.load(state)
        since = cursor.since  # fixed for the whole poll, so the pages do not shift under us
        result = PollResult(complete=False)
        page, pages, useful, failed = 1, 1, 0, False
        while page <= pages and useful < self.settings.max_pages:
            if page - 1 - useful >= MAX_SKIPPED_PAGES:  # a site ignoring modified_after, or a hostile one
                message = (
                    f"stopped after {MAX_SKIPPED_PAGES} pages of posts seen before "
                    "(does the site ignore modified_after? it needs WordPress 5.7 or newer)"
                )
                result.errors.append(self.error(message, self.endpoint))
                break
            try:
                posts, pages = self._page(page, since)
            except SourceError as exc:
                if page == 1:
                    raise
                result.errors.append(exc)  # keep what the earlier pages gave; resume next poll
                failed = True
                break
            if not posts:
                break
            taken = [self._take(post, cursor, result) for post in posts]
            useful += any(taken)  # a page of posts seen before (same second) is not counted
            page += 1
        result.backlog = failed or (useful >= self.settings.max_pages and page <= pages)
        result.state = cursor.dump()
        return result

    def _page(self, page: int, since: str) -> tuple[list[Any], int]:
        """One page of posts modified after `since`, and how many pages there are."""
        params = {
            "per_page": str(self.settings.per_page),
            "page": str(page),
            "orderby": "modified",
            "order": "asc",
            "_embed": "1",
        }
        if since:
            params["modified_after"] = since
        url = f"{self.endpoint}?{urlencode(params)}"
        fetched = self.fetcher.get(url, accept=ACCEPT, headers=self._auth(), linked=False)
        try:
            posts = json_body(fetched)
        except ValueError:
            raise self.error("not a WordPress REST API answer (is the REST API enabled?)", url) from None
        if not isinstance(posts, list):
            raise self.error("the WordPress REST API did not answer with a list of posts", url)
        total = fetched.headers.get("x-wp-totalpages", "1").strip()
        return posts, int(total) if total.isascii() and total.isdigit() else 1

    def _auth(self) -> dict[str, str]:
        password = self.settings.application_password
        if not self.settings.username or password is None:
            return {}
        pair = f"{self.settings.username}:{password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def _take(self, post: Any, cursor: _Cursor, result: PollResult) -> bool:
        """Add the post if it is new or changed; False when an earlier poll already took it."""
        if not isinstance(post, dict):
            result.errors.append(self.error("a post that is not an object was skipped", self.endpoint))
            return True
        modified = str(post.get("modified_gmt") or "")
        if _utc(modified) is None:  # as the cursor, text like "zzz" would hide every later post
            message = f"post {post.get('id')} has no readable modified_gmt ({modified[:40]!r}); skipped"
            result.errors.append(self.error(message, self.endpoint))
            return False
        if not cursor.is_new(modified, str(post.get("id"))):
            return False
        try:
            result.drafts.append(self._draft(post))
        except ValueError as exc:
            result.errors.append(self.error(str(exc), self.endpoint))
        cursor.advance(modified, str(post.get("id")))
        return True

    def _draft(self, post: dict[str, Any]) -> Draft:
        title = html_to_text(_rendered(post, "title"))
        link = post.get("link")
        if not isinstance(link, str) or not link:
            raise ValueError(f"post {post.get('id')} {title!r} has no link; skipped")
        embedded = post.get("_embedded")
        if not isinstance(embedded, dict):
            embedded = {}
        author = first([a.get("name") for a in listed(embedded.get("author")) if isinstance(a, dict)])
        return Draft(
            url=link,
            title=title,
            content=_rendered(post, "content"),
            summary=_rendered(post, "excerpt"),
            image=_featured_image(embedded),
            author=str(author) if author else None,
            categories=self.categories(_terms(embedded, "category")),
            tags=_terms(embedded, "post_tag"),
            published=_utc(post.get("date_gmt")) or _text(post.get("date")) or None,
            updated=_utc(post.get("modified_gmt")) or _text(post.get("modified")) or None,
        )


class _Cursor:
    """The newest `modified_gmt` seen and the ids of the posts modified in that same second."""

    def __init__(self, modified: str, ids: set[str]) -> None:
        self.modified = modified
        self.ids = ids

    @classmethod
    def load(cls, state: dict[str, str]) -> _Cursor:
        ids = {i for i in state.get("ids_at_cursor", "").split(",") if i}
        return cls(state.get("modified_gmt", ""), ids)

    @property
    def since(self) -> str:
        """`modified_after` for the query: a second early (it is exclusive), in UTC."""
        try:
            moment = datetime.strptime(self.modified, _WP_TIME)
        except ValueError:
            return ""
        return (moment - timedelta(seconds=1)).strftime(_WP_TIME) + "Z"

    def is_new(self, modified: str, post_id: str) -> bool:
        return modified > self.modified or (modified == self.modified and post_id not in self.ids)

    def advance(self, modified: str, post_id: str) -> None:
        if modified > self.modified:
            self.modified, self.ids = modified, {post_id}
        elif modified == self.modified:
            self.ids.add(post_id)

    def dump(self) -> dict[str, str]:
        if not self.modified:
            return {}
        return {"modified_gmt": self.modified, "ids_at_cursor": ",".join(sorted(self.ids))}


def _rendered(post: dict[str, Any], key: str) -> str:
    value = post.get(key)
    if isinstance(value, dict):
        value = value.get("rendered")
    return value if isinstance(value, str) else ""


def _featured_image(embedded: dict[str, Any]) -> str | None:
    media = first(embedded.get("wp:featuredmedia"))
    url = media.get("source_url") if isinstance(media, dict) else None
    return url if isinstance(url, str) and url else None


def _terms(embedded: dict[str, Any], taxonomy: str) -> list[str]:
    """Term names of one taxonomy from `_embedded["wp:term"]` (a list of lists of terms)."""
    names = []
    for group in listed(embedded.get("wp:term")):
        for term in listed(group):
            if isinstance(term, dict) and term.get("taxonomy") == taxonomy and term.get("name"):
                names.append(html.unescape(str(term["name"])))
    return names


def _utc(value: Any) -> datetime | None:
    """WordPress's `*_gmt` fields: naive ISO text that is UTC."""
    try:
        return datetime.strptime(str(value), _WP_TIME).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""
