"""Noticing that Redis came back without the service's state, saying so, and restoring it.

The installation's identity lives both in Redis (`keys.instance()`) and in the journal outside
Redis (`distributor.journal`). Before polls and sweeps, `ensure` compares them (one Redis read at
most every `CHECK_EVERY` seconds per process):

- both missing: a fresh installation; the identity is created in both. No alarm.
- only Redis has it (a new or lost journal, an upgrade): the journal is rebuilt from Redis. No alarm.
- only the journal has it (Redis emptied: no AOF, a new server, a changed key prefix), or Redis holds
  another installation's: the state is lost. Under a Redis lock, one process restores the sources'
  first polls and every journaled delivery, sets the `state-lost` flag (shown by `/healthz`, the
  console and `distributor recovery status` until `distributor recovery ack`) and logs one error.
- the same installation with another epoch: a process with another journal (another machine)
  already restored; this one adds what its own journal knows.

The pipeline does not wait for this check to be safe: each decision Redis can no longer answer (a
source's first poll, an article's first sighting, a delivery's record) asks the journal itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis

from distributor import rebuild
from distributor.context import Context
from distributor.journal import Identity, JournaledDelivery
from distributor.ledger import delivery_from_hash

log = logging.getLogger(__name__)

CHECK_EVERY = 5.0  # seconds between two identity checks in one process
COUNTS = ("sources", "deliveries", "articles")

_checked: dict[tuple[str, str, str], float] = {}
_checked_lock = threading.Lock()


def ensure(ctx: Context) -> bool:
    """Check that Redis still holds this installation's state; restore it when not. True when this
    call restored something (then every feed is worth rendering again)."""
    key = (ctx.redis_url, ctx.keys.prefix, str(ctx.data_dir))
    now = time.monotonic()
    with _checked_lock:
        if now - _checked.get(key, float("-inf")) < CHECK_EVERY:
            return False
    stored = _identity(ctx.redis.hgetall(ctx.keys.instance()))
    local = ctx.journal.identity()
    restored = False
    if ctx.journal.broken:
        pass  # reported by the journal; nothing to compare with
    elif stored is None or stored != local:
        outcome = _reconcile(ctx)
        if outcome is None:
            return False  # another process holds the lock: look again next time
        restored = outcome
    with _checked_lock:
        _checked[key] = now
    return restored


def status(ctx: Context) -> dict[str, Any] | None:
    """The unacknowledged loss of state, if any (safe to show publicly: times and counts)."""
    return parse(ctx.redis.hgetall(ctx.keys.state_lost()))


def parse(raw: dict[str, str]) -> dict[str, Any] | None:
    """The `state-lost` flag as read from Redis (shared with the async web process)."""
    if not raw:
        return None
    found: dict[str, Any] = {"detected_at": raw.get("detected_at", ""), "reason": raw.get("reason", "")}
    for name in COUNTS:
        found[name] = int(raw.get(name) or 0)
    found["newest_known"] = raw.get("newest_known", "")
    return found


def acknowledge(ctx: Context) -> bool:
    """The operator has seen the loss: clear the flag. False when there was none."""
    return bool(ctx.redis.delete(ctx.keys.state_lost()))


def _identity(raw: dict[str, str]) -> Identity | None:
    return Identity(raw["instance"], raw.get("epoch", "")) if raw.get("instance") else None


def _new_epoch() -> str:
    return uuid.uuid4().hex


def _reconcile(ctx: Context) -> bool | None:
    lock = ctx.redis.lock(ctx.keys.lock("recovery"), timeout=600, blocking_timeout=30)
    if not lock.acquire():
        return None
    try:
        stored = _identity(ctx.redis.hgetall(ctx.keys.instance()))
        local = ctx.journal.identity()
        if stored is not None and stored == local:
            return False  # another process just did it
        if local is None:
            _adopt(ctx, stored)
            return False
        if stored is not None and stored.instance == local.instance:
            _merge(ctx, stored)
        else:
            _lost(ctx, stored, local)
        return True
    finally:
        with contextlib.suppress(redis.exceptions.LockError):  # expired during a very long restore
            lock.release()


def _adopt(ctx: Context, stored: Identity | None) -> None:
    """The journal is new: it follows Redis, and learns what Redis knows."""
    identity = stored or Identity(uuid.uuid4().hex, _new_epoch())
    counts = _seed_journal(ctx)
    ctx.journal.set_identity(identity)
    if stored is None:
        ctx.redis.hset(ctx.keys.instance(), mapping={"instance": identity.instance, "epoch": identity.epoch})
    if any(counts.values()):
        log.info(
            "journal rebuilt from Redis: %d sources, %d articles, %d deliveries",
            counts["sources"],
            counts["articles"],
            counts["deliveries"],
        )


def _lost(ctx: Context, stored: Identity | None, local: Identity) -> None:
    """Redis shows none of this journal's state: restore it, raise the flag, say so once."""
    reason = "Redis holds another installation's state" if stored else "Redis came back empty"
    flag = ctx.keys.state_lost()
    newest = ctx.journal.newest_published()
    ctx.redis.hset(
        flag,
        mapping={
            "detected_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reason": reason,
            "newest_known": datetime.fromtimestamp(newest, UTC).isoformat(timespec="seconds") if newest else "",
        },
    )  # first, so a crash mid-restore still leaves the alarm
    counts = _restore(ctx)
    ctx.redis.hset(flag, mapping=counts)
    identity = Identity(stored.instance if stored else local.instance, _new_epoch())
    ctx.redis.hset(ctx.keys.instance(), mapping={"instance": identity.instance, "epoch": identity.epoch})
    ctx.journal.set_identity(identity)
    log.error(
        "Redis lost its state (%s): restored from the journal outside Redis, which knows %d sources, %d articles "
        "and %d deliveries; new articles will be posted, old ones will not. See `distributor recovery status`, "
        "then `distributor recovery ack`",
        reason,
        counts["sources"],
        counts["articles"],
        counts["deliveries"],
    )


def _merge(ctx: Context, stored: Identity) -> None:
    """Another journal (another machine's) already restored Redis after a loss: add this one's."""
    counts = _restore(ctx)
    ctx.journal.set_identity(stored)
    log.warning(
        "Redis state was restored by another process after a loss; this journal added what it knows: %d sources, "
        "%d articles, %d deliveries",
        counts["sources"],
        counts["articles"],
        counts["deliveries"],
    )


def _restore(ctx: Context) -> dict[str, int]:
    """Put back what the journal knows (only what Redis lacks); what the journal knows, counted.

    Articles are not copied: each one is asked about when its source lists it again."""
    sources = ctx.journal.sources()
    if sources:
        ctx.redis.sadd(ctx.keys.source_seen(), *sources)
    for batch in ctx.journal.deliveries():
        ctx.ledger.restore(batch)
    rebuild.register_configured_feeds(ctx)  # served again even before their first article
    return ctx.journal.counts()


def _seed_journal(ctx: Context, batch: int = 1000) -> dict[str, int]:
    """Copy what Redis knows into a new journal: first polls, articles (as not to be announced
    again: Redis decided about them already), and deliveries."""
    seen = list(ctx.redis.smembers(ctx.keys.source_seen()))
    ctx.journal.source_polled(seen)
    articles = 0
    ids: list[str] = []
    for article_id, _ in ctx.redis.hscan_iter(ctx.keys.article_hash(), count=batch):
        ids.append(article_id)
        if len(ids) >= batch:
            ctx.journal.articles_known(ids)
            articles, ids = articles + len(ids), []
    ctx.journal.articles_known(ids)
    articles += len(ids)
    deliveries = 0
    members: list[str] = []
    for member, _ in ctx.redis.zscan_iter(ctx.keys.deliveries_by_time(), count=batch):
        members.append(member)
        if len(members) >= batch:
            deliveries += _seed_deliveries(ctx, members)
            members = []
    deliveries += _seed_deliveries(ctx, members)
    return {"sources": len(seen), "articles": articles, "deliveries": deliveries}


def _seed_deliveries(ctx: Context, members: list[str]) -> int:
    pipe = ctx.redis.pipeline(transaction=False)
    for member in members:
        article_id, _, channel = member.partition(":")
        pipe.hgetall(ctx.keys.delivery(article_id, channel))
    found = [delivery_from_hash(raw) for raw in (pipe.execute() if members else []) if raw]
    records = [
        JournaledDelivery(d.article_id, d.channel, d.state, d.post_id, d.post_url, d.error, d.created, d.updated)
        for d in found
        if d.article_id and d.channel
    ]
    ctx.journal.deliveries_known(records)
    return len(records)
