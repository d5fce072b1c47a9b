"""The one place outbound HTTP is made: session, timeouts, user agent, error mapping.

Channels and sources call `request`; network failures come back as `ChannelError` with
`maybe_sent` set only when the request may have reached the server (a read timeout).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from distributor import __version__
from distributor.errors import ChannelError

USER_AGENT = f"Distributor/{__version__} (+https://github.com/distributor-news/distributor)"
DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read

_local = threading.local()


class _Session(requests.Session):
    """A session that reads the proxy environment once per host while it names no proxy: requests
    reads it, no_proxy matching included, on every request, which costs more than the rest of a
    small POST's preparation. A configured proxy is still looked up per request."""

    def __init__(self) -> None:
        super().__init__()
        self._no_proxy_hosts: dict[str, dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        host = str(url).partition("://")[2].partition("/")[0]
        known = self._no_proxy_hosts.get(host)
        if known is None:
            fresh: dict[str, Any] = dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
            if fresh["proxies"]:
                return fresh
            self._no_proxy_hosts[host] = known = fresh
        return {**known, "proxies": {}}


def session() -> requests.Session:
    """A per-thread pooled session (requests.Session is not safe to share across threads)."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        current = _Session()
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


def request(method: str, url: str, *, timeout: Any = DEFAULT_TIMEOUT, **kwargs: Any) -> requests.Response:
    """Send one request; map transport failures to a transient ChannelError naming the host."""
    try:
        return session().request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.ConnectTimeout as exc:
        raise ChannelError(f"connect timeout: {_host(url)}") from exc
    except requests.exceptions.ReadTimeout as exc:
        raise ChannelError(f"read timeout: {_host(url)}", maybe_sent=True) from exc
    except requests.exceptions.ConnectionError as exc:
        raise ChannelError(f"connection failed: {_host(url)}", maybe_sent=_maybe_sent(exc)) from exc
    except requests.exceptions.RequestException as exc:
        raise ChannelError(f"request failed: {_host(url)}: {type(exc).__name__}", permanent=True) from exc


def _maybe_sent(exc: requests.exceptions.ConnectionError) -> bool:
    # A connection dropped after the request was written may have been processed.
    text = str(exc)
    return "RemoteDisconnected" in text or "Connection aborted" in text


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After/rate-limit-reset header: seconds, HTTP date, ISO 8601 or
    epoch seconds (told apart by size)."""
    if value is None or str(value).strip() == "":
        return None
    value = str(value).strip()
    now = time.time() if now is None else now
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if number > 1_000_000_000:  # an epoch timestamp (X, Bluesky, Discord reset headers)
            return max(0.0, number - now)
        return max(0.0, number)
    for parse in (parsedate_to_datetime, lambda v: datetime.fromisoformat(v.replace("Z", "+00:00"))):
        try:
            moment = parse(value)
        except (TypeError, ValueError, IndexError):
            continue
        if moment.tzinfo is not None:
            return max(0.0, moment.timestamp() - now)
    return None


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def generic_error(response: requests.Response, message: str | None = None) -> ChannelError:
    """Classify a failed HTTP answer by status alone (channels refine this from the body)."""
    status = response.status_code
    text = message or (response.text or "")[:300].strip() or response.reason or "error"
    wait = retry_after(response.headers.get("Retry-After"))
    if status == 429:
        return ChannelError(f"rate limited: {text}", retry_after=wait, status=status, code=status)
    if status >= 500:
        return ChannelError(f"server error {status}: {text}", retry_after=wait, status=status, code=status)
    return ChannelError(f"HTTP {status}: {text}", permanent=True, status=status, code=status)
