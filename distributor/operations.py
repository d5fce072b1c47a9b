"""Operator actions shared by the command line and the console: retry or cancel a delivery, pause,
resume or test a channel. Each records itself in the audit log under the caller's name, so the two
front ends cannot drift apart in what they do or what they log."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from distributor import audit
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.ledger import AWAITING

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
