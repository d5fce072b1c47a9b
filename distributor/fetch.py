"""Polite, bounded HTTP GETs for sources: conditional requests, size cap, retries, charset.

Every source reads the web through `Fetcher.get`, so one place guarantees what the design
promises about hostile input: an unchanged page costs one 304, a huge or endless page is refused
while streaming, a redirect loop or timeout becomes a clear `SourceError` naming the source and
URL, and no other exception escapes to crash a worker.

It is also where a source is kept on its own site. A fetcher made for a source (`home` is the
source's URL) follows a link found in content (`linked=True`, the default) only to the source's
own host or its `allowed_hosts` (`urls.may_follow`), and checks every redirect hop the same way;
and unless the source itself is on a loopback or private address, it connects to public
addresses only (`netguard`), before the request and again when the socket connects. The
configured URL itself (`linked=False`) may redirect to another host, public like it.
Errors show URLs through `urls.mask_url`: a password or token in a source URL stays secret.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from distributor import charsets, netguard
from distributor.errors import SourceError
from distributor.http import retry_after, session
from distributor.urls import MaskUrlSecrets, mask_url, mask_urls, may_follow

MAX_REDIRECTS = 10
CHUNK_BYTES = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
_ERROR_BODY_BYTES = 4096
_VALIDATOR_CHARS = 512  # real ETags and dates are short; sources keep them in their saved state
# A body that trickles in for longer than this many read timeouts is refused (slowloris pages).
_BODY_TIMEOUTS = 3

# urllib3's DEBUG lines quote the path and query of each request (`"GET /feed?token=..." 200`).
logging.getLogger("urllib3.connectionpool").addFilter(MaskUrlSecrets())

_turns_lock = threading.Lock()
_next_turn: dict[str, float] = {}  # host -> monotonic time its next request may start


@dataclass
class Fetched:
    """One successful answer: the body (empty on 304) and what a later conditional GET needs."""

    url: str  # final URL after redirects
    status: int  # 200 (or another 2xx) or 304
    content: bytes  # b"" on 304
    headers: dict[str, str]  # names lower-cased
    etag: str | None
    last_modified: str | None
    encoding: str | None  # Python codec name, None when there is no body

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def text(self) -> str:
        """The body decoded with `encoding`, BOM stripped, NFC-normalised."""
        return charsets.decode(self.content, self.encoding)


class _Retry(Exception):
    """A transient failure of one attempt; `wait` is what the server asked for, if anything."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait


class Fetcher:
    """GETs on behalf of one source (its name goes into every error)."""

    def __init__(
        self,
        *,
        source: str,
        max_bytes: int = 5 * 1024 * 1024,
        timeout: tuple[float, float] = (5.0, 20.0),
        retries: int = 2,
        backoff: float = 0.5,
        politeness: float = 1.0,
        max_retry_after: float = 30.0,
        home: str | None = None,
        allowed_hosts: tuple[str, ...] | list[str] = (),
    ) -> None:
        """`home`: the source's URL, whose site its links are kept on (None: an operator's own
        URL, `distributor publish URL`, fetched wherever it is)."""
        self.source = source
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.politeness = politeness
        self.max_retry_after = max_retry_after
        self.home = home
        self.allowed_hosts = tuple(allowed_hosts)
        self._home_private: bool | None = None  # decided on the first request

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        headers: dict[str, str] | None = None,
        linked: bool = True,
    ) -> Fetched:
        """GET `url`, following redirects; raise SourceError on any failure.

        `headers` are extra request headers (an Authorization header is dropped when a redirect
        leaves the host, so credentials never reach another server). `linked`: the URL was found
        in content, so it and each redirect hop must stay on the source's site; False for the
        source's configured URL (and what is derived from it, such as an API endpoint).
        """
        sent = {"Accept": accept or "*/*", **(headers or {})}
        if etag:
            sent["If-None-Match"] = etag
        if last_modified:
            sent["If-Modified-Since"] = last_modified
        try:
            return self._get(url, sent, etag, last_modified, linked)
        except SourceError:
            raise
        except Exception as exc:  # the promise: nothing but SourceError leaves a fetch
            raise self._error(f"unexpected {type(exc).__name__}: {exc}", url) from exc

    def _error(self, message: str, url: str) -> SourceError:
        return SourceError(self.source, message, input=url)

    def permits(self, url: str) -> bool:
        """True when a link found in the source's content may be fetched (the host rule)."""
        return self.home is None or may_follow(url, self.home, self.allowed_hosts)

    def refused(self, url: str, original: str | None = None) -> SourceError:
        """The error for a link the host rule keeps this source from following."""
        host = urlsplit(url).netloc.rpartition("@")[2]
        own = urlsplit(self.home or "").netloc.rpartition("@")[2]
        hop = f"redirected to {mask_url(url)}, " if original and original != url else ""
        message = (
            f"not fetched: {hop}{host} is not the source's own site ({own}) and not in its allowed_hosts "
            "(links in content are followed only there)"
        )
        return self._error(message, original or url)

    def _public_only(self) -> bool:
        """True unless the source is itself on a loopback or private address (its links may then
        lead there too). An operator's own URL (no `home`) may go anywhere."""
        if self.home is None:
            return False
        if self._home_private is None:
            parts = urlsplit(self.home)
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                port = 80
            self._home_private = netguard.on_private_network(parts.hostname or "", port)
        return not self._home_private

    def _check_address(self, current: str, url: str) -> None:
        """Refuse, before any request, a hop whose host resolves to a non-public address."""
        if not self._public_only():
            return
        parts = urlsplit(current)
        try:
            netguard.check(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except netguard.AddressRefused as refusal:
            raise self._address_refused(refusal, current, url) from None
        except (OSError, UnicodeError, ValueError):
            pass  # unresolvable: the request fails with its own clear message

    def _address_refused(self, refusal: netguard.AddressRefused, current: str, url: str) -> SourceError:
        hop = f"redirected to {mask_url(current)}, " if current != url else ""
        message = (
            f"not fetched: {hop}{refusal}; a source on a public address never follows links to loopback, "
            "private or link-local addresses"
        )
        return self._error(message, url)

    def _get(
        self, url: str, headers: dict[str, str], etag: str | None, last_modified: str | None, linked: bool
    ) -> Fetched:
        chain = [url]
        current = url
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise self._error(f"not an http(s) URL: {mask_url(current)!r}", url)
            if linked and not self.permits(current):
                raise self.refused(current, url)
            self._check_address(current, url)
            if parts.netloc != urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            response, body = self._with_retries(current, headers, url)
            if response.status_code in _REDIRECTS:
                current = self._next_hop(response, current, chain, url)
                continue
            return self._answer(response, body, current, url, etag, last_modified)

    def _next_hop(self, response: requests.Response, current: str, chain: list[str], url: str) -> str:
        location = response.headers.get("Location")
        if not location:
            status = response.status_code
            raise self._error(f"HTTP {status} redirect without a Location header", url)
        target = urljoin(current, location.strip())
        if target in chain:
            loop = " -> ".join(mask_url(hop) for hop in [*chain[chain.index(target) :], target])
            raise self._error(f"redirect loop: {loop}", url)
        chain.append(target)
        if len(chain) > MAX_REDIRECTS + 1:
            raise self._error(f"too many redirects (more than {MAX_REDIRECTS}), last to {mask_url(target)}", url)
        return target

    def _answer(
        self,
        response: requests.Response,
        body: bytes,
        final: str,
        url: str,
        etag: str | None,
        last_modified: str | None,
    ) -> Fetched:
        status = response.status_code
        headers = {key.lower(): value for key, value in response.headers.items()}
        if status == 304:
            return Fetched(
                url=final,
                status=304,
                content=b"",
                headers=headers,
                etag=_validator(headers.get("etag")) or etag,
                last_modified=_validator(headers.get("last-modified")) or last_modified,
                encoding=None,
            )
        if not 200 <= status < 300:
            words = " ".join(part for part in (response.reason, _detail(body)) if part)
            raise self._error(f"HTTP {status} {words}".rstrip(), url)
        return Fetched(
            url=final,
            status=status,
            content=body,
            headers=headers,
            etag=_validator(headers.get("etag")),
            last_modified=_validator(headers.get("last-modified")),
            encoding=charsets.detect(body, headers.get("content-type")) if body else None,
        )

    def _with_retries(self, url: str, headers: dict[str, str], original: str) -> tuple[requests.Response, bytes]:
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(url, headers, original)
            except _Retry as failure:
                if failure.wait is not None and failure.wait > self.max_retry_after:
                    raise self._error(f"{failure.message}; the server asks to wait {failure.wait:.0f}s", url) from None
                if attempt == attempts - 1:
                    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                    raise self._error(failure.message + tries, url) from None
                time.sleep(max(self.backoff * 2**attempt, failure.wait or 0.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, url: str, headers: dict[str, str], original: str) -> tuple[requests.Response, bytes]:
        """One request; transient failures raise _Retry, the rest SourceError."""
        self._wait_turn(url)
        client = netguard.public_session() if self._public_only() else session()
        try:
            response = client.get(url, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False)
        except requests.exceptions.Timeout:
            raise _Retry(self._timeout_message()) from None
        except requests.exceptions.ConnectionError as exc:
            if (refusal := netguard.refusal(exc)) is not None:  # the name resolved otherwise this time
                raise self._address_refused(refusal, url, original) from None
            raise _Retry(f"connection failed: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise self._error(f"request failed: {type(exc).__name__}: {_reason(exc)}", url) from exc
        try:
            status = response.status_code
            if status in _RETRY_STATUSES:
                wait = retry_after(response.headers.get("Retry-After"))
                label = "rate limited" if status == 429 else "server error"
                raise _Retry(f"{label}: HTTP {status}", wait)
            body = self._read(response, url) if 200 <= status < 300 else _error_body(response)
        finally:
            response.close()
        return response, body

    def _read(self, response: requests.Response, url: str) -> bytes:
        """The body, refused once it passes `max_bytes` (decompressed) or trickles in too long."""
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise self._error(self._too_large(f"Content-Length is {int(declared)} bytes"), url)
        budget = self.timeout[1] * _BODY_TIMEOUTS
        deadline = time.monotonic() + budget
        chunks: list[bytes] = []
        size = 0
        try:
            # read1: what has arrived, at most one read timeout later. read() would wait for a
            # whole chunk however slowly it trickles in, and the clock would never be looked at.
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._error(self._too_large(f"more than {self.max_bytes} bytes"), url)
                if time.monotonic() > deadline:
                    raise _Retry(f"body still arriving after {budget:g}s")
                chunks.append(chunk)
        except urllib3.exceptions.DecodeError as exc:
            raise self._error(f"could not decompress the body: {_reason(exc)}", url) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # broken or timed-out connection
            if "timed out" in str(exc).lower():
                raise _Retry(self._timeout_message()) from None
            raise _Retry(f"connection broken while reading: {_reason(exc)}") from None
        return b"".join(chunks)

    def _too_large(self, detail: str) -> str:
        return f"page too large: {detail}, the limit is {self.max_bytes} bytes"

    def _timeout_message(self) -> str:
        connect, read = self.timeout
        return f"timed out (connect {connect:g}s, read {read:g}s)"

    def _wait_turn(self, url: str) -> None:
        """Keep at least `politeness` seconds between request starts to one host, process-wide."""
        if self.politeness <= 0:
            return
        host = (urlsplit(url).hostname or "").lower()
        with _turns_lock:
            now = time.monotonic()
            start = max(now, _next_turn.get(host, 0.0))
            _next_turn[host] = start + self.politeness
            if len(_next_turn) > 10_000:
                for stale in [h for h, at in _next_turn.items() if at < now]:
                    del _next_turn[stale]
        if start > now:
            time.sleep(start - now)


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified worth keeping for the next conditional GET."""
    return value if value and len(value) <= _VALIDATOR_CHARS else None


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a requests/urllib3 error, without the object reprs."""
    text = str(exc.args[0] if exc.args else exc)
    if "Caused by " in text:
        text = text.split("Caused by ", 1)[1]
    return mask_urls(text.strip("()' ")[:200]) or type(exc).__name__


def _error_body(response: requests.Response) -> bytes:
    """The start of an error answer, when it is JSON (an API's own message); else nothing."""
    if "json" not in response.headers.get("Content-Type", "").lower():
        return b""
    try:
        return response.raw.read(_ERROR_BODY_BYTES, decode_content=True) or b""
    except Exception:  # the message is a courtesy; its absence must not hide the status
        return b""


def _detail(body: bytes) -> str:
    """An API error's own words: `message` or `error` of a JSON object body."""
    try:
        data = json.loads(body.decode("utf-8", "replace")) if body else None
    except (ValueError, RecursionError):
        return ""
    if not isinstance(data, dict):
        return ""
    words = data.get("message") or data.get("error") or ""
    return f"({str(words).strip()[:200]})" if words else ""
