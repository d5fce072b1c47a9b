"""The delivery ledger: one record per (article, channel), the exactly-once rules.

States: pending -> sending -> sent | failed | unknown | cancelled. A delivery is claimed atomically
(pending -> sending, with a lease), so duplicate tasks never post twice. A claim that finds an
expired lease means a worker died mid-send: the post's fate is unknown, and the caller decides by
the platform's idempotency key or a read-back, or flags it for the operator.

Every non-final record also sits in a 'due' sorted set (score: when to look at it next), so a
periodic sweep re-dispatches anything whose task was lost (crash, broker restart).

Every change is also written to the journal outside Redis (`distributor.journal`), which `create`
consults: a delivery Redis forgot is restored, never made again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import redis

from distributor.keys import Keys

if TYPE_CHECKING:
    from distributor.journal import Journal, JournaledDelivery

FINAL = ("sent", "failed", "unknown", "cancelled")
Claim = Literal["go", "crashed", "busy", "done", "missing", "gone"]

_CLAIM = """
local found = redis.call('HMGET', KEYS[1], 'state', 'lease_until', 'attempts')
local state = found[1]
if not state then return {'missing'} end
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local result
if state == 'pending' then
  result = 'go'
elseif state == 'sending' then
  if tonumber(found[2] or '0') > now then return {'busy'} end
  result = 'crashed'
else
  return {'done'}
end
local article = false
if KEYS[3] then  -- the article is read in the same round trip; gone: claim nothing, say so
  article = redis.call('GET', KEYS[3])
  if not article then return {'gone'} end
end
local attempts = tonumber(found[3] or '0') + 1
redis.call('HSET', KEYS[1], 'state', 'sending', 'lease_until', now + lease, 'updated', now, 'attempts', attempts)
redis.call('ZADD', KEYS[2], now + lease, ARGV[3])
return {result, attempts, article}
"""

# Finish only a delivery we still hold (state 'sending'): a late worker must not overwrite.
# ARGV = state, updated, due ('' when final), refund ('1': give back the attempt the claim counted),
# then field/value pairs; one HSET for them all.
_FINISH = """
local found = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if found[1] ~= 'sending' then return 0 end
local fields = {'state', ARGV[1], 'updated', ARGV[2]}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
if ARGV[4] == '1' then
  fields[#fields + 1] = 'attempts'
  fields[#fields + 1] = math.max(0, tonumber(found[2] or '1') - 1)
end
redis.call('HSET', KEYS[1], unpack(fields))
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), KEYS[3])
else
  redis.call('ZREM', KEYS[2], KEYS[3])
end
redis.call('ZADD', KEYS[4], tonumber(ARGV[2]), KEYS[3])
return 1
"""

# A new pending delivery unless one exists: ARGV = member, now, due, then field/value pairs.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {'state', 'pending'}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]), ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
return 1
"""

# A record from the journal, only where Redis has none: ARGV = member, due ('' when final), updated,
# then field/value pairs.
_RESTORE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[2] ~= '' then redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[1]) end
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Claimed:
    claim: Claim
    attempts: int = 0  # counting this one (when claimed)
    article: str | None = None  # the raw article read with the claim


@dataclass(frozen=True)
class Delivery:
    article_id: str
    channel: str
    state: str
    attempts: int
    post_id: str
    post_url: str
    error: str
    code: str
    created: float
    updated: float

    @property
    def key(self) -> str:
        """The idempotency key sent to platforms that accept one."""
        return f"{self.article_id}:{self.channel}"


class Ledger:
    def __init__(self, client: redis.Redis, keys: Keys, journal: Journal | None = None) -> None:
        self.redis = client
        self.keys = keys
        self.journal = journal  # what outlives Redis (see distributor.journal)
        self._claim = client.register_script(_CLAIM)
        self._finish = client.register_script(_FINISH)
        self._restore = client.register_script(_RESTORE)
        self._create = client.register_script(_CREATE)

    def _journal(self, article_id: str, channel: str, state: str, **fields: str) -> None:
        if self.journal is not None:
            self.journal.delivery(article_id, channel, state, **fields)

    def _due_key(self) -> str:
        return self.keys.deliveries_by_time() + ":due"

    def create(self, article_id: str, channel: str, due: float | None = None) -> bool:
        """Record a pending delivery; False when one already exists, in Redis or only in the journal
        (then it is restored): never post twice."""
        if self.journal is not None:
            known = self.journal.find_delivery(article_id, channel)
            if known is not None:
                self.restore([known])
                return False
        now = time.time()
        member = f"{article_id}:{channel}"
        fields: dict[str, str | float] = {"attempts": 0, "created": now, "updated": now, "due": due or now}
        args: list[str | float] = [member, now, due or now]
        for name, value in {**fields, "article_id": article_id, "channel": channel}.items():
            args += [name, value]
        keys = [self.keys.delivery(article_id, channel), self._due_key(), self.keys.deliveries_by_time()]
        if not self._create(keys=keys, args=args):  # one round trip, atomic: never two records
            return False
        self._journal(article_id, channel, "pending")
        return True

    def restore(self, records: list[JournaledDelivery]) -> int:
        """Put journaled deliveries back where Redis has no record; how many were missing.

        Unfinished ones come back due now: a pending one is sent by the sweep, one that was being
        sent comes back with an expired lease, so the crash rules decide (idempotency key, read-back,
        or `unknown`), never a blind second post."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for d in records:
            unfinished = d.state in ("pending", "sending")
            fields: dict[str, str | float] = {
                "state": d.state,
                "article_id": d.article_id,
                "channel": d.channel,
                "attempts": 1 if d.state == "sending" else 0,
                "created": d.created,
                "updated": d.updated,
                "due": now if unfinished else d.updated,
                "post_id": d.post_id,
                "post_url": d.post_url,
                "error": d.error,
                "code": "",
            }
            if d.state == "sending":
                fields["lease_until"] = 0
            args: list[str | float] = [f"{d.article_id}:{d.channel}", now if unfinished else "", d.updated]
            for name, value in fields.items():
                args += [name, value]
            self._restore(
                keys=[self.keys.delivery(d.article_id, d.channel), self._due_key(), self.keys.deliveries_by_time()],
                args=args,
                client=pipe,
            )
        return sum(int(done) for done in pipe.execute()) if records else 0

    def claim(self, article_id: str, channel: str, lease: float) -> Claim:
        return self.claim_with(article_id, channel, lease).claim

    def claim_with(self, article_id: str, channel: str, lease: float, article_key: str | None = None) -> Claimed:
        """Claim, and read `article_key` (the article) in the same round trip. When that key holds
        nothing, nothing is claimed and the claim says 'gone' (the caller decides what that means)."""
        member = f"{article_id}:{channel}"
        keys = [self.keys.delivery(article_id, channel), self._due_key()]
        found = self._claim(keys=keys + ([article_key] if article_key else []), args=[time.time(), lease, member])
        claimed = Claimed(found[0], int(found[1]) if len(found) > 1 else 0, found[2] if len(found) > 2 else None)
        if claimed.claim in ("go", "crashed"):  # journaled before the post is attempted
            self._journal(article_id, channel, "sending")
        return claimed

    def _set(self, article_id: str, channel: str, state: str, refund: bool = False, **fields: str | float) -> bool:
        member = f"{article_id}:{channel}"
        updated = fields.pop("updated", time.time())
        due = fields.get("due", updated) if state == "pending" else ""
        args: list[str | float] = [state, updated, due, "1" if refund else ""]
        for name, value in fields.items():
            args += [name, value]
        done = self._finish(
            keys=[self.keys.delivery(article_id, channel), self._due_key(), member, self.keys.deliveries_by_time()],
            args=args,
        )
        if done:
            self._journal(
                article_id,
                channel,
                state,
                **{k: str(fields[k]) for k in ("post_id", "post_url", "error") if k in fields},
            )
        return bool(done)

    def sent(self, article_id: str, channel: str, post_id: str | None, post_url: str | None, note: str = "") -> bool:
        return self._set(
            article_id, channel, "sent", post_id=post_id or "", post_url=post_url or "", error=note, code=""
        )

    def failed(self, article_id: str, channel: str, error: str, code: str | None = None) -> bool:
        return self._set(article_id, channel, "failed", error=error, code=code or "")

    def unknown(self, article_id: str, channel: str, error: str) -> bool:
        return self._set(article_id, channel, "unknown", error=error)

    def retry_later(
        self, article_id: str, channel: str, delay: float, error: str, code: str | None = None, refund: bool = False
    ) -> bool:
        """Back to pending, due after `delay`; `refund` gives back the attempt the claim counted."""
        fields: dict[str, str | float] = {"due": time.time() + delay, "error": error, "code": code or ""}
        return self._set(article_id, channel, "pending", refund=refund, **fields)

    def cancel(self, article_id: str, channel: str, reason: str) -> bool:
        """Cancel a pending/unknown/failed delivery (operator action or article unpublished)."""
        key = self.keys.delivery(article_id, channel)
        state = self.redis.hget(key, "state")
        if state in (None, "sent", "sending"):
            return False
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "cancelled", "error": reason, "updated": time.time()})
        pipe.zrem(self._due_key(), f"{article_id}:{channel}")
        pipe.execute()
        self._journal(article_id, channel, "cancelled", error=reason)
        return True

    def requeue(self, article_id: str, channel: str) -> bool:
        """Operator retry of a failed/unknown/cancelled delivery: back to pending, due now."""
        key = self.keys.delivery(article_id, channel)
        if self.redis.hget(key, "state") not in ("failed", "unknown", "cancelled"):
            return False
        now = time.time()
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "pending", "due": now, "updated": now, "attempts": 0})
        pipe.zadd(self._due_key(), {f"{article_id}:{channel}": now})
        pipe.execute()
        self._journal(article_id, channel, "pending")
        return True

    def get(self, article_id: str, channel: str) -> Delivery | None:
        raw = self.redis.hgetall(self.keys.delivery(article_id, channel))
        return _delivery(raw) if raw else None

    def for_article(self, article_id: str, channels: list[str]) -> list[Delivery]:
        pipe = self.redis.pipeline()
        for channel in channels:
            pipe.hgetall(self.keys.delivery(article_id, channel))
        return [_delivery(raw) for raw in pipe.execute() if raw]

    def recent(self, limit: int = 100, state: str | None = None) -> list[Delivery]:
        members = self.redis.zrevrange(self.keys.deliveries_by_time(), 0, (limit * 5 if state else limit) - 1)
        pipe = self.redis.pipeline()
        for member in members:
            article_id, _, channel = member.partition(":")
            pipe.hgetall(self.keys.delivery(article_id, channel))
        found = [_delivery(raw) for raw in pipe.execute() if raw]
        if state:
            found = [d for d in found if d.state == state]
        return found[:limit]

    def overdue(self, grace: float = 30.0, limit: int = 500) -> list[tuple[str, str]]:
        """Non-final deliveries whose time has passed by `grace` seconds: their task was lost."""
        members = self.redis.zrangebyscore(self._due_key(), "-inf", time.time() - grace, start=0, num=limit)
        return [(m.partition(":")[0], m.partition(":")[2]) for m in members]

    def counts(self) -> dict[str, int]:
        members = self.redis.zrevrange(self.keys.deliveries_by_time(), 0, 999)
        pipe = self.redis.pipeline()
        for member in members:
            article_id, _, channel = member.partition(":")
            pipe.hget(self.keys.delivery(article_id, channel), "state")
        counts: dict[str, int] = {}
        for state in pipe.execute():
            if state:
                counts[state] = counts.get(state, 0) + 1
        return counts


def _delivery(raw: dict[str, str]) -> Delivery:
    return Delivery(
        article_id=raw.get("article_id", ""),
        channel=raw.get("channel", ""),
        state=raw.get("state", ""),
        attempts=int(raw.get("attempts") or 0),
        post_id=raw.get("post_id", ""),
        post_url=raw.get("post_url", ""),
        error=raw.get("error", ""),
        code=raw.get("code", ""),
        created=float(raw.get("created") or 0),
        updated=float(raw.get("updated") or 0),
    )
