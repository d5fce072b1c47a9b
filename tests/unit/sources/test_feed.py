"""The feed source against feeds served on loopback: every format, changes, 304s, broken input."""

from __future__ import annotations

import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from distributor.normalize import normalize
from distributor.sources import feed as feed_module
from distributor.sources import source_class
from distributor.sources.feed import FeedSource, FeedSourceSettings
from tests.fakes.server import Reply, Request
from tests.unit.sources.web_helpers import poll_fails, web_source

FEEDS = Path(__file__).parents[2] / "data" / "feeds"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
VIETNAMESE = "Thủ tướng chỉ đạo khắc phục hậu quả mưa lũ"


def feed_source(url: str, **options: object) -> FeedSource:
    return web_source(FeedSource, url, **options)


def serve(server, fixture: str, content_type: str = "application/rss+xml") -> str:
    body = (FEEDS / fixture).read_bytes()
    server.add("GET", f"/{fixture}", lambda r: Reply(200, body, {"Content-Type": content_type}))
    return f"{server.url}/{fixture}"


def poll_fixture(server, fixture: str, content_type: str = "application/rss+xml"):
    return feed_source(serve(server, fixture, content_type)).poll({})


def test_registered_under_its_type():
    assert source_class("feed") is FeedSource


# --- formats ---------------------------------------------------------------------------------


def test_rss_091(server):
    result = poll_fixture(server, "rss091.xml")
    (draft,) = result.drafts
    assert draft.url == "https://portal.example.vn/tin/hoi-cho-nong-san.html"
    assert draft.title == "Khai mạc Hội chợ nông sản"
    assert draft.content == "Hội chợ diễn ra từ ngày 13 đến 16 tháng 7."
    assert draft.language == "vi" and draft.published is None
    assert result.complete is False and result.errors == []


def test_rss_10_rdf(server):
    (draft,) = poll_fixture(server, "rss10.rdf").drafts
    assert draft.url == "https://portal.example.vn/tin/lu-lut.html"
    assert draft.title == "Khắc phục hậu quả lũ lụt"
    assert draft.content == "<p>Toàn văn <b>bài viết</b> về lũ lụt.</p>"  # content:encoded wins
    assert draft.summary == "Tóm tắt về công tác khắc phục."
    assert draft.author == "Nguyễn Văn An"
    assert draft.categories == ["Thời sự"]
    assert draft.updated == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)  # dc:date


def test_rss_20(server):
    url = serve(server, "rss20.xml")
    first, second, third = feed_source(url).poll({}).drafts
    # Relative links resolve against the channel's <link>; the enclosure against the article.
    assert first.url == "https://portal.example.vn/tin/cao-toc.html"
    assert first.title == "Đường cao tốc mới thông xe"
    assert first.content == '<p>Tuyến đường <a href="/ban-do">dài 50 km</a> đã thông xe.</p>'
    assert first.summary == "Tuyến đường dài 50 km."
    assert first.image == "https://portal.example.vn/anh/cao-toc.jpg"
    assert first.categories == ["Giao thông", "Kinh tế"]
    assert first.author == "Trần Thị Bình"
    assert first.published == datetime(2021, 7, 13, 14, 0, tzinfo=UTC)
    assert second.image == "https://cdn.example.vn/le-hoi-thumb.jpg"  # media:thumbnail
    assert second.author == "Tòa soạn"
    assert second.content == "<p>Lễ hội <i>truyền thống</i>.</p>" and second.summary == ""
    assert second.published == datetime(2021, 7, 14, 8, 30, tzinfo=HCM)
    assert third.image == "https://cdn.example.vn/tuyen-dung.png"  # media:content
    assert third.published is None and third.updated is None


def test_atom(server):
    (draft,) = poll_fixture(server, "atom.xml", "application/atom+xml").drafts
    assert draft.url == "https://portal.example.vn/tin/xuc-tien-dau-tu.html"  # xml:base
    assert draft.title == "Hội nghị xúc tiến đầu tư"  # type="html" title as text
    image = '<img src="https://portal.example.vn/tin/hinh.jpg" />'
    assert draft.content == f"<p>Nội dung {image} hội nghị.</p>"
    assert draft.summary == "Tóm tắt hội nghị."
    assert draft.image == "https://portal.example.vn/anh/hoi-nghi.png"  # rel=enclosure image
    assert draft.author == "Lê Văn Cường"
    assert draft.categories == ["Đầu tư"]
    assert draft.published == datetime(2021, 7, 13, 8, 0, tzinfo=HCM)
    assert draft.updated == datetime(2021, 7, 14, 9, 0, tzinfo=HCM)


def test_json_feed_11(server):
    result = poll_fixture(server, "feed.json", "application/feed+json")
    first, second = result.drafts
    assert first.url == "https://portal.example.vn/tin/mua-lua.html"
    assert first.title == "Nông dân vào mùa lúa"
    assert first.content == "<p>Mùa lúa <b>bội thu</b>.</p>" and first.summary == "Năng suất tăng."
    assert first.image == "https://portal.example.vn/anh/mua-lua.jpg"
    assert first.author == "Phạm Thu Hà" and first.tags == ["Nông nghiệp", "Kinh tế"]
    assert first.language == "vi"
    assert first.published == "2021-07-13T21:00:00+07:00"
    assert first.updated == "2021-07-14T07:00:00+07:00"
    # An id that is a URL stands in for the url; plain text becomes escaped paragraphs.
    assert second.url == "https://portal.example.vn/tin/van-ban.html"
    assert second.content == "<p>Đoạn một.</p><p>Đoạn &lt;hai&gt;.</p>"
    assert second.author == "Ban biên tập"  # the feed's authors
    (error,) = result.errors
    assert "portal" in str(error) and "'Không có liên kết' has no link" in str(error)


def test_json_feed_10_sniffed_without_a_json_content_type(server):
    (draft,) = poll_fixture(server, "feed-1.0.json", "text/plain").drafts
    assert draft.author == "Tác giả A" and draft.image == "https://cdn.example.vn/a.jpg"


def test_drafts_normalize_into_articles(server):
    draft = poll_fixture(server, "rss20.xml").drafts[0]
    now = datetime(2024, 1, 1, tzinfo=HCM)
    article = normalize(draft, source="portal", tz=HCM, language="vi", now=now)
    assert article.url == "https://portal.example.vn/tin/cao-toc.html"
    assert 'href="https://portal.example.vn/ban-do"' in article.content
    assert article.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)


def test_source_category_fills_in_for_uncategorised_items(server):
    url = serve(server, "rss20.xml")
    drafts = feed_source(url, category="Tin tỉnh").poll({}).drafts
    assert drafts[0].categories == ["Giao thông", "Kinh tế"]
    assert drafts[1].categories == ["Tin tỉnh"]


# --- changes between polls, 304 --------------------------------------------------------------


def rss(items: dict[str, str]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://portal.example.vn/{slug}</link></item>"
        for slug, title in items.items()
    )
    channel = f"<channel><title>t</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


def test_added_edited_removed_items_and_304_on_unchanged(server):
    items = {"a": "Bài A", "b": "Bài B"}
    version = {"n": 1}

    def feed(request: Request) -> Reply:
        etag = f'"v{version["n"]}"'
        if request.header("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, rss(items), {"Content-Type": "application/rss+xml", "ETag": etag})

    server.add("GET", "/rss", feed)
    source = feed_source(server.url + "/rss")

    first = source.poll({})
    assert [d.title for d in first.drafts] == ["Bài A", "Bài B"]
    assert first.state == {"etag": '"v1"'} and not first.not_modified

    unchanged = source.poll(first.state)
    assert unchanged.not_modified and unchanged.drafts == []
    assert unchanged.state == first.state  # kept for the next conditional GET
    assert server.requests[-1].header("If-None-Match") == '"v1"'
    assert len(server.requests) == 2

    items["c"] = "Bài C"  # added
    items["a"] = "Bài A (đã sửa)"  # edited
    del items["b"]  # removed
    version["n"] = 2
    changed = source.poll(unchanged.state)
    assert not changed.not_modified and changed.state == {"etag": '"v2"'}
    assert {d.url: d.title for d in changed.drafts} == {
        "https://portal.example.vn/a": "Bài A (đã sửa)",
        "https://portal.example.vn/c": "Bài C",
    }
    assert changed.complete is False  # b dropping off a feed does not unpublish it


def test_last_modified_is_used_when_there_is_no_etag(server):
    stamp = "Tue, 13 Jul 2021 14:00:00 GMT"

    def feed(request: Request) -> Reply:
        if request.header("If-Modified-Since") == stamp:
            return Reply(304)
        return Reply(200, rss({"a": "A"}), {"Last-Modified": stamp})

    server.add("GET", "/rss", feed)
    source = feed_source(server.url + "/rss")
    state = source.poll({}).state
    assert state == {"last_modified": stamp}
    assert source.poll(state).not_modified


# --- charsets --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        ("rss-1258-header.xml", "application/rss+xml; charset=windows-1258"),
        ("rss-1258-declared.xml", "application/rss+xml"),
        ("rss-1258-header.xml", "application/rss+xml; charset=utf-8"),  # a wrong label
        ("rss-bom.xml", "application/rss+xml"),
        ("rss-control-chars.xml", "application/rss+xml"),  # XML-illegal characters dropped
    ],
)
def test_vietnamese_feeds_decode_to_nfc(server, fixture, content_type):
    result = poll_fixture(server, fixture, content_type)
    (draft,) = result.drafts
    assert draft.title == VIETNAMESE
    assert unicodedata.is_normalized("NFC", draft.title + draft.content)
    assert draft.content == "Người dân được hỗ trợ lương thực, nước uống."
    assert draft.categories == ["Thời sự"]
    assert result.errors == []


# --- broken and hostile input ----------------------------------------------------------------


def test_malformed_xml_without_entries_is_a_source_error(server):
    error = poll_fails(feed_source(serve(server, "malformed.xml")))
    assert "not a readable feed" in str(error) and "line 2" in str(error)


def test_malformed_xml_with_entries_uses_them_and_says_so(server):
    result = poll_fixture(server, "malformed-entries.xml")
    (draft,) = result.drafts
    assert draft.title == "Bài còn đọc được"
    (error,) = result.errors
    assert str(error).startswith("portal: ") and "feed is malformed" in str(error)


def test_a_web_page_is_not_a_feed(server):
    page = b"<html><body><p>Hello</p></body></html>"
    server.add("GET", "/page", lambda r: Reply(200, page, {"Content-Type": "text/html"}))
    error = poll_fails(feed_source(server.url + "/page"))
    assert "not an RSS, Atom or JSON feed" in str(error)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "not a readable JSON Feed"),
        (b'{"name": "something else"}', "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": 3}', "no 'items' list"),
        (b'{"items": ' + b"[" * 100_000, "not a readable JSON Feed"),  # RecursionError in json.loads
    ],
)
def test_broken_json_feeds(server, body, words):
    server.add("GET", "/feed.json", lambda r: Reply(200, body, {"Content-Type": "application/json"}))
    assert words in str(poll_fails(feed_source(server.url + "/feed.json")))


def test_json_feed_values_of_the_wrong_shape_are_ignored(server):
    # `tags` and `authors` that are not lists used to escape the poll as TypeError.
    item = {"id": "1", "url": "https://portal.example.vn/a", "title": "Bài", "tags": 5, "authors": 7}
    feed = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "authors": 5, "items": [item]}
    server.add("GET", "/feed.json", lambda r: Reply(200, feed, {"Content-Type": "application/feed+json"}))
    result = feed_source(server.url + "/feed.json").poll({})
    (draft,) = result.drafts
    assert (draft.title, draft.tags, draft.author) == ("Bài", [], None)
    assert result.errors == []


def test_entry_without_link_is_skipped_and_one_without_date_kept(server):
    result = poll_fixture(server, "no-link.xml")
    (draft,) = result.drafts
    assert draft.title == "Bài không có ngày" and draft.published is None and draft.updated is None
    (error,) = result.errors
    assert error.source == "portal"
    assert "'Bài không có liên kết' has no link; skipped" in str(error)


@pytest.mark.parametrize(
    "date", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "Fri, 31 Dec 9999 23:59:59 -0500"]
)
def test_a_date_at_the_edge_of_the_calendar_is_no_date(server, date):
    # datetime cannot shift these to UTC; they used to escape the poll as OverflowError.
    item = f"<item><title>Bài</title><link>https://portal.example.vn/a</link><pubDate>{date}</pubDate></item>"
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{item}</channel></rss>'
    server.add("GET", "/rss", lambda r: Reply(200, body.encode(), {"Content-Type": "application/rss+xml"}))
    (draft,) = feed_source(server.url + "/rss").poll({}).drafts
    now = datetime(2024, 1, 1, tzinfo=HCM)
    assert normalize(draft, source="portal", tz=HCM, language="vi", now=now).published == now


def test_bad_urls_and_character_references_are_dropped_not_fatal(server):
    # feedparser encoded "&#xD800;" to UTF-8 and raised; urljoin raised on "http://[::1".
    items = (
        "<item><title>Bài&#xD800; A</title><link>https://portal.example.vn/a</link>"
        '<enclosure url="http://[x" type="image/jpeg"/></item>'
        "<item><title>Bài B</title><link>http://[::1</link></item>"
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://[x</link>{items}</channel></rss>'
    server.add("GET", "/rss", lambda r: Reply(200, body.encode(), {"Content-Type": "application/rss+xml"}))
    result = feed_source(server.url + "/rss").poll({})
    assert [(d.title, d.url, d.image) for d in result.drafts] == [("Bài A", "https://portal.example.vn/a", None)]
    assert "'Bài B' has no link" in str(result.errors[-1])


def test_whatever_feedparser_raises_is_a_clear_error(server, monkeypatch):
    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(feed_module.feedparser, "parse", broken)
    server.add("GET", "/rss", lambda r: Reply(200, rss({"a": "A"}), {"Content-Type": "application/rss+xml"}))
    assert "not a readable feed: IndexError: list index out of range" in str(
        poll_fails(feed_source(server.url + "/rss"))
    )


def test_a_10_mb_feed_is_refused(server):
    server.add("GET", "/huge", lambda r: Reply(200, b"<rss>" + b" " * (10 * 1024 * 1024)))
    assert "too large" in str(poll_fails(feed_source(server.url + "/huge")))


def test_a_redirect_loop_is_refused(server):
    server.add("GET", "/a", lambda r: Reply(301, b"", {"Location": "/b"}))
    server.add("GET", "/b", lambda r: Reply(301, b"", {"Location": "/a"}))
    assert "redirect loop" in str(poll_fails(feed_source(server.url + "/a")))


def test_a_feed_slower_than_the_timeout_is_refused(server):
    def slow(request: Request) -> Reply:
        time.sleep(0.6)
        return Reply(200, rss({"a": "A"}))

    server.add("GET", "/slow", slow)
    assert "timed out" in str(poll_fails(feed_source(server.url + "/slow", timeout=0.2)))


def test_http_errors_name_the_status(server):
    server.add("GET", "/gone", lambda r: Reply(410, b"gone"))
    assert "HTTP 410 Gone" in str(poll_fails(feed_source(server.url + "/gone")))


# --- settings --------------------------------------------------------------------------------


def test_settings_require_an_http_url_and_reject_unknown_keys():
    with pytest.raises(ValidationError, match="url"):
        FeedSourceSettings.model_validate({"name": "f", "type": "feed"})
    with pytest.raises(ValidationError, match="absolute http"):
        FeedSourceSettings.model_validate({"name": "f", "type": "feed", "url": "/rss"})
    with pytest.raises(ValidationError, match="selector"):
        FeedSourceSettings.model_validate({"name": "f", "type": "feed", "url": "https://x.vn/rss", "selector": "a"})
    settings = FeedSourceSettings.model_validate(
        {"name": "f", "type": "feed", "url": "https://x.vn/rss", "timeout": "30s"}
    )
    assert settings.timeout == 30 and settings.politeness == 1.0
