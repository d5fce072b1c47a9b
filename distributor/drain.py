"""Deliveries due now go through a per-channel ready list, posted by the channel's drainers.

A broker message per delivery costs a worker about as much CPU as the rest of the delivery (fetch,
unacknowledged bookkeeping, acknowledgement, task tracing), so a delivery due now is not a message:
its article id is pushed onto the channel's ready list in Redis, and a drainer task for the channel
is queued only while fewer than `max_in_flight` drainers are at work and they fall behind. A drainer claims deliveries
from the list one by one, through the same ledger claim and admission gate as any delivery (exactly
once, the breaker, the in-flight slots and the spacing all hold), for up to `BUDGET` seconds; then
it queues itself again on its channel's queue, so that a long list never holds a worker for long.

Delayed deliveries (retries, spacing, quiet hours) stay broker messages with a countdown.

What can go wrong, and what takes care of it:
- A drainer that finds the list empty is struck off in the same Lua call (`Ledger.claim_next`); a
  push checks the drainers in its own call, so a delivery pushed at that moment starts a new drainer.
- A drainer killed mid-run: its lease (`LEASE`, renewed at every delivery) runs out, and the next
  push or the sweep starts another. A delivery it had claimed is handled by the crash rules, as any.
  A delivery that takes longer than the lease may let a second drainer start: the drainer count is
  a soft limit; the admission gate's in-flight slots are the hard one.
- Redis unreachable for a while: the drainer waits for it (up to `LEASE`), keeping its place.
- Redis losing the list: the ledger's records are still pending (or restored from the journal), and
  the sweep pushes them again; a delivery pushed twice is claimed once.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from distributor import delivery
from distributor.channels.base import Channel
from distributor.context import Context
from distributor.ledger import Claimed

if TYPE_CHECKING:
    from distributor.pipeline import Dispatcher

log = logging.getLogger(__name__)

BUDGET = 2.0  # seconds a drainer task works before it queues itself again
LINGER = 0.05  # seconds a drainer that just posted waits for the next delivery before it leaves
LEASE = 20.0  # a drainer not heard of for this long is taken for dead (it renews this at every delivery)
OUTAGE_POLL = 0.5  # seconds between a drainer's attempts to reach Redis again

# KEYS: each channel's ready list and drainers, in pairs. ARGV: now, lease, article id ('' for none),
# then each channel's max drainers and a new token. Pushes the id onto each list; returns, per
# channel, the new token when a drainer must be started, else ''. A drainer is started when none is
# at work, or when the list holds more than two deliveries per drainer at work (they fall behind),
# never more than `max_in_flight`: drainers that always find work post many deliveries each, where
# one per delivery would cost the broker message this saves (measured: twice as many deliveries
# per drainer task as starting one at more than one per drainer, and 8% less CPU per delivery).
_PUSH = """
local now = tonumber(ARGV[1])
local started = {}
for i = 1, #KEYS / 2 do
  local ready, drainers = KEYS[2 * i - 1], KEYS[2 * i]
  if ARGV[3] ~= '' then redis.call('RPUSH', ready, ARGV[3]) end
  redis.call('ZREMRANGEBYSCORE', drainers, '-inf', now)
  local live = redis.call('ZCARD', drainers)
  started[i] = ''
  if live < tonumber(ARGV[2 + 2 * i]) and redis.call('LLEN', ready) > 2 * live then
    redis.call('ZADD', drainers, now + tonumber(ARGV[2]), ARGV[3 + 2 * i])
    started[i] = ARGV[3 + 2 * i]
  end
end
return started
"""


@dataclass
class DrainResult:
    delivered: int  # deliveries handled (sent, failed, put back to wait ...)
    more: bool  # the budget ran out with deliveries left: queue the drainer again


def push(ctx: Context, article_id: str, channels: list[str]) -> list[tuple[str, str]]:
    """Put one article's deliveries on its channels' ready lists, in one round trip: (channel, new
    drainer token) for each channel where a drainer must be started (the caller queues
    `drain(channel, token)`). With no article id: start a drainer only where the list holds work
    and too few drain it (what the sweep asks)."""
    keys: list[str] = []
    args: list[str | float] = [time.time(), LEASE, article_id]
    for name in channels:
        keys += [ctx.keys.ready(name), ctx.keys.drainers(name)]
        args += [ctx.settings.channel(name).max_in_flight, uuid.uuid4().hex[:16]]
    started = ctx.redis.register_script(_PUSH)(keys=keys, args=args) if channels else []
    return [(name, token) for name, token in zip(channels, started, strict=True) if token]


def idle_lists(ctx: Context) -> list[tuple[str, str]]:
    """(channel, new drainer token) for each ready list that holds work with too few drainers (their
    drainers died): the sweep queues a drainer for each."""
    return push(ctx, "", [channel.name for channel in ctx.settings.channels])


def drain(ctx: Context, channel_name: str, token: str, dispatch: Dispatcher, budget: float = BUDGET) -> DrainResult:
    """Post the channel's ready deliveries, one at a time, for up to `budget` seconds.

    Redis going away does not end the drainer at once: it keeps its place (its token) and tries
    again every `OUTAGE_POLL` seconds for up to `LEASE`, then goes on where it was; a drainer that
    simply died would leave its channel without one until its lease ran out."""
    try:
        channel = ctx.channel(channel_name)
    except KeyError:  # no longer configured: its deliveries are cancelled by the sweep's deliver tasks
        return DrainResult(0, more=False)
    run = _Run(ctx, channel, token, dispatch)
    deadline = time.monotonic() + budget
    outage_since: float | None = None
    while True:
        try:
            if not run.step(ahead=time.monotonic() < deadline):
                return DrainResult(run.delivered, more=False)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            now = time.monotonic()
            outage_since = now if outage_since is None else outage_since
            if now - outage_since > LEASE:
                raise
            log.warning("drainer for %s: Redis unreachable (%s), trying again", channel_name, exc)
            time.sleep(OUTAGE_POLL)
            continue
        outage_since = None
        if time.monotonic() >= deadline and not run.holding:
            return DrainResult(run.delivered, more=True)


class _Run:
    """One drainer task's work: `step` posts the next ready delivery (or waits a moment for one)."""

    def __init__(self, ctx: Context, channel: Channel, token: str, dispatch: Dispatcher) -> None:
        self.ctx = ctx
        self.channel = channel
        self.token = token
        self.dispatch = dispatch
        self.delivered = 0
        self.linger = False  # after a delivery, an empty list is waited on once, for LINGER seconds
        self.claimed_ahead: tuple[str, Claimed] | None = None  # claimed with the last post's record

    def step(self, ahead: bool = True) -> bool:
        """False when the list is empty and this drainer was struck off. `ahead`: claim the next
        delivery with the record of this one's post (not when the drainer is about to stop)."""
        ctx, name, lease = self.ctx, self.channel.name, self.ctx.settings.worker.lease
        gate = ctx.admission.plain_gate(self.channel.settings)
        if self.claimed_ahead is not None:
            (article_id, claimed), self.claimed_ahead = self.claimed_ahead, None
        else:
            article_id, claimed = ctx.ledger.claim_next(name, self.token, lease, LEASE, stay=self.linger, gate=gate)
        if claimed.status == "missing":  # the list is empty
            if not self.linger:  # ... and this drainer was struck off in the same call
                return False
            self.linger = False
            popped = ctx.redis.blpop([ctx.keys.ready(name)], timeout=LINGER)
            if popped is None:
                return True  # once more, not staying: struck off if the list is still empty
            article_id = popped[1]
            claimed = ctx.ledger.claim_with_article(article_id, name, lease)
        if claimed.status in ("go", "crashed", "gone"):
            then = ctx.ledger.claim_next_call(name, self.token, lease, LEASE, stay=True, gate=gate) if ahead else None
            result = delivery.deliver_claimed(ctx, self.channel, article_id, claimed, then=then)
            if then is not None and then.result is not None:  # the post's record went with the next claim
                self.claimed_ahead = ctx.ledger.claimed_next(name, then)
            self.delivered += 1
            self.linger = True
            if result.state == "retry":
                self.dispatch.deliver(article_id, name, countdown=result.retry_in)
        return True

    @property
    def holding(self) -> bool:
        """A delivery claimed ahead is this drainer's to post before it stops."""
        return self.claimed_ahead is not None and self.claimed_ahead[1].status in ("go", "crashed", "gone")
