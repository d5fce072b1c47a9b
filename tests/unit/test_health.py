"""Health tells the truth: /healthz and `distributor health` are ok only while a worker beats its
heart and an active beat ticks, and say which part is missing otherwise."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from distributor import heartbeat
from distributor.cli import app as cli
from distributor.context import Context
from distributor.web.app import create_app
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file


@pytest.fixture
def web(ctx: Context) -> Iterator[tuple[Context, TestClient]]:
    with TestClient(create_app(ctx, enqueue=lambda task, args: None)) as client:
        yield ctx, client


def test_judge_needs_a_fresh_worker_and_an_active_beat() -> None:
    now = 1_000_000.0
    fresh_worker = heartbeat.Beat("worker", "celery@a", now - 3, "active")
    active_beat = heartbeat.Beat("beat", "a", now - 3, "active")
    standby_beat = heartbeat.Beat("beat", "b", now - 1, "standby")
    assert heartbeat.judge([fresh_worker, active_beat], now).ok
    assert not heartbeat.judge([fresh_worker, standby_beat], now).ok  # nobody schedules polls
    assert heartbeat.judge([fresh_worker, standby_beat], now).beat == "none"
    stale = heartbeat.Beat("worker", "celery@a", now - heartbeat.STALE_AFTER - 5, "active")
    verdict = heartbeat.judge([stale, active_beat], now)
    assert not verdict.ok and verdict.worker == "stale 35s" and verdict.beat == "up"


def test_healthz_is_not_ok_without_a_worker_and_a_beat(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert answer.json() == {
        "status": "unavailable",
        "redis": "up",
        "worker": "none",
        "beat": "none",
        "beat_lock": {"held": False},
    }
    heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@w1")
    heartbeat.beat(ctx.redis, ctx.keys, "beat", "b1", "active")
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    # The beat goes silent (killed, or cut off from Redis): health says so.
    ctx.redis.hset(ctx.keys.heartbeats(), "beat:b1", f"{time.time() - 120:.3f} active")
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.json()["beat"].startswith("stale")


def test_a_worker_that_said_it_stopped_is_gone_at_once() -> None:
    now = 1_000_000.0
    active_beat = heartbeat.Beat("beat", "a", now - 1, "active")
    stopped = heartbeat.Beat("worker", "celery@a", now - 1, heartbeat.STOPPED)
    verdict = heartbeat.judge([stopped, active_beat], now)
    assert not verdict.ok and verdict.worker == "stopped"
    other = heartbeat.Beat("worker", "celery@b", now - 4, "active")  # another worker still beats
    assert heartbeat.judge([stopped, other, active_beat], now).ok


def test_healthz_names_the_beat_lock_holder(web) -> None:  # type: ignore[no-untyped-def]
    """The RedBeat lock's value is a bare token: the beat that took it recorded who it is, and only
    a record matching the current token is believed."""
    ctx, client = web
    heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@w1")
    heartbeat.beat(ctx.redis, ctx.keys, "beat", "b1", "active")
    ctx.redis.set(ctx.keys.beat_lock(), "token-of-b1", px=60_000)
    heartbeat.record_lock_holder(ctx.redis, ctx.keys, b"token-of-b1", "b1", 4242)
    lock = client.get("/healthz").json()["beat_lock"]
    assert lock["held"] is True and (lock["host"], lock["pid"]) == ("b1", 4242)
    assert 55 <= lock["expires_in"] <= 60 and lock["held_for"] <= 5
    assert "token-of-b1" not in client.get("/healthz").text  # the token would let anyone release the lock
    # Another beat took the lock (b1's record is left over): not believed.
    ctx.redis.set(ctx.keys.beat_lock(), "token-of-b2", px=60_000)
    other = client.get("/healthz").json()["beat_lock"]
    assert other["held"] is True and other["host"] == "unknown" and "pid" not in other
    ctx.redis.delete(ctx.keys.beat_lock())
    assert client.get("/healthz").json()["beat_lock"] == {"held": False}


def test_healthz_web_scope_is_this_process_only(web) -> None:  # type: ignore[no-untyped-def]
    _, client = web
    assert client.get("/healthz?scope=web").status_code == 200


def test_health_command_exit_codes(tmp_path, redis_url, prefix, ctx, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    config = config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX)
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", redis_url)
    runner = CliRunner()
    args = ["health", "worker", "--node", "celery@w9", "--config", str(config)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1 and "never seen" in result.output
    heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@w9")
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    ctx.redis.hset(ctx.keys.heartbeats(), "worker:celery@w9", f"{time.time() - 300:.3f} active")
    assert runner.invoke(cli, args).exit_code == 1


def test_redis_down_is_a_503_to_retry_and_one_log_line(make_settings, prefix, caplog) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.helpers import free_port

    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    ctx = Context.create(make_settings(sources=[], redis={"url": closed, "key_prefix": prefix}))
    with TestClient(create_app(ctx, enqueue=lambda task, args: None)) as client:
        answer = client.get("/s/abc123/facebook")
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert answer.json()["error"]["message"] == "storage temporarily unavailable; try again shortly"
        assert client.get("/healthz").json() == {"status": "unavailable", "redis": "down"}
        assert client.get("/healthz?scope=web").status_code == 200
    assert not [r for r in caplog.records if r.exc_info]  # no traceback for an expected outage


def test_workers_dedicated_to_some_queues_leave_the_others_to_nobody_and_health_says_so(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    heartbeat.beat(ctx.redis, ctx.keys, "beat", "b1", "active")
    # One worker started with `--queues deliver.outbox`: polls and sweeps (queue "distributor") and
    # engagement reads have no consumer.
    heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@dedicated", queues=("deliver.outbox",))
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert "no worker consumes distributor, engagement" in answer.json()["worker"]
    heartbeat.beat(ctx.redis, ctx.keys, "worker", "celery@rest", queues=("distributor", "engagement"))
    assert client.get("/healthz").status_code == 200


def test_processes_silent_for_a_day_are_forgotten_by_the_next_worker(ctx: Context) -> None:
    # A container restarted under a new host name leaves its old entry behind.
    ctx.redis.hset(ctx.keys.heartbeats(), "worker:celery@old-container", f"{time.time() - 2 * 86400:.3f} active")
    heart = heartbeat.Heart(ctx.redis, ctx.keys, "worker", "celery@new")
    heart.start()
    try:
        from tests.integration.helpers import wait_for

        wait_for(lambda: not ctx.redis.hexists(ctx.keys.heartbeats(), "worker:celery@old-container"),
                 timeout=5, what="the old entry to be forgotten")  # fmt: skip
        assert ctx.redis.hexists(ctx.keys.heartbeats(), "worker:celery@new")
    finally:
        heart.stop()
