"""What feed readers see: each format as feedparser (or, for JSON Feed, a JSON reader) reads it.

feedparser 6 (the version this project pins) cannot read JSON Feed, so the JSON tests read the
document itself and hold it to the JSON Feed 1.1 rules through the validator.
"""

from __future__ import annotations

import calendar
import json
from datetime import UTC, timedelta

import feedparser
import pytest
from lxml import etree

from distributor.feeds.build import FORMATS, feed_url, render, render_all
from distributor.feeds.validate import validate
from tests.unit.feeds.factories import BASE_URL, HUB, LOGO, NEWEST, SITE_URL, articles, make_article, make_spec

SPEC = make_spec()
ARTICLES = articles(3)
FEEDS = render_all(SPEC, ARTICLES)
FIRST_URL = ARTICLES[0].url


def parsed(fmt: str) -> feedparser.FeedParserDict:
    result = feedparser.parse(FEEDS[fmt])
    assert result.bozo == 0, result.get("bozo_exception")
    return result


def links_by_rel(links: list[dict[str, str]]) -> dict[str, str]:
    return {link["rel"]: link["href"] for link in links}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_is_strictly_valid(fmt: str) -> None:
    assert validate(FEEDS[fmt], fmt, self_url=feed_url(SPEC, fmt)) == []


def test_feed_urls_and_content_types() -> None:
    assert feed_url(SPEC, "rss") == "http://127.0.0.1:8000/feeds/all.rss"
    assert feed_url(make_spec(base_url="https://rss.example.vn/"), "atom") == "https://rss.example.vn/feeds/all.atom"
    assert FORMATS["json"] == ("application/feed+json; charset=utf-8", "json")
    assert FORMATS["rss"][0].startswith("application/rss+xml")
    assert FORMATS["atom"][0].startswith("application/atom+xml")


def test_rss_channel() -> None:
    feed = parsed("rss")
    assert feed.version == "rss20"
    assert feed.feed.title == SPEC.title
    assert feed.feed.link == SITE_URL
    assert feed.feed.subtitle == SPEC.description
    assert feed.feed.language == "vi"
    assert feed.feed.ttl == "15"
    assert feed.feed.image.href == LOGO
    assert feed.feed.generator == "Distributor"
    rels = links_by_rel(feed.feed.links)
    assert rels["self"] == f"{BASE_URL}/feeds/all.rss"
    assert rels["hub"] == HUB
    # lastBuildDate is the newest edit in the feed, not the time of the build (stable ETags).
    assert feed.feed.updated == "Tue, 13 Jul 2021 21:05:00 +0700"


@pytest.mark.parametrize(
    ("fmt", "published"),
    [("rss", "Tue, 13 Jul 2021 21:00:00 +0700"), ("atom", "2021-07-13T21:00:00+07:00")],
)
def test_entries_as_readers_see_them(fmt: str, published: str) -> None:
    feed = parsed(fmt)
    assert [e.id for e in feed.entries] == [a.url for a in ARTICLES]
    entry = feed.entries[0]
    assert entry.id == entry.link == FIRST_URL
    assert entry.title == ARTICLES[0].title
    assert entry.published == published
    assert calendar.timegm(entry.published_parsed) == int(NEWEST.timestamp())
    assert entry.summary == ARTICLES[0].summary
    assert entry.content[0].type == "text/html"
    assert entry.content[0].value == ARTICLES[0].content
    assert [tag.term for tag in entry.tags] == ["Tin Tức Sự Kiện", "Y tế"]
    assert entry.author == "Nguyễn Văn A"


def test_rss_lead_image() -> None:
    entry = parsed("rss").entries[0]
    assert entry.media_content == [{"url": ARTICLES[0].image, "type": "image/jpeg", "medium": "image"}]
    assert entry.media_thumbnail == [{"url": ARTICLES[0].image}]


def test_rss_guid_author_and_enclosure_markup() -> None:
    channel = etree.fromstring(FEEDS["rss"]).find("channel")
    item = channel.find("item")
    assert item.find("guid").get("isPermaLink") == "false"
    assert item.find("author") is None  # RSS <author> must be an email; the name is dc:creator
    assert item.find("{http://purl.org/dc/elements/1.1/}creator").text == "Nguyễn Văn A"
    assert item.find("enclosure") is None  # no length="0": the image is typed media:content
    assert item.find("{http://purl.org/rss/1.0/modules/content/}encoded").text == ARTICLES[0].content


def test_atom_feed() -> None:
    feed = parsed("atom")
    assert feed.version == "atom10"
    assert feed.feed.id == f"{BASE_URL}/feeds/all.atom"
    assert feed.feed.title == SPEC.title
    assert feed.feed.updated == "2021-07-13T21:05:00+07:00"
    assert feed.feed.author == "Ban biên tập"
    rels = links_by_rel(feed.feed.links)
    assert rels == {"self": f"{BASE_URL}/feeds/all.atom", "alternate": SITE_URL, "hub": HUB}
    assert feed.feed.logo == LOGO


def test_atom_entry_dates_and_lead_image() -> None:
    entry = parsed("atom").entries[0]
    assert entry.updated == "2021-07-13T21:05:00+07:00"
    assert entry.enclosures == [{"href": ARTICLES[0].image, "type": "image/jpeg"}]


def test_json_feed() -> None:
    feed = json.loads(FEEDS["json"])
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == SPEC.title
    assert feed["home_page_url"] == SITE_URL
    assert feed["feed_url"] == f"{BASE_URL}/feeds/all.json"
    assert feed["description"] == SPEC.description
    assert feed["language"] == "vi"
    assert feed["icon"] == LOGO
    assert feed["hubs"] == [{"type": "WebSub", "url": HUB}]
    assert feed["authors"] == [{"name": "Ban biên tập", "url": SITE_URL}]
    assert [item["id"] for item in feed["items"]] == [a.url for a in ARTICLES]
    item = feed["items"][0]
    assert item == {
        "id": FIRST_URL,
        "url": FIRST_URL,
        "title": ARTICLES[0].title,
        "content_html": ARTICLES[0].content,
        "summary": ARTICLES[0].summary,
        "image": ARTICLES[0].image,
        "date_published": "2021-07-13T21:00:00+07:00",
        "date_modified": "2021-07-13T21:05:00+07:00",
        "authors": [{"name": "Nguyễn Văn A"}],
        "tags": ["Tin Tức Sự Kiện", "Y tế"],
        "language": "vi",
    }


def test_json_bodies_are_escaped_like_json_dumps() -> None:
    """Bodies are spliced into the JSON by hand for speed; they must decode to the same text."""
    tricky = '<p title="a \\ b">line\nnext\ttab\r"quoted" \\u0000 </p>'
    feed = json.loads(render(SPEC, [make_article(0, content=tricky)], "json"))
    assert feed["items"][0]["content_html"] == tricky


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_render_gives_the_same_bytes_as_render_all(fmt: str) -> None:
    assert render(SPEC, ARTICLES, fmt) == FEEDS[fmt]


def test_identical_input_gives_identical_bytes_and_an_edit_changes_them() -> None:
    again = render_all(make_spec(), articles(3))
    assert again == FEEDS
    edited = [make_article(0, updated=NEWEST + timedelta(hours=1)), *ARTICLES[1:]]
    changed = render_all(SPEC, edited)
    assert all(changed[fmt] != FEEDS[fmt] for fmt in FORMATS)
    assert feedparser.parse(changed["atom"]).feed.updated == "2021-07-13T22:00:00+07:00"


def test_dates_are_shown_in_the_site_zone() -> None:
    in_utc = make_article(0, published=NEWEST.astimezone(UTC), updated=NEWEST.astimezone(UTC))
    naive = make_article(1, published=NEWEST.replace(tzinfo=None), updated=NEWEST.replace(tzinfo=None))
    rss = feedparser.parse(render(SPEC, [in_utc, naive], "rss"))
    assert [e.published for e in rss.entries] == ["Tue, 13 Jul 2021 21:00:00 +0700"] * 2
    atom = feedparser.parse(render(SPEC, [in_utc], "atom"))
    assert atom.entries[0].published == "2021-07-13T21:00:00+07:00"


def test_article_with_only_a_title_and_a_url() -> None:
    bare = make_article(0, summary="", content="", image=None, author=None, categories=(), tags=())
    feeds = render_all(make_spec(image=None, hubs=(), author=""), [bare])
    for fmt in FORMATS:
        assert validate(feeds[fmt], fmt) == [], fmt
    item = json.loads(feeds["json"])["items"][0]
    assert item["content_text"] == bare.title  # JSON Feed requires a content field
    assert "image" not in item and "authors" not in item and "tags" not in item
    rss = feedparser.parse(feeds["rss"])
    assert rss.bozo == 0 and rss.entries[0].title == bare.title
    assert "image" not in rss.feed
    assert "hub" not in links_by_rel(rss.feed.links)
    atom = feedparser.parse(feeds["atom"])
    assert atom.bozo == 0 and atom.feed.author == SPEC.title  # the site stands in as author


def test_image_type_comes_from_the_extension() -> None:
    png = make_article(0, image="https://portal.example.gov.vn/a/b.PNG?w=600")
    unknown = make_article(1, image="https://portal.example.gov.vn/GetImage.ashx?id=7")
    feed = feedparser.parse(render(SPEC, [png, unknown], "atom"))
    assert feed.entries[0].enclosures[0]["type"] == "image/png"
    assert feed.entries[1].enclosures[0]["type"] == "image/jpeg"  # no extension: the common type
    assert validate(render(SPEC, [png, unknown], "rss"), "rss") == []


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feed format 'xml'"):
        render(SPEC, ARTICLES, "xml")
