"""Normalisation: the Article every later stage relies on."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

import pytest

from distributor.dates import zone
from distributor.models import Article
from distributor.normalize import Draft, normalize
from distributor.urls import article_id, canonical_url

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def make(draft: Draft):  # type: ignore[no-untyped-def]
    return normalize(draft, source="test", tz=zone(None), language="vi", now=NOW)


def test_seed_date_line_and_nfc() -> None:
    title = unicodedata.normalize("NFD", "Ban Dân vận Trung ương triển khai nhiệm vụ")
    article = make(Draft(url="https://portal.example.gov.vn/a", title=title, published="Thứ 3, Ngày 13/07/2021, 21:00"))
    assert article.title == unicodedata.normalize("NFC", title)
    assert article.published.isoformat() == "2021-07-13T21:00:00+07:00"
    assert article.updated == article.published


def test_id_is_stable_and_ignores_tracking_parameters() -> None:
    a = make(Draft(url="https://Portal.example.gov.vn:443/tin/a?utm_source=fb#top", title="A"))
    b = make(Draft(url="https://portal.example.gov.vn/tin/a", title="A"))
    assert a.id == b.id == article_id("https://portal.example.gov.vn/tin/a")
    assert a.url == canonical_url("https://portal.example.gov.vn/tin/a")


def test_canonical_link_wins() -> None:
    article = make(Draft(url="https://m.example.vn/a?x=1", canonical="https://example.vn/a", title="A"))
    assert article.url == "https://example.vn/a"


def test_relative_urls_become_absolute_and_scripts_go() -> None:
    article = make(
        Draft(
            url="https://example.vn/tin/a.html",
            title="A",
            content='<p onclick="x()">Xem <a href="../b.html">b</a><img src="/i.jpg"></p><script>alert(1)</script>',
            image="/anh/chinh.jpg",
        )
    )
    assert "script" not in article.content and "onclick" not in article.content
    assert 'href="https://example.vn/b.html"' in article.content
    assert 'src="https://example.vn/i.jpg"' in article.content
    assert article.image == "https://example.vn/anh/chinh.jpg"


def test_summary_derived_from_content_at_word_boundary() -> None:
    body = "<p>" + " ".join(["Hội nghị trực tuyến"] * 60) + "</p>"
    article = make(Draft(url="https://example.vn/a", title="A", content=body))
    assert 0 < len(article.summary) <= 300
    assert article.summary.endswith("…")
    assert article.summary.removesuffix("…").split()[-1] in {"Hội", "nghị", "trực", "tuyến"}


def test_missing_date_uses_now_in_site_zone() -> None:
    article = make(Draft(url="https://example.vn/a", title="A"))
    assert article.published == NOW
    assert article.published.utcoffset().total_seconds() == 7 * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (Draft(url="", title="A"), "no absolute http(s) URL"),
        (Draft(url="/relative", title="A"), "no absolute http(s) URL"),
        (Draft(url="https://example.vn/a", title="  "), "has no title"),
    ],
)
def test_bad_drafts_are_refused_with_reason(draft: Draft, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make(draft)


def test_content_hash_ignores_source_and_updated() -> None:
    a = make(Draft(url="https://example.vn/a", title="A", published="2021-07-13", updated="2021-07-14"))
    b = make(Draft(url="https://example.vn/a", title="A", published="2021-07-13"))
    assert a.updated != b.updated
    assert a.content_hash() == b.content_hash()
    c = make(Draft(url="https://example.vn/a", title="A (sửa)", published="2021-07-13"))
    assert c.content_hash() != a.content_hash()


def test_a_datetime_at_the_edge_of_the_calendar_is_no_date() -> None:
    # A YAML front matter date of year 1 with an offset cannot be shifted to UTC.
    edge = datetime.fromisoformat("0001-01-01T00:00:00+05:00")
    article = make(Draft(url="https://portal.example.gov.vn/a", title="A", published=edge))
    assert article.published == NOW


def test_an_image_url_that_cannot_be_parsed_is_dropped_not_the_article() -> None:
    article = make(Draft(url="https://portal.example.gov.vn/a", title="A", image="http://[::1"))
    assert article.image is None


def test_title_author_and_labels_are_plain_text() -> None:
    article = make(
        Draft(
            url="https://example.vn/a",
            title="Tiêu đề có <b>thẻ</b>",
            author="<span>Ban Biên tập</span> &amp; <i>CTV</i>",
            categories=["<b>Tin Tức</b> Sự Kiện", "Tin Tức Sự Kiện", "&lt;em&gt;Kinh tế&lt;/em&gt;"],
            tags=["R&amp;D", "<i></i>"],
        )
    )
    assert article.title == "Tiêu đề có thẻ"
    assert article.author == "Ban Biên tập & CTV"
    assert article.categories == ("Tin Tức Sự Kiện", "Kinh tế")  # the same label once
    assert article.tags == ("R&D",)  # a label that was only markup is no label


@pytest.mark.parametrize("title", ["So sánh a < b và b > c", "R&D tại Tây Ninh", "x<y"])
def test_a_title_that_only_looks_like_markup_survives(title: str) -> None:
    assert make(Draft(url="https://example.vn/a", title=title)).title == title


def test_a_title_that_is_only_markup_is_no_title() -> None:
    with pytest.raises(ValueError, match="has no title"):
        make(Draft(url="https://example.vn/a", title="<b> </b><br>"))


def test_an_article_read_back_is_plain_text_too() -> None:
    # Articles stored before titles were made plain, read back from Redis, are plain as well; and
    # a plain article reads back unchanged (its content hash stays the same).
    article = make(Draft(url="https://example.vn/a", title="Tin &lt;b&gt;mới&lt;/b&gt;", tags=["R&amp;D"]))
    stored = article.model_dump_json().replace("Tin mới", "Tin <b>mới</b>")
    assert Article.model_validate_json(stored).title == "Tin mới"
    again = Article.model_validate_json(article.model_dump_json())
    assert again == article and again.content_hash() == article.content_hash()
