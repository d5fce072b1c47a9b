"""The one place outbound HTTP is made: session, timeouts, user agent, error mapping.

Channels and sources call `request`; network failures come back as `ChannelError` with
`maybe_sent` set only when the request may have reached the server (a read timeout).
"""

from __future__ import annotations

import http.cookiejar
import threading
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.cookies import RequestsCookieJar
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from requests.utils import get_netrc_auth

from distributor import __version__
from distributor.errors import ChannelError

USER_AGENT = f"Distributor/{__version__} (+https://github.com/distributor-news/distributor)"
DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read

_local = threading.local()


class _Session(requests.Session):
    """requests' Session, made cheaper for what this service sends: many small API calls.

    - The proxy environment (and ~/.netrc) is read once per host while it names no proxy: requests
      reads it, no_proxy matching included, on every request. A configured proxy is still looked up
      per request.
    - No cookies are kept from one request to the next (a session is shared by every channel and
      source of a worker thread: a cookie one platform sets has no business in another call).
    - `lean_request` prepares the request itself (the session's headers merged with the call's)
      and, when no redirect is to be followed, hands it straight to the transport adapter. Under
      load, requests' per-call merging of settings was a fifth of a delivery's CPU. Anything it
      does not cover (session auth or params, cookies, other keyword arguments) takes
      `Session.request`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._no_proxy_hosts: dict[str, dict[str, Any]] = {}
        self._netrc_hosts: dict[str, Any] = {}
        self.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))  # accepts none

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if proxies or stream is not None or verify is not None or cert is not None or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        host = _netloc(str(url))
        known = self._no_proxy_hosts.get(host)
        if known is None:
            fresh: dict[str, Any] = dict(super().merge_environment_settings(url, proxies, stream, verify, cert))
            if fresh["proxies"]:
                return fresh
            self._no_proxy_hosts[host] = known = fresh
        return {**known, "proxies": {}}

    def lean_request(
        self,
        method: str,
        url: str,
        *,
        timeout: Any,
        headers: dict[str, Any] | None = None,
        auth: Any = None,
        allow_redirects: bool = True,
        stream: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """`Session.request` for the common case, with the same answer (see the class)."""
        if set(kwargs) - _BODY_ARGUMENTS or self.auth or self.params or len(self.cookies):
            return self.request(
                method, url, timeout=timeout, headers=headers, auth=auth, allow_redirects=allow_redirects,
                stream=stream, **kwargs,
            )  # fmt: skip
        merged = CaseInsensitiveDict(self.headers)
        for name, value in (headers or {}).items():
            if value is None:  # as requests does: None removes a session header
                merged.pop(name, None)
            else:
                merged[name] = value
        if auth is None and self.trust_env:
            auth = self._netrc(url)
        prepared = requests.PreparedRequest()
        prepared.prepare(
            method=method.upper(), url=url, headers=merged, auth=auth, cookies=RequestsCookieJar(),
            hooks=default_hooks(), **kwargs,
        )  # fmt: skip
        settings = self.merge_environment_settings(prepared.url, {}, None, None, None)
        settings["stream"] = stream
        if allow_redirects:
            return self.send(prepared, timeout=timeout, allow_redirects=True, **settings)
        response = self.get_adapter(str(prepared.url)).send(prepared, timeout=timeout, **settings)
        if not stream:
            response.content  # noqa: B018 (read now, as Session.send does, and give the connection back)
        return response

    def _netrc(self, url: str) -> Any:
        host = _netloc(url)
        if host not in self._netrc_hosts:
            self._netrc_hosts[host] = get_netrc_auth(url)
        return self._netrc_hosts[host]


_BODY_ARGUMENTS = frozenset({"params", "data", "json", "files"})


def _netloc(url: str) -> str:
    return url.partition("://")[2].partition("/")[0]


def session() -> _Session:
    """A per-thread pooled session (requests.Session is not safe to share across threads)."""
    current: _Session | None = getattr(_local, "session", None)
    if current is None:
        current = _Session()
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


def request(method: str, url: str, *, timeout: Any = DEFAULT_TIMEOUT, **kwargs: Any) -> requests.Response:
    """Send one request; map transport failures to a transient ChannelError naming the host."""
    try:
        return session().lean_request(method, url, timeout=timeout, **kwargs)
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
