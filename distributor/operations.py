"""Operator actions shared by the command line and the console: retry or cancel a delivery, pause,
resume or test a channel. Each records itself in the audit log under the caller's name, so the two
front ends cannot drift apart in what they do or what they log."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from distributor import audit
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.ledger import AWAITING
from distributor.models import Article

BACKFILL_PAGE = 200  # articles read from the store at a time while looking for a backfill's candidates
Deliver = Callable[[str, str], None]  # queue one delivery task: (article id, channel)


@dataclass(frozen=True)
class Outcome:
    """What an action did: `done` false when refused; `outcome` is the audit log's word for it."""

    done: bool
    outcome: str
    detail: str = ""
    count: int = 0  # deliveries queued again (resume, test)


def _why(ctx: Context, article_id: str, channel: str) -> str:
    found = ctx.ledger.get(article_id, channel)
    return f"state {found.state}" if found else "no such delivery"


def retry_delivery(ctx: Context, actor: str, article_id: str, channel: str, deliver: Deliver) -> Outcome:
    """Put a failed, unknown or cancelled delivery back in the queue (or back to awaiting approval)."""
    target = f"{article_id} -> {channel}"
    if not ctx.ledger.requeue(article_id, channel):
        result = Outcome(False, "refused", _why(ctx, article_id, channel))
    else:
        requeued = ctx.ledger.get(article_id, channel)
        if requeued is not None and requeued.state == AWAITING:
            result = Outcome(True, "awaiting approval")
        else:
            deliver(article_id, channel)
            result = Outcome(True, "queued")
    audit.record(ctx, actor, "retry", target, result.outcome, result.detail)
    return result


def cancel_delivery(ctx: Context, actor: str, article_id: str, channel: str) -> Outcome:
    """Cancel a pending, failed or unknown delivery: it will never be posted."""
    target = f"{article_id} -> {channel}"
    if ctx.ledger.cancel(article_id, channel, f"cancelled by {actor}"):
        result = Outcome(True, "cancelled")
    else:
        result = Outcome(False, "refused", _why(ctx, article_id, channel))
    audit.record(ctx, actor, "cancel", target, result.outcome, result.detail)
    return result


def known_channel(ctx: Context, name: str) -> bool:
    return name in {c.name for c in ctx.settings.channels}


def redispatch_waiting(ctx: Context, channel: str, deliver: Deliver) -> int:
    """Queue the channel's unfinished deliveries now rather than at their next look (up to 10 min);
    a second task for one delivery is harmless (the ledger's claim)."""
    waiting = [(a, c) for a, c in ctx.ledger.overdue(grace=-1e12, limit=100_000) if c == channel]
    for article_id, name in waiting:
        deliver(article_id, name)
    ctx.ledger.wake_ops(channel)  # held edits and deletions: the next sweep sends them
    return len(waiting)


def pause_channel(ctx: Context, actor: str, name: str) -> Outcome:
    """An operator pause: the channel's deliveries wait (none is lost) until it is resumed."""
    if not known_channel(ctx, name):
        result = Outcome(False, "refused", "no such channel")
    elif ctx.admission.pause(name, f"paused by {actor}"):
        result = Outcome(True, "paused", "its deliveries wait until the channel is resumed")
    else:
        result = Outcome(True, "unchanged", "the channel was already paused")
    audit.record(ctx, actor, "pause", name[:80], result.outcome, result.detail)
    return result


def resume_channel(ctx: Context, actor: str, name: str, deliver: Deliver) -> Outcome:
    """Close the channel's circuit (paused, or open after failures); its waiting deliveries go again."""
    if not known_channel(ctx, name):
        result = Outcome(False, "refused", "no such channel")
    elif not ctx.admission.resume(name, by=actor):
        result = Outcome(True, "unchanged", "the circuit was already closed")
    else:
        count = redispatch_waiting(ctx, name, deliver)
        result = Outcome(True, "resumed", f"{count} waiting deliveries queued again", count)
    audit.record(ctx, actor, "resume", name[:80], result.outcome, result.detail)
    return result


def test_channel(ctx: Context, actor: str, name: str, deliver: Deliver) -> tuple[Outcome, Outcome | None]:
    """Check the channel's credentials with a read-only call (posts nothing); a pass closes a paused
    or open circuit. (the test's outcome, the resume's when it closed the circuit)."""
    if not known_channel(ctx, name):
        return Outcome(False, "refused", "no such channel"), None
    adapter = ctx.channel(name)
    try:
        message = adapter.check()
    except ChannelError as exc:
        result = Outcome(False, "failed", exc.message)
        audit.record(ctx, actor, "test", name, result.outcome, result.detail)
        return result, None
    result = Outcome(True, "passed", message)
    audit.record(ctx, actor, "test", name, result.outcome, result.detail)
    if not ctx.admission.resume(name, by=f"a passing credentials test by {actor}"):
        return result, None
    count = redispatch_waiting(ctx, name, deliver)
    resumed = Outcome(True, "resumed", f"after a passing credentials test; {count} deliveries queued again", count)
    audit.record(ctx, actor, "resume", name, resumed.outcome, resumed.detail)
    return result, resumed


@dataclass(frozen=True)
class Backfill:
    """What a backfill found: every candidate in publish order, and per article whether it was
    queued now ("queued", "awaiting approval") or already had a delivery on the channel ("known")."""

    channel: str
    results: list[tuple[Article, str]]

    def count(self, outcome: str) -> int:
        return sum(1 for _, result in self.results if result == outcome)


def backfill_candidates(ctx: Context, name: str, since: float, limit: int) -> list[Article]:
    """The articles published in the last `since` seconds that channel `name` takes (its
    categories), at most the newest `limit`, oldest first: the order they were published in."""
    categories = set(ctx.settings.channel(name).categories)
    cutoff, offset = time.time() - since, 0
    wanted: list[Article] = []
    while len(wanted) < limit:
        page = ctx.store.published_since(cutoff, offset, BACKFILL_PAGE)
        wanted += [a for a in page if not categories or categories & set(a.categories)]
        if len(page) < BACKFILL_PAGE:
            break
        offset += BACKFILL_PAGE
    return list(reversed(wanted[:limit]))


def backfill_channel(
    ctx: Context,
    actor: str,
    name: str,
    articles: list[Article],
    deliver: Deliver,
    advance: Callable[[], None] = lambda: None,
) -> Backfill:
    """Post already published articles to a channel (one added later, or one that was off): the
    explicit form of "unless the operator asks" in the no-backfill rule. Each gets the channel's
    usual delivery (approval, spacing, exactly once); one the channel already has is left alone."""
    approval = ctx.settings.channel(name).approval
    results: list[tuple[Article, str]] = []
    for article in articles:
        if not ctx.ledger.create(article.id, name, state=AWAITING if approval else "pending"):
            results.append((article, "known"))
        elif approval:
            results.append((article, "awaiting approval"))
        else:
            deliver(article.id, name)
            results.append((article, "queued"))
        advance()
    report = Backfill(name, results)
    detail = f"{report.count('queued')} queued, {report.count('awaiting approval')} awaiting approval, "
    detail += f"{report.count('known')} already known"
    audit.record(ctx, actor, "backfill", name, "done", detail)
    return report
