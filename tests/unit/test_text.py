"""Vietnamese-first text rules: NFC, platform counting, safe truncation, slugs and hashtags."""

from __future__ import annotations

import unicodedata

import pytest

from distributor import text

TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"


def test_clean_text_turns_nfd_into_nfc_and_collapses_whitespace() -> None:
    nfd = unicodedata.normalize("NFD", "  Tin  Tức\n Sự Kiện ")
    assert nfd != unicodedata.normalize("NFC", nfd)
    cleaned = text.clean_text(nfd)
    assert cleaned == "Tin Tức Sự Kiện"
    assert unicodedata.is_normalized("NFC", cleaned)


def test_xml_illegal_characters_are_removed() -> None:
    assert text.clean_text("a\x00b\x08c\x1fd\ufffe") == "abcd"


@pytest.mark.parametrize(
    ("slug_input", "slug"),
    [("Tin Tức Sự Kiện", "tin-tuc-su-kien"), ("Đà Nẵng – đổi mới", "da-nang-doi-moi"), ("  ", "")],
)
def test_slugify(slug_input: str, slug: str) -> None:
    assert text.slugify(slug_input) == slug


def test_hashtag_is_camel_case_without_diacritics() -> None:
    assert text.hashtag("Tin Tức Sự Kiện") == "#TinTucSuKien"
    assert text.hashtag("đường bộ") == "#DuongBo"
    assert text.hashtag("!!!") == ""


def test_x_length_counts_urls_as_23_and_vietnamese_letters_as_2() -> None:
    assert text.x_length("abc") == 3
    assert text.x_length("https://example.com/a/very/long/path/that/is/long") == 23
    assert text.x_length("ậ") == 2  # U+1EAD is outside the light ranges
    assert text.x_length("â") == 1  # U+00E2 is inside
    assert text.x_length("👍") == 2


@pytest.mark.parametrize(
    ("sample", "weight"),
    [
        ("vnexpress.net", 23),  # X links a bare domain with a known TLD...
        ("dichvucong.gov.vn,", 24),
        ("Booking.com", 23),
        ("tuoitre.vn", 10),  # ...but not one label plus a country code...
        ("tuoitre.vn/a", 25),  # ...unless a path follows (X: 23; the path is counted, never less)
        ("TP.HCM", 6),  # not a TLD
        ("ThS.BS", 6),
        ("tin@gmail.com", 13),  # an email address
        ("xem https://a.vn/x).", 4 + 23 + 2),  # a link ends before trailing punctuation
    ],
)
def test_x_length_counts_links_as_x_finds_them(sample: str, weight: int) -> None:
    assert text.x_length(sample) == weight


def test_mastodon_length_counts_graphemes_and_urls_as_23() -> None:
    family = "👨‍👩‍👧‍👦"
    assert text.mastodon_length(family) == 1
    assert text.mastodon_length("xem https://example.com/" + "a" * 100) == 4 + 23
    assert text.mastodon_length("(https://example.com/a).") == 1 + 23 + 2
    assert text.mastodon_length("vnexpress.net") == 13  # Mastodon links only URLs with a scheme


def test_truncate_cuts_at_word_boundary_with_ellipsis() -> None:
    short = text.truncate(TITLE, 30)
    assert short.endswith("…")
    assert text.grapheme_length(short) <= 30
    assert TITLE.startswith(short[:-1])
    assert TITLE[len(short) - 1] == " "  # the cut fell on a space


def test_truncate_never_splits_a_grapheme() -> None:
    nfd = unicodedata.normalize("NFD", "Ệ" * 50)
    cut = text.truncate(nfd, 10)
    assert text.grapheme_length(cut) <= 10
    body = cut.removesuffix("…")
    assert all(unicodedata.normalize("NFC", g) == "Ệ" for g in text.graphemes(body))


def test_truncate_a_single_huge_word() -> None:
    cut = text.truncate("x" * 2000, 50)
    assert text.grapheme_length(cut) == 50 and cut.endswith("…")


def test_text_within_limit_is_untouched() -> None:
    assert text.truncate(TITLE, 500) == TITLE


def test_html_to_text_keeps_paragraphs() -> None:
    assert text.html_to_text("<p>Một</p><p>Hai <b>ba</b></p>") == "Một\n\nHai ba"


@pytest.mark.parametrize(
    ("given", "plain"),
    [
        ("Tiêu đề có <b>thẻ</b>", "Tiêu đề có thẻ"),
        ("Tiêu đề có &lt;b&gt;thẻ&lt;/b&gt;", "Tiêu đề có thẻ"),  # escaped markup (RSS, JSON)
        ("Tiêu đề có &amp;lt;b&amp;gt;thẻ&amp;lt;/b&amp;gt;", "Tiêu đề có thẻ"),  # escaped twice
        ("<b>T</b>in tức<br/>Sự kiện", "Tin tức Sự kiện"),  # inline tags join, line breaks separate
        ("Hội nghị<o:p></o:p>", "Hội nghị"),  # Word markup from SharePoint
        ('<a href="https://x.vn/?a=1&amp;b=2" title="a>b">Liên kết</a>', "Liên kết"),
        ("Tin<script>alert(1)</script> mới<!-- ghi chú -->", "Tin mới"),
        ("Giá&nbsp;vàng &#272;i&#xEA;n", "Giá vàng Điên"),
        ("  Tin \n\t mới  ", "Tin mới"),
        # Text that only looks like markup stays as written.
        ("a < b và c > d", "a < b và c > d"),
        ("x<y", "x<y"),
        ("Kiểu List<Item> và Map<Object> trong Java", "Kiểu List<Item> và Map<Object> trong Java"),
        ("R&D và AT&T", "R&D và AT&T"),
        ("R&amp;D", "R&D"),
        ("&copyright và &notable", "&copyright và &notable"),  # no ';': not an entity
    ],
)
def test_plain_text_drops_markup_and_keeps_text(given: str, plain: str) -> None:
    assert text.plain_text(given) == plain
    assert text.plain_text(plain) == plain  # applying it again changes nothing


def test_plain_text_is_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "<i>Tây Ninh</i>")
    assert text.plain_text(nfd) == unicodedata.normalize("NFC", "Tây Ninh")


@pytest.mark.parametrize(
    "sample",
    [
        "Ủy ban nhân dân tỉnh họp phiên thường kỳ tháng 12",  # NFC Vietnamese: one code point each
        "Tie\u0302\u0301ng Vie\u0323\u0302t",  # the same letters decomposed: base + combining marks
        "👍🏽 👨‍👩‍👧 🇻🇳🇺🇸 ❤️",  # skin tone, ZWJ family, flags, a variation selector
        "한국어 \u1100\u1161\u11a8",  # Hangul syllables and conjoining jamo
        "line\r\nnext\nlast\x07",  # CR LF is one grapheme; LF and a control alone are one each
        "नमस्ते",  # Devanagari: spacing marks and a virama
        "",
    ],
)
def test_grapheme_length_agrees_with_full_segmentation(sample: str) -> None:
    """The short cut for text whose code points cannot join (most Vietnamese) counts what `\\X`
    segmentation counts, and every other text is still segmented."""
    assert text.grapheme_length(sample) == len(text.graphemes(sample))


def test_hashtags_are_cached_and_unchanged() -> None:
    assert text.hashtag("Tin Tức Sự Kiện") == "#TinTucSuKien"
    assert text.hashtag("Tin Tức Sự Kiện") == "#TinTucSuKien"
    assert text.hashtag.cache_info().hits >= 1
