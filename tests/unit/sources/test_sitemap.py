"""The sitemap source against sitemaps served on loopback: lastmod-driven polling, indexes, news
sitemaps, article pages extracted, and broken input."""

from __future__ import annotations

import gzip
import json
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from distributor import extract as extract_module
from distributor.sources import sitemap as sitemap_module
from distributor.sources import source_class
from distributor.sources.sitemap import Entry, Memory, SitemapSource, SitemapSourceSettings
from tests.fakes.server import FakeServer, Reply, Request
from tests.unit.sources.web_helpers import poll_fails, web_source

DATA = Path(__file__).parents[2] / "data" / "sitemaps"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def sitemap_source(url: str, **options: object) -> SitemapSource:
    return web_source(SitemapSource, url, **options)


def fixture(server, name: str) -> bytes:
    return (DATA / name).read_text(encoding="utf-8").replace("{base}", server.url).encode()


def serve(server: FakeServer, path: str, body: bytes, content_type: str = "application/xml") -> str:
    server.add("GET", path, lambda r: Reply(200, body, {"Content-Type": content_type}))
    return server.url + path


def urlset(server, pages: dict[str, str], news: bool = False) -> bytes:
    """A sitemap of `path -> lastmod`; with `news`, each path's title is 'Bài <path>'."""
    rows = []
    for path, lastmod in pages.items():
        extra = f"<news:news><news:title>Bài {path}</news:title></news:news>" if news else ""
        modified = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
        rows.append(f"<url><loc>{server.url}{path}</loc>{modified}{extra}</url>")
    namespaces = (
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
    )
    return f'<?xml version="1.0"?><urlset {namespaces}>{"".join(rows)}</urlset>'.encode()


def with_etag(etag: Callable[[], str], body: Callable[[], bytes]) -> Callable[[Request], Reply]:
    """A handler answering 304 to the current ETag, else the current body with it."""

    def handle(request: Request) -> Reply:
        tag = etag()
        if request.header("If-None-Match") == tag:
            return Reply(304, b"", {"ETag": tag})
        return Reply(200, body(), {"ETag": tag})

    return handle


def test_registered_under_its_type():
    assert source_class("sitemap") is SitemapSource


# --- news sitemaps ---------------------------------------------------------------------------


def test_google_news_sitemap_alone_gives_drafts(server):
    url = serve(server, "/news.xml", fixture(server, "news.xml"))
    result = sitemap_source(url, fetch_pages=False).poll({})
    first, second = result.drafts  # newest lastmod first
    assert first.url == f"{server.url}/tin/hoi-nghi.html"
    assert first.title == "Hội nghị xúc tiến đầu tư năm 2021"
    assert first.published == "2021-07-13T21:00:00+07:00"
    assert first.updated == "2021-07-13T14:05:00Z"  # lastmod, in UTC
    assert first.tags == ["đầu tư", "kinh tế", "hội nghị"]
    assert first.image == f"{server.url}/anh/hoi-nghi.jpg"
    assert first.language == "vi"
    assert second.title == "Khắc phục hậu quả mưa lũ" and second.tags == []
    assert result.complete is False and result.errors == []
    assert len(server.requests) == 1  # no page fetched


def test_article_pages_are_fetched_and_extracted(server):
    url = serve(server, "/news.xml", fixture(server, "news.xml"))
    serve(server, "/tin/hoi-nghi.html", fixture(server, "article.html"), "text/html; charset=utf-8")
    server.add("GET", "/tin/mua-lu.html", lambda r: Reply(200, b"", {"Content-Type": "text/html"}))
    result = sitemap_source(url).poll({})
    article, fallback = result.drafts
    assert article.title == "Hội nghị xúc tiến đầu tư năm 2021"
    assert "15 dự án" in article.content and "Bản quyền" not in article.content
    assert article.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)  # from the page
    assert article.updated == "2021-07-13T14:05:00Z"  # the page has none: the lastmod
    assert article.categories == ["Kinh tế"]
    assert article.tags == ["đầu tư", "kinh tế", "hội nghị"]  # news:keywords
    assert article.image == f"{server.url}/anh/og-hoi-nghi.jpg"  # the page's image wins
    # An empty page defeats extraction; the news sitemap still gives a title and a date.
    assert fallback.title == "Khắc phục hậu quả mưa lũ" and fallback.content == ""
    assert result.errors == []
    assert [r.path for r in server.requests] == ["/news.xml", "/tin/hoi-nghi.html", "/tin/mua-lu.html"]


def test_page_without_article_and_no_news_title_is_an_error(server):
    url = serve(server, "/sitemap.xml", urlset(server, {"/a": "2021-07-13"}))
    serve(server, "/a", b"<html><body></body></html>", "text/html")
    result = sitemap_source(url).poll({})
    assert result.drafts == []
    (error,) = result.errors
    assert str(error).startswith(f"portal: {server.url}/a: ") and "no article found" in str(error)


def test_a_page_that_breaks_extraction_is_reported_and_the_others_read(server, monkeypatch):
    # Whatever extraction raises on one hostile page, the poll goes on with the other pages.
    url = serve(server, "/sitemap.xml", urlset(server, {"/a": "2021-07-13", "/b": "2021-07-12"}, news=True))
    serve(server, "/a", b"<html><body>hostile</body></html>", "text/html")
    serve(server, "/b", fixture(server, "article.html"), "text/html; charset=utf-8")
    real = extract_module.extract_article

    def extract(html: str, url: str, **options: Any) -> Any:
        if url.endswith("/a"):
            raise RecursionError("maximum recursion depth exceeded")
        return real(html, url, **options)

    monkeypatch.setattr(extract_module, "extract_article", extract)
    result = sitemap_source(url).poll({})
    assert [d.title for d in result.drafts] == ["Bài /a", "Hội nghị xúc tiến đầu tư năm 2021"]


def test_no_news_title_without_fetching_pages_is_an_error(server):
    url = serve(server, "/sitemap.xml", urlset(server, {"/a": "2021-07-13"}))
    (error,) = sitemap_source(url, fetch_pages=False).poll({}).errors
    assert "no news:title" in str(error) and f"{server.url}/a" in str(error)


def test_a_failed_page_is_retried_next_poll(server):
    pages = {"/a": "2021-07-13T10:00:00Z"}
    url = serve(server, "/sitemap.xml", urlset(server, pages, news=True))
    article = fixture(server, "article.html")
    status = {"code": 503}
    server.add("GET", "/a", lambda r: Reply(status["code"], article, {"Content-Type": "text/html"}))
    source = sitemap_source(url)
    first = source.poll({})
    assert first.drafts == []
    assert "HTTP 503" in str(first.errors[0]) and f"{server.url}/a" in str(first.errors[0])
    status["code"] = 200
    second = source.poll(first.state)
    assert [d.title for d in second.drafts] == ["Hội nghị xúc tiến đầu tư năm 2021"]


def test_a_url_without_an_article_is_not_read_again_until_its_lastmod_changes(server):
    # A contact page or a category listed in the sitemap: it used to be fetched (and reported)
    # on every poll, and kept the sitemap from ever being answered 304.
    pages = {"/lien-he": "2021-07-13"}
    server.add("GET", "/sitemap.xml", with_etag(lambda: f'"{pages["/lien-he"]}"', lambda: urlset(server, pages)))
    serve(server, "/lien-he", b"<html><body><p>Li\xc3\xaan h\xe1\xbb\x87</p></body></html>", "text/html")
    for fetch_pages in (True, False):
        source = sitemap_source(server.url + "/sitemap.xml", fetch_pages=fetch_pages)
        first = source.poll({})
        assert first.drafts == [] and len(first.errors) == 1
        server.requests.clear()
        again = source.poll(first.state)
        assert again.not_modified and len(server.requests) == 1
        pages["/lien-he"] = "2021-07-14"  # changed: read once more
        assert f"{server.url}/lien-he" in str(source.poll(again.state).errors)
        pages["/lien-he"] = "2021-07-13"


def test_a_page_that_keeps_failing_is_given_up_after_some_polls(server):
    server.add(
        "GET", "/sitemap.xml", with_etag(lambda: '"v1"', lambda: urlset(server, {"/gone": "2021-07-13"}, news=True))
    )
    server.add("GET", "/gone", lambda r: Reply(404, b"missing"))
    source = sitemap_source(server.url + "/sitemap.xml")
    state: dict[str, str] = {}
    for _ in range(sitemap_module.MAX_TRIES):
        result = source.poll(state)
        state = result.state
        assert result.drafts == [] and "HTTP 404" in str(result.errors[0])
    assert "gave up after" in str(result.errors[-1])
    server.requests.clear()
    assert source.poll(state).not_modified and len(server.requests) == 1


# --- lastmod-driven changes ------------------------------------------------------------------


def test_only_new_and_newer_urls_become_drafts_and_unchanged_is_304(server):
    pages = {"/a": "2021-07-10T00:00:00Z", "/b": "2021-07-11T00:00:00Z"}
    version = {"n": 1}
    sitemap = with_etag(lambda: f'"v{version["n"]}"', lambda: urlset(server, pages, news=True))
    server.add("GET", "/sitemap.xml", sitemap)
    source = sitemap_source(server.url + "/sitemap.xml", fetch_pages=False)

    first = source.poll({})
    assert [d.title for d in first.drafts] == ["Bài /b", "Bài /a"]
    assert first.state["etag"] == '"v1"'

    unchanged = source.poll(first.state)
    assert unchanged.not_modified and unchanged.drafts == [] and unchanged.state == first.state
    assert server.requests[-1].header("If-None-Match") == '"v1"'

    pages["/a"] = "2021-07-12T00:00:00Z"  # edited
    pages["/c"] = "2021-07-12T06:00:00Z"  # added
    del pages["/b"]  # removed
    version["n"] = 2
    changed = source.poll(unchanged.state)
    assert [d.title for d in changed.drafts] == ["Bài /c", "Bài /a"]
    assert changed.complete is False

    version["n"] = 3  # a new ETag, same content: nothing is new
    assert source.poll(changed.state).drafts == []


def test_at_most_max_urls_per_poll_newest_first_the_rest_next_time(server):
    pages: dict[str, str] = {}
    server.add("GET", "/sitemap.xml", lambda r: Reply(200, urlset(server, pages, news=True), {"ETag": '"same"'}))
    source = sitemap_source(server.url + "/sitemap.xml", fetch_pages=False, max_urls_per_poll=2)
    state = source.poll({}).state  # the source is known: what comes next is all new
    server.requests.clear()
    pages.update({f"/p{i}": f"2021-07-1{i}T00:00:00Z" for i in range(5)})
    seen = []
    for _ in range(3):
        result = source.poll(state)
        seen.append([d.url.rsplit("/", 1)[1] for d in result.drafts])
        assert result.backlog == (len(seen) < 3)
        state = result.state
    assert seen == [["p4", "p3"], ["p2", "p1"], ["p0"]]
    assert server.requests[1].header("If-None-Match") is None  # work was left: no 304 allowed
    assert state["etag"] == '"same"'  # all done: the next poll may be answered 304


def test_a_new_source_reads_only_its_newest_urls(server):
    # What a sitemap held before the source was added is old: the newest fill the feeds, the rest
    # are remembered as seen (no thousands of page fetches, no backlog to post).
    pages = {f"/p{i}": f"2021-07-1{i}T00:00:00Z" for i in range(5)}
    url = serve(server, "/sitemap.xml", urlset(server, pages, news=True))
    source = sitemap_source(url, fetch_pages=False, max_urls_per_poll=2)
    first = source.poll({})
    assert [d.url.rsplit("/", 1)[1] for d in first.drafts] == ["p4", "p3"] and not first.backlog
    assert source.poll(first.state).drafts == []


def test_urls_without_lastmod_are_new_once(server):
    url = serve(server, "/sitemap.xml", urlset(server, {"/a": "", "/b": ""}, news=True))
    source = sitemap_source(url, fetch_pages=False)
    first = source.poll({})
    assert len(first.drafts) == 2
    assert source.poll(first.state).drafts == []


def test_include_and_exclude_filter_article_urls(server):
    pages = {"/tin/a.html": "2021-07-13", "/tag/x": "2021-07-13", "/tin/b.html?print=1": "2021-07-13"}
    url = serve(server, "/sitemap.xml", urlset(server, pages, news=True))
    source = sitemap_source(url, fetch_pages=False, include=r"/tin/", exclude=r"print=1")
    assert [d.title for d in source.poll({}).drafts] == ["Bài /tin/a.html"]


def test_memory_stays_bounded_and_old_forgotten_urls_stay_old(monkeypatch):
    monkeypatch.setattr(sitemap_module, "MAX_SEEN", 3)
    memory = Memory()
    for day in range(1, 6):
        memory.record(Entry(url=f"https://x.vn/{day}", lastmod=f"2021-07-0{day}T00:00:00Z"))
    state = memory.dump()
    restored = Memory.load(state)
    assert sorted(restored.seen) == ["https://x.vn/3", "https://x.vn/4", "https://x.vn/5"]
    assert restored.floor == "2021-07-02T00:00:00Z"
    assert not restored.wants(Entry(url="https://x.vn/1", lastmod="2021-07-01T00:00:00Z"))
    assert restored.wants(Entry(url="https://x.vn/new", lastmod="2021-07-03T00:00:00Z"))
    assert restored.wants(Entry(url="https://x.vn/4", lastmod="2021-07-09T00:00:00Z"))
    assert not restored.wants(Entry(url="https://x.vn/4", lastmod="2021-07-04T00:00:00Z"))


def test_more_urls_without_lastmod_than_remembered_do_not_come_back(server, monkeypatch):
    # Undated URLs forgotten to bound the memory used to be new again on every poll: 50 pages
    # fetched per poll forever, and never a 304.
    monkeypatch.setattr(sitemap_module, "MAX_SEEN", 3)
    body = urlset(server, {f"/p{i}": "" for i in range(6)}, news=True)
    server.add("GET", "/sitemap.xml", lambda r: Reply(200, body, {"ETag": '"same"'}))
    source = sitemap_source(server.url + "/sitemap.xml", fetch_pages=False)
    first = source.poll({})
    assert len(first.drafts) == 6
    again = source.poll({key: value for key, value in first.state.items() if key != "etag"})
    assert again.drafts == [] and again.state["etag"] == '"same"'
    assert len(json.loads(again.state["seen"])) == 3  # still bounded


def test_a_corrupt_state_starts_afresh(server):
    url = serve(server, "/sitemap.xml", urlset(server, {"/a": "2021-07-13"}, news=True))
    result = sitemap_source(url, fetch_pages=False).poll({"seen": "{not json", "sitemaps": "[]"})
    assert [d.title for d in result.drafts] == ["Bài /a"]


# --- sitemap indexes -------------------------------------------------------------------------


def test_index_children_are_read_and_unchanged_ones_skipped(server):
    serve(server, "/index.xml", fixture(server, "index.xml"))
    serve(server, "/sitemap-news.xml", fixture(server, "news.xml"))
    serve(server, "/sitemap-pages.xml", urlset(server, {"/gioi-thieu": "2021-01-01"}, news=True))
    source = sitemap_source(server.url + "/index.xml", fetch_pages=False)
    first = source.poll({})
    assert [d.title for d in first.drafts] == [
        "Hội nghị xúc tiến đầu tư năm 2021",
        "Khắc phục hậu quả mưa lũ",
        "Bài /gioi-thieu",
    ]
    assert [r.path for r in server.requests] == ["/index.xml", "/sitemap-news.xml", "/sitemap-pages.xml"]
    server.requests.clear()
    second = source.poll(first.state)
    assert second.drafts == [] and second.errors == []
    assert [r.path for r in server.requests] == ["/index.xml"]  # children's lastmod unchanged


def index_of(server, *paths: str) -> bytes:
    """A sitemap index of `paths`, without lastmod."""
    rows = "".join(f"<sitemap><loc>{server.url}{path}</loc></sitemap>" for path in paths)
    return f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{rows}</sitemapindex>'.encode()


def test_an_index_listing_itself_or_a_child_twice_reads_each_sitemap_once(server):
    server.add(
        "GET", "/index.xml", lambda r: Reply(200, index_of(server, "/index.xml", "/a.xml", "/more.xml", "/a.xml"))
    )
    serve(server, "/more.xml", index_of(server, "/index.xml", "/a.xml", "/b.xml"))
    serve(server, "/a.xml", urlset(server, {"/tin-a": "2021-07-13"}, news=True))
    serve(server, "/b.xml", urlset(server, {"/tin-b": "2021-07-13"}, news=True))
    result = sitemap_source(server.url + "/index.xml", fetch_pages=False).poll({})
    assert sorted(d.title for d in result.drafts) == ["Bài /tin-a", "Bài /tin-b"]
    assert result.errors == []
    assert [r.path for r in server.requests] == ["/index.xml", "/a.xml", "/more.xml", "/b.xml"]


def test_a_static_index_does_not_hide_new_articles_in_children_without_lastmod(server):
    # The index never changes (a 304 for it), the news sitemap it lists does: the new article
    # must still be found, and an unchanged child costs a 304.
    pages = {"/a": "2021-07-10T00:00:00Z"}
    server.add("GET", "/index.xml", with_etag(lambda: '"index"', lambda: index_of(server, "/news.xml")))
    server.add("GET", "/news.xml", with_etag(lambda: f'"news-{len(pages)}"', lambda: urlset(server, pages, news=True)))
    source = sitemap_source(server.url + "/index.xml", fetch_pages=False)
    first = source.poll({})
    assert [d.title for d in first.drafts] == ["Bài /a"]
    server.requests.clear()
    unchanged = source.poll(first.state)
    assert unchanged.drafts == [] and unchanged.errors == []
    assert [(r.path, r.header("If-None-Match")) for r in server.requests][-1] == ("/news.xml", '"news-1"')
    pages["/b"] = "2021-07-11T00:00:00Z"
    assert [d.title for d in source.poll(unchanged.state).drafts] == ["Bài /b"]


def test_children_an_index_no_longer_lists_are_forgotten(server):
    # Daily child sitemaps (sitemap-2021-07-13.xml...): the memory must not grow by one a day.
    day = {"n": 10}
    child = {"path": "/day-10.xml"}

    def index(request: Request) -> Reply:
        row = f"<sitemap><loc>{server.url}{child['path']}</loc><lastmod>2021-07-{day['n']}</lastmod></sitemap>"
        return Reply(200, f"<sitemapindex>{row}</sitemapindex>".encode())

    server.add("GET", "/index.xml", index)
    server.add(
        "GET", r"/day-\d+\.xml", lambda r: Reply(200, urlset(server, {r.path + "-tin": "2021-07-13"}, news=True))
    )
    source = sitemap_source(server.url + "/index.xml", fetch_pages=False)
    state: dict[str, str] = {}
    for n in range(10, 14):
        day["n"], child["path"] = n, f"/day-{n}.xml"
        state = source.poll(state).state
    assert list(json.loads(state["sitemaps"])) == [f"{server.url}/day-13.xml"]


def test_index_nesting_and_size_are_bounded(server):
    def index(request: Request) -> Reply:
        assert request.match is not None
        depth = int(request.match[1])
        children = "".join(f"<sitemap><loc>{server.url}/index-{depth + 1}-{i}.xml</loc></sitemap>" for i in range(3))
        return Reply(200, f"<sitemapindex>{children}</sitemapindex>".encode())

    server.add("GET", r"/index-(\d+)-\d+\.xml", index)
    result = sitemap_source(server.url + "/index-0-0.xml", max_sitemaps=4).poll({})
    assert result.drafts == []
    assert len(server.requests) == 5  # the root and at most max_sitemaps children
    assert result.errors and all("left unread" in str(e) for e in result.errors)
    assert "etag" not in result.state


def test_a_broken_child_sitemap_is_reported_and_the_others_read(server):
    serve(server, "/index.xml", fixture(server, "index.xml"))
    serve(server, "/sitemap-news.xml", fixture(server, "news.xml"))
    server.add("GET", "/sitemap-pages.xml", lambda r: Reply(404, b"missing"))
    result = sitemap_source(server.url + "/index.xml", fetch_pages=False).poll({})
    assert len(result.drafts) == 2
    (error,) = result.errors
    assert "HTTP 404" in str(error) and "/sitemap-pages.xml" in str(error)
    assert "sitemap-pages.xml" not in result.state.get("sitemaps", "")


def test_gzipped_sitemap_file(server):
    body = gzip.compress(fixture(server, "news.xml"))
    url = serve(server, "/sitemap.xml.gz", body, "application/x-gzip")
    assert len(sitemap_source(url, fetch_pages=False).poll({}).drafts) == 2


def test_windows_1258_news_titles_decode_to_nfc(server):
    raw = (DATA / "news-1258.xml").read_bytes().replace(b"{base}", server.url.encode())
    url = serve(server, "/sitemap.xml", raw)
    (draft,) = sitemap_source(url, fetch_pages=False).poll({}).drafts
    assert draft.title == "Thủ tướng chỉ đạo khắc phục hậu quả mưa lũ"
    assert unicodedata.is_normalized("NFC", draft.title)


# --- broken and hostile input ----------------------------------------------------------------


def test_malformed_sitemap_is_a_source_error(server):
    url = serve(server, "/sitemap.xml", b"<urlset><url><lo <<>> & garbage")
    assert "not a readable sitemap" in str(poll_fails(sitemap_source(url)))


def test_malformed_sitemap_with_readable_urls_uses_them(server):
    body = urlset(server, {"/a": "2021-07-13"}, news=True).replace(b"</urlset>", b"<url><loc>")
    url = serve(server, "/sitemap.xml", body)
    result = sitemap_source(url, fetch_pages=False).poll({})
    assert [d.title for d in result.drafts] == ["Bài /a"]
    assert "sitemap is malformed" in str(result.errors[0])


def test_a_feed_is_not_a_sitemap(server):
    url = serve(server, "/rss", b'<rss version="2.0"><channel/></rss>')
    assert "not a sitemap: the root element is <rss>" in str(poll_fails(sitemap_source(url)))


def test_external_entities_are_not_resolved(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file://{secret}">]>'
        f"<urlset><url><loc>{server.url}/a</loc><news><title>&x;</title></news></url></urlset>"
    ).encode()
    url = serve(server, "/sitemap.xml", body)
    result = sitemap_source(url, fetch_pages=False).poll({})
    assert "TOP SECRET" not in repr(result)


def test_a_news_sitemap_that_forgot_to_declare_its_namespace_is_read(server):
    # A common mistake: `news:` used without xmlns:news. Recovered, its tags are "news:news",
    # which lxml's QName refused with a ValueError that ended the poll.
    row = f"<url><loc>{server.url}/a</loc><news:news><news:title>Bài A</news:title></news:news></url>"
    url = serve(server, "/sitemap.xml", f"<urlset>{row}</urlset>".encode())
    result = sitemap_source(url, fetch_pages=False).poll({})
    assert [d.title for d in result.drafts] == ["Bài A"]
    assert "sitemap is malformed" in str(result.errors[0])


def test_bad_urls_and_character_references_are_dropped_not_fatal(server):
    rows = (
        "<url><loc>http://[::1</loc></url>"  # urljoin: "Invalid IPv6 URL"
        f"<url><loc>{server.url}/a&#xD800;</loc><news:news><news:title>Bài&#1; A</news:title></news:news>"
        "<image:image><image:loc>http://[x</image:loc></image:image></url>"
    )
    namespaces = (
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9" '
        'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'
    )
    url = serve(server, "/sitemap.xml", f"<urlset {namespaces}>{rows}</urlset>".encode())
    (draft,) = sitemap_source(url, fetch_pages=False).poll({}).drafts
    assert (draft.url, draft.title, draft.image) == (f"{server.url}/a", "Bài A", None)


def test_a_10_mb_sitemap_is_refused(server):
    url = serve(server, "/huge.xml", b"<urlset>" + b" " * (10 * 1024 * 1024))
    assert "too large" in str(poll_fails(sitemap_source(url)))


def test_a_gzip_bomb_is_refused(server):
    url = serve(server, "/bomb.xml.gz", gzip.compress(b" " * (6 * 1024 * 1024)), "application/gzip")
    assert "unpacks to more than" in str(poll_fails(sitemap_source(url)))


def test_a_slow_sitemap_times_out(server):
    def slow(request: Request) -> Reply:
        time.sleep(0.6)
        return Reply(200, b"<urlset/>")

    server.add("GET", "/slow.xml", slow)
    assert "timed out" in str(poll_fails(sitemap_source(server.url + "/slow.xml", timeout=0.2)))


# --- settings --------------------------------------------------------------------------------


def test_settings_defaults_and_validation():
    base = {"name": "s", "type": "sitemap", "url": "https://x.vn/sitemap.xml"}
    settings = SitemapSourceSettings.model_validate(base)
    assert settings.max_urls_per_poll == 50 and settings.fetch_pages is True
    with pytest.raises(ValidationError, match="regular expression"):
        SitemapSourceSettings.model_validate({**base, "include": "(unclosed"})
    with pytest.raises(ValidationError, match="unknown selector"):
        SitemapSourceSettings.model_validate({**base, "selectors": {"headline": "h1"}})
