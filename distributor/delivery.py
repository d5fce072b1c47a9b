"""Delivering one article to one channel at most once, with the ledger deciding every outcome:
retries for transient errors, a record of permanent ones, and the crash rules."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distributor import counters, recovery
from distributor.admission import Gate
from distributor.channels.base import Channel
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.ledger import Claimed
from distributor.logs import event
from distributor.models import Article, Post
from distributor.ratelimit import RateLimiter
from distributor.redis import ScriptCall

if TYPE_CHECKING:
    from distributor.pipeline import Dispatcher

log = logging.getLogger(__name__)
AUTH_WAIT = 60.0  # a post refused for the credentials looks again after this (then waits on the pause)


@dataclass
class DeliveryResult:
    state: str  # sent | failed | unknown | cancelled | retry | skipped
    retry_in: float = 0.0
    detail: str = ""


def post_hash(post: Post) -> str:
    """What a channel posts, as far as readers see it (text, link, image, title): an update whose
    render hashes the same leaves the post alone (see `distributor.corrections`)."""
    raw = json.dumps([post.text, post.url, post.image or "", post.title], ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:20]


def backoff(attempt: int, first: float = 10.0) -> float:
    """Exponential backoff with jitter: 10 s, 20 s, 40 s ... (from `first`) capped at one hour."""
    base: float = min(3600.0, first * 2 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


def deliver(ctx: Context, article_id: str, channel_name: str) -> DeliveryResult:
    """Post one article to one channel, at most once, recording the outcome in the ledger; the
    outcome is logged as one event (article id, channel, state)."""
    return _logged(article_id, channel_name, _deliver(ctx, article_id, channel_name))


def deliver_claimed(
    ctx: Context, channel: Channel, article_id: str, claimed: Claimed, then: ScriptCall | None = None
) -> DeliveryResult:
    """`deliver` for a delivery already claimed with its article (`Ledger.claim_next`: a drainer).
    `then`: a script call sent with the record of a post, in the same round trip (the drainer's
    next claim); its `result` stays None when the delivery ended otherwise."""
    if claimed.status == "gone":
        return _logged(article_id, channel.name, _article_gone(ctx, article_id, channel.name))
    return _logged(article_id, channel.name, _send_claimed(ctx, channel, article_id, claimed, then))


def _logged(article_id: str, channel_name: str, result: DeliveryResult) -> DeliveryResult:
    level = {"failed": logging.WARNING, "unknown": logging.WARNING, "skipped": logging.DEBUG}.get(
        result.state, logging.INFO
    )
    if log.isEnabledFor(level):  # the line and its fields are built only when it is written
        retry = f" (again in {result.retry_in:.0f}s)" if result.state == "retry" else ""
        log.log(
            level,
            "delivery %s to %s: %s%s%s", article_id, channel_name, result.state, retry,
            f": {result.detail}" if result.detail else "",
            extra=event("delivery", article_id=article_id, channel=channel_name, state=result.state,
                        retry_in=round(result.retry_in) if result.state == "retry" else None),
        )  # fmt: skip
    return result


def _deliver(ctx: Context, article_id: str, channel_name: str) -> DeliveryResult:
    ledger = ctx.ledger
    try:
        channel = ctx.channel(channel_name)
    except KeyError:
        ledger.cancel(article_id, channel_name, f"channel {channel_name!r} is no longer configured")
        return DeliveryResult("cancelled", detail="channel not configured")
    claimed = ledger.claim_with_article(article_id, channel_name, ctx.settings.worker.lease)
    if claimed.status == "gone":
        return _article_gone(ctx, article_id, channel_name)
    if claimed.status in ("busy", "done", "missing"):
        return DeliveryResult("skipped", detail=claimed.status)
    return _send_claimed(ctx, channel, article_id, claimed)


def _send_claimed(
    ctx: Context, channel: Channel, article_id: str, claimed: Claimed, then: ScriptCall | None = None
) -> DeliveryResult:
    """Render and send a claimed delivery (go, or crashed: a worker stopped mid-send before)."""
    ledger = ctx.ledger
    channel_name = channel.name
    key = f"{article_id}:{channel_name}"
    article = Article.model_validate_json(claimed.article)
    try:
        post = channel.render(article)
    except Exception as exc:  # an operator's template that does not render: nothing was sent
        message = f"cannot render the post: {type(exc).__name__}: {exc}"
        if claimed.gate:  # the claim took an in-flight slot it will not use
            ctx.admission.release(channel_name, key)
        ledger.failed(article_id, channel_name, message)
        return DeliveryResult("failed", detail=message)
    if claimed.status == "crashed" and not channel.idempotent:
        existing = channel.find_existing(post, key) if channel.supports_readback else None
        if existing is not None:
            ledger.sent(
                article_id,
                channel_name,
                existing.post_id,
                existing.url,
                note="confirmed by read-back",
                data=existing.data,
                post_hash=post_hash(post),
            )
            return DeliveryResult("sent", detail="read-back")
        if not channel.supports_readback:
            message = "a worker stopped mid-send; the post may exist: check the platform, then retry or cancel"
            ledger.unknown(article_id, channel_name, message)
            return DeliveryResult("unknown", detail=message)
    if channel.settings.rate_per_minute:
        wait = RateLimiter(ctx.redis).wait_time(ctx.keys.rate(channel_name), channel.settings.rate_per_minute)
        if wait > 0:  # waiting for our own pace is not a failed attempt
            ledger.retry_later(article_id, channel_name, wait, "waiting for the channel's rate limit", refund=True)
            return DeliveryResult("retry", retry_in=wait, detail="rate limit")
    passed = claimed.gate and ctx.admission.passed(channel_name, key, claimed.gate)  # checked with the claim
    gate = Gate() if passed else ctx.admission.enter(channel.settings, key)  # breaker, in-flight slot, spacing
    if gate.wait > 0:  # the channel's own state, not this delivery's failure: no attempt spent
        ledger.retry_later(article_id, channel_name, gate.wait, gate.reason, refund=True)
        return DeliveryResult("retry", retry_in=gate.wait, detail=gate.reason)
    safe_to_repeat = channel.idempotent or channel.supports_readback
    try:
        receipt = channel.send(post, key)
    except ChannelError as exc:
        ctx.admission.leave(channel_name, key, exc)
        return _failed(ctx, article_id, channel_name, safe_to_repeat, exc)
    except Exception as exc:  # a bug or an unforeseen answer: the post may or may not exist
        log.exception("delivery %s to %s: unexpected error", article_id, channel_name)
        error = ChannelError(f"unexpected error: {type(exc).__name__}", maybe_sent=True)
        ctx.admission.leave(channel_name, key, error)
        return _failed(ctx, article_id, channel_name, safe_to_repeat, error)
    # Publish-to-posted seconds for /metrics (only for a post this attempt made: a read-back or a
    # duplicate confirms an older post whose time is not known), counted with the outcome.
    now = time.time()
    latency = counters.latency(article.published.timestamp(), claimed.created or now, now)
    leave = ctx.admission.leave_call(channel_name, key, None)  # the slot freed in the same round trip
    ledger.sent(
        article_id,
        channel_name,
        receipt.post_id,
        receipt.url,
        data=receipt.data,
        post_hash=post_hash(post),
        latency=latency,
        before=leave,
        after=then,
    )
    ctx.admission.settled(channel_name, leave)
    return DeliveryResult("sent", detail=receipt.post_id or "")


def _article_gone(ctx: Context, article_id: str, channel_name: str) -> DeliveryResult:
    """The article is not in Redis (nothing was claimed). After Redis lost its state, a restored
    delivery waits for the source's next poll to bring its article back: untouched, the record stays
    due, and the sweep asks again. Otherwise the article was removed: the delivery fails."""
    if recovery.status(ctx) is not None:
        return DeliveryResult("skipped", detail="waiting for the article to be read again")
    claim = ctx.ledger.claim(article_id, channel_name, ctx.settings.worker.lease)
    if claim in ("busy", "done", "missing"):
        return DeliveryResult("skipped", detail=claim)
    ctx.ledger.failed(article_id, channel_name, "article no longer exists (unpublished)")
    return DeliveryResult("failed", detail="article gone")


def _failed(ctx: Context, article_id: str, channel: str, safe_to_repeat: bool, exc: ChannelError) -> DeliveryResult:
    ledger = ctx.ledger
    message = exc.message if exc.code is None else f"{exc.message} (code {exc.code})"
    if exc.duplicate:
        ledger.sent(article_id, channel, None, None, note=f"platform reports a duplicate: {message}")
        return DeliveryResult("sent", detail="duplicate")
    if exc.auth:  # the channel is paused (see distributor.admission): this post waits with the others
        ledger.retry_later(article_id, channel, AUTH_WAIT, message, exc.code, refund=True)
        return DeliveryResult("retry", retry_in=AUTH_WAIT, detail=message)
    if exc.permanent:
        ledger.failed(article_id, channel, message, exc.code)
        return DeliveryResult("failed", detail=message)
    if exc.maybe_sent and not safe_to_repeat:
        ledger.unknown(article_id, channel, f"{message}; the post may exist: check, then retry or cancel")
        return DeliveryResult("unknown", detail=message)
    record = ledger.get(article_id, channel)
    attempts = record.attempts if record else 1
    if attempts >= ctx.settings.worker.max_attempts:
        ledger.failed(article_id, channel, f"gave up after {attempts} attempts: {message}", exc.code)
        return DeliveryResult("failed", detail=message)
    delay = exc.retry_after if exc.retry_after is not None else backoff(attempts, ctx.settings.worker.retry_backoff)
    ledger.retry_later(article_id, channel, delay, message, exc.code)
    return DeliveryResult("retry", retry_in=delay, detail=message)


def sweep(ctx: Context, dispatch: Dispatcher) -> int:
    """Re-dispatch deliveries whose task was lost; the ledger's claim makes duplicates harmless."""
    recovery.ensure(ctx)  # restores the unfinished deliveries of a Redis that lost its state
    overdue = ctx.ledger.overdue(grace=ctx.settings.worker.sweep_interval)
    for article_id, channel in overdue:
        dispatch.deliver(article_id, channel)
    return len(overdue)
