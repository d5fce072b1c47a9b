"""Bad or unusual input never yields an invalid feed: control characters, NFD, emoji, huge bodies,
scripts, empty feeds, long article lists."""

from __future__ import annotations

import json
import time
import unicodedata
from datetime import UTC, datetime

import feedparser
import pytest

from distributor.dates import zone
from distributor.feeds.build import FORMATS, FeedSpec, feed_url, render, render_all
from distributor.feeds.spec import clean_body, prepare
from distributor.feeds.validate import validate
from distributor.normalize import Draft, normalize
from distributor.text import slugify
from tests.unit.feeds.factories import articles, make_article, make_spec

SPEC = make_spec()
CONTROL = "\x00\x01\x08\x0b\x0c\x1b\x7f\ufffe\ud800"
NFD_TITLE = unicodedata.normalize("NFD", "Tin Tức Sự Kiện: Đà Nẵng")
UNSAFE = [
    "<script>alert(1)</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    '<img src="x.png" onerror="alert(1)">',
    '<a href="javascript:alert(1)">x</a>',
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{display:none}</style>",
    '<svg onload="alert(1)"></svg>',
    '<form action="https://evil.example/"><input name="q"></form>',
]


def assert_valid(feeds: dict[str, bytes], spec: FeedSpec = SPEC) -> None:
    for fmt in FORMATS:
        assert validate(feeds[fmt], fmt, self_url=feed_url(spec, fmt)) == [], fmt
    for fmt in ("rss", "atom"):
        assert feedparser.parse(feeds[fmt]).bozo == 0, fmt


def test_control_characters_are_stripped_everywhere() -> None:
    dirty = make_article(
        0,
        title=f"Tiêu đề{CONTROL} mới",
        summary=f"Tóm{CONTROL} tắt",
        content=f"<p>Nội{CONTROL} dung</p>",
        author=f"Tác{CONTROL} giả",
        categories=(f"Thời{CONTROL} sự",),
    )
    feeds = render_all(SPEC, [dirty])
    assert_valid(feeds)
    item = json.loads(feeds["json"])["items"][0]
    assert item["title"] == "Tiêu đề mới"
    assert item["summary"] == "Tóm tắt"
    assert item["content_html"] == "<p>Nội dung</p>"
    assert item["authors"] == [{"name": "Tác giả"}]
    assert item["tags"] == ["Thời sự", "Y tế"]
    assert feedparser.parse(feeds["rss"]).entries[0].title == "Tiêu đề mới"


def test_nfd_input_comes_out_nfc_and_emoji_survive() -> None:
    article = make_article(
        0,
        title=NFD_TITLE + " 🎉👨‍👩‍👧",
        content=f"<p>{NFD_TITLE} 🇻🇳</p>",
        categories=(NFD_TITLE,),
    )
    feeds = render_all(SPEC, [article])
    assert_valid(feeds)
    nfc_title = unicodedata.normalize("NFC", NFD_TITLE)
    for fmt in ("rss", "atom"):
        entry = feedparser.parse(feeds[fmt]).entries[0]
        assert entry.title == nfc_title + " 🎉👨‍👩‍👧"
        assert entry.content[0].value == f"<p>{nfc_title} 🇻🇳</p>"
        assert entry.tags[0].term == nfc_title
    item = json.loads(feeds["json"])["items"][0]
    assert item["title"] == nfc_title + " 🎉👨‍👩‍👧"
    assert item["content_html"] == f"<p>{nfc_title} 🇻🇳</p>"
    for body in feeds.values():
        text = body.decode("utf-8")
        assert unicodedata.is_normalized("NFC", text)


def test_a_two_megabyte_body() -> None:
    paragraph = "<p>Đoạn văn bản dài về tình hình kinh tế - xã hội của tỉnh trong tháng.</p>"
    body = paragraph * (2_000_000 // len(paragraph.encode("utf-8")) + 1)
    assert len(body.encode("utf-8")) > 2_000_000
    started = time.perf_counter()
    feeds = render_all(SPEC, [make_article(0, content=body), *articles(3)[1:]])
    assert time.perf_counter() - started < 0.5  # about 30 ms: cost follows size, no re-parsing
    for fmt in FORMATS:
        assert validate(feeds[fmt], fmt) == [], fmt
    atom = feedparser.parse(feeds["atom"])  # feedparser takes half a second here: once is enough
    assert atom.bozo == 0
    assert atom.entries[0].content[0].value == body
    assert json.loads(feeds["json"])["items"][0]["content_html"] == body


def test_scripts_never_reach_a_feed_from_a_normalized_article() -> None:
    draft = Draft(
        url="https://portal.example.gov.vn/tin/a.aspx",
        title="Bài có mã độc",
        content="<p>Đoạn đầu</p>" + "".join(UNSAFE),
        published="13/07/2021 21:00",
    )
    now = datetime(2021, 7, 14, tzinfo=UTC)
    article = normalize(draft, source="test", tz=zone(None), language="vi", now=now)
    feeds = render_all(SPEC, [article])
    assert_valid(feeds)
    for fmt, body in feeds.items():
        lowered = body.lower()
        for needle in (b"<script", b"&lt;script", b"alert", b"onerror", b"javascript:", b"iframe"):
            assert needle not in lowered, (fmt, needle)
    assert "Đoạn đầu" in json.loads(feeds["json"])["items"][0]["content_html"]


@pytest.mark.parametrize("unsafe", UNSAFE)
def test_unsanitised_content_is_sanitised_again(unsafe: str) -> None:
    """An article that skipped normalize (a bug elsewhere) still cannot carry a script."""
    article = make_article(0, content=f"<p>Giữ lại</p>{unsafe}")
    assert clean_body(article.content) is None
    content = json.loads(render(SPEC, [article], "json"))["items"][0]["content_html"]
    assert "Giữ lại" in content
    for needle in ("script", "alert", "onerror", "iframe", "<style", "<svg", "<form", "<input"):
        assert needle not in content.lower()


def test_clean_content_is_passed_through_untouched() -> None:
    article = make_article(0)
    assert clean_body(article.content) == article.content.encode("utf-8")
    assert prepare(SPEC, [article])[0].content == article.content


def test_a_thousand_articles_limited_to_fifty() -> None:
    stored = articles(1000)
    newest = stored[:50]  # the store applies the limit; render gets what it should show
    feeds = render_all(SPEC, newest)
    assert_valid(feeds)
    expected = [a.url for a in newest]
    for fmt in ("rss", "atom"):
        assert [e.id for e in feedparser.parse(feeds[fmt]).entries] == expected
    assert [i["id"] for i in json.loads(feeds["json"])["items"]] == expected


def test_a_repeated_article_appears_once_and_one_without_a_url_not_at_all() -> None:
    first, second = articles(2)
    lost = make_article(2, url="/tin/bai-khong-co-may-chu.aspx")
    feeds = render_all(SPEC, [first, second, lost, first])
    assert_valid(feeds)
    assert [e.id for e in feedparser.parse(feeds["rss"]).entries] == [first.url, second.url]


def test_an_empty_feed_is_valid_and_stable() -> None:
    feeds = render_all(SPEC, [])
    assert_valid(feeds)
    assert render_all(make_spec(), []) == feeds
    assert feedparser.parse(feeds["rss"]).entries == []
    assert feedparser.parse(feeds["atom"]).feed.updated == "1970-01-01T00:00:00+00:00"
    assert json.loads(feeds["json"])["items"] == []


def test_per_category_feed_names_and_urls() -> None:
    name = slugify("Tin Tức Sự Kiện")
    assert name == "tin-tuc-su-kien"
    assert slugify("Đảng - Đoàn thể") == "dang-doan-the"
    spec = make_spec(name=name, title="Cổng TTĐT: Tin Tức Sự Kiện")
    feeds = render_all(spec, articles(2))
    assert_valid(feeds, spec)
    assert feed_url(spec, "rss") == "http://127.0.0.1:8000/feeds/tin-tuc-su-kien.rss"
    assert json.loads(feeds["json"])["feed_url"] == "http://127.0.0.1:8000/feeds/tin-tuc-su-kien.json"


def test_bad_spec_text_is_cleaned_too() -> None:
    spec = make_spec(title=f"Cổng{CONTROL} tỉnh", description=unicodedata.normalize("NFD", "Mô tả"), author="Ai\x01")
    feeds = render_all(spec, articles(1))
    assert_valid(feeds, spec)
    assert feedparser.parse(feeds["atom"]).feed.title == "Cổng tỉnh"
