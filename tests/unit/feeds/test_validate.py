"""The validator finds what it promises to find, so `validate(...) == []` elsewhere means something.

Each case breaks one thing in a feed we rendered and expects the validator to name it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from distributor.feeds.build import feed_url, render_all
from distributor.feeds.validate import validate, validate_atom, validate_json_feed, validate_rss
from tests.unit.feeds.factories import articles, make_spec

SPEC = make_spec()
FEEDS = render_all(SPEC, articles(2))
RSS = FEEDS["rss"].decode("utf-8")
ATOM = FEEDS["atom"].decode("utf-8")
FIRST = articles(1)[0]


def broken(text: str, old: str, new: str) -> bytes:
    assert old in text, f"test setup: {old!r} not in the feed"
    return text.replace(old, new, 1).encode("utf-8")


def test_our_feeds_pass() -> None:
    for fmt, body in FEEDS.items():
        assert validate(body, fmt, self_url=feed_url(SPEC, fmt)) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("<title>Cổng Thông tin điện tử tỉnh</title>", "<title> </title>", "channel: missing or empty <title>"),
        ("<link>https://portal.example.gov.vn/</link>", "<link>/</link>", "channel <link>: not an absolute"),
        ("Tue, 13 Jul 2021 21:00:00 +0700", "13/07/2021 21:00", "item 1 <pubDate>: not an RFC 822 date"),
        ("Tue, 13 Jul 2021 21:00:00 +0700", "Tue, 13 Jul 2021 21:00:00", "item 1 <pubDate>: not an RFC 822 date"),
        ("Tue, 13 Jul 2021 21:05:00 +0700", "Tue, 31 Feb 2021 21:05:00 +0700", "channel <lastBuildDate>"),
        ("bai-1.aspx</guid>", "bai-0.aspx</guid>", "item 2: duplicate guid"),
        ('<guid isPermaLink="false">', "<guid>", ""),  # a URL guid may be a permalink
        ('<guid isPermaLink="false">https://', '<guid isPermaLink="true">tag:', "<guid isPermaLink=true>"),
        ("<pubDate>Tue, 13 Jul 2021 21:00:00 +0700</pubDate>", "", "item 1: no <pubDate>"),
        ("<ttl>15</ttl>", "<ttl>soon</ttl>", "channel <ttl>"),
        ("<item>", '<item><enclosure url="https://a.vn/a.jpg" length="0" type="image/jpeg"/>', "positive length"),
        ("<item>", "<item><author>Nguyễn Văn A</author>", "must start with an email"),
        ('media:content url="https://', 'media:content url="/', "item 1 <media:content url>"),
        ("</title>", "\x01</title>", "not well-formed XML"),
        ("</title>", "&#1;</title>", "not well-formed XML"),
        ('version="2.0"', 'version="0.91"', "not RSS 2.0"),
    ],
)
def test_rss_problems(old: str, new: str, problem: str) -> None:
    problems = validate_rss(broken(RSS, old, new))
    if problem:
        assert any(problem in p for p in problems), problems
    else:
        assert problems == []


def test_rss_self_link() -> None:
    assert validate_rss(FEEDS["rss"], self_url=feed_url(SPEC, "atom")) == [
        "channel: self link 'http://127.0.0.1:8000/feeds/all.rss' does not match 'http://127.0.0.1:8000/feeds/all.atom'"
    ]
    assert "channel: no link rel=self" in validate_rss(broken(RSS, 'rel="self"', 'rel="related"'))


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("<updated>2021-07-13T21:05:00+07:00</updated>", "<updated>2021-07-13T21:05:00</updated>", "feed <updated>"),
        ("<published>2021-07-13T21:00:00+07:00", "<published>13/07/2021", "entry 1 <published>"),
        ("bai-1.aspx</id>", "bai-0.aspx</id>", "entry 2: duplicate id"),
        ("<id>http://127.0.0.1:8000/feeds/all.atom</id>", "<id>all</id>", "feed <id>: not an absolute IRI"),
        ('rel="enclosure"', 'rel="enclosure" length="big"', "length is not a number"),
        ('<link href="https://portal.example.gov.vn/tin', '<link href="/tin', "entry 1 link rel=alternate"),
        ('xmlns="http://www.w3.org/2005/Atom"', 'xmlns="http://purl.org/atom/ns#"', "not an Atom <feed>"),
    ],
)
def test_atom_problems(old: str, new: str, problem: str) -> None:
    problems = validate_atom(broken(ATOM, old, new))
    assert any(problem in p for p in problems), problems


def test_atom_entries_need_an_author_when_the_feed_has_none() -> None:
    site = "<author><name>Ban biên tập</name><uri>https://portal.example.gov.vn/</uri></author>"
    text = broken(ATOM, site, "").decode("utf-8")
    body = broken(text, "<author><name>Nguyễn Văn A</name></author>", "")  # the first entry's only
    assert validate_atom(body) == ["entry 1: no <author> here nor on the feed"]


def test_atom_self_link() -> None:
    problems = validate_atom(FEEDS["atom"], self_url="http://example.org/other.atom")
    assert problems == [
        "feed: self link 'http://127.0.0.1:8000/feeds/all.atom' does not match 'http://example.org/other.atom'"
    ]


def json_problems(change: Callable[[dict[str, Any]], object]) -> list[str]:
    feed = json.loads(FEEDS["json"])
    change(feed)
    return validate_json_feed(json.dumps(feed).encode("utf-8"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f.update(version="1.1"), "not a JSON Feed version URL"),
        (lambda f: f.pop("title"), "feed: missing title"),
        (lambda f: f.update(feed_url="/feeds/all.json"), "feed feed_url: not an absolute"),
        (lambda f: f["items"][1].update(id=f["items"][0]["id"]), "item 2: duplicate id"),
        (lambda f: f["items"][0].pop("id"), "item 1: id must be a non-empty string"),
        (lambda f: f["items"][0].pop("content_html"), "item 1: needs content_html or content_text"),
        (lambda f: f["items"][0].update(date_published="2021-07-13 21:00"), "item 1 date_published"),
        (lambda f: f["items"][0].update(date_modified="2021-07-13T21:00:00"), "item 1 date_modified"),
        (lambda f: f["items"][0].update(image="anh.jpg"), "item 1 image: not an absolute"),
        (lambda f: f["items"][0].update(tags="Y tế"), "tags must be a list of strings"),
        (lambda f: f["items"][0].update(title="a\x01b"), "control characters"),
        (lambda f: f.update(hubs=[{"url": "https://hub.example/"}]), "hub 1: needs a type"),
        (lambda f: f.update(items={}), "items is not a list"),
    ],
)
def test_json_feed_problems(change: Callable[[dict[str, Any]], object], problem: str) -> None:
    problems = json_problems(change)
    assert any(problem in p for p in problems), problems


def test_json_feed_self_url_and_garbage() -> None:
    assert validate_json_feed(FEEDS["json"], self_url="http://x.example/a.json") == [
        "feed_url 'http://127.0.0.1:8000/feeds/all.json' does not match 'http://x.example/a.json'"
    ]
    assert validate_json_feed(b"{not json")[0].startswith("not JSON")
    assert validate_json_feed(b"[]") == ["top level is not an object"]
    assert validate_json_feed(b"\xff\xfe") == [
        "not UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    ]


def test_unknown_format() -> None:
    with pytest.raises(KeyError):
        validate(FEEDS["rss"], "rdf")
