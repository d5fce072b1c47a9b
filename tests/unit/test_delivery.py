"""Exactly-once delivery: the ledger's rules under retries, crashes, duplicates and rate limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import ClassVar

import pytest

from distributor import delivery, pipeline
from distributor.channels import CHANNELS
from distributor.channels.base import Channel
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.normalize import Draft
from distributor.settings import ChannelSettings


class ScriptedSettings(ChannelSettings):
    script: str = "ok"


class Scripted(Channel):
    """A channel whose platform answers are scripted per test (class-level, shared by instances)."""

    kind = "scripted"
    settings_model = ScriptedSettings
    answers: ClassVar[list[ChannelError | None]] = []
    sent: ClassVar[list[str]] = []
    readback: ClassVar[bool] = False

    def send(self, post: Post, key: str) -> Receipt:
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        self.sent.append(key)
        return Receipt(post_id=f"p{len(self.sent)}", url=f"https://example.social/p{len(self.sent)}")


class Idempotent(Scripted):
    kind = "idempotent"
    idempotent = True


class ReadBack(Scripted):
    kind = "readback"
    supports_readback = True

    def find_existing(self, post: Post, key: str) -> Receipt | None:
        return Receipt(post_id="found") if self.readback else None


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for kind, cls in (("scripted", "Scripted"), ("idempotent", "Idempotent"), ("readback", "ReadBack")):
        monkeypatch.setitem(CHANNELS, kind, f"tests.unit.test_delivery:{cls}")
    Scripted.answers = []
    Scripted.sent = []
    Scripted.readback = False
    yield


def make_ctx(make_settings, kind: str = "scripted", **channel: object) -> Context:  # type: ignore[no-untyped-def]
    return Context.create(make_settings(channels=[{"name": "social", "type": kind, **channel}], sources=[]))


def article(ctx: Context) -> Article:
    draft = Draft(url="https://portal.example.gov.vn/a", title="Tin", published=datetime.now(UTC).isoformat())
    stored = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(stored)
    ctx.ledger.create(stored.id, "social")
    return stored


def test_sent_once_even_when_dispatched_twice(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    assert delivery.deliver(ctx, a.id, "social").state == "sent"
    assert delivery.deliver(ctx, a.id, "social").state == "skipped"
    assert Scripted.sent == [f"{a.id}:social"]
    record = ctx.ledger.get(a.id, "social")
    assert record and record.state == "sent" and record.post_id == "p1" and record.post_url.endswith("/p1")
    assert not ctx.ledger.create(a.id, "social")  # re-ingest never creates a second record


def test_transient_error_retries_with_platform_delay_then_sends(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    Scripted.answers = [ChannelError("Too Many Requests: retry after 7", retry_after=7, status=429, code=429)]
    result = delivery.deliver(ctx, a.id, "social")
    assert (result.state, result.retry_in) == ("retry", 7)
    record = ctx.ledger.get(a.id, "social")
    assert record and record.state == "pending" and "Too Many Requests" in record.error and record.code == "429"
    assert delivery.deliver(ctx, a.id, "social").state == "sent"
    assert len(Scripted.sent) == 1


def test_permanent_error_is_recorded_with_platform_message(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    Scripted.answers = [ChannelError("Unauthorized", permanent=True, code=401)]
    assert delivery.deliver(ctx, a.id, "social").state == "failed"
    record = ctx.ledger.get(a.id, "social")
    assert record and record.state == "failed" and record.error == "Unauthorized (code 401)"
    assert delivery.deliver(ctx, a.id, "social").state == "skipped"  # never retried by itself
    assert ctx.ledger.requeue(a.id, "social")  # the operator may
    assert delivery.deliver(ctx, a.id, "social").state == "sent"


def test_gives_up_after_max_attempts(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(
        make_settings(channels=[{"name": "social", "type": "scripted"}], sources=[], worker={"max_attempts": 2})
    )
    a = article(ctx)
    Scripted.answers = [ChannelError("HTTP 503", status=503), ChannelError("HTTP 503", status=503)]
    assert delivery.deliver(ctx, a.id, "social").state == "retry"
    assert delivery.deliver(ctx, a.id, "social").state == "failed"
    record = ctx.ledger.get(a.id, "social")
    assert record and "gave up after 2 attempts" in record.error


def test_duplicate_reply_counts_as_posted(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    Scripted.answers = [ChannelError("Duplicate status message", duplicate=True, code=506)]
    assert delivery.deliver(ctx, a.id, "social").state == "sent"
    record = ctx.ledger.get(a.id, "social")
    assert record and "duplicate" in record.error


def test_maybe_sent_without_idempotency_is_flagged_not_reposted(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    Scripted.answers = [ChannelError("read timeout: api.example", maybe_sent=True)]
    assert delivery.deliver(ctx, a.id, "social").state == "unknown"
    assert delivery.deliver(ctx, a.id, "social").state == "skipped"
    assert Scripted.sent == []
    assert [d.state for d in ctx.ledger.recent(10)] == ["unknown"]


def test_maybe_sent_with_idempotency_key_is_retried(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, kind="idempotent")
    a = article(ctx)
    Scripted.answers = [ChannelError("read timeout", maybe_sent=True)]
    assert delivery.deliver(ctx, a.id, "social").state == "retry"
    assert delivery.deliver(ctx, a.id, "social").state == "sent"


def crash_mid_send(ctx: Context, article_id: str) -> None:
    """What a worker killed after claiming leaves behind: 'sending' with an expired lease."""
    assert ctx.ledger.claim(article_id, "social", lease=0.01) == "go"
    time.sleep(0.05)


def test_crash_mid_send_on_plain_platform_is_flagged(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    crash_mid_send(ctx, a.id)
    assert delivery.deliver(ctx, a.id, "social").state == "unknown"
    assert Scripted.sent == []


def test_crash_mid_send_with_idempotency_key_resends_same_key(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, kind="idempotent")
    a = article(ctx)
    crash_mid_send(ctx, a.id)
    assert delivery.deliver(ctx, a.id, "social").state == "sent"
    assert Scripted.sent == [f"{a.id}:social"]


@pytest.mark.parametrize(("found", "state", "posts"), [(True, "sent", 0), (False, "sent", 1)])
def test_crash_mid_send_read_back_decides(make_settings, found: bool, state: str, posts: int) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, kind="readback")
    a = article(ctx)
    Scripted.readback = found
    crash_mid_send(ctx, a.id)
    assert delivery.deliver(ctx, a.id, "social").state == state
    assert len(Scripted.sent) == posts


def test_in_flight_delivery_is_not_taken_twice(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    assert ctx.ledger.claim(a.id, "social", lease=60) == "go"
    assert delivery.deliver(ctx, a.id, "social").detail == "busy"


def test_rate_limit_is_shared_through_redis(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, rate_per_minute=1)
    first = article(ctx)
    draft = Draft(url="https://portal.example.gov.vn/b", title="Tin 2")
    second = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(second)
    ctx.ledger.create(second.id, "social")
    assert delivery.deliver(ctx, first.id, "social").state == "sent"
    other_worker = Context.create(ctx.settings)  # a second process sees the same pace
    result = delivery.deliver(other_worker, second.id, "social")
    assert result.state == "retry" and 50 < result.retry_in <= 60


def test_sweep_redispatches_lost_tasks(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    ctx.redis.zadd(ctx.keys.deliveries_by_time() + ":due", {f"{a.id}:social": time.time() - 120})

    class Recorder:
        calls: list[tuple[str, str]] = []

        def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
            self.calls.append((article_id, channel))

    recorder = Recorder()
    assert delivery.sweep(ctx, recorder) == 1  # type: ignore[arg-type]
    assert recorder.calls == [(a.id, "social")]


def test_unpublished_article_cancels_pending_delivery(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)
    pipeline.unpublish(ctx, a.id)
    record = ctx.ledger.get(a.id, "social")
    assert record and record.state == "cancelled"
    assert delivery.deliver(ctx, a.id, "social").state == "skipped"
    assert Scripted.sent == []


def test_rate_limit_waits_do_not_count_as_attempts(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, rate_per_minute=1)
    article(ctx)
    ctx.redis.set(ctx.keys.rate("social"), str(time.time() + 30))  # the pace is taken
    second = pipeline.to_article(ctx, Draft(url="https://portal.example.gov.vn/c", title="Tin 3"), "test")
    ctx.store.upsert(second)
    ctx.ledger.create(second.id, "social")
    for _ in range(3):
        assert delivery.deliver(ctx, second.id, "social").state == "retry"
    record = ctx.ledger.get(second.id, "social")
    assert record is not None and record.attempts == 0


def test_broken_template_fails_with_a_message_and_sends_nothing(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, template="{{ title | no_such_filter }}")
    a = article(ctx)
    result = delivery.deliver(ctx, a.id, "social")
    assert result.state == "failed" and "cannot render the post" in result.detail
    assert Scripted.sent == []


def test_unexpected_error_in_send_is_not_blindly_retried(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    a = article(ctx)

    def explode(self: Scripted, post: Post, key: str) -> Receipt:
        raise KeyError("id")

    monkeypatch.setattr(Scripted, "send", explode)
    assert delivery.deliver(ctx, a.id, "social").state == "unknown"
    record = ctx.ledger.get(a.id, "social")
    assert record is not None and "unexpected error: KeyError" in record.error
