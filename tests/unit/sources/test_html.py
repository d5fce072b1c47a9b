"""The html source against the SharePoint portal's listing and article pages served on loopback."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

import distributor.sources.html as html_source
from distributor.errors import SourceError
from distributor.settings import SiteSettings
from distributor.sources import source_class
from distributor.sources.html import HtmlSource, HtmlSourceSettings
from tests.fakes.server import Reply, Request

PORTAL = Path(__file__).resolve().parents[2] / "data" / "portal"
SITE = SiteSettings(title="Cổng thông tin điện tử tỉnh Tây Ninh", url="https://www.tayninh.gov.vn")
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
LISTING = "/Pages/tin-tuc-su-kien.aspx"
ARTICLE = "/Pages/chi-tiet-tin.aspx"
TITLES = {
    "7842": "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021",
    "7840": "Tây Ninh triển khai kế hoạch phòng, chống thiên tai và tìm kiếm cứu nạn năm 2021",
    "7835": "Tập huấn chuyển đổi số cho cán bộ, công chức cấp xã trên địa bàn tỉnh",
    "7830": "Công bố danh mục thủ tục hành chính mới ban hành trong lĩnh vực đất đai",
}
NEW_TITLE = "Tây Ninh khởi công xây dựng cầu Long Thuận trên sông Vàm Cỏ Đông"


def fixture(name: str) -> str:
    return (PORTAL / name).read_text(encoding="utf-8")


class Portal:
    """The portal's pages, changeable by a test, served the way SharePoint serves them."""

    def __init__(self, server) -> None:
        self.server = server
        self.listing = {"1": fixture("listing.html"), "2": fixture("listing-2.html")}
        self.articles = {
            "7842": fixture("article.html"),
            "7840": fixture("article-2.html"),
            "7835": fixture("article-3.html"),
            "7830": fixture("article-4.html"),
        }
        self.etags = True  # False: no validators, and bytes that change on every request
        self.broken: dict[str, int] = {}  # ItemID -> HTTP status it answers
        self.served = 0
        server.add("GET", LISTING, self._listing)
        server.add("GET", ARTICLE, self._article)

    def _page(self, request: Request, body: str) -> Reply:
        self.served += 1
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if not self.etags:  # SharePoint: a fresh form digest in every answer, no ETag
            return Reply(200, body.replace("14:05:11", f"14:05:{self.served % 60:02d}"), headers)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:12] + '"'
        if request.header("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, body, {**headers, "ETag": etag})

    def _listing(self, request: Request) -> Reply:
        return self._page(request, self.listing[request.query.get("Page", ["1"])[0]])

    def _article(self, request: Request) -> Reply:
        item = request.query.get("ItemID", [""])[0]
        if item in self.broken:
            return Reply(self.broken[item], "<h1>Lỗi máy chủ</h1>", {"Content-Type": "text/html"})
        if item not in self.articles:
            return Reply(404, "<h1>Không tìm thấy</h1>", {"Content-Type": "text/html"})
        return self._page(request, self.articles[item])

    def publish(self, item: str, title: str) -> None:
        """A new article on top of the listing, its page made from another one's."""
        self.articles[item] = self.articles["7835"].replace(TITLES["7835"], title)
        first = self.listing["1"].index('<div class="tn-news-item">')
        entry = self.listing["1"][first : self.listing["1"].index('<div class="tn-news-item">', first + 1)]
        new = entry.replace("ItemID=7842", f"ItemID={item}").replace(TITLES["7842"], title)
        self.listing["1"] = self.listing["1"][:first] + new + self.listing["1"][first:]

    def requests(self) -> list[str]:
        return [f"{r.path}?{'&'.join(f'{k}={v[0]}' for k, v in r.query.items())}" for r in self.server.requests]


@pytest.fixture
def portal(server) -> Portal:
    return Portal(server)


def source_table(server, **options) -> dict:
    """The `[[sources]]` table of the portal's news listing on the loopback server."""
    return {
        "name": "tayninh",
        "type": "html",
        "url": f"{server.url}{LISTING}",
        "link_selector": ".tn-news-list .tn-news-item a",
        "politeness": 0,
        "retries": 0,
        **options,
    }


def make_source(server, **options) -> HtmlSource:
    values = source_table(server, **options)
    return HtmlSource(HtmlSourceSettings.model_validate(values), SITE)


def item_of(url: str) -> str:
    return url.split("ItemID=")[1].split("&")[0]


def test_registered_under_its_type():
    assert source_class("html") is HtmlSource
    assert HtmlSource.settings_model is HtmlSourceSettings


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"link_selector": None}, "link_selector"),
        ({"link_selector": "a["}, "not a valid CSS selector"),
        ({"pagination_selector": ".paging a:::next"}, "not a valid CSS selector"),
        ({"selectors": {"headline": "h1"}}, "unknown selector key"),
        ({"selectors": {"title": "h1["}}, "not a valid CSS selector"),
        ({"url": "/Pages/tin-tuc-su-kien.aspx"}, "absolute http"),
        ({"max_pages": 0}, "max_pages"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_settings_are_refused(change, problem):
    values = {"name": "tayninh", "type": "html", "url": "https://www.tayninh.gov.vn/", "link_selector": "a"}
    values.update(change)
    values = {key: value for key, value in values.items() if value is not None}
    with pytest.raises(ValidationError, match=problem):
        HtmlSourceSettings.model_validate(values)


def test_defaults():
    settings = HtmlSourceSettings.model_validate(
        {"name": "p", "type": "html", "url": "https://www.tayninh.gov.vn/", "link_selector": "a"}
    )
    assert (settings.max_pages, settings.max_articles_per_poll) == (1, 30)
    assert settings.selectors == {} and settings.pagination_selector is None


# --- polling --------------------------------------------------------------------------------------


def test_first_poll_finds_the_three_listed_articles(server, portal):
    result = make_source(server).poll({})
    assert result.errors == [] and result.complete is False and result.not_modified is False
    assert [item_of(d.url) for d in result.drafts] == ["7842", "7840", "7835"]  # listing order
    assert [d.title for d in result.drafts] == [TITLES["7842"], TITLES["7840"], TITLES["7835"]]
    first = result.drafts[0]
    assert first.url == f"{server.url}{ARTICLE}?ItemID=7842&l=TinTucSuKien"
    assert first.published == datetime(2021, 7, 13, 21, 0, tzinfo=HCM)
    assert all(d.categories == ["Tin Tức Sự Kiện"] for d in result.drafts)
    assert "Lượt người xem" not in first.content and "Sáng ngày 13/7" in first.content
    # one listing request, one per article: the image link and the title link count once
    assert portal.requests() == [
        f"{LISTING}?",
        f"{ARTICLE}?ItemID=7842&l=TinTucSuKien",
        f"{ARTICLE}?ItemID=7840&l=TinTucSuKien",
        f"{ARTICLE}?ItemID=7835&l=TinTucSuKien",
    ]


def test_unchanged_listing_costs_one_304_then_a_new_article_is_found(server, portal):
    source = make_source(server)
    state = source.poll({}).state
    server.requests.clear()

    second = source.poll(state)
    assert second.not_modified is True and second.drafts == [] and second.errors == []
    (request,) = server.requests
    assert request.path == LISTING and request.header("If-None-Match") == state["etag"]

    portal.publish("7851", NEW_TITLE)
    server.requests.clear()
    third = source.poll(second.state)
    assert [d.title for d in third.drafts] == [NEW_TITLE]
    assert third.drafts[0].url.endswith("ItemID=7851&l=TinTucSuKien")
    assert portal.requests() == [f"{LISTING}?", f"{ARTICLE}?ItemID=7851&l=TinTucSuKien"]


def test_listing_without_validators_is_compared_by_its_links(server, portal):
    portal.etags = False  # SharePoint: every answer differs in bytes, none has an ETag
    source = make_source(server)
    state = source.poll({}).state
    assert "etag" not in state
    server.requests.clear()

    again = source.poll(state)
    assert again.not_modified is True and again.drafts == []
    assert [r.path for r in server.requests] == [LISTING]


def test_an_edited_entry_rereads_only_that_article(server, portal):
    source = make_source(server)
    state = source.poll({}).state
    edited = "Tây Ninh triển khai kế hoạch phòng, chống thiên tai năm 2021 (cập nhật)"
    portal.listing["1"] = portal.listing["1"].replace(TITLES["7840"], edited)
    portal.articles["7840"] = portal.articles["7840"].replace(TITLES["7840"], edited)
    server.requests.clear()

    result = source.poll(state)
    assert [d.title for d in result.drafts] == [edited]
    article_requests = [r for r in server.requests if r.path == ARTICLE]
    assert [r.query["ItemID"] for r in article_requests] == [["7840"]]
    assert article_requests[0].header("If-None-Match")  # conditional: the page gave an ETag


def test_a_reread_article_that_did_not_change_is_not_a_draft_again(server, portal):
    source = make_source(server, link_selector=".tn-news-item")  # the whole item is the entry
    state = source.poll({}).state
    portal.listing["1"] = portal.listing["1"].replace("(12/07/2021)", "(12/07/2021) - cập nhật")
    portal.etags = False  # the page is fetched in full, and differs in bytes only
    result = source.poll(state)
    assert result.drafts == [] and result.errors == []
    assert [r.query.get("ItemID") for r in server.requests if r.path == ARTICLE][-1] == ["7840"]


def test_a_broken_article_page_is_reported_and_retried(server, portal):
    portal.broken["7840"] = 500
    source = make_source(server)
    first = source.poll({})
    assert [item_of(d.url) for d in first.drafts] == ["7842", "7835"]
    (error,) = first.errors
    assert isinstance(error, SourceError) and error.source == "tayninh"
    assert error.input == f"{server.url}{ARTICLE}?ItemID=7840&l=TinTucSuKien"
    assert "500" in str(error) and str(error).startswith(f"tayninh: {error.input}: ")
    assert first.backlog  # a new source's first poll is not over while a page waits to be read

    del portal.broken["7840"]
    server.requests.clear()
    second = source.poll(first.state)  # the listing is unchanged (304), the failed page is retried
    assert [item_of(d.url) for d in second.drafts] == ["7840"] and second.errors == []
    assert not second.backlog
    assert portal.requests() == [f"{LISTING}?", f"{ARTICLE}?ItemID=7840&l=TinTucSuKien"]

    server.requests.clear()
    assert source.poll(second.state).not_modified is True
    assert len(server.requests) == 1


def test_a_page_that_keeps_failing_is_given_up_after_some_polls(server, portal):
    portal.broken["7840"] = 503
    source = make_source(server)
    state: dict[str, str] = {}
    messages = []
    for _ in range(html_source.MAX_TRIES):
        result = source.poll(state)
        state = result.state
        messages += [str(e) for e in result.errors]
    assert len(messages) == html_source.MAX_TRIES + 1 and "gave up after" in messages[-1]
    server.requests.clear()
    assert source.poll(state).not_modified is True  # no more attempts until its entry changes
    assert [r.path for r in server.requests] == [LISTING]


def test_a_page_without_an_article_is_reported_and_the_rest_goes_on(server, portal):
    portal.articles["7835"] = "<html><head><title>Thông báo</title></head><body></body></html>"
    result = make_source(server).poll({})
    assert [item_of(d.url) for d in result.drafts] == ["7842", "7840"]
    (error,) = result.errors
    assert error.source == "tayninh" and error.input == f"{server.url}{ARTICLE}?ItemID=7835&l=TinTucSuKien"
    assert "no article found" in str(error)


def test_a_listing_without_matching_links_fails_the_poll(server, portal):
    with pytest.raises(SourceError) as caught:
        make_source(server, link_selector=".tin-tuc a").poll({})
    assert caught.value.source == "tayninh" and caught.value.input == f"{server.url}{LISTING}"
    assert "no links on the listing match link_selector '.tin-tuc a'" in str(caught.value)


def test_an_unreachable_listing_fails_the_poll(server, portal):
    with pytest.raises(SourceError) as caught:
        make_source(server, url=f"{server.url}/Pages/khong-co.aspx").poll({})
    assert caught.value.source == "tayninh" and "404" in str(caught.value)


def test_pagination_reads_up_to_max_pages(server, portal):
    source = make_source(server, pagination_selector=".tn-paging a.next", max_pages=3)
    result = source.poll({})
    assert [item_of(d.url) for d in result.drafts] == ["7842", "7840", "7835", "7830"]
    assert result.drafts[-1].title == TITLES["7830"]
    listings = [r for r in server.requests if r.path == LISTING]
    assert [r.query for r in listings] == [{}, {"Page": ["2"]}]  # page 2 has no "next": stop

    server.requests.clear()
    one_page = make_source(server, pagination_selector=".tn-paging a.next").poll({})
    assert len(one_page.drafts) == 3 and [r.path for r in server.requests].count(LISTING) == 1


def test_a_broken_second_listing_page_keeps_the_first(server, portal):
    del portal.listing["2"]  # the fake answers 500 for a missing page
    result = make_source(server, pagination_selector=".tn-paging a.next", max_pages=2).poll({})
    assert len(result.drafts) == 3
    (error,) = result.errors
    assert error.input == f"{server.url}{LISTING}?Page=2" and "500" in str(error)


def test_articles_over_the_budget_wait_for_the_next_poll(server, portal):
    source = make_source(server, max_articles_per_poll=2)
    first = source.poll({})
    assert [item_of(d.url) for d in first.drafts] == ["7842", "7840"]
    second = source.poll(first.state)  # listing 304; the third article is still due
    assert [item_of(d.url) for d in second.drafts] == ["7835"]
    assert source.poll(second.state).not_modified is True


def test_selectors_and_category_reach_the_drafts(server, portal):
    source = make_source(server, selectors={"title": ".tn-news-detail-publishdate"}, category="Thời sự")
    result = source.poll({})
    assert {d.title for d in result.drafts} == {"13/07/2021", "12/07/2021", "09/07/2021"}
    assert all(d.categories == ["Tin Tức Sự Kiện"] for d in result.drafts)  # found ones win


def test_remembered_articles_are_bounded_and_a_damaged_state_is_forgotten(server, portal, monkeypatch):
    monkeypatch.setattr(html_source, "MAX_REMEMBERED", 2)
    portal.etags = False  # no 304: the listing is compared link by link
    source = make_source(server)
    result = source.poll({"articles": "{not json"})
    # A listing longer than the memory: only its first (newest) links are followed. Remembering
    # its last ones instead made the first one new again on every poll, fetched every time.
    assert [item_of(d.url) for d in result.drafts] == ["7842", "7840"]
    remembered = json.loads(result.state["articles"])
    assert [item_of(url) for url in remembered] == ["7842", "7840"]
    server.requests.clear()
    assert source.poll(result.state).not_modified and len(server.requests) == 1
