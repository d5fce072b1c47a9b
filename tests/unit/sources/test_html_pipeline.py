"""The portal, end to end through the pipeline: its HTML pages fill the feeds on the first poll
without posting, and a newly published article is posted on the next poll."""

from __future__ import annotations

import json
from pathlib import Path

import feedparser

from distributor import pipeline
from distributor.context import Context
from distributor.inline import InlineDispatcher
from tests.unit.sources.test_html import NEW_TITLE, TITLES, Portal, source_table


def test_portal_pages_to_feeds_then_new_article_to_channels(make_settings, server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    portal = Portal(server)
    ctx = Context.create(make_settings(sources=[source_table(server)]))
    dispatch = InlineDispatcher(ctx)

    first = pipeline.poll_source(ctx, "tayninh", dispatch)
    assert len(first.new) == 3 and first.errors == []
    outbox = ctx.data_dir / "outbox.jsonl"
    assert not outbox.exists()  # the first poll fills the feeds only

    feed = feedparser.parse(ctx.store.load_render("tin-tuc-su-kien", "atom")[b"body"])
    assert feed.bozo == 0
    seed = next(e for e in feed.entries if e.title == TITLES["7842"])
    assert seed.published == "2021-07-13T21:00:00+07:00"
    assert "Sáng ngày 13/7, Ban Dân vận Trung ương tổ chức hội nghị sơ kết" in seed.summary
    assert "Lượt người xem" not in seed.content[0].value and "Chia sẻ" not in seed.content[0].value

    second = pipeline.poll_source(ctx, "tayninh", dispatch)
    assert second.not_modified or (second.new == [] and second.updated == [])

    portal.publish("7850", NEW_TITLE)
    third = pipeline.poll_source(ctx, "tayninh", dispatch)
    assert len(third.new) == 1
    posts = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [p["title"] for p in posts] == [NEW_TITLE]
