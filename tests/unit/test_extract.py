"""Article extraction: the portal's real article page, declared metadata, selectors, bad input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from lxml import html as lxml_html

from distributor.extract import check_selectors, extract_article, extract_links, listing_entries
from distributor.normalize import normalize
from distributor.text import html_to_text

REPO = Path(__file__).resolve().parents[2]
PORTAL = REPO / "tests" / "data" / "portal"
SEEDS = REPO / ".." / "shared" / "seeds"
SEED = SEEDS / "000_b5040debc31ac462.txt"
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
URL = "https://www.tayninh.gov.vn/Pages/chi-tiet-tin.aspx?ItemID=7842&l=TinTucSuKien"
TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"
CHROME = (
    "Skip Ribbon",
    "Skip to main content",
    "Cỡ chữ",
    "Font size",
    "Giảm (A-)",
    "Lượt người xem",
    "Views:",
    "Chia sẻ",
    "Share:",
    "CỔNG THÔNG TIN",
    "Số giấy phép",
    "Cơ quan chủ quản",
    "toweb@tayninh.gov.vn",
    "Thứ 3, Ngày 13/07/2021",
    "Tin Tức Sự Kiện",
)


def page(name: str) -> str:
    return (PORTAL / name).read_text(encoding="utf-8")


def paragraphs() -> list[str]:
    """The seed's article paragraphs (image captions and the "XV" signature included)."""
    return (PORTAL / "article-paragraphs.txt").read_text(encoding="utf-8").splitlines()


def squash(text: str) -> str:
    """Text without any whitespace: the seed's line breaks and non-breaking spaces do not matter."""
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def seed_article():
    return extract_article(page("article.html"), URL, tz=HCM)


# --- the portal's article page ------------------------------------------------------------------


def test_portal_title_comes_from_the_heading_after_the_date_line(seed_article):
    assert "<title>" in page("article.html") and "Chi tiết tin" in page("article.html")  # no help
    assert seed_article.title == TITLE


def test_portal_date_line_parses_in_the_site_zone(seed_article):
    assert seed_article.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)
    assert seed_article.published.isoformat() == "2021-07-13T21:00:00+07:00"


def test_portal_category_comes_from_the_breadcrumb(seed_article):
    assert seed_article.categories == ["Tin Tức Sự Kiện"]


def test_portal_fixture_declares_nothing_for_machines():
    html = page("article.html")
    assert "og:" not in html and "ld+json" not in html and "article:published_time" not in html


def test_portal_body_holds_every_paragraph_in_order(seed_article):
    body = squash(html_to_text(seed_article.content))
    position = 0
    for paragraph in paragraphs():
        found = body.find(squash(paragraph), position)
        assert found >= 0, f"missing or out of order: {paragraph[:60]}"
        position = found
    assert len(re.findall(r"<p\b", seed_article.content)) >= 20  # paragraphs stay paragraphs


def test_portal_body_has_none_of_the_chrome(seed_article):
    text = html_to_text(seed_article.content)
    for chrome in CHROME:
        assert chrome not in text, chrome
    assert TITLE not in text  # the title is not repeated as the first paragraph
    assert not text.startswith("13/07/2021")


def test_portal_images_keep_their_captions(seed_article):
    figures = re.findall(r"<figure>(.*?)</figure>", seed_article.content, re.S)
    assert len(figures) == 3
    assert "/PublishingImages/2021/07/13/dan-van-1.jpg" in figures[0]
    assert "<figcaption>Các đại biểu tham dự tại điểm cầu tỉnh Tây Ninh</figcaption>" in figures[0]
    assert seed_article.image == "https://www.tayninh.gov.vn/PublishingImages/2021/07/13/dan-van-1.jpg"


def test_portal_article_normalizes_to_what_readers_see(seed_article):
    article = normalize(seed_article, source="portal", tz=HCM, language="vi", now=datetime.now(UTC))
    assert article.title == TITLE
    assert article.published.isoformat() == "2021-07-13T21:00:00+07:00"
    assert article.categories == ("Tin Tức Sự Kiện",)
    assert article.summary.startswith("Sáng ngày 13/7, Ban Dân vận Trung ương tổ chức hội nghị sơ kết")
    assert article.url == URL and article.language == "vi"
    for chrome in CHROME:
        assert chrome not in article.summary


def test_fixture_paragraphs_are_the_seed_text():
    if not SEED.is_file():
        pytest.skip("the shared seed is not available here")
    seed = SEED.read_text(encoding="utf-8")
    body = seed[seed.index("\n13/07/2021\n") : seed.index("Lượt người xem")]
    assert [line for line in body.splitlines()[2:] if line.strip()] == paragraphs()
    shown = squash(lxml_html.document_fromstring(page("article.html")).text_content())
    assert all(squash(paragraph) in shown for paragraph in paragraphs())


def test_other_portal_pages_extract_the_same_way():
    draft = extract_article(page("article-2.html"), URL.replace("7842", "7840"), tz=HCM)
    assert draft.title == "Tây Ninh triển khai kế hoạch phòng, chống thiên tai và tìm kiếm cứu nạn năm 2021"
    assert draft.published == datetime(2021, 7, 12, 16, 30, tzinfo=HCM)
    assert draft.categories == ["Tin Tức Sự Kiện"]
    assert draft.content.startswith("<p")
    assert "<figcaption>Quang cảnh hội nghị</figcaption>" in draft.content
    assert "Lượt người xem" not in draft.content


def test_section_heading_is_the_category_when_there_is_no_breadcrumb():
    html = re.sub(r'<div class="ms-breadcrumb-top">.*?</h1>', "", page("article.html"), flags=re.S)
    assert "ms-sitemapdirectional" not in html and "pageTitle" not in html
    draft = extract_article(html, URL, tz=HCM)
    assert draft.categories == ["Tin Tức Sự Kiện"]  # the web part's heading above the date line
    assert draft.title == TITLE


def test_a_news_site_without_metadata_whose_main_column_is_called_sidebar():
    body = "".join(
        f"<p class='Normal'>Đoạn {n}: theo Bộ Y tế, số ca mắc mới trong ngày giảm so với hôm qua.</p>" for n in range(8)
    )
    html = f"""<html><head><title>Số ca mắc mới giảm - Báo điện tử</title></head><body>
        <header class="header"><ul><li><a href="/thoi-su">Thời sự</a></li></ul></header>
        <section class="container"><div class="sidebar-1">
        <div class="header-content"><ul class="breadcrumb"><li><a href="/">Trang chủ</a></li>
        <li><a href="/suc-khoe">Sức khỏe</a></li></ul><span class="date">Thứ ba, 13/7/2021, 21:00 (GMT+7)</span></div>
        <h1 class="title-detail">Số ca mắc mới giảm</h1>
        <article class="fck_detail">{body}<p style="text-align:right;"><strong>Lê Nga</strong></p></article>
        <div class="box-tinlienquan"><h3>Tin liên quan</h3><ul><li><a href="/a">Tin A (12/07/2021)</a></li></ul></div>
        </div><div class="sidebar-2"><h3 class="title">Xem nhiều</h3><ul><li><a href="/x">Bài X</a></li></ul></div>
        </section><footer><p>© Copyright 1997 Báo điện tử</p></footer></body></html>"""
    draft = extract_article(html, "https://bao.example.vn/so-ca-mac-moi-giam.html", tz=HCM)
    assert draft.title == "Số ca mắc mới giảm"
    assert draft.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)
    assert draft.categories == ["Sức khỏe"]
    text = html_to_text(draft.content)
    assert "Đoạn 0:" in text and "Đoạn 7:" in text and "Lê Nga" in text
    for chrome in ("Tin liên quan", "Tin A", "Xem nhiều", "Copyright", "Thời sự"):
        assert chrome not in text


# --- the three Vietnamese date forms -----------------------------------------------------------


def portal_page(date_line: str, title: str = "Khánh thành cầu Long Thuận trên sông Vàm Cỏ Đông") -> str:
    body = "".join(
        f"<p>Đoạn {n}: chính quyền địa phương cho biết công trình đã hoàn thành đúng tiến độ đề ra.</p>"
        for n in range(1, 6)
    )
    return f"""<html><head><title>Chi tiết tin</title></head><body>
        <div class="menu"><a href="/">Trang chủ</a> <span>Cập nhật 01/01/2020 07:00</span></div>
        <div class="news"><div class="date">{date_line}</div>
        <div class="news-title">{title}</div>
        <div class="news-body">{body}</div></div>
        <div class="footer">Bản quyền thuộc Cổng thông tin, cấp ngày 08/01/2021</div></body></html>"""


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Thứ 3, Ngày 13/07/2021, 21:00", datetime(2021, 7, 13, 21, 0, tzinfo=HCM)),
        ("13/07/2021 08:30", datetime(2021, 7, 13, 8, 30, tzinfo=HCM)),
        ("ngày 13 tháng 7 năm 2021", datetime(2021, 7, 13, 0, 0, tzinfo=HCM)),
    ],
)
def test_vietnamese_date_forms(line, expected):
    draft = extract_article(portal_page(line), "https://portal.example.vn/tin/a", tz=HCM)
    assert draft.published == expected
    assert draft.title == "Khánh thành cầu Long Thuận trên sông Vàm Cỏ Đông"
    assert "Đoạn 1:" in draft.content and line not in draft.content


def test_dates_follow_the_site_zone():
    paris = ZoneInfo("Europe/Paris")  # a site elsewhere: the same wall time is another instant
    draft = extract_article(portal_page("13/07/2021 08:30"), "https://portal.example.vn/tin/a", tz=paris)
    assert isinstance(draft.published, datetime)
    assert draft.published == datetime(2021, 7, 13, 8, 30, tzinfo=paris)
    assert draft.published != datetime(2021, 7, 13, 8, 30, tzinfo=HCM)
    assert draft.published.utcoffset() == timedelta(hours=2)


# --- declared metadata --------------------------------------------------------------------------

BODY = "".join(f"<p>Nội dung đoạn {n} của bài viết về hội nghị xúc tiến đầu tư năm 2021.</p>" for n in range(6))


def test_json_ld_news_article_drives_the_fields():
    ld = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Báo Tây Ninh"},
            {
                "@type": ["NewsArticle"],
                "headline": "Hội nghị xúc tiến đầu tư tỉnh Tây Ninh năm 2021",
                "datePublished": "2021-07-13T14:00:00Z",
                "dateModified": "2021-07-14T08:15:00+07:00",
                "author": [{"@type": "Person", "name": "Minh Châu"}],
                "image": [{"@type": "ImageObject", "url": "/images/xuc-tien.jpg"}],
                "articleSection": "Kinh tế",
                "keywords": "đầu tư, Tây Ninh",
                "description": "Tỉnh giới thiệu 30 dự án kêu gọi đầu tư.",
            },
        ],
    }
    html = f"""<html lang="vi"><head><title>Trang chủ | Báo Tây Ninh</title>
        <link rel="canonical" href="https://baotayninh.vn/xuc-tien-dau-tu.html">
        <script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script></head>
        <body><nav><a href="/">Trang chủ</a></nav><article><h1>Tiêu đề hiển thị</h1>{BODY}</article></body></html>"""
    draft = extract_article(html, "https://baotayninh.vn/xuc-tien-dau-tu.html?utm_source=fb", tz=HCM)
    assert draft.title == "Hội nghị xúc tiến đầu tư tỉnh Tây Ninh năm 2021"
    assert draft.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)
    assert draft.updated == datetime(2021, 7, 14, 8, 15, tzinfo=HCM)
    assert draft.author == "Minh Châu"
    assert draft.image == "https://baotayninh.vn/images/xuc-tien.jpg"
    assert draft.categories == ["Kinh tế"]
    assert draft.tags == ["đầu tư", "Tây Ninh"]
    assert draft.summary == "Tỉnh giới thiệu 30 dự án kêu gọi đầu tư."
    assert draft.canonical == "https://baotayninh.vn/xuc-tien-dau-tu.html"
    assert "Nội dung đoạn 0" in draft.content and "Nội dung đoạn 5" in draft.content


def test_open_graph_and_article_meta_drive_the_fields():
    html = f"""<html><head><title>Báo Tây Ninh</title>
        <meta property="og:title" content="Khởi công dự án đường tuần tra biên giới">
        <meta property="og:image" content="https://baotayninh.vn/img/tuan-tra.jpg">
        <meta property="og:description" content="Dự án dài 42 km, hoàn thành năm 2023.">
        <meta property="article:published_time" content="2021-07-13T21:00:00+07:00">
        <meta property="article:modified_time" content="2021-07-13T22:30:00+07:00">
        <meta property="article:section" content="Quốc phòng">
        <meta property="article:tag" content="biên giới"><meta property="article:tag" content="giao thông">
        <meta name="author" content="Hoàng Yến"></head>
        <body><div class="post"><time datetime="2020-01-01T00:00:00+07:00">cũ</time>{BODY}</div></body></html>"""
    draft = extract_article(html, "https://baotayninh.vn/a.html", tz=HCM)
    assert draft.title == "Khởi công dự án đường tuần tra biên giới"
    assert draft.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)  # meta beats <time>
    assert draft.updated == datetime(2021, 7, 13, 22, 30, tzinfo=HCM)
    assert draft.categories == ["Quốc phòng"]
    assert draft.tags == ["biên giới", "giao thông"]
    assert draft.image == "https://baotayninh.vn/img/tuan-tra.jpg"
    assert draft.summary == "Dự án dài 42 km, hoàn thành năm 2023."
    assert draft.author == "Hoàng Yến"
    assert draft.canonical is None


@pytest.mark.parametrize(
    ("page", "canonical", "kept"),
    [
        ("https://baotayninh.vn/tin/a.html", "https://baotayninh.vn/", None),  # a template's mistake
        ("https://baotayninh.vn/tin/a.html", "/", None),
        ("https://baotayninh.vn/", "https://baotayninh.vn/", "https://baotayninh.vn/"),
        ("https://m.baotayninh.vn/tin/a.html", "https://baotayninh.vn/tin/a.html", "https://baotayninh.vn/tin/a.html"),
    ],
)
def test_a_canonical_link_to_the_home_page_is_ignored(page, canonical, kept):
    # Every article would otherwise be one article: each new one an "edit" of the last, never posted.
    html = f"""<html><head><link rel="canonical" href="{canonical}"></head><body>
        <h1>Lễ hội Núi Bà Đen thu hút du khách</h1>{BODY}</body></html>"""
    assert extract_article(html, page, tz=HCM).canonical == kept


def test_time_element_dates_a_page_without_meta():
    html = f"""<html><head><title>Lễ hội Núi Bà Đen thu hút du khách</title></head><body>
        <h1>Lễ hội Núi Bà Đen thu hút du khách</h1>
        <p class="meta"><time datetime="2021-07-13T21:00:00+07:00">tối thứ Ba</time></p>{BODY}</body></html>"""
    draft = extract_article(html, "https://example.vn/a", tz=HCM)
    assert draft.title == "Lễ hội Núi Bà Đen thu hút du khách"
    assert draft.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)


# --- selectors ----------------------------------------------------------------------------------


def test_selectors_override_automatic_extraction():
    html = f"""<html><head><meta property="og:title" content="Tên chung của cả trang">
        <meta property="article:published_time" content="2020-01-01T00:00:00+07:00">
        <meta property="og:image" content="/chung.jpg"></head><body>
        <div class="crumbs"><a href="/">Trang chủ</a><a href="/vh">Văn hóa</a></div>
        <h2 class="tieu-de">Khai mạc Tuần lễ Văn hóa – Du lịch</h2>
        <span class="ngay">Ngày 14 tháng 7 năm 2021 lúc 08:30</span>
        <span class="sua">15/07/2021 10:00</span><span class="tac-gia">Thanh Tâm</span>
        <span class="chuyen-muc">Văn hóa</span><span class="chuyen-muc">Du lịch</span>
        <div class="anh"><img src="/rieng.jpg"></div>
        <div class="noi-dung"><p>Chỉ đoạn này là nội dung.</p></div>{BODY}</body></html>"""
    selectors = {
        "title": ".tieu-de",
        "published": ".ngay",
        "updated": ".sua",
        "author": ".tac-gia",
        "category": ".chuyen-muc",
        "image": ".anh",
        "content": ".noi-dung",
    }
    draft = extract_article(html, "https://example.vn/a", selectors=selectors, tz=HCM)
    assert draft.title == "Khai mạc Tuần lễ Văn hóa – Du lịch"
    assert draft.published == datetime(2021, 7, 14, 8, 30, tzinfo=HCM)
    assert draft.updated == datetime(2021, 7, 15, 10, 0, tzinfo=HCM)
    assert draft.author == "Thanh Tâm"
    assert draft.categories == ["Văn hóa", "Du lịch"]
    assert draft.image == "https://example.vn/rieng.jpg"
    assert draft.content == "<p>Chỉ đoạn này là nội dung.</p>"


def test_a_selector_that_matches_nothing_falls_back_to_automatic(seed_article):
    draft = extract_article(page("article.html"), URL, selectors={"title": ".no-such-thing"}, tz=HCM)
    assert draft.title == seed_article.title
    assert draft.content == seed_article.content


@pytest.mark.parametrize(
    ("selectors", "message"),
    [({"headline": "h1"}, "unknown selector key"), ({"title": "h1["}, "not a valid CSS selector")],
)
def test_bad_selectors_are_refused(selectors, message):
    with pytest.raises(ValueError, match=message):
        check_selectors(selectors)
    with pytest.raises(ValueError, match=message):
        extract_article(portal_page("13/07/2021 08:30"), "https://example.vn/a", selectors=selectors, tz=HCM)


# --- pages with no article, broken pages ---------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   \n ",
        "<html><head><title>Trang chủ</title></head><body></body></html>",
        """<html><head><title>Cổng thông tin</title></head><body><nav><ul><li><a href="/a">Giới thiệu</a></li>
           <li><a href="/b">Tin tức</a></li></ul></nav><footer><p>Số giấy phép: 01/GP-TTĐT</p></footer>
           </body></html>""",
    ],
)
def test_a_page_without_an_article_is_a_clear_error(html):
    with pytest.raises(ValueError, match=r"^no article found at https://example\.vn/x: "):
        extract_article(html, "https://example.vn/x", tz=HCM)


def test_a_listing_page_is_not_an_article():
    listing = "https://www.tayninh.gov.vn/Pages/tin-tuc-su-kien.aspx"
    with pytest.raises(ValueError, match=re.escape(f"no article found at {listing}: ")):
        extract_article(page("listing.html"), listing, tz=HCM)


def test_malformed_html_with_control_characters_still_extracts():
    html = (
        '<?xml version="1.0" encoding="utf-8"?><html><head><title>Tin\x00 tức</title><body>'
        '<div class="date">13/07/2021\x0b 08:30</div><h2 class="title">Hội nghị\x1f sơ kết công tác dân vận</h2>'
        "<div class=content><p>Đoạn một nói về hội nghị sơ kết công tác dân vận sáu tháng đầu năm\x07."
        "<p>Đoạn hai <b>không đóng thẻ <i>nào cả</div></span></table>"
        "<p>Đoạn ba tiếp tục nội dung bài viết về công tác dân vận ở cơ sở trên địa bàn tỉnh."
    )
    draft = extract_article(html, "https://example.vn/a", tz=HCM)
    assert draft.title == "Hội nghị sơ kết công tác dân vận"
    assert draft.published == datetime(2021, 7, 13, 8, 30, tzinfo=HCM)
    assert "Đoạn một" in draft.content and "Đoạn ba" in draft.content
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", draft.content + draft.title)


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 5000 + "<p>sâu</p>",
        "<html><body>" + "<table><tr><td>" * 300 + "ô" + "</td></tr></table>" * 10,
        "<<<>>><p <p <a href=javascript:alert(1)>x</a>",
        "\x00\x01\x02\x03",
        "<html><body><p>" + "chữ " * 200_000 + "</p></body></html>",
        # JSON-LD nested past the recursion limit: json.loads raises RecursionError.
        '<script type="application/ld+json">' + "[" * 100_000 + "]" * 100_000 + "</script><h1>Tiêu đề bài</h1>",
        # URLs urljoin refuses ("Invalid IPv6 URL"): no image, no canonical, still an article.
        '<meta property="og:image" content="http://[::1"><link rel="canonical" href="http://[x">'
        "<h1>Tiêu đề bài viết</h1><p>Nội dung của bài viết.</p>",
    ],
)
def test_hostile_html_never_crashes(html):
    try:
        draft = extract_article(html, "https://example.vn/x", tz=HCM)
    except ValueError as exc:
        assert str(exc).startswith("no article found at https://example.vn/x")
    else:
        assert draft.title and draft.url == "https://example.vn/x"


# --- links on listing pages ----------------------------------------------------------------------


def test_listing_links_are_absolute_unique_and_in_page_order():
    links = extract_links(
        page("listing.html"), "https://www.tayninh.gov.vn/Pages/tin-tuc-su-kien.aspx", ".tn-news-item a"
    )
    assert links == [
        "https://www.tayninh.gov.vn/Pages/chi-tiet-tin.aspx?ItemID=7842&l=TinTucSuKien",
        "https://www.tayninh.gov.vn/Pages/chi-tiet-tin.aspx?ItemID=7840&l=TinTucSuKien",
        "https://www.tayninh.gov.vn/Pages/chi-tiet-tin.aspx?ItemID=7835&l=TinTucSuKien",
    ]  # the image link and the title link of one item count once; the sidebar is not matched
    next_page = extract_links(
        page("listing.html"), "https://www.tayninh.gov.vn/Pages/tin-tuc-su-kien.aspx", ".tn-paging a.next"
    )
    assert next_page == ["https://www.tayninh.gov.vn/Pages/tin-tuc-su-kien.aspx?Page=2"]


def test_links_skip_fragments_scripts_and_mail_and_honour_base_href():
    html = """<html><head><base href="https://cdn.example.vn/tin/"></head><body><ul class="list">
        <li><a href="a.html#binh-luan">A</a></li><li><a href="a.html">A lần nữa</a></li>
        <li><a href="javascript:void(0)">JS</a></li><li><a href="mailto:x@example.vn">Mail</a></li>
        <li><a href="#top">Top</a></li><li><span>không có liên kết</span></li>
        <li><a href="//other.example.vn/b.html">B</a></li></ul></body></html>"""
    assert extract_links(html, "https://example.vn/", ".list li") == [
        "https://cdn.example.vn/tin/a.html",
        "https://other.example.vn/b.html",
    ]
    assert extract_links(html, "https://example.vn/", ".nothing") == []
    with pytest.raises(ValueError, match="not a valid CSS selector"):
        extract_links(html, "https://example.vn/", "li[")


def test_links_urljoin_refuses_are_left_out():
    html = '<base href="http://[x"><a class="t" href="http://[::1">x</a><a class="t" href="/a">A</a>'
    assert extract_links(html, "https://example.vn/tin/", ".t") == ["https://example.vn/a"]


def test_listing_entries_carry_what_the_listing_shows():
    entries = listing_entries(page("listing.html"), "https://www.tayninh.gov.vn/", ".tn-news-item")
    first = entries["https://www.tayninh.gov.vn/Pages/chi-tiet-tin.aspx?ItemID=7842&l=TinTucSuKien"]
    assert TITLE in first and "(13/07/2021)" in first and "Sáng ngày 13/7" in first
