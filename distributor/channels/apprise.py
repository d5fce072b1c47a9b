"""The long tail of services (Rocket.Chat, Matrix, ntfy, Gotify, SMS gateways...) through apprise.

Each apprise URL carries its service's secrets, so URLs are `SecretStr` and never shown: errors
name a target by its position and scheme only, and apprise's own log lines (which can quote a
whole URL) are kept out of the service logs. Apprise reports failure as False; that becomes a
transient ChannelError. When some targets of a channel succeed and others fail, the successes
are remembered for the delivery key so a retry only goes to the ones that failed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import apprise
from pydantic import Field, SecretStr, field_validator

from distributor.channels.base import Channel
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, _

log = logging.getLogger(__name__)
# Apprise logs an unparseable URL verbatim ("Unparseable URL tgram://<token>/..."): its records
# stay inside apprise (its per-call capture still works) and never reach the service's handlers.
logging.getLogger("apprise").propagate = False

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,19})://")
_PIECES = re.compile(r"[/:@?&=#,]+")


def scheme(url: str) -> str:
    """The URL's scheme, the only part of an apprise URL safe to show."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else "?"


def redact(text: str, url: str) -> str:
    """Hide every piece of `url` (tokens, passwords, paths) that a message might quote."""
    pieces = sorted({p for p in _PIECES.split(url.partition("://")[2]) if len(p) >= 4}, key=len, reverse=True)
    for piece in [url, *pieces]:
        text = text.replace(piece, "***")
    return text


class AppriseSettings(ChannelSettings):
    urls: list[SecretStr] = Field(min_length=1)  # apprise URLs, e.g. "ntfy://ntfy.sh/tin-tuc"
    title: bool = True  # send the title separately; false: the title opens the body
    max_characters: int = Field(default=4000, ge=100)

    @field_validator("urls")
    @classmethod
    def _recognised(cls, urls: list[SecretStr]) -> list[SecretStr]:
        """An unknown or malformed URL is a configuration error, found at startup."""
        problems = [
            _("urls[{index}] ({scheme}://...) is not a URL apprise recognises").format(
                index=index, scheme=scheme(url.get_secret_value())
            )
            for index, url in enumerate(urls)
            if apprise.Apprise.instantiate(url.get_secret_value()) is None
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return urls


class Apprise(Channel):
    kind = "apprise"
    settings_model = AppriseSettings
    limit = 4000
    # Apprise only sends: it returns no message id and has no update or delete for any service.
    cannot_edit = "Apprise only sends notifications; it cannot change one once sent"
    cannot_delete = "Apprise only sends notifications; it cannot withdraw one once sent"

    @property
    def config(self) -> AppriseSettings:
        assert isinstance(self.settings, AppriseSettings)
        return self.settings

    def text_limit(self, article: Article) -> int:
        return self.config.max_characters

    def context(self, article: Article) -> dict[str, Any]:
        return {**super().context(article), "title_in_body": not self.config.title}

    def send(self, post: Post, key: str) -> Receipt:
        urls = [url.get_secret_value() for url in self.config.urls]
        field = f"apprise-done:{key}"
        remembered = self.state.get(field) or ""
        done = {int(i) for i in remembered.split(",") if i.isdigit()}
        failures = []
        for index, url in enumerate(urls):
            if index in done:
                continue
            reason = self._notify(url, post)
            if reason is None:
                done.add(index)
            else:
                failures.append(f"target #{index + 1} ({scheme(url)}): {reason}")
        if failures:
            if done:
                self.state.set(**{field: ",".join(str(i) for i in sorted(done))})
            message = f"apprise: {len(failures)} of {len(urls)} targets failed: " + "; ".join(failures)
            raise ChannelError(message)
        if remembered:
            self.state.forget(field)
        return Receipt(post_id=f"{len(urls)} apprise target(s)")

    def _notify(self, url: str, post: Post) -> str | None:
        """Notify one target; None on success, else the reason (redacted)."""
        target = apprise.Apprise()
        if not target.add(url):
            return "apprise no longer accepts this URL"
        entries: list[str] = []
        result = target.notify(
            body=post.text,
            title=post.title if self.config.title else "",
            body_format=apprise.NotifyFormat.TEXT,
            log_level=logging.WARNING,
            log_callback=lambda entry, plugin: entries.append(str(entry.message)),
        )
        if result:
            return None
        return redact(entries[-1] if entries else "the service did not accept the message", url)

    def check(self) -> str:
        schemes = ", ".join(scheme(url.get_secret_value()) for url in self.config.urls)
        return f"{len(self.config.urls)} apprise target(s): {schemes} (apprise has no read-only check)"
