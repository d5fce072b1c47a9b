"""The pipeline against a real Redis: change detection, no backfill, exactly-once delivery."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from distributor import pipeline, rebuild
from distributor.context import Context
from distributor.inline import InlineDispatcher


def write(folder: Path, name: str, title: str, body: str = "Nội dung.", **front: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    extra = "".join(f"{k}: {json.dumps(v, ensure_ascii=False)}\n" for k, v in front.items())
    path = folder / name
    path.write_text(f"---\ntitle: {json.dumps(title, ensure_ascii=False)}\n{extra}---\n{body}\n", encoding="utf-8")
    return path


def outbox_lines(ctx: Context) -> list[dict[str, str]]:
    path = ctx.data_dir / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def setup(make_settings, tmp_path: Path, **source: object) -> tuple[Context, Path]:  # type: ignore[no-untyped-def]
    folder = tmp_path / "articles"
    folder.mkdir()
    config = {"name": "files", "type": "directory", "path": str(folder), **source}
    return Context.create(make_settings(sources=[config])), folder


def test_first_poll_fills_feeds_without_posting_then_new_articles_post_once(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "old.md", "Bài cũ", published="2021-07-13 08:00", category="Tin Tức Sự Kiện")
    dispatch = InlineDispatcher(ctx)
    first = pipeline.poll_source(ctx, "files", dispatch)
    assert len(first.new) == 1
    assert outbox_lines(ctx) == []  # no backfill blast
    assert [a.title for a in ctx.store.feed_articles("all", 50)] == ["Bài cũ"]
    assert [a.title for a in ctx.store.feed_articles("tin-tuc-su-kien", 50)] == ["Bài cũ"]

    write(folder, "new.md", "Bài mới")
    second = pipeline.poll_source(ctx, "files", dispatch)
    assert len(second.new) == 1 and second.unchanged == 1
    assert [line["title"] for line in outbox_lines(ctx)] == ["Bài mới"]

    third = pipeline.poll_source(ctx, "files", dispatch)
    assert third.new == [] and third.unchanged == 2
    assert len(outbox_lines(ctx)) == 1


def test_an_entry_without_a_readable_date_keeps_the_date_it_was_first_seen(make_settings, tmp_path: Path) -> None:
    # An unreadable date is no date: it used to become "now" on every poll, an edit each time.
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Bài", published="không rõ ngày")
    dispatch = InlineDispatcher(ctx)
    first = pipeline.poll_source(ctx, "files", dispatch)
    time.sleep(1.1)
    again = pipeline.poll_source(ctx, "files", dispatch)
    assert (len(first.new), again.updated, again.unchanged) == (1, [], 1)


def test_edit_updates_feed_without_reposting(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path, announce_existing=True)
    path = write(folder, "a.md", "Tiêu đề gốc")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    assert len(outbox_lines(ctx)) == 1
    write(folder, path.name, "Tiêu đề đã sửa")
    report = pipeline.poll_source(ctx, "files", dispatch)
    assert len(report.updated) == 1
    assert [a.title for a in ctx.store.feed_articles("all", 50)] == ["Tiêu đề đã sửa"]
    rss = ctx.store.load_render("all", "rss")[b"body"].decode()
    assert "Tiêu đề đã sửa" in rss and "Tiêu đề gốc" not in rss
    assert len(outbox_lines(ctx)) == 1


def test_removed_file_unpublishes(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Ở lại")
    gone = write(folder, "b.md", "Bị gỡ")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    gone.unlink()
    report = pipeline.poll_source(ctx, "files", dispatch)
    assert len(report.removed) == 1
    assert [a.title for a in ctx.store.feed_articles("all", 50)] == ["Ở lại"]
    assert "Bị gỡ" not in ctx.store.load_render("all", "rss")[b"body"].decode()
    assert ctx.store.count() == 1


def test_duplicate_entries_across_sources_are_one_article(make_settings, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        write(folder, "x.md", "Cùng một bài", url="https://portal.example.gov.vn/cung-mot-bai?utm_source=a")
    ctx = Context.create(
        make_settings(
            sources=[
                {"name": "one", "type": "directory", "path": str(one), "announce_existing": True},
                {"name": "two", "type": "directory", "path": str(two), "announce_existing": True},
            ]
        )
    )
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "one", dispatch)
    pipeline.poll_source(ctx, "two", dispatch)
    assert ctx.store.count() == 1
    assert len(outbox_lines(ctx)) == 1


def test_max_age_keeps_old_articles_off_channels(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path, announce_existing=True, max_age="2d")
    write(folder, "old.md", "Quá cũ", published="2020-01-01 08:00")
    write(folder, "fresh.md", "Còn mới")
    pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    assert [line["title"] for line in outbox_lines(ctx)] == ["Còn mới"]
    assert len(ctx.store.feed_articles("all", 50)) == 2


def test_future_article_waits_for_its_time(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path, announce_existing=True)
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    write(folder, "later.md", "Đăng sau", published=soon)
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    assert ctx.store.feed_articles("all", 50) == [] and outbox_lines(ctx) == []
    [(article_id, eta)] = dispatch.scheduled
    assert abs((eta - datetime.fromisoformat(soon)).total_seconds()) < 1
    pipeline.release(ctx, article_id, True, dispatch)  # too early: nothing happens
    assert ctx.store.feed_articles("all", 50) == []


def test_bad_file_is_reported_and_the_rest_goes_on(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path, announce_existing=True)
    write(folder, "good.md", "Tốt")
    (folder / "bad.json").write_text("{oops")
    report = pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    assert len(report.new) == 1
    assert any("bad.json" in e for e in report.errors)


def test_rebuild_only_touches_feeds_containing_the_article(make_settings, tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    ctx = Context.create(
        make_settings(
            sources=[{"name": "files", "type": "directory", "path": str(folder)}],
            feeds=[{"name": "all"}, {"name": "sports", "filters": {"categories": ["Thể thao"]}}],
        )
    )
    write(folder, "a.md", "Tin chung", category="Xã hội")
    dispatch = InlineDispatcher(ctx)
    rebuild.register_configured_feeds(ctx)
    rebuild.rebuild_feeds(ctx, ["all", "sports"])
    before = ctx.store.load_render("sports", "rss")[b"etag"]
    pipeline.poll_source(ctx, "files", dispatch)
    assert ctx.store.load_render("sports", "rss")[b"etag"] == before
    assert ctx.store.feed_articles("sports", 50) == []
    assert len(ctx.store.feed_articles("all", 50)) == 1


def test_public_files_are_written(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Bài")
    pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    public = ctx.settings.public_dir / "feeds"
    assert {p.name for p in public.iterdir()} >= {"all.rss", "all.atom", "all.json"}
    assert b"<rss" in (public / "all.rss").read_bytes()
    assert time.time() - (public / "all.rss").stat().st_mtime < 60


def test_changed_feed_pings_its_websub_hub_and_advertises_it(make_settings, tmp_path: Path) -> None:
    from urllib.parse import parse_qs

    from tests.fakes.server import FakeServer, Reply

    with FakeServer() as hub:
        hub.add("POST", "/", lambda request: Reply(204))
        folder = tmp_path / "articles"
        ctx = Context.create(
            make_settings(
                sources=[{"name": "files", "type": "directory", "path": str(folder)}],
                feeds=[{"name": "all", "hubs": [hub.url + "/"]}],
            )
        )
        write(folder, "a.md", "Bài")
        pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
        [ping] = hub.requests
        form = parse_qs(ping.body.decode())
        assert form["hub.mode"] == ["publish"]
        assert sorted(form["hub.url"]) == sorted(
            f"http://127.0.0.1:8000/feeds/all.{ext}" for ext in ("rss", "atom", "json")
        )
        rss = ctx.store.load_render("all", "rss")[b"body"].decode()
        assert f'href="{hub.url}/" rel="hub"' in rss or f'rel="hub" href="{hub.url}/"' in rss

        pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))  # nothing changed: no ping
        assert len(hub.requests) == 1


def test_a_1000_article_archive_renders_only_the_newest_50(make_settings, tmp_path: Path) -> None:
    import feedparser

    from distributor.normalize import Draft

    ctx = Context.create(make_settings(sources=[], feeds=[{"name": "all", "limit": 50}]))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(1000):
        draft = Draft(
            url=f"https://portal.example.gov.vn/tin/{n}",
            title=f"Tin số {n}",
            published=(start + timedelta(hours=n)).isoformat(),
        )
        article = pipeline.to_article(ctx, draft, "archive")
        ctx.store.upsert(article)
        pipeline.publish(ctx, article)
    rebuild.register_configured_feeds(ctx)
    rebuild.rebuild_feeds(ctx, ["all"])
    parsed = feedparser.parse(ctx.store.load_render("all", "rss")[b"body"])
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == [f"Tin số {n}" for n in range(999, 949, -1)]
    assert ctx.redis.zcard(ctx.keys.feed_index("all")) == 1000  # the archive stays indexed


def test_a_file_caught_mid_save_does_not_unpublish_its_article(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    path = write(folder, "a.md", "Ổn định")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    path.write_text("---\ntitle: [half written", encoding="utf-8")
    report = pipeline.poll_source(ctx, "files", dispatch)
    assert report.removed == [] and report.errors
    assert [a.title for a in ctx.store.feed_articles("all", 50)] == ["Ổn định"]
    write(folder, "a.md", "Ổn định")
    assert pipeline.poll_source(ctx, "files", dispatch).unchanged == 1


def test_an_unexpected_error_in_a_source_is_reported_with_its_name(
    make_settings, tmp_path: Path, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    from distributor.sources.directory import DirectorySource

    ctx, folder = setup(make_settings, tmp_path)

    def broken(self: DirectorySource, state: dict[str, str]) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(DirectorySource, "poll", broken)
    report = pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    assert report.errors == ["files: unexpected error: IndexError: list index out of range"]
    assert "source files: unexpected error while polling" in caplog.text and str(folder) in caplog.text


def test_a_poll_overlapping_a_newer_one_does_not_unpublish_its_articles(
    make_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow poll (or a redelivered one) lists the folder, then a newer poll sees a new file and
    finishes first: the slow one's older listing must not count the new article as removed."""
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Cũ")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    real_source = ctx.source

    class SlowSource:
        def __init__(self, name: str) -> None:
            self.inner = real_source(name)

        def poll(self, state: dict[str, str]):  # type: ignore[no-untyped-def]
            listing = self.inner.poll(state)  # listed before the new file was written
            write(folder, "b.md", "Mới")
            monkeypatch.setattr(ctx, "source", real_source)
            assert pipeline.poll_source(ctx, "files", dispatch).new  # the newer poll, finished first
            return listing

    monkeypatch.setattr(ctx, "source", SlowSource)
    report = pipeline.poll_source(ctx, "files", dispatch)
    assert report.removed == []
    assert sorted(a.title for a in ctx.store.feed_articles("all", 50)) == ["Cũ", "Mới"]
    assert [line["title"] for line in outbox_lines(ctx)] == ["Mới"]


def stored_then_killed(ctx: Context, folder: Path, name: str, title: str) -> str:
    """What a worker killed right after storing a new article leaves: the article, no deliveries."""
    from distributor.reader import read_one

    article = pipeline.to_article(ctx, read_one(ctx, str(write(folder, name, title))), "files")
    assert ctx.store.upsert(article) == "new"
    return article.id


def test_a_worker_killed_between_storing_and_fanning_out_loses_no_post(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)  # the first (empty) poll: later ones post
    article_id = stored_then_killed(ctx, folder, "moi.md", "Bài mới")
    # Stored already, so every later poll sees it unchanged and would never fan it out.
    assert pipeline.poll_source(ctx, "files", dispatch).unchanged == 1
    assert outbox_lines(ctx) == [] and ctx.ledger.get(article_id, "outbox") is None
    assert pipeline.finish_fanouts(ctx, dispatch, grace=0) == 1  # what the sweep does
    assert [line["title"] for line in outbox_lines(ctx)] == ["Bài mới"]
    assert pipeline.finish_fanouts(ctx, dispatch, grace=0) == 0  # decided once; never posted twice
    assert len(outbox_lines(ctx)) == 1


def test_finishing_fan_outs_keeps_the_no_backfill_rule(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    stored_then_killed(ctx, folder, "cu.md", "Bài cũ")  # killed during the source's first poll
    assert pipeline.finish_fanouts(ctx, InlineDispatcher(ctx), grace=0) == 0
    assert outbox_lines(ctx) == []
    assert ctx.store.fanout_overdue(grace=0) == []  # decided: nothing left pending


def test_an_ingested_article_leaves_no_fan_out_pending(make_settings, tmp_path: Path) -> None:
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Bài A")
    pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    assert ctx.store.fanout_overdue(grace=0) == []
