"""Corrections and retractions: an article's later life reaches the posts already made of it.

- An update (`on_update`, called by `pipeline.ingest`) renders each sent post again; when what the
  channel posts changed, an edit is scheduled `[worker] edit_debounce` later, and changes within
  that time only raise the version the pending edit applies: a burst becomes one platform edit.
- `edit` (a worker task) claims the edit with a lease and applies the newest render. Editing is
  safe to repeat (the same text twice leaves one version, "not modified" is success), so a crashed
  edit is simply done again; it never posts. Channels that cannot edit record why, and post anew
  only with `on_edit = "repost"` (under the crash rules of a first post).
- `retract` (CLI, API, or a source's confirmed removal) cancels what was not sent, marks each sent
  post for deletion or records why it cannot be deleted, takes the article out of the feeds, and
  reports per channel. `delete` (a worker task, or inline) claims and performs a deletion; deleting
  an already deleted post is a success, so a retried one is harmless.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from distributor import logs
from distributor.context import Context
from distributor.delivery import backoff, post_hash
from distributor.errors import N_, ChannelError, Refusal
from distributor.ledger import Delivery, OpClaim
from distributor.models import Article, Post, Receipt

if TYPE_CHECKING:
    from distributor.pipeline import Dispatcher

log = logging.getLogger(__name__)

# Outcomes of a retraction, per channel (also the JSON values of the report).
DELETED = "deleted"  # the platform removed the post
NOT_DELETED = "not_deleted"  # the post stays up: the channel's reason or the platform's message
DELETING = "deleting"  # the platform answered with a transient error: the worker keeps trying
NOT_POSTED = "not_posted"  # nothing was posted on this channel
CANCELLED = "cancelled"  # a delivery not yet sent was stopped


@dataclass
class OpResult:
    state: str  # done | more | retry | skipped | failed
    retry_in: float = 0.0
    detail: str = ""


@dataclass
class ChannelOutcome:
    channel: str
    outcome: str
    detail: str = ""
    post_url: str = ""


# --- corrections -----------------------------------------------------------------------------------


def on_update(ctx: Context, article: Article, dispatch: Dispatcher) -> list[str]:
    """The source changed `article`: schedule an edit of each post whose render changed (or record
    why it will not be edited). Returns the channels an edit was newly dispatched for."""
    dispatched: list[str] = []
    debounce = ctx.settings.worker.edit_debounce
    for config in ctx.settings.channels:
        if config.on_edit == "ignore":
            continue
        record = ctx.ledger.get(article.id, config.name)
        if record is None or record.state != "sent":
            continue
        try:
            channel = ctx.channel(config.name)
            render = post_hash(channel.render(article))
        except Exception as exc:  # an operator's template that does not render: the post stays as it is
            log.warning(
                "edit of %s on %s: cannot render the post: %s: %s", article.id, config.name, type(exc).__name__, exc
            )
            continue
        if render == (record.edit_hash or record.post_hash) and record.post_hash:
            continue  # nothing this channel shows changed (or this render is already scheduled)
        sent_at = record.sent_at or record.updated
        if time.time() - sent_at > config.edit_window:
            ctx.ledger.skip_edit(article.id, config.name, render, "edit skipped: the post is older than edit_window")
            continue
        if config.on_edit == "edit" and not channel.can_edit:
            ctx.ledger.skip_edit(article.id, config.name, render, f"edit skipped: {channel.cannot_edit}")
            continue
        if ctx.ledger.schedule_edit(article.id, config.name, render, time.time() + debounce) == 2:
            dispatch.edit(article.id, config.name, countdown=debounce)
            dispatched.append(config.name)
    return dispatched


def edit(ctx: Context, article_id: str, channel_name: str) -> OpResult:
    """Carry the newest render of the article to its post on one channel (the edit task)."""
    ledger = ctx.ledger
    try:
        channel = ctx.channel(channel_name)
    except KeyError:
        return OpResult("skipped", detail="channel not configured")
    claim = ledger.claim_op(article_id, channel_name, "edit", ctx.settings.worker.lease)
    if claim.status in ("early", "busy"):
        return OpResult("retry", retry_in=claim.wait, detail=claim.status)
    if claim.status in ("done", "missing"):
        return OpResult("skipped", detail=claim.status)
    next_due = time.time() + ctx.settings.worker.edit_debounce
    record = ledger.get(article_id, channel_name)
    article = ctx.store.get(article_id)
    if record is None or article is None:
        ledger.edited(article_id, channel_name, claim, next_due)  # unpublished meanwhile: nothing to edit
        return OpResult("skipped", detail="article gone")
    try:
        post = channel.render(article)
    except Exception as exc:
        message = f"cannot render the post: {type(exc).__name__}: {exc}"
        return _edit_ended(ledger.edited(article_id, channel_name, claim, next_due, event="edit failed", note=message))
    render = post_hash(post)
    if render == record.post_hash:  # changed and changed back within the burst, or done before a crash
        return _edit_ended(ledger.edited(article_id, channel_name, claim, next_due))
    posts = list(record.posts)
    key = record.key
    held = _held(ctx, article_id, channel_name, claim)
    if held is not None:
        return held
    try:
        if channel.settings.on_edit == "repost":
            member = f"{key}:v{claim.version}"
            gate = ctx.admission.enter(channel.settings, member)  # a new post: breaker, slot, spacing
            if gate.wait > 0:
                ledger.op_wait(article_id, channel_name, claim, time.time() + gate.wait, gate.reason)
                return OpResult("retry", retry_in=gate.wait, detail=gate.reason)
            try:
                receipt = _repost(channel, post, record, claim)
            except ChannelError as exc:
                ctx.admission.leave(channel_name, member, exc)
                raise
            except Exception:
                ctx.admission.leave(channel_name, member, ChannelError("unexpected error", maybe_sent=True))
                raise
            ctx.admission.leave(channel_name, member, None)
            if receipt is None:
                message = "a worker stopped mid-repost; the new post may exist: check the platform"
                return _edit_ended(
                    ledger.edited(article_id, channel_name, claim, next_due, event="edit failed", note=message)
                )
            posts.append(receipt)
            event = "reposted"
        elif channel.can_edit and posts:
            current = posts[-1]
            answer = channel.edit(post, current, key)
            posts[-1] = Receipt(
                post_id=answer.post_id or current.post_id,
                url=answer.url or current.url,
                data={**current.data, **answer.data},
            )
            event = "edited"
        else:
            reason = channel.cannot_edit if not channel.can_edit else "no post to edit is known"
            return _edit_ended(
                ledger.edited(article_id, channel_name, claim, next_due, event="edit skipped", note=reason)
            )
    except ChannelError as exc:
        return _op_failed(ctx, article_id, channel_name, claim, exc, next_due)
    except Exception as exc:  # a bug or an unforeseen answer: an edit may be done again safely
        log.exception("edit of %s on %s: unexpected error", article_id, channel_name)
        return _op_failed(
            ctx, article_id, channel_name, claim, ChannelError(f"unexpected error: {type(exc).__name__}"), next_due
        )
    outcome = ledger.edited(article_id, channel_name, claim, next_due, posts=posts, post_hash=render, event=event)
    log.info(
        "%s %s on %s", event, article_id, channel_name,
        extra=logs.event("edit", article_id=article_id, channel=channel_name, state=event),
    )  # fmt: skip
    return _edit_ended(outcome, detail=event)


HELD_WAIT = 600.0  # a paused channel's edits and deletions look again this often (and at its resume)


def _held(ctx: Context, article_id: str, channel: str, claim: OpClaim) -> OpResult | None:
    """A channel paused (expired credentials, an operator) holds its edits and deletions as it holds
    its posts: they wait, spending no attempt, and go when it is resumed."""
    health = ctx.admission.health(channel)
    if health.breaker != "paused":
        return None
    reason = f"waiting: the channel is paused: {health.reason}"
    ctx.ledger.op_wait(article_id, channel, claim, time.time() + HELD_WAIT, reason)
    return OpResult("retry", retry_in=HELD_WAIT, detail=reason)


def _repost(channel: object, post: Post, record: Delivery, claim: OpClaim) -> Receipt | None:
    """A new post for `on_edit = "repost"`, under the first post's crash rules: None when a crash
    leaves its fate unknown and nothing can tell."""
    from distributor.channels.base import Channel

    assert isinstance(channel, Channel)
    key = f"{record.key}:v{claim.version}"
    if claim.status == "crashed" and not channel.idempotent:
        if not channel.supports_readback:
            return None
        existing = channel.find_existing(post, key)
        if existing is not None:
            return existing
    return channel.send(post, key)


def _edit_ended(outcome: str, detail: str = "") -> OpResult:
    if outcome == "more":
        return OpResult("more", detail="a newer change arrived meanwhile")
    if outcome == "lost":
        return OpResult("skipped", detail="another worker took the edit over")
    return OpResult("done", detail=detail)


def _op_failed(
    ctx: Context, article_id: str, channel: str, claim: OpClaim, exc: ChannelError, next_due: float
) -> OpResult:
    """A refused edit or deletion: permanent ones are recorded with the platform's message, transient
    ones retried with backoff until `max_attempts`."""
    ledger = ctx.ledger
    message = exc.message if exc.code is None else f"{exc.message} (code {exc.code})"
    deleting = ledger.get(article_id, channel)
    is_delete = deleting is not None and deleting.state == "deleting"
    attempts = ledger.op_attempts(article_id, channel)
    if exc.auth:  # expired or revoked credentials: pause the channel and wait for the operator
        ctx.admission.pause(channel, message)
        held = _held(ctx, article_id, channel, claim)
        if held is not None:
            return held
    if not exc.permanent and attempts < ctx.settings.worker.max_attempts:
        delay = exc.retry_after if exc.retry_after is not None else backoff(attempts, ctx.settings.worker.retry_backoff)
        ledger.op_retry(article_id, channel, claim, time.time() + delay, message)
        log.info(
            "%s of %s on %s will retry in %.0fs: %s", "deletion" if is_delete else "edit", article_id, channel,
            delay, message,
            extra=logs.event("delete" if is_delete else "edit", article_id=article_id, channel=channel,
                             state="retry", retry_in=round(delay)),
        )  # fmt: skip
        return OpResult("retry", retry_in=delay, detail=message)
    if not exc.permanent:
        message = f"gave up after {attempts} attempts: {message}"
    log.warning(
        "%s of %s on %s failed: %s", "deletion" if is_delete else "edit", article_id, channel, message,
        extra=logs.event("delete" if is_delete else "edit", article_id=article_id, channel=channel, state="failed"),
    )  # fmt: skip
    if is_delete:
        ledger.deletion_done(article_id, channel, claim, deleted=False, note=message)
        return OpResult("failed", detail=message)
    ledger.edited(article_id, channel, claim, next_due, event="edit failed", note=message)
    return OpResult("failed", detail=message)


# --- retractions -----------------------------------------------------------------------------------


def delete(ctx: Context, article_id: str, channel_name: str) -> OpResult:
    """Delete every post of one delivery marked `deleting` (the delete task)."""
    ledger = ctx.ledger
    claim = ledger.claim_op(article_id, channel_name, "delete", ctx.settings.worker.lease)
    if claim.status == "busy":  # an edit (or another deletion) holds the post: after it
        return OpResult("retry", retry_in=claim.wait, detail="busy")
    if claim.status not in ("go", "crashed"):
        return OpResult("skipped", detail=claim.status)
    record = ledger.get(article_id, channel_name)
    try:
        channel = ctx.channel(channel_name)
    except KeyError:
        ledger.deletion_done(article_id, channel_name, claim, deleted=False, note="the channel is no longer configured")
        return OpResult("failed", detail="channel not configured")
    posts = list(record.posts) if record else []
    key = f"{article_id}:{channel_name}"
    held = _held(ctx, article_id, channel_name, claim)
    if held is not None:
        return held
    try:
        for receipt in posts:  # a repeated deletion of a deleted post is a success (channel contract)
            channel.delete(receipt, key)
    except ChannelError as exc:
        return _op_failed(ctx, article_id, channel_name, claim, exc, 0)
    except Exception as exc:
        log.exception("deletion of %s on %s: unexpected error", article_id, channel_name)
        return _op_failed(
            ctx, article_id, channel_name, claim, ChannelError(f"unexpected error: {type(exc).__name__}"), 0
        )
    ledger.deletion_done(article_id, channel_name, claim, deleted=True)
    log.info(
        "deleted the post of %s on %s", article_id, channel_name,
        extra=logs.event("delete", article_id=article_id, channel=channel_name, state="deleted"),
    )  # fmt: skip
    return OpResult("done", detail="deleted")


def article_reference(ctx: Context, reference: str, channel: str | None = None) -> str:
    """The article id named by an id or a URL; ValueError (naming what is wrong) when this
    installation knows nothing of it or of `channel`."""
    from distributor.text import quoted
    from distributor.urls import article_id, is_http_url

    if channel is not None and channel not in {c.name for c in ctx.settings.channels}:
        raise Refusal(N_("no channel named {channel} in the config"), channel=quoted(channel))
    if re.fullmatch(r"[0-9a-f]{16}", reference):
        found = reference
    elif is_http_url(reference):
        found = article_id(reference)
    else:
        raise Refusal(N_("not an article id (16 hex digits) or an http(s) URL"))
    names = [c.name for c in ctx.settings.channels]
    if ctx.store.get(found) is None and not ctx.ledger.for_article(found, names):
        raise Refusal(N_("no such article here (neither stored nor delivered)"))
    return found


def is_retracted(ctx: Context, article_id: str) -> bool:
    return bool(ctx.redis.sismember(ctx.keys.retracted(), article_id))


def retract(
    ctx: Context,
    article_id: str,
    dispatch: Dispatcher,
    *,
    channel: str | None = None,
    reason: str = "",
    keep_out: bool = True,
) -> list[ChannelOutcome]:
    """Retract an article: on every channel (or only `channel`) stop what was not sent and delete
    what was posted where the platform allows it; without `channel`, also take it out of every feed
    (and, with `keep_out`, keep it out should its source list it again). The report is read back
    after the deletions were dispatched: with an inline dispatcher it holds their outcome."""
    names = [channel] if channel else [c.name for c in ctx.settings.channels]
    why = f"retracted: {reason}" if reason else "retracted"
    to_delete: list[str] = []
    early: dict[str, ChannelOutcome] = {}
    for name in names:
        record = ctx.ledger.get(article_id, name)
        if record is None:
            early[name] = ChannelOutcome(name, NOT_POSTED)
        elif record.state == "sent":
            try:
                adapter = ctx.channel(name)
                deletable, refusal = adapter.can_delete, adapter.cannot_delete
            except KeyError:
                deletable, refusal = False, "the channel is no longer configured"
            if deletable and record.posts:
                ctx.ledger.retract_post(article_id, name, True, why)
                to_delete.append(name)
            else:
                ctx.ledger.retract_post(
                    article_id, name, False, refusal if deletable is False else "no post id is known"
                )
        elif record.state == "sending":
            early[name] = ChannelOutcome(
                name, NOT_DELETED, "the post was being sent at this moment: retract again once it shows as sent"
            )
        elif record.state == "unknown":
            ctx.ledger.cancel(article_id, name, why)
            early[name] = ChannelOutcome(
                name,
                NOT_DELETED,
                "a worker stopped mid-send, so a post may exist: check the platform and delete it there",
            )
        elif record.state in ("deleting", "deleted", "retracted", "cancelled", "failed", "rejected"):
            pass  # reported from the record below (a failed or rejected delivery posted nothing)
        elif ctx.ledger.cancel(article_id, name, why):  # pending, awaiting approval ...
            early[name] = ChannelOutcome(name, CANCELLED)
    if channel is None:
        from distributor import pipeline

        if keep_out:
            ctx.redis.sadd(ctx.keys.retracted(), article_id)
        feeds = pipeline.unpublish(ctx, article_id)
        if feeds:
            dispatch.rebuild(sorted(feeds))
    for name in to_delete:
        dispatch.delete(article_id, name)
    report = []
    for name in names:
        if name in early:
            report.append(early[name])
            continue
        record = ctx.ledger.get(article_id, name)
        report.append(_outcome(name, record))
    return report


def _outcome(name: str, record: Delivery | None) -> ChannelOutcome:
    if record is None:
        return ChannelOutcome(name, NOT_POSTED)
    url = record.post_url
    if record.state == "deleted":
        return ChannelOutcome(name, DELETED, post_url=url)
    if record.state == "retracted":
        return ChannelOutcome(name, NOT_DELETED, record.error, post_url=url)
    if record.state == "deleting":
        return ChannelOutcome(name, DELETING, record.error, post_url=url)
    if record.state == "cancelled":
        return ChannelOutcome(name, NOT_POSTED, record.error)
    if record.state == "failed":
        return ChannelOutcome(name, NOT_POSTED, f"the delivery had failed: {record.error}")
    if record.state == "rejected":  # an operator refused it: nothing was ever posted
        return ChannelOutcome(name, NOT_POSTED, f"rejected, never posted: {record.error}")
    return ChannelOutcome(name, NOT_DELETED, f"state {record.state}", post_url=url)


def report_json(article_id: str, report: Iterable[ChannelOutcome]) -> dict[str, object]:
    return {"article_id": article_id, "channels": [asdict(o) for o in report]}


def confirm_removals(
    ctx: Context, source: str, seen: set[str], removed_now: set[str], dispatch: Dispatcher
) -> list[str]:
    """`retract_on_remove`: an article missing from one complete listing is remembered; missing from
    the next one too, it is retracted. Back in a listing, it is forgotten. Returns the retracted ids."""
    key = ctx.keys.source_missing(source)
    missing = ctx.redis.hgetall(key)
    back = [i for i in missing if i in seen]
    confirmed = [i for i in missing if i not in seen]
    for article_id in confirmed:
        log.info("source %s: %s is gone on two polls: retracting its posts", source, article_id)
        retract(ctx, article_id, dispatch, reason=f"removed from source {source}", keep_out=False)
    if back or confirmed:
        ctx.redis.hdel(key, *back, *confirmed)
    if removed_now:
        ctx.redis.hset(key, mapping={i: time.time() for i in removed_now})
    return confirmed


def sweep(ctx: Context, dispatch: Dispatcher) -> int:
    """Re-dispatch edits and deletions whose task was lost; their claims make duplicates harmless."""
    overdue = ctx.ledger.ops_overdue(grace=ctx.settings.worker.sweep_interval)
    for article_id, channel in overdue:
        record = ctx.ledger.get(article_id, channel)
        if record is not None and record.state == "deleting":
            dispatch.delete(article_id, channel)
        elif record is not None and record.edit_pending:
            dispatch.edit(article_id, channel)
        else:
            ctx.redis.zrem(ctx.keys.post_ops_due(), f"{article_id}:{channel}")
    return len(overdue)
