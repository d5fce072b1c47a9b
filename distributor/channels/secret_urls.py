"""What the channels whose secret sits in the URL share: a Telegram bot token in the path, a
Discord/Slack/Teams/generic webhook URL that is itself the credential.

`requests` and `urllib3` put the full URL into exception texts and DEBUG logs, so every request
to such a URL goes through `post`/`get` here: errors come back with the secret masked and without
the chained `requests` exception, and urllib3's log records are redacted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from pydantic import SecretStr, field_validator

from distributor import http
from distributor.errors import ChannelError
from distributor.settings import ChannelSettings, _

MASK = "***"
_MIN_SECRET = 6  # shorter fragments ("/", "/hook") are not worth masking and would garble logs
_known: set[str] = set()  # every secret seen, for the log filter
_known_lock = threading.Lock()


class WebhookSettings(ChannelSettings):
    """A channel configured by one secret URL (Discord, Slack, Teams, generic webhook)."""

    url: SecretStr

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr) -> SecretStr:
        return webhook_url(value)


def webhook_url(value: SecretStr) -> SecretStr:
    """The webhook URL, trimmed; refused unless http(s) with a host. The message must not quote the
    value: it is the secret."""
    parts = urlsplit(value.get_secret_value().strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(_("must be an http(s) URL (the webhook URL the platform gave you)"))
    return SecretStr(value.get_secret_value().strip())


def url_secrets(url: str) -> list[str]:
    """The parts of a secret URL that must never be shown: the URL, its path, query and userinfo."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    candidates = [url, parts.path, parts.query, userinfo]
    return [c for c in candidates if len(c) >= _MIN_SECRET]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):  # longest first: a URL before its path
        if secret:
            text = text.replace(secret, MASK)
    return text


def endpoint(url: str, api_base: str | None) -> str:
    """`url` with scheme and host taken from `api_base` when one is set (a proxy, a test server)."""
    if not api_base:
        return url
    base = urlsplit(api_base.rstrip("/"))
    parts = urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))


def shown(url: str) -> str:
    """What may be printed about a secret URL: scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/{MASK}"


@contextmanager
def secrets_masked(*secrets: str) -> Iterator[None]:
    """Mask `secrets` in any ChannelError raised inside, and drop its chained exceptions (a
    `requests` exception's text holds the whole URL)."""
    values = [s for s in secrets if len(s) >= _MIN_SECRET]
    with _known_lock:
        _known.update(values)
    try:
        yield
    except ChannelError as exc:
        exc.message = redact(exc.message, values)
        exc.args = (exc.message,)
        exc.__cause__ = None
        exc.__context__ = None
        exc.__suppress_context__ = True
        raise


def request(method: str, url: str, *, secrets: list[str], **kwargs: Any) -> requests.Response:
    """One request to a secret URL; never follows redirects (a 301/302 would turn a POST into a
    GET that looks like success, and could carry the secret elsewhere)."""
    with secrets_masked(*secrets):
        return http.request(method, url, allow_redirects=False, **kwargs)


class _RedactSecrets(logging.Filter):
    """Masks every secret this module has seen in urllib3's DEBUG lines ("POST /bot<token>/...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _known_lock:
            secrets = set(_known)
        if secrets:
            message = record.getMessage()
            cleaned = redact(message, secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


_FILTER = _RedactSecrets()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager"):
    logging.getLogger(_name).addFilter(_FILTER)
