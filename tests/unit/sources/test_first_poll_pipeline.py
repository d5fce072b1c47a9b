"""No backfill blast when a new source's existing articles take several polls to read.

A per-poll budget (`max_pages` of a WordPress API, `max_articles_per_poll` of a listing) spreads
the reading of what a source already holds over several polls. Those articles only fill the
feeds; the first article published afterwards is posted. A new sitemap reads only its newest
`max_urls_per_poll` URLs: the older ones are remembered as seen, never read, never posted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from distributor import pipeline
from distributor.context import Context
from distributor.inline import InlineDispatcher
from tests.fakes.server import Reply
from tests.unit.sources.test_html import LISTING, NEW_TITLE, Portal
from tests.unit.sources.test_sitemap import urlset
from tests.unit.sources.test_wordpress import FakeWordPress


def run(make_settings, source: dict[str, Any], polls: int) -> tuple[Context, InlineDispatcher, list[int]]:  # type: ignore[no-untyped-def]
    """Poll the source `polls` times; the number of new articles each poll found."""
    ctx = Context.create(make_settings(sources=[{"politeness": 0, "retries": 0, **source}]))
    dispatch = InlineDispatcher(ctx)
    return ctx, dispatch, [len(pipeline.poll_source(ctx, source["name"], dispatch).new) for _ in range(polls)]


def posted(ctx: Context) -> list[str]:
    outbox = ctx.data_dir / "outbox.jsonl"
    return [json.loads(line)["title"] for line in outbox.read_text().splitlines()] if outbox.exists() else []


def test_a_wordpress_archive_read_over_several_polls_is_not_posted(make_settings, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wp = FakeWordPress(server)
    for post_id in range(1, 7):
        wp.publish(post_id, f"Bài {post_id}", f"2021-07-1{post_id}T00:00:00")
    source = {"name": "blog", "type": "wordpress", "url": server.url, "per_page": 3, "max_pages": 1}
    ctx, dispatch, found = run(make_settings, source, polls=3)
    assert found == [3, 2, 1] and posted(ctx) == []
    wp.publish(7, "Bài mới", "2021-07-20T00:00:00")
    assert len(pipeline.poll_source(ctx, "blog", dispatch).new) == 1
    assert posted(ctx) == ["Bài mới"]


def test_a_new_sitemap_reads_its_newest_urls_and_posts_none_of_the_older(make_settings, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pages = {f"/tin-{day}": f"2021-07-1{day}" for day in range(1, 6)}
    server.add("GET", "/sitemap.xml", lambda r: Reply(200, urlset(server, pages, news=True)))
    source = {"name": "map", "type": "sitemap", "url": server.url + "/sitemap.xml", "fetch_pages": False}
    ctx, dispatch, found = run(make_settings, {**source, "max_urls_per_poll": 2}, polls=3)
    assert found == [2, 0, 0] and posted(ctx) == []
    pages["/tin-moi"] = "2021-07-20"
    assert len(pipeline.poll_source(ctx, "map", dispatch).new) == 1
    assert posted(ctx) == ["Bài /tin-moi"]


def test_a_listing_read_over_several_polls_is_not_posted(make_settings, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    portal = Portal(server)
    source = {"name": "portal", "type": "html", "url": server.url + LISTING, "link_selector": ".tn-news-item a"}
    ctx, dispatch, found = run(make_settings, {**source, "max_articles_per_poll": 1}, polls=3)
    assert found == [1, 1, 1] and posted(ctx) == []
    portal.publish("7850", NEW_TITLE)
    assert len(pipeline.poll_source(ctx, "portal", dispatch).new) == 1
    assert posted(ctx) == [NEW_TITLE]
