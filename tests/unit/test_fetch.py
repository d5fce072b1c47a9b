"""The fetcher every web source reads through: what it promises against real loopback servers."""

from __future__ import annotations

import gzip
import itertools
import socket
import threading
import time
import unicodedata
from pathlib import Path

import pytest

from distributor.errors import SourceError
from distributor.fetch import Fetcher
from distributor.http import USER_AGENT
from tests.fakes.server import Reply, Request

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
VIETNAMESE = "Thủ tướng chỉ đạo khắc phục hậu quả mưa lũ"
MB = 1024 * 1024


def fetcher(**options: object) -> Fetcher:
    defaults: dict[str, object] = {"politeness": 0, "retries": 0, "backoff": 0.01}
    return Fetcher(source="portal", **{**defaults, **options})  # type: ignore[arg-type]


def free_port_url() -> str:
    """A loopback URL nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed"


def fails(fetch: Fetcher, url: str, **kwargs: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        fetch.get(url, **kwargs)  # type: ignore[arg-type]
    error = caught.value
    assert error.source == "portal"
    assert str(error).startswith(f"portal: {url}: ")
    return error


class EndlessServer:
    """A raw server answering with `head` and then body bytes until the client hangs up."""

    def __init__(self, head: bytes, chunk: bytes, pause: float = 0.0) -> None:
        self.head = head
        self.chunk = chunk
        self.pause = pause  # seconds between two chunks
        self.sent = 0
        self.done = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/endless"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            data = b""
            while b"\r\n\r\n" not in data:
                data += connection.recv(4096)
            try:
                connection.sendall(self.head)
                while self.sent < 200 * MB:
                    connection.sendall(self.chunk)
                    self.sent += len(self.chunk)
                    time.sleep(self.pause)
            except OSError:
                pass
        self.done.set()

    def close(self) -> None:
        self.listener.close()


# --- conditional GET, redirects --------------------------------------------------------------


def test_unchanged_page_costs_one_conditional_request_answered_304(server):
    def page(request: Request) -> Reply:
        if request.header("If-None-Match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        headers = {"ETag": '"v1"', "Last-Modified": "Tue, 13 Jul 2021 14:00:00 GMT"}
        return Reply(200, b"<p>hello</p>", {"Content-Type": "text/html", **headers})

    server.add("GET", "/page", page)
    fetch = fetcher()
    first = fetch.get(server.url + "/page")
    assert (first.status, first.content, first.not_modified) == (200, b"<p>hello</p>", False)
    assert first.etag == '"v1"' and first.last_modified == "Tue, 13 Jul 2021 14:00:00 GMT"

    again = fetch.get(server.url + "/page", etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.status == 304 and again.content == b""
    assert again.etag == '"v1"' and again.last_modified == first.last_modified
    assert len(server.requests) == 2
    conditional = server.requests[1]
    assert conditional.header("If-None-Match") == '"v1"'
    assert conditional.header("If-Modified-Since") == "Tue, 13 Jul 2021 14:00:00 GMT"


def test_validators_too_long_to_be_real_are_not_kept(server):
    # Sources keep validators in their saved state (an html source, for 2000 pages): a hostile
    # server's 60 kB ETag must not land there.
    huge = '"' + "x" * 60_000 + '"'
    server.add("GET", "/page", lambda r: Reply(200, b"<p>x</p>", {"ETag": huge, "Last-Modified": "y" * 60_000}))
    fetched = fetcher().get(server.url + "/page")
    assert (fetched.etag, fetched.last_modified) == (None, None)


def test_requests_carry_our_user_agent_and_accept(server):
    server.add("GET", "/feed", lambda r: Reply(200, b"<rss/>"))
    fetcher().get(server.url + "/feed", accept="application/rss+xml")
    sent = server.requests[0]
    assert sent.header("User-Agent") == USER_AGENT
    assert sent.header("Accept") == "application/rss+xml"


def test_redirects_are_followed_and_the_final_url_reported(server):
    server.add("GET", "/old", lambda r: Reply(301, b"", {"Location": "/middle"}))
    server.add("GET", "/middle", lambda r: Reply(302, b"", {"Location": server.url + "/new"}))
    server.add("GET", "/new", lambda r: Reply(200, b"moved here"))
    fetched = fetcher().get(server.url + "/old")
    assert fetched.url == server.url + "/new"
    assert fetched.content == b"moved here"


def test_redirect_loop_is_a_clear_error(server):
    server.add("GET", "/a", lambda r: Reply(302, b"", {"Location": "/b"}))
    server.add("GET", "/b", lambda r: Reply(302, b"", {"Location": "/a"}))
    error = fails(fetcher(), server.url + "/a")
    assert "redirect loop" in str(error)
    assert f"{server.url}/a -> {server.url}/b -> {server.url}/a" in str(error)
    assert len(server.requests) == 2


def test_endless_redirect_chain_stops_at_the_cap(server):
    server.add("GET", r"/hop/(\d+)", lambda r: Reply(302, b"", {"Location": f"/hop/{int(r.match[1]) + 1}"}))
    error = fails(fetcher(), server.url + "/hop/0")
    assert "too many redirects (more than 10)" in str(error)
    assert len(server.requests) == 11


def test_credentials_are_not_carried_to_another_host(server):
    other_host = server.url.replace("127.0.0.1", "localhost")
    server.add("GET", "/there", lambda r: Reply(200, b"ok"))
    server.add("GET", "/here", lambda r: Reply(302, b"", {"Location": other_host + "/there"}))
    fetcher().get(server.url + "/here", headers={"Authorization": "Basic c2VjcmV0"})
    first, second = server.requests
    assert first.header("Authorization") == "Basic c2VjcmV0"
    assert second.path == "/there" and second.header("Authorization") is None


# --- size cap --------------------------------------------------------------------------------


def test_a_10_mb_page_is_refused_from_its_content_length(server):
    server.add("GET", "/huge", lambda r: Reply(200, b"x" * (10 * MB)))
    error = fails(fetcher(), server.url + "/huge")
    assert "too large" in str(error) and str(5 * MB) in str(error)


def test_an_endless_chunked_page_is_refused_while_streaming():
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    endless = EndlessServer(head, chunk)
    try:
        started = time.monotonic()
        error = fails(fetcher(max_bytes=1 * MB), endless.url)
        assert "too large" in str(error) and "more than 1048576 bytes" in str(error)
        assert time.monotonic() - started < 5
        assert endless.done.wait(5)
        assert endless.sent < 200 * MB  # we hung up; the server did not get to send it all
    finally:
        endless.close()


def test_a_page_without_length_that_never_ends_is_refused():
    endless = EndlessServer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"y" * 65536)
    try:
        error = fails(fetcher(max_bytes=2 * MB), endless.url)
        assert "more than 2097152 bytes" in str(error)
    finally:
        endless.close()


def test_a_body_trickling_in_is_refused_after_three_read_timeouts():
    # A byte at a time, each well within the read timeout: it used to wait for a whole 64 kB
    # chunk (an hour at this pace) before looking at the clock.
    endless = EndlessServer(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x", pause=0.05)
    try:
        started = time.monotonic()
        error = fails(fetcher(timeout=(1.0, 0.3)), endless.url)
        assert "body still arriving after 0.9s" in str(error)
        assert time.monotonic() - started < 3
    finally:
        endless.close()


def test_a_compressed_body_is_capped_after_decompression(server):
    bomb = gzip.compress(b"\0" * (10 * MB))
    assert len(bomb) < 100_000  # the Content-Length it is sent with is small: it "lies"
    server.add("GET", "/bomb", lambda r: Reply(200, bomb, {"Content-Encoding": "gzip"}))
    error = fails(fetcher(), server.url + "/bomb")
    assert "too large" in str(error)


# --- failures and retries --------------------------------------------------------------------


def test_a_slow_server_times_out_with_a_clear_error(server):
    def slow(request: Request) -> Reply:
        time.sleep(1.0)
        return Reply(200, b"late")

    server.add("GET", "/slow", slow)
    started = time.monotonic()
    error = fails(fetcher(timeout=(1.0, 0.2)), server.url + "/slow")
    assert "timed out" in str(error) and "read 0.2s" in str(error)
    assert time.monotonic() - started < 0.9


def test_timeouts_are_retried_then_reported_with_the_attempts(server):
    def slow(request: Request) -> Reply:
        time.sleep(0.5)
        return Reply(200, b"late")

    server.add("GET", "/slow", slow)
    error = fails(fetcher(timeout=(1.0, 0.1), retries=1), server.url + "/slow")
    assert "timed out" in str(error) and "after 2 attempts" in str(error)
    assert len(server.requests) == 2


def test_server_errors_are_retried_until_the_page_comes(server):
    replies = iter([Reply(503, b"busy"), Reply(502, b"bad gateway"), Reply(200, b"finally")])
    server.add("GET", "/flaky", lambda r: next(replies))
    fetched = fetcher(retries=2).get(server.url + "/flaky")
    assert fetched.content == b"finally"
    assert len(server.requests) == 3


def test_server_errors_that_persist_are_reported_with_status(server):
    server.add("GET", "/down", lambda r: Reply(500, b"boom"))
    error = fails(fetcher(retries=2), server.url + "/down")
    assert "server error: HTTP 500" in str(error) and "after 3 attempts" in str(error)
    assert len(server.requests) == 3


def test_rate_limit_waits_as_long_as_retry_after_says(server):
    replies = iter([Reply(429, b"slow down", {"Retry-After": "1"}), Reply(200, b"ok")])
    server.add("GET", "/limited", lambda r: next(replies))
    started = time.monotonic()
    assert fetcher(retries=1).get(server.url + "/limited").content == b"ok"
    assert time.monotonic() - started >= 1.0


def test_a_retry_after_beyond_the_cap_gives_up_at_once(server):
    server.add("GET", "/limited", lambda r: Reply(429, b"", {"Retry-After": "3600"}))
    started = time.monotonic()
    error = fails(fetcher(retries=3, max_retry_after=5), server.url + "/limited")
    assert "rate limited: HTTP 429" in str(error) and "wait 3600s" in str(error)
    assert time.monotonic() - started < 1 and len(server.requests) == 1


@pytest.mark.parametrize(("status", "words"), [(404, "HTTP 404 Not Found"), (403, "HTTP 403 Forbidden")])
def test_client_errors_are_not_retried(server, status, words):
    server.add("GET", "/gone", lambda r: Reply(status, b"no"))
    error = fails(fetcher(retries=3), server.url + "/gone")
    assert words in str(error)
    assert len(server.requests) == 1


def test_a_json_error_body_gives_its_message(server):
    body = {"code": "rest_forbidden", "message": "Sorry, you are not allowed to do that."}
    server.add("GET", "/api", lambda r: Reply(401, body))
    error = fails(fetcher(), server.url + "/api")
    assert "HTTP 401" in str(error) and "Sorry, you are not allowed to do that." in str(error)


def test_a_json_error_body_nested_too_deep_still_gives_the_status(server):
    server.add("GET", "/api", lambda r: Reply(400, b"[" * 5000, {"Content-Type": "application/json"}))
    assert str(fails(fetcher(), server.url + "/api")).endswith(": HTTP 400 Bad Request")


def test_a_refused_connection_is_reported():
    url = free_port_url()
    error = fails(fetcher(retries=1), url)
    assert "connection failed" in str(error) and "after 2 attempts" in str(error)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "file:///etc/passwd", "not a url"])
def test_only_http_urls_are_fetched(url):
    assert "not an http(s) URL" in str(fails(fetcher(), url))


def test_no_other_exception_escapes():
    error = fails(fetcher(), "http://[::1/broken")
    assert "unexpected ValueError" in str(error)


# --- politeness ------------------------------------------------------------------------------


def test_requests_to_one_host_are_spaced_across_threads(server):
    starts: list[float] = []

    def page(request: Request) -> Reply:
        starts.append(time.monotonic())
        return Reply(200, b"ok")

    server.add("GET", "/p", page)
    polite = fetcher(politeness=0.25)
    threads = [threading.Thread(target=polite.get, args=(server.url + "/p",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts.sort()
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 3 and min(gaps) >= 0.2


def test_politeness_is_per_host(server):
    server.add("GET", "/p", lambda r: Reply(200, b"ok"))
    polite = fetcher(politeness=2.0)
    polite.get(server.url + "/p")
    started = time.monotonic()
    polite.get(server.url.replace("127.0.0.1", "localhost") + "/p")  # another host name
    assert time.monotonic() - started < 1.0


# --- charsets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "content_type", "encoding"),
    [
        ("rss-1258-header.xml", "application/rss+xml; charset=windows-1258", "cp1258"),
        ("rss-1258-declared.xml", "application/rss+xml", "cp1258"),
        ("page-1258-meta.html", "text/html", "cp1258"),
        ("rss-1258-header.xml", "application/rss+xml; charset=utf-8", "cp1258"),  # wrong label
        ("rss-bom.xml", "application/rss+xml", "utf-8-sig"),
        ("rss-bom.xml", "text/xml; charset=iso-8859-1", "utf-8-sig"),  # the BOM wins
    ],
)
def test_vietnamese_text_decodes_to_nfc(server, fixture, content_type, encoding):
    body = (FEEDS / fixture).read_bytes()
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": content_type}))
    fetched = fetcher().get(server.url + "/doc")
    text = fetched.text()
    assert fetched.encoding == encoding
    assert VIETNAMESE in text
    assert unicodedata.is_normalized("NFC", text)
    assert not text.startswith("\ufeff")


def test_windows_1258_bytes_really_hold_combining_marks():
    # The fixture is genuine Windows-1258: tones are separate combining bytes, not precomposed.
    raw = (FEEDS / "rss-1258-header.xml").read_bytes().decode("cp1258")
    assert VIETNAMESE not in raw
    assert VIETNAMESE in unicodedata.normalize("NFC", raw)


def test_utf8_labelled_latin1_is_read_as_utf8(server):
    body = f"<p>{VIETNAMESE}</p>".encode()
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": "text/html; charset=ISO-8859-1"}))
    fetched = fetcher().get(server.url + "/doc")
    assert fetched.encoding == "utf-8" and VIETNAMESE in fetched.text()


@pytest.mark.parametrize(("label", "codec"), [("VISCII", "viscii"), ("TCVN3", "tcvn")])
def test_legacy_vietnamese_charsets_declared_in_meta(server, label, codec):
    body = f'<html><head><meta charset="{label}"></head><p>{VIETNAMESE}</p>'.encode(codec)
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": "text/html"}))
    fetched = fetcher().get(server.url + "/doc")
    assert fetched.encoding == codec and VIETNAMESE in fetched.text()


def test_undeclared_windows_1258_is_detected(server):
    body = (FEEDS / "page-1258-meta.html").read_bytes().replace(b"charset=windows-1258", b"")
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": "text/html"}))
    fetched = fetcher().get(server.url + "/doc")
    assert fetched.encoding == "cp1258" and VIETNAMESE in fetched.text()


@pytest.mark.parametrize("pad", ["", " "])  # UTF-16 decodes any even number of ASCII-range bytes
@pytest.mark.parametrize(
    ("template", "content_type"),
    [
        ('<html><head><meta charset="utf-16"></head><body><p>{text}</p></body></html>{pad}', "text/html"),
        ('<?xml version="1.0" encoding="UTF-16"?><rss><channel><title>{text}</title></channel></rss>{pad}', "text/xml"),
        ("<p>{text}</p>{pad}", "text/html; charset=utf-16"),
    ],
)
def test_a_utf16_label_on_bytes_that_are_not_utf16_is_ignored(server, template, content_type, pad):
    # Copied templates keep a UTF-16 label after the page is re-encoded; read as UTF-16 it was
    # CJK mojibake, or right or wrong depending on whether the page had an even length.
    body = template.format(text=VIETNAMESE, pad=pad).encode("utf-8")
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": content_type}))
    fetched = fetcher().get(server.url + "/doc")
    assert fetched.encoding == "utf-8" and VIETNAMESE in fetched.text()


def test_real_utf16_without_a_bom_is_still_read(server):
    body = f"<p>{VIETNAMESE}</p>".encode("utf-16-le")
    server.add("GET", "/doc", lambda r: Reply(200, body, {"Content-Type": "text/html; charset=utf-16le"}))
    assert VIETNAMESE in fetcher().get(server.url + "/doc").text()
