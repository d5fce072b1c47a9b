"""Deliveries due now go through each channel's ready list and its drainers (distributor.drain):
every delivery posted exactly once, in order, with as few drainers as keep up, and none stranded."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from distributor import drain, pipeline
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.models import Article
from distributor.normalize import Draft
from tests.unit.test_delivery import Scripted, make_ctx, registry  # noqa: F401 (the scripted channels, registered)
from tests.unit.test_delivery_cost import round_trips


class Recorder:
    """A dispatcher that keeps what a drainer hands back (retries with their countdown)."""

    def __init__(self) -> None:
        self.later: list[tuple[str, str, float]] = []

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.later.append((article_id, channel, countdown))


def stored(ctx: Context, n: int) -> Article:
    published = datetime.now(UTC).isoformat()
    draft = Draft(url=f"https://portal.example.gov.vn/tin-{n}", title=f"Tin {n}", published=published)
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    ctx.ledger.create(article.id, "social")
    return article


def drainers(ctx: Context) -> list[str]:
    return list(ctx.redis.zrange(ctx.keys.drainers("social"), 0, -1))


def test_a_push_starts_one_drainer_and_the_drainer_posts_in_order(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=4)
    articles = [stored(ctx, n) for n in range(5)]
    started = [drain.push(ctx, a.id, ["social"]) for a in articles]
    tokens = [pair[0][1] for pair in started if pair]
    assert len(tokens) == 3  # 1 list entry > 0 drainers, 3 > 2 x 1, 5 > 2 x 2: then they keep up
    assert sorted(drainers(ctx)) == sorted(tokens)

    result = drain.drain(ctx, "social", tokens[0], Recorder())
    assert (result.delivered, result.more) == (5, False)
    assert Scripted.sent == [f"{a.id}:social" for a in articles]  # oldest first
    assert tokens[0] not in drainers(ctx)  # struck off once the list was empty
    assert all(ctx.ledger.get(a.id, "social").state == "sent" for a in articles)  # type: ignore[union-attr]
    for token in tokens[1:]:  # the others find nothing left and leave at once
        assert drain.drain(ctx, "social", token, Recorder()).delivered == 0
    assert drainers(ctx) == [] and Scripted.sent == [f"{a.id}:social" for a in articles]


def test_a_drainer_that_keeps_up_gets_no_company(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=4)
    first = stored(ctx, 1)
    token = drain.push(ctx, first.id, ["social"])[0][1]
    assert ctx.ledger.claim_next("social", token, 300, drain.LEASE)[0] == first.id  # at work on it
    assert drain.push(ctx, stored(ctx, 2).id, ["social"]) == []  # one waiting, one drainer: enough
    assert drain.push(ctx, stored(ctx, 3).id, ["social"]) == []  # two: still
    assert len(drain.push(ctx, stored(ctx, 4).id, ["social"])) == 1  # three: it falls behind
    assert len(drainers(ctx)) == 2


def test_never_more_drainers_than_max_in_flight(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=2)
    started = [drain.push(ctx, stored(ctx, n).id, ["social"]) for n in range(20)]
    assert sum(len(pair) for pair in started) == 2
    assert len(drainers(ctx)) == 2


def test_a_delivery_pushed_twice_is_posted_once(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    article = stored(ctx, 1)
    token = drain.push(ctx, article.id, ["social"])[0][1]
    drain.push(ctx, article.id, ["social"])  # the sweep found it overdue, say
    assert drain.drain(ctx, "social", token, Recorder()).delivered == 1
    assert Scripted.sent == [f"{article.id}:social"]
    assert ctx.redis.llen(ctx.keys.ready("social")) == 0


def test_a_dead_drainers_place_is_taken_after_its_lease(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=1)
    first = stored(ctx, 1)
    assert drain.push(ctx, first.id, ["social"])  # ... and its drainer task is lost
    second = stored(ctx, 2)
    assert drain.push(ctx, second.id, ["social"]) == []  # the channel's one drainer seems at work
    assert drain.idle_lists(ctx) == []
    ctx.redis.zadd(ctx.keys.drainers("social"), {drainers(ctx)[0]: time.time() - 1})  # its lease ran out
    revived = drain.idle_lists(ctx)  # the sweep
    assert [name for name, _ in revived] == ["social"]
    assert drain.drain(ctx, "social", revived[0][1], Recorder()).delivered == 2
    assert Scripted.sent == [f"{first.id}:social", f"{second.id}:social"]


def test_the_budget_hands_the_rest_to_the_next_task(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    articles = [stored(ctx, n) for n in range(3)]
    token = drain.push(ctx, articles[0].id, ["social"])[0][1]
    for article in articles[1:]:
        drain.push(ctx, article.id, ["social"])
    first = drain.drain(ctx, "social", token, Recorder(), budget=0)
    assert (first.delivered, first.more) == (1, True)
    assert token in drainers(ctx)  # still this drainer's: the task queued again keeps the place
    rest = drain.drain(ctx, "social", token, Recorder())
    assert (rest.delivered, rest.more) == (2, False)


def test_a_retry_goes_back_as_a_delayed_delivery_without_holding_the_list(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    failing, fine = stored(ctx, 1), stored(ctx, 2)
    Scripted.answers = [ChannelError("server error 503", retry_after=30)]
    token = drain.push(ctx, failing.id, ["social"])[0][1]
    drain.push(ctx, fine.id, ["social"])
    recorder = Recorder()
    assert drain.drain(ctx, "social", token, recorder).delivered == 2
    assert recorder.later == [(failing.id, "social", 30)]
    assert Scripted.sent == [f"{fine.id}:social"]
    assert ctx.ledger.get(failing.id, "social").state == "pending"  # type: ignore[union-attr]


def test_a_removed_article_fails_its_delivery_and_the_drainer_goes_on(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    gone, kept = stored(ctx, 1), stored(ctx, 2)
    token = drain.push(ctx, gone.id, ["social"])[0][1]
    drain.push(ctx, kept.id, ["social"])
    ctx.store.remove(gone.id)
    assert drain.drain(ctx, "social", token, Recorder()).delivered == 2
    assert ctx.ledger.get(gone.id, "social").state == "failed"  # type: ignore[union-attr]
    assert Scripted.sent == [f"{kept.id}:social"]


def test_an_unknown_channel_is_not_drained(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    assert drain.drain(ctx, "gone", "token", Recorder()).delivered == 0


def test_the_gate_checked_with_the_claim_holds_a_paused_channel_and_frees_the_slot(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=1)
    first, second = stored(ctx, 1), stored(ctx, 2)
    token = drain.push(ctx, first.id, ["social"])[0][1]
    drain.push(ctx, second.id, ["social"])
    ctx.admission.pause("social", "token expired")
    recorder = Recorder()
    assert drain.drain(ctx, "social", token, recorder).delivered == 2
    assert Scripted.sent == [] and [entry[0] for entry in recorder.later] == [first.id, second.id]
    assert all(wait > 0 for *_, wait in recorder.later)
    assert ctx.ledger.get(first.id, "social").attempts == 0  # type: ignore[union-attr]  # waiting spends none

    ctx.admission.resume("social")
    token = drain.push(ctx, first.id, ["social"])[0][1]  # what the delayed task does when its time comes
    assert drain.drain(ctx, "social", token, Recorder()).delivered == 1
    assert Scripted.sent == [f"{first.id}:social"]
    assert ctx.redis.zcard(ctx.keys.in_flight("social")) == 0  # the slot the claim took is given back


def test_a_drained_delivery_is_the_probe_that_closes_an_open_circuit(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    article = stored(ctx, 1)
    ctx.redis.hset(ctx.keys.breaker("social"), mapping={"state": "open", "until": time.time() - 1, "trips": 1})
    token = drain.push(ctx, article.id, ["social"])[0][1]
    assert drain.drain(ctx, "social", token, Recorder()).delivered == 1
    assert Scripted.sent == [f"{article.id}:social"]
    assert ctx.admission.health("social").breaker == "closed"


def test_a_drained_post_costs_one_redis_round_trip(make_settings, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """In a run of ready deliveries each post's record (with the in-flight slot's release) goes in
    one round trip with the next delivery's claim, which also checked the admission gate."""
    ctx = make_ctx(make_settings)
    articles = [stored(ctx, n) for n in range(6)]
    token = drain.push(ctx, articles[0].id, ["social"])[0][1]
    for article in articles[1:]:
        drain.push(ctx, article.id, ["social"])
    ctx.redis.delete(ctx.keys.drainers("social"))
    ctx.redis.zadd(ctx.keys.drainers("social"), {token: time.time() + 60})  # this drainer alone
    with round_trips(monkeypatch) as sent:
        assert drain.drain(ctx, "social", token, Recorder()).delivered == 6
    assert Scripted.sent == [f"{a.id}:social" for a in articles]
    # the first claim, six records each with the next claim (the last finds the list empty and
    # waits), the wait (BLPOP), then the claim that strikes the drainer off
    assert len(sent) == 1 + 6 + 2
    assert all(ctx.ledger.get(a.id, "social").state == "sent" for a in articles)  # type: ignore[union-attr]
    assert ctx.redis.zcard(ctx.keys.in_flight("social")) == 0 and drainers(ctx) == []
