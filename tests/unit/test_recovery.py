"""Redis coming back without the service's state (no AOF, a new server, a lost last second): the
journal kept outside Redis decides, so the articles published since are posted, those already
posted (or deliberately not posted) never are, and the loss is reported until acknowledged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as redis_py
from starlette.testclient import TestClient
from typer.testing import CliRunner

from distributor import delivery, heartbeat, pipeline, recovery
from distributor.cli import app
from distributor.context import Context, reset_context
from distributor.inline import InlineDispatcher
from distributor.normalize import Draft
from distributor.settings import load_settings
from distributor.web.app import create_app
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file
from tests.unit.test_pipeline import outbox_lines, setup, write


@pytest.fixture(autouse=True)
def check_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker notices within `CHECK_EVERY` seconds; the tests look at once."""
    monkeypatch.setattr(recovery, "CHECK_EVERY", 0.0)


def lose_redis_state(ctx: Context) -> None:
    """What a Redis restarted without AOF shows this installation: none of its keys."""
    client = redis_py.Redis.from_url(ctx.redis_url)
    keys = list(client.scan_iter(match=f"{ctx.keys.prefix}*", count=1000))
    assert keys
    client.delete(*keys)


def titles(ctx: Context) -> list[str]:
    return [line["title"] for line in outbox_lines(ctx)]


@pytest.fixture
def running(make_settings, tmp_path: Path) -> Iterator[tuple[Context, Path, InlineDispatcher]]:  # type: ignore[no-untyped-def]
    """A folder source polled once with two articles (not posted: no backfill), then one new
    article posted."""
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "cu-1.md", "Bài cũ 1")
    write(folder, "cu-2.md", "Bài cũ 2")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    write(folder, "moi-1.md", "Bài mới 1")
    pipeline.poll_source(ctx, "files", dispatch)
    assert titles(ctx) == ["Bài mới 1"]
    yield ctx, folder, dispatch


def test_redis_emptied_posts_the_next_article_never_the_old_ones_and_says_so(running, caplog) -> None:  # type: ignore[no-untyped-def]
    ctx, folder, dispatch = running
    assert recovery.status(ctx) is None
    lose_redis_state(ctx)
    write(folder, "moi-2.md", "Bài mới 2")
    with caplog.at_level(logging.ERROR, logger="distributor.recovery"):
        report = pipeline.poll_source(ctx, "files", dispatch)
    assert len(report.new) == 4  # Redis knows none of them any more; the feeds get them all back
    assert titles(ctx) == ["Bài mới 1", "Bài mới 2"]
    assert sorted(a.title for a in ctx.store.feed_articles("all", 50)) == [
        "Bài cũ 1",
        "Bài cũ 2",
        "Bài mới 1",
        "Bài mới 2",
    ]
    [line] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "Redis lost its state" in line.getMessage() and "1 sources" in line.getMessage()

    lost = recovery.status(ctx)
    assert lost is not None
    assert lost["sources"] == 1 and lost["deliveries"] == 1 and lost["articles"] == 3
    assert lost["detected_at"]
    # The posted delivery is back in the ledger with its post, for the dashboard and for edits.
    moi_1 = next(a for a in ctx.store.feed_articles("all", 50) if a.title == "Bài mới 1")
    record = ctx.ledger.get(moi_1.id, "outbox")
    assert record is not None and record.state == "sent" and record.post_id

    pipeline.poll_source(ctx, "files", dispatch)
    assert titles(ctx) == ["Bài mới 1", "Bài mới 2"]
    assert recovery.acknowledge(ctx) and recovery.status(ctx) is None


def test_a_loss_not_noticed_yet_still_posts_new_articles_and_reposts_nothing(running, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Between a Redis restart and the next check, each decision asks the journal itself.
    ctx, folder, dispatch = running
    monkeypatch.setattr(recovery, "ensure", lambda ctx: False)
    lose_redis_state(ctx)
    write(folder, "moi-2.md", "Bài mới 2")
    pipeline.poll_source(ctx, "files", dispatch)
    pipeline.poll_source(ctx, "files", dispatch)
    assert titles(ctx) == ["Bài mới 1", "Bài mới 2"]


def test_redis_losing_its_last_second_does_not_repost(running) -> None:  # type: ignore[no-untyped-def]
    # AOF with fsync every second: the newest article and its delivery record can be lost alone.
    ctx, _, dispatch = running
    moi_1 = next(a for a in ctx.store.feed_articles("all", 50) if a.title == "Bài mới 1")
    ctx.redis.delete(ctx.keys.article(moi_1.id), ctx.keys.delivery(moi_1.id, "outbox"))
    ctx.redis.hdel(ctx.keys.article_hash(), moi_1.id)
    report = pipeline.poll_source(ctx, "files", dispatch)
    assert report.new == [moi_1.id]
    assert titles(ctx) == ["Bài mới 1"]
    record = ctx.ledger.get(moi_1.id, "outbox")
    assert record is not None and record.state == "sent"
    assert recovery.status(ctx) is None  # nothing the operator must act on


def test_a_fresh_installation_is_not_a_loss(make_settings, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    ctx, folder = setup(make_settings, tmp_path)
    write(folder, "a.md", "Bài A")
    with caplog.at_level(logging.WARNING, logger="distributor.recovery"):
        pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
        pipeline.poll_source(ctx, "files", InlineDispatcher(ctx))
    assert recovery.status(ctx) is None
    assert not [r for r in caplog.records if r.name == "distributor.recovery"]
    assert titles(ctx) == []


def test_a_lost_journal_is_rebuilt_from_redis_without_alarm_and_protects_again(running) -> None:  # type: ignore[no-untyped-def]
    ctx, folder, dispatch = running
    journal_dir = ctx.data_dir / "state"
    for path in journal_dir.iterdir():
        path.unlink()
    ctx.journal.close()
    pipeline.poll_source(ctx, "files", dispatch)
    assert recovery.status(ctx) is None
    # Rebuilt from Redis, the journal protects against a later Redis loss as well.
    lose_redis_state(ctx)
    write(folder, "moi-2.md", "Bài mới 2")
    pipeline.poll_source(ctx, "files", dispatch)
    assert titles(ctx) == ["Bài mới 1", "Bài mới 2"]
    assert recovery.status(ctx) is not None


def test_deliveries_unfinished_at_the_loss_resume_under_the_crash_rules(running) -> None:  # type: ignore[no-untyped-def]
    ctx, _, dispatch = running
    [waiting, mid_send] = [a.id for a in ctx.store.feed_articles("all", 50) if a.title in ("Bài cũ 1", "Bài cũ 2")]
    assert ctx.ledger.create(waiting, "outbox")  # e.g. waiting for a rate limit
    assert ctx.ledger.create(mid_send, "outbox")
    assert ctx.ledger.claim(mid_send, "outbox", lease=300) == "go"  # a worker was posting it
    lose_redis_state(ctx)
    assert recovery.ensure(ctx)
    pending = ctx.ledger.get(waiting, "outbox")
    sending = ctx.ledger.get(mid_send, "outbox")
    assert pending is not None and pending.state == "pending"
    assert sending is not None and sending.state == "sending"
    assert sorted(ctx.ledger.overdue(grace=0)) == sorted([(waiting, "outbox"), (mid_send, "outbox")])
    # Before the source is read again the articles are unknown to Redis: the deliveries wait.
    for article_id in (waiting, mid_send):
        assert delivery.deliver(ctx, article_id, "outbox").detail == "waiting for the article to be read again"
    assert sorted(ctx.ledger.overdue(grace=0)) == sorted([(waiting, "outbox"), (mid_send, "outbox")])
    # Read again, they are posted once each; the one caught mid-send goes through the crash rules
    # (the outbox reads back before posting).
    pipeline.poll_source(ctx, "files", dispatch)
    results = {article_id: delivery.deliver(ctx, article_id, "outbox").state for article_id in (waiting, mid_send)}
    assert results == {waiting: "sent", mid_send: "sent"}
    assert sorted(titles(ctx)) == ["Bài cũ 1", "Bài cũ 2", "Bài mới 1"]
    assert ctx.ledger.overdue(grace=0) == []


def test_healthz_reports_the_loss_until_acknowledged(running) -> None:  # type: ignore[no-untyped-def]
    ctx, _, _ = running

    def alive() -> None:  # a worker and an active beat, as the real ones say every few seconds
        heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@w1")
        heartbeat.beat(ctx.redis, ctx.keys, "beat", "b1", "active")

    app = create_app(ctx, enqueue=lambda task, args: None)
    # An operator on this machine (no token configured): the console answers loopback clients.
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)) as client:
        alive()
        assert client.get("/healthz").json()["status"] == "ok"
        lose_redis_state(ctx)
        recovery.ensure(ctx)
        alive()
        response = client.get("/healthz")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded" and body["redis"] == "up"
        assert body["state_lost"]["deliveries"] == 1 and body["state_lost"]["detected_at"]
        assert str(ctx.data_dir) not in response.text
        page = client.get("/dashboard", headers={"accept-language": "en"}).text  # loopback, no token configured
        assert "Redis lost its state" in page and "distributor recovery ack" in page
        recovery.acknowledge(ctx)
        assert client.get("/healthz").json()["status"] == "ok"
        assert "Redis lost its state" not in client.get("/dashboard", headers={"accept-language": "en"}).text


def test_an_unwritable_journal_is_reported_and_the_pipeline_goes_on(make_settings, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    ctx, folder = setup(make_settings, tmp_path)
    ctx.data_dir.mkdir(parents=True, exist_ok=True)
    (ctx.data_dir / "state").write_text("not a directory")  # the journal cannot be created
    write(folder, "a.md", "Bài A")
    dispatch = InlineDispatcher(ctx)
    with caplog.at_level(logging.ERROR, logger="distributor.journal"):
        pipeline.poll_source(ctx, "files", dispatch)
        write(folder, "b.md", "Bài B")
        pipeline.poll_source(ctx, "files", dispatch)
    assert titles(ctx) == ["Bài B"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "journal" in errors[0]


def test_recovery_commands_show_and_acknowledge_the_loss(
    tmp_path: Path, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", redis_url)  # the CLI exports it for its children
    config = config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX)
    runner = CliRunner()
    reset_context()
    try:
        result = runner.invoke(app, ["recovery", "status", "--config", str(config)])
        assert result.exit_code == 0 and "holds the service's state" in result.output
        ctx = Context.create(load_settings(config))
        pipeline.poll_source(ctx, "articles", InlineDispatcher(ctx))
        lose_redis_state(ctx)
        assert recovery.ensure(ctx)

        result = runner.invoke(app, ["recovery", "status", "--config", str(config)])
        assert result.exit_code == 1 and "Redis lost its state (Redis came back empty)" in result.output
        result = runner.invoke(app, ["recovery", "status", "--json", "--config", str(config)])
        assert result.exit_code == 1
        assert json.loads(result.stdout)["state_lost"]["sources"] == 1
        result = runner.invoke(app, ["recovery", "ack", "--config", str(config)])
        assert result.exit_code == 0 and "acknowledged" in result.output
        assert recovery.status(ctx) is None
        result = runner.invoke(app, ["recovery", "ack", "--config", str(config)])
        assert result.exit_code == 1 and "no loss of state" in result.output
    finally:
        reset_context()


def test_a_second_machines_journal_merges_what_only_it_knows(running, make_settings, tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    ctx, folder, dispatch = running
    other = Context.create(
        make_settings(
            sources=[{"name": "files", "type": "directory", "path": str(folder)}],
            paths={"data_dir": str(tmp_path / "machine-2")},
        )
    )
    recovery.ensure(other)  # its new journal learns Redis' state
    draft = Draft(url="https://portal.example.gov.vn/day", title="Bài đẩy", published=datetime.now(UTC).isoformat())
    pushed = pipeline.to_article(other, draft, "push")
    pipeline.ingest(other, pushed, InlineDispatcher(other), announce=True)  # only machine 2 knows this post
    lose_redis_state(ctx)
    assert recovery.ensure(ctx)
    with caplog.at_level(logging.WARNING, logger="distributor.recovery"):
        assert recovery.ensure(other)
    assert "restored by another process" in caplog.text
    record = ctx.ledger.get(pushed.id, "outbox")
    assert record is not None and record.state == "sent"
    pipeline.ingest(ctx, pushed, dispatch, announce=True)  # pushed again, to the first machine
    assert titles(ctx) == ["Bài mới 1"] and titles(other) == ["Bài đẩy"]
