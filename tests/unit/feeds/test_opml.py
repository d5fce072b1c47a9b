"""/feeds.opml: one outline per feed, so a reader subscribes to them all in one import."""

from __future__ import annotations

import pytest
from lxml import etree

from distributor.feeds.opml import render_opml
from tests.unit.feeds.factories import BASE_URL, SITE_URL, make_spec

SPECS = [
    make_spec(),
    make_spec(name="tin-tuc-su-kien", title="Tin Tức Sự Kiện", description="Mục <tin> & sự kiện"),
    make_spec(name="kinh-te", title="Kinh tế", description=""),
]


def outlines(body: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(body)
    assert root.tag == "opml" and root.get("version") == "2.0"
    return [dict(outline.attrib) for outline in root.iterfind("body/outline")]


def test_every_feed_is_listed_with_its_urls() -> None:
    body = render_opml("Cổng TTĐT: mọi nguồn tin", SPECS)
    assert etree.fromstring(body).findtext("head/title") == "Cổng TTĐT: mọi nguồn tin"
    listed = outlines(body)
    assert [o["xmlUrl"] for o in listed] == [
        f"{BASE_URL}/feeds/all.rss",
        f"{BASE_URL}/feeds/tin-tuc-su-kien.rss",
        f"{BASE_URL}/feeds/kinh-te.rss",
    ]
    assert {o["htmlUrl"] for o in listed} == {SITE_URL}
    assert listed[1] == {
        "type": "rss",
        "text": "Tin Tức Sự Kiện",
        "title": "Tin Tức Sự Kiện",
        "xmlUrl": f"{BASE_URL}/feeds/tin-tuc-su-kien.rss",
        "htmlUrl": SITE_URL,
        "description": "Mục <tin> & sự kiện",
        "language": "vi",
    }
    assert "description" not in listed[2]


def test_another_format_and_stable_bytes() -> None:
    body = render_opml("Feeds", SPECS, fmt="atom")
    assert [o["xmlUrl"].rsplit(".", 1)[1] for o in outlines(body)] == ["atom"] * 3
    assert render_opml("Feeds", SPECS, fmt="atom") == body
    with pytest.raises(ValueError, match="unknown feed format"):
        render_opml("Feeds", SPECS, fmt="rdf")


def test_an_empty_list_still_parses() -> None:
    assert outlines(render_opml("Không có gì", [])) == []
