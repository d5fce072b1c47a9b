"""Polite, bounded HTTP GETs for sources: conditional requests, size cap, retries, charset.

Every source reads the web through `Fetcher.get`, so one place guarantees what the design
promises about hostile input: an unchanged page costs one 304, a huge or endless page is refused
while streaming, a redirect loop or timeout becomes a clear `SourceError` naming the source and
URL, and no other exception escapes to crash a worker.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from distributor import charsets
from distributor.errors import SourceError
from distributor.http import retry_after, session

MAX_REDIRECTS = 10
CHUNK_BYTES = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_CREDENTIALS = ("authorization", "cookie", "proxy-authorization")
_ERROR_BODY_BYTES = 4096
_VALIDATOR_CHARS = 512  # real ETags and dates are short; sources keep them in their saved state
# A body that trickles in for longer than this many read timeouts is refused (slowloris pages).
_BODY_TIMEOUTS = 3

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
    ) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.politeness = politeness
        self.max_retry_after = max_retry_after

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Fetched:
        """GET `url`, following redirects; raise SourceError on any failure.

        `headers` are extra request headers (an Authorization header is dropped when a redirect
        leaves the host, so credentials never reach another server).
        """
        sent = {"Accept": accept or "*/*", **(headers or {})}
        if etag:
            sent["If-None-Match"] = etag
        if last_modified:
            sent["If-Modified-Since"] = last_modified
        try:
            return self._get(url, sent, etag, last_modified)
        except SourceError:
            raise
        except Exception as exc:  # the promise: nothing but SourceError leaves a fetch
            raise self._error(f"unexpected {type(exc).__name__}: {exc}", url) from exc

    def _error(self, message: str, url: str) -> SourceError:
        return SourceError(self.source, message, input=url)

    def _get(self, url: str, headers: dict[str, str], etag: str | None, last_modified: str | None) -> Fetched:
        chain = [url]
        current = url
        while True:
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise self._error(f"not an http(s) URL: {current!r}", url)
            if parts.netloc != urlsplit(url).netloc:
                headers = {k: v for k, v in headers.items() if k.lower() not in _CREDENTIALS}
            response, body = self._with_retries(current, headers)
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
            loop = " -> ".join([*chain[chain.index(target) :], target])
            raise self._error(f"redirect loop: {loop}", url)
        chain.append(target)
        if len(chain) > MAX_REDIRECTS + 1:
            raise self._error(f"too many redirects (more than {MAX_REDIRECTS}), last to {target}", url)
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

    def _with_retries(self, url: str, headers: dict[str, str]) -> tuple[requests.Response, bytes]:
        attempts = self.retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(url, headers)
            except _Retry as failure:
                if failure.wait is not None and failure.wait > self.max_retry_after:
                    raise self._error(f"{failure.message}; the server asks to wait {failure.wait:.0f}s", url) from None
                if attempt == attempts - 1:
                    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
                    raise self._error(failure.message + tries, url) from None
                time.sleep(max(self.backoff * 2**attempt, failure.wait or 0.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, url: str, headers: dict[str, str]) -> tuple[requests.Response, bytes]:
        """One request; transient failures raise _Retry, the rest SourceError."""
        self._wait_turn(url)
        try:
            response = session().get(url, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False)
        except requests.exceptions.Timeout:
            raise _Retry(self._timeout_message()) from None
        except requests.exceptions.ConnectionError as exc:
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
    return text.strip("()' ")[:200] or type(exc).__name__


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
