"""Per-channel admission through Redis: the circuit breaker, in-flight slots and spacing (issue 14),
with a frozen clock where time matters."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from distributor import delivery, pipeline
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.models import Article
from distributor.normalize import Draft
from tests.unit.test_delivery import Scripted, registry  # noqa: F401  (the scripted channel's fixture)

SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SAIGON)


def make(make_settings, start: datetime | None = None, worker: dict | None = None, **channel: object):  # type: ignore[no-untyped-def]
    settings = make_settings(
        channels=[{"name": "social", "type": "scripted", **channel}], sources=[], worker=worker or {}
    )
    ctx = Context.create(settings)
    clock = Clock(start or datetime.now(UTC))
    ctx.admission.now = clock
    return ctx, clock


def articles(ctx: Context, count: int) -> list[Article]:
    made = []
    for n in range(count):
        draft = Draft(url=f"https://portal.example.gov.vn/tin-{n}", title=f"Tin {n}")
        stored = pipeline.to_article(ctx, draft, "test")
        ctx.store.upsert(stored)
        ctx.ledger.create(stored.id, "social")
        made.append(stored)
    return made


def transient() -> ChannelError:
    return ChannelError("HTTP 503: upstream down", status=503, code=503)


def attempts(ctx: Context, article: Article) -> int:
    record = ctx.ledger.get(article.id, "social")
    assert record is not None
    return record.attempts


# --- circuit breaker


def test_breaker_opens_after_failures_in_a_row_waits_then_one_probe_closes_it(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings)
    failing, waiting = articles(ctx, 2)
    Scripted.answers = [transient() for _ in range(5)]
    for n in range(5):
        result = delivery.deliver(ctx, failing.id, "social")
        assert result.state == "retry", n
    assert ctx.admission.health("social").breaker == "open"
    # Open: nothing reaches the platform, and waiting spends no attempt.
    before = attempts(ctx, waiting)
    for _ in range(3):
        result = delivery.deliver(ctx, waiting.id, "social")
        assert result.state == "retry" and "circuit open" in result.detail
        assert 55 <= result.retry_in <= 60
    assert attempts(ctx, waiting) == before and Scripted.sent == []
    # After the cool-down one probe goes; its success closes the circuit for everyone.
    clock.advance(61)
    assert delivery.deliver(ctx, waiting.id, "social").state == "sent"
    health = ctx.admission.health("social")
    assert health.breaker == "closed" and health.failures == 0
    assert delivery.deliver(ctx, failing.id, "social").state == "sent"


def test_cool_down_grows_on_repeated_trips_and_others_wait_for_the_probe(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, worker={"breaker_failures": 2, "breaker_cooldown": "60s"})
    admission = ctx.admission
    for n in range(2):
        admission.enter(ctx.settings.channel("social"), f"a{n}:social")
        admission.leave("social", f"a{n}:social", transient())
    first = admission.health("social")
    assert first.breaker == "open" and first.until == pytest.approx(clock.now + 60)
    clock.advance(60)
    assert admission.enter(ctx.settings.channel("social"), "probe:social").wait == 0  # the probe
    other = admission.enter(ctx.settings.channel("social"), "other:social")
    assert other.wait > 0 and "probe" in other.reason
    admission.leave("social", "probe:social", transient())  # the probe fails: a longer pause
    second = admission.health("social")
    assert second.breaker == "open" and second.trips == 2 and second.until == pytest.approx(clock.now + 120)


def test_breaker_state_is_shared_by_every_worker(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = make(make_settings, worker={"breaker_failures": 1})
    ctx.admission.enter(ctx.settings.channel("social"), "a:social")
    ctx.admission.leave("social", "a:social", transient())
    other_worker = Context.create(ctx.settings)
    assert other_worker.admission.health("social").breaker == "open"
    assert other_worker.admission.enter(ctx.settings.channel("social"), "b:social").wait > 0


def test_a_rejected_post_is_an_answer_not_an_outage(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = make(make_settings, worker={"breaker_failures": 2})
    admission = ctx.admission
    for member, error in (("a", transient()), ("b", ChannelError("text too long", permanent=True)), ("c", transient())):
        admission.enter(ctx.settings.channel("social"), f"{member}:social")
        admission.leave("social", f"{member}:social", error)
    assert admission.health("social").breaker == "closed"  # never two transient failures in a row


def test_auth_error_pauses_the_channel_until_the_operator_resumes_it(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings)
    first, second = articles(ctx, 2)
    Scripted.answers = [ChannelError("Telegram: Unauthorized", permanent=True, status=401, code=401, auth=True)]
    result = delivery.deliver(ctx, first.id, "social")
    assert result.state == "retry" and attempts(ctx, first) == 0  # kept for later, not failed
    health = ctx.admission.health("social")
    assert health.breaker == "paused" and "Unauthorized" in health.reason
    clock.advance(7 * 86400)  # no cool-down ends it
    for article in (first, second):
        waited = delivery.deliver(ctx, article.id, "social")
        assert waited.state == "retry" and "until the operator acts" in waited.detail
        assert attempts(ctx, article) == 0
    assert Scripted.sent == []
    assert ctx.admission.resume("social")
    assert [delivery.deliver(ctx, a.id, "social").state for a in (first, second)] == ["sent", "sent"]


# --- in flight


def test_in_flight_slots_bound_a_channel_and_expire_with_a_crashed_worker(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, max_in_flight=2, worker={"lease": "60s"})
    channel = ctx.settings.channel("social")
    admission = ctx.admission
    assert admission.enter(channel, "a:social").wait == 0
    assert admission.enter(channel, "b:social").wait == 0
    third = admission.enter(channel, "c:social")
    assert third.wait > 0 and "max_in_flight = 2" in third.reason
    assert admission.health("social").in_flight == 2
    admission.leave("social", "a:social", None)
    assert admission.enter(channel, "c:social").wait == 0
    # b's worker died mid-send: its slot is free once its lease is over.
    assert admission.enter(channel, "d:social").wait > 0
    clock.advance(61)
    admission.leave("social", "c:social", None)
    assert admission.enter(channel, "d:social").wait == 0
    assert admission.enter(channel, "e:social").wait == 0


# --- spacing


def test_min_interval_spreads_a_burst_in_publish_order_never_rejecting(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, start=local("2026-03-02T09:00:00"), min_interval="3m")
    burst = articles(ctx, 30)
    waits, reasons = [], []
    for article in burst:
        result = delivery.deliver(ctx, article.id, "social")
        waits.append(0.0 if result.state == "sent" else result.retry_in)
        reasons.append(result.detail)
    # Long waits look again every 10 minutes; each delivery keeps the slot it reserved.
    assert waits == [pytest.approx(min(600.0, 180.0 * n)) for n in range(30)]
    assert "spaced: posting at 2026-03-02 10:27:00" in reasons[-1]
    assert all(attempts(ctx, a) == 0 for a in burst[1:])
    # Time passes; every article goes out at its own slot, in publish order, none closer than 3m.
    posted: list[tuple[float, str]] = [(clock.now, burst[0].id)]
    pending = burst[1:]
    while pending and clock.now < local("2026-03-02T11:00:00").timestamp():
        clock.advance(60)
        for article in pending[:3]:  # the next in line, and two that must not jump ahead
            if delivery.deliver(ctx, article.id, "social").state == "sent":
                posted.append((clock.now, article.id))
        pending = [a for a in pending if a.id not in {article_id for _, article_id in posted}]
    assert [article_id for _, article_id in posted] == [a.id for a in burst]
    times = [t for t, _ in posted]
    assert min(b - a for a, b in itertools.pairwise(times)) >= 180
    assert times[-1] - times[0] == pytest.approx(29 * 180)


def test_max_per_day_moves_the_rest_to_the_next_local_day(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, start=local("2026-03-02T20:00:00"), max_per_day=2)
    channel = ctx.settings.channel("social")
    admission = ctx.admission
    assert admission.enter(channel, "a:social").wait == 0
    assert admission.enter(channel, "b:social").wait == 0
    third = admission.enter(channel, "c:social")
    midnight = local("2026-03-03T00:00:00").timestamp()
    assert third.wait == pytest.approx(600) and "2026-03-03 00:00:00" in third.reason  # looks again meanwhile
    clock.now = midnight - 1
    assert admission.enter(channel, "c:social").wait == pytest.approx(1.0)
    clock.now = midnight
    assert admission.enter(channel, "c:social").wait == 0


def test_quiet_hours_hold_with_a_frozen_clock_then_go_in_publish_order(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, start=local("2026-03-02T23:10:00"), quiet_hours="22:00-06:00", min_interval="3m")
    channel = ctx.settings.channel("social")
    admission = ctx.admission
    morning = local("2026-03-03T06:00:00").timestamp()
    for n, member in enumerate(("a:social", "b:social", "c:social")):
        gate = admission.enter(channel, member)
        assert gate.wait == pytest.approx(600) and f"06:0{3 * n}:00" in gate.reason
    assert admission.health("social", channel).next_post == pytest.approx(morning + 540)
    clock.now = local("2026-03-03T05:59:59").timestamp()  # still quiet
    assert admission.enter(channel, "a:social").wait == pytest.approx(1.0)
    clock.now = morning
    assert admission.enter(channel, "b:social").wait == pytest.approx(180)  # not before its own slot
    assert admission.enter(channel, "a:social").wait == 0
    admission.leave("social", "a:social", None)
    clock.advance(180)
    assert admission.enter(channel, "b:social").wait == 0


def test_quiet_hours_within_one_day_and_outside_them(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, clock = make(make_settings, start=local("2026-03-02T12:30:00"), quiet_hours="12:00-13:30")
    channel = ctx.settings.channel("social")
    gate = ctx.admission.enter(channel, "a:social")
    assert gate.wait == pytest.approx(600) and "13:30:00" in gate.reason
    clock.now = local("2026-03-02T14:00:00").timestamp()
    assert ctx.admission.enter(channel, "b:social").wait == 0


def test_a_channel_without_spacing_reserves_nothing(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = make(make_settings, max_in_flight=100)
    channel = ctx.settings.channel("social")
    for n in range(20):
        assert ctx.admission.enter(channel, f"a{n}:social").wait == 0
    assert not ctx.redis.exists(ctx.keys.spacing("social"), ctx.keys.reservations("social"))
