"""The delivery ledger: one record per (article, channel), the exactly-once rules.

States: pending -> sending -> sent | failed | unknown | cancelled. On a channel with `approval = true`
a delivery starts as awaiting_approval (neither due nor swept) until an operator approves it (->
pending) or rejects it (-> rejected: final, never posted). A delivery is claimed atomically
(pending -> sending, with a lease), so duplicate tasks never post twice. A claim that finds an
expired lease means a worker died mid-send: the post's fate is unknown, and the caller decides by
the platform's idempotency key or a read-back, or flags it for the operator.

Every non-final record also sits in a 'due' sorted set (score: when to look at it next), so a
periodic sweep re-dispatches anything whose task was lost (crash, broker restart).

After `sent`, the post itself may change (`distributor.corrections`): an edit keeps the state `sent`
(its progress lives in `edit_*` fields); a retraction moves it to `deleting` (a deletion is under
way) and then `deleted` (the platform removed the post) or `retracted` (the article was retracted
but its post could not be deleted: the reason is in `error`). Edits and deletions are claimed with
a lease of their own (`op_lease`, `op_token`) and sit in their own due set, so a crashed one is
done again (both are safe to repeat), never turned into a second post. Each delivery keeps the
history of its post (posted, edited, reposted, deleted ...) in a list beside the record.

Every change is also written to the journal outside Redis (`distributor.journal`), which `create`
consults: a delivery Redis forgot is restored, never made again.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import redis

from distributor import counters
from distributor.admission import ENTER_FUNCTION
from distributor.keys import Keys
from distributor.models import Receipt
from distributor.redis import ScriptCall, run_scripts

if TYPE_CHECKING:
    from distributor.journal import Journal, JournaledDelivery

FINAL = ("sent", "failed", "unknown", "cancelled", "rejected", "deleted", "retracted")
AWAITING = "awaiting_approval"
# Every state a delivery can be in, in the order of its life.
STATES = ("pending", AWAITING, "sending", "sent", "failed", "unknown", "cancelled", "rejected", "deleting", "deleted",
          "retracted")  # fmt: skip
# A post was made: never cancelled, never sent again (see `distributor.corrections`).
POSTED = ("sent", "deleting", "deleted", "retracted")
Claim = Literal["go", "crashed", "busy", "done", "missing"]
HISTORY_LIMIT = 100  # entries kept per delivery
CLAIM_NEXT_POPS = 100  # ready-list entries one `claim_next` call looks at, at most

_CLAIM_FUNCTION = """
local function claim(record, due, article_key, now, lease, member)
  local state = redis.call('HGET', record, 'state')
  if not state then return {'missing'} end
  local article = false
  if article_key then
    article = redis.call('GET', article_key)
    if not article then return {'gone'} end
  end
  local verdict = 'done'
  if state == 'pending' then
    redis.call('HSET', record, 'state', 'sending', 'lease_until', now + lease, 'updated', now)
    verdict = 'go'
  elseif state == 'sending' then
    if tonumber(redis.call('HGET', record, 'lease_until') or '0') > now then return {'busy'} end
    redis.call('HSET', record, 'lease_until', now + lease, 'updated', now)
    verdict = 'crashed'
  else
    return {'done'}
  end
  redis.call('HINCRBY', record, 'attempts', 1)
  redis.call('ZADD', due, now + lease, member)
  return {verdict, article, redis.call('HGET', record, 'created') or ''}
end
"""
_CLAIM = _CLAIM_FUNCTION + "return claim(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"
# With KEYS[3] (the article), the article's JSON comes back with the claim, and nothing is claimed
# while it is missing ('gone'): one round trip where a GET and a claim took two.

# A drainer's next delivery (see `distributor.drain`): pop the channel's ready list until a delivery
# can be claimed, and claim it with its article, as `_CLAIM` does. The drainer's lease is renewed on
# every call; when the list is empty the drainer is struck off in the same script, so that a delivery
# pushed a moment later starts another one (no delivery is left in a list nobody drains).
# KEYS: ready list, drainers, due. ARGV: now, claim lease, drainer token, drainer lease, delivery
# key prefix, article key prefix, channel, most pops in one call, '1' to stay on the drainers when
# the list is empty (the drainer waits for more); with the gate's KEYS (breaker, in-flight, spacing,
# reservations) and ARGV (max in flight, slot lease), a claim that may go also checks the admission
# gate (`distributor.admission`), and says its verdict.
# Returns {'empty'}, {'more'} (nothing claimable in this many pops), {'gone', id}, or
# {'go'|'crashed', id, article JSON, created, gate verdict ('' when not checked)}.
_CLAIM_NEXT = (
    _CLAIM_FUNCTION
    + ENTER_FUNCTION
    + """
local now = tonumber(ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[3])
for _ = 1, tonumber(ARGV[8]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then
    if ARGV[9] ~= '1' then redis.call('ZREM', KEYS[2], ARGV[3]) end
    return {'empty'}
  end
  local member = id .. ':' .. ARGV[7]
  local result = claim(ARGV[5] .. member, KEYS[3], ARGV[6] .. id, now, tonumber(ARGV[2]), member)
  if result[1] == 'gone' then return {'gone', id} end
  if result[1] == 'go' or result[1] == 'crashed' then
    local gate = ''
    if result[1] == 'go' and KEYS[4] then
      local verdict = enter({KEYS[4], KEYS[5], KEYS[6], KEYS[7]}, {ARGV[1], member, ARGV[10], ARGV[11], '0', '0'})
      gate = verdict[1] .. '|' .. (verdict[3] or '')
    end
    return {result[1], id, result[2], result[3], gate}
  end
end
return {'more'}
"""
)

# Finish only a delivery we still hold (state 'sending'): a late worker must not overwrite.
# KEYS: record, due, member (a name, not a key), by time, delivery counters, history, latency counters.
# ARGV: new state, the outcome's counter field ('' for none), a history entry ('' for none),
# refund ('1': give back the attempt the claim counted), latency bucket field ('' for none), its
# count field, its sum field, seconds, then field/value pairs. One script, so that the record, its
# history and the /metrics figures never disagree, in one round trip.
_FINISH = """
if redis.call('HGET', KEYS[1], 'state') ~= 'sending' then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
if ARGV[4] == '1' then
  local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '1')
  redis.call('HSET', KEYS[1], 'attempts', math.max(0, attempts - 1))
end
if ARGV[2] ~= '' then redis.call('HINCRBY', KEYS[5], ARGV[2], 1) end
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[6], ARGV[3])
  redis.call('LTRIM', KEYS[6], -HISTORY_LIMIT, -1)
end
if ARGV[5] ~= '' then
  redis.call('HINCRBY', KEYS[7], ARGV[5], 1)
  redis.call('HINCRBY', KEYS[7], ARGV[6], 1)
  redis.call('HINCRBYFLOAT', KEYS[7], ARGV[7], ARGV[8])
end
if ARGV[1] == 'pending' then
  redis.call('ZADD', KEYS[2], tonumber(redis.call('HGET', KEYS[1], 'due')), KEYS[3])
else
  redis.call('ZREM', KEYS[2], KEYS[3])
end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
redis.call('ZADD', KEYS[4], tonumber(redis.call('HGET', KEYS[1], 'updated')), KEYS[3])
return 1
"""

# An article's deliveries, created where none exists (never a second one). KEYS: due, by time, then
# one record key per delivery. ARGV: now, due, the article id, then channel and state per delivery.
# Returns the channels created.
_CREATE = """
local now = ARGV[1]
local created = {}
for i = 3, #KEYS do
  local channel = ARGV[2 + 2 * (i - 2)]
  local state = ARGV[3 + 2 * (i - 2)]
  if redis.call('HSETNX', KEYS[i], 'state', state) == 1 then
    local member = ARGV[3] .. ':' .. channel
    redis.call('HSET', KEYS[i], 'attempts', 0, 'created', now, 'updated', now, 'due', ARGV[2],
      'article_id', ARGV[3], 'channel', channel)
    if state == 'pending' then
      redis.call('ZADD', KEYS[1], ARGV[2], member)
    else
      redis.call('HSET', KEYS[i], 'approval', 'required')
    end
    redis.call('ZADD', KEYS[2], now, member)
    created[#created + 1] = channel
  end
end
return created
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

# An operator's decision on a held delivery: ARGV = new state, now, member, then field/value pairs.
# Only from awaiting_approval; returns the state found otherwise ('' when there is no record).
_DECIDE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'awaiting_approval' then return state or '' end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', ARGV[2])
for i = 4, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[1] == 'pending' then
  redis.call('HSET', KEYS[1], 'due', ARGV[2])
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[3])
return 'ok'
"""

# Cancel what was not sent, deciding on the state as it is when written (a worker may claim it
# meanwhile: its post must stay on record). ARGV = reason, now, member, counter field (KEYS[3]).
# Returns 1 when cancelled.
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'sending' or state == 'rejected' or state == 'sent' or state == 'deleting'
  or state == 'deleted' or state == 'retracted' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[1], 'updated', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
return 1
"""

# --- edits and deletions of a post (distributor.corrections) ---------------------------------------

# A changed render: a new edit version. The first one of a burst sets when the edit is due (and the
# caller dispatches it); later ones only bump the version the pending edit will apply.
# ARGV = now, due, render hash, member. Returns 0: nothing to do, 1: bumped, 2: newly scheduled.
_SCHEDULE_EDIT = """
if redis.call('HGET', KEYS[1], 'state') ~= 'sent' then return 0 end
if redis.call('HGET', KEYS[1], 'edit_hash') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'edit_hash', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'edit_version', 1)
if tonumber(redis.call('HGET', KEYS[1], 'edit_due') or '0') > 0 then return 1 end
redis.call('HSET', KEYS[1], 'edit_due', ARGV[2], 'op_attempts', 0)
redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[4])
return 2
"""

# Claim the post's pending edit or deletion. ARGV = now, lease, member, kind ('edit'|'delete'),
# token. Returns {status, detail}: go/crashed with the edit version claimed; early/busy with how long
# to wait; done/missing.
_CLAIM_OP = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', '0'} end
local now = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
if ARGV[4] == 'delete' then
  if state ~= 'deleting' then return {'done', '0'} end
else
  if state ~= 'sent' then return {'done', '0'} end
  local version = tonumber(redis.call('HGET', KEYS[1], 'edit_version') or '0')
  if version <= tonumber(redis.call('HGET', KEYS[1], 'edit_done') or '0') then return {'done', '0'} end
  local due = tonumber(redis.call('HGET', KEYS[1], 'edit_due') or '0')
  if due > now then return {'early', tostring(due - now)} end
end
local held = tonumber(redis.call('HGET', KEYS[1], 'op_lease') or '0')
if held > now then return {'busy', tostring(held - now)} end
redis.call('HSET', KEYS[1], 'op_lease', now + lease, 'op_token', ARGV[5], 'op_kind', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'op_attempts', 1)
redis.call('ZADD', KEYS[2], now + lease, ARGV[3])
local version = redis.call('HGET', KEYS[1], 'edit_version') or '0'
if held > 0 then return {'crashed', version} end
return {'go', version}
"""

# Finish a claimed edit or deletion, only while still holding it (token). ARGV = token, member, now,
# mode ('edit'|'retry'|'final'), new state (final), edit version applied (edit), next due, then
# field/value pairs. Returns 'lost', 'ok' or (edit) 'more': a newer version came meanwhile.
_FINISH_OP = """
if redis.call('HGET', KEYS[1], 'op_token') ~= ARGV[1] then return 'lost' end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'op_lease', 0, 'op_token', '')
local mode = ARGV[4]
if mode == 'retry' then
  if redis.call('HGET', KEYS[1], 'op_kind') == 'edit' then redis.call('HSET', KEYS[1], 'edit_due', ARGV[7]) end
  redis.call('ZADD', KEYS[2], tonumber(ARGV[7]), ARGV[2])
  return 'ok'
end
redis.call('HSET', KEYS[1], 'op_attempts', 0, 'updated', ARGV[3])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[2])
if mode == 'final' then
  redis.call('HSET', KEYS[1], 'state', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 'ok'
end
redis.call('HSET', KEYS[1], 'edit_done', ARGV[6])
if tonumber(redis.call('HGET', KEYS[1], 'edit_version') or '0') > tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[1], 'edit_due', ARGV[7], 'op_attempts', 0)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[7]), ARGV[2])
  return 'more'
end
redis.call('HSET', KEYS[1], 'edit_due', 0)
redis.call('ZREM', KEYS[2], ARGV[2])
return 'ok'
"""

# A retraction reaches a sent post: ARGV = to ('deleting'|'retracted'), now, member, error.
_RETRACT_POST = """
if redis.call('HGET', KEYS[1], 'state') ~= 'sent' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', ARGV[2], 'error', ARGV[4], 'op_attempts', 0)
if ARGV[1] == 'deleting' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[2]), ARGV[3])
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Claimed:
    """`claim_with_article`'s answer: the claim, and on go/crashed the article's JSON and the
    delivery's intake time."""

    status: Literal["go", "crashed", "busy", "done", "missing", "gone"]
    article: str = ""
    created: float = 0.0
    gate: str = ""  # the admission gate's verdict when the claim checked it ('go|', 'busy|' ...)


@dataclass(frozen=True)
class OpClaim:
    """The answer to claiming a post's edit or deletion."""

    status: Literal["go", "crashed", "early", "busy", "done", "missing"]
    token: str = ""
    version: int = 0  # the edit version claimed
    wait: float = 0.0  # early/busy: seconds until it may be claimed


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
    # The post as it stands (see `distributor.corrections`).
    sent_at: float = 0.0
    post_hash: str = ""  # hash of what was last posted: an update compares its render with it
    edit_hash: str = ""  # hash of the newest render an edit was scheduled (or skipped) for
    edit_version: int = 0
    edit_done: int = 0
    edit_due: float = 0.0
    edit_error: str = ""
    posts: tuple[Receipt, ...] = ()  # every post of this delivery still up (a repost adds one)

    @property
    def edit_pending(self) -> bool:
        return self.state == "sent" and self.edit_version > self.edit_done

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
        self._claim_next = client.register_script(_CLAIM_NEXT)
        self._finish = client.register_script(_FINISH.replace("HISTORY_LIMIT", str(HISTORY_LIMIT)))
        self._restore = client.register_script(_RESTORE)
        self._create = client.register_script(_CREATE)
        self._decide = client.register_script(_DECIDE)
        self._cancel = client.register_script(_CANCEL)
        self._schedule_edit = client.register_script(_SCHEDULE_EDIT)
        self._claim_op = client.register_script(_CLAIM_OP)
        self._finish_op = client.register_script(_FINISH_OP)
        self._retract_post = client.register_script(_RETRACT_POST)

    def _journal(self, article_id: str, channel: str, state: str, **fields: str) -> None:
        if self.journal is not None:
            self.journal.delivery(article_id, channel, state, **fields)

    def _due_key(self) -> str:
        return self.keys.deliveries_by_time() + ":due"

    def create(self, article_id: str, channel: str, due: float | None = None, state: str = "pending") -> bool:
        """Record a pending delivery (or one `awaiting_approval`, which is neither due nor swept);
        False when one already exists, in Redis or only in the journal (then it is restored): never
        post twice."""
        return bool(self.create_many(article_id, [(channel, state)], due))

    def create_many(self, article_id: str, channels: list[tuple[str, str]], due: float | None = None) -> list[str]:
        """`create` for several (channel, state) of one article, in one round trip and one journal
        lookup; the channels whose delivery was created (in the order given)."""
        if not channels:
            return []
        for _, state in channels:
            if state not in ("pending", AWAITING):
                raise ValueError(f"a delivery starts as pending or {AWAITING}, not {state!r}")
        if self.journal is not None:
            known = self.journal.find_deliveries(article_id, [name for name, _ in channels])
            if known:
                self.restore(known)
                names = {d.channel for d in known}
                channels = [(name, state) for name, state in channels if name not in names]
                if not channels:
                    return []
        now = time.time()
        keys = [self._due_key(), self.keys.deliveries_by_time()]
        keys += [self.keys.delivery(article_id, name) for name, _ in channels]
        args: list[str | float] = [now, due or now, article_id]
        for name, state in channels:
            args += [name, state]
        created = list(self._create(keys=keys, args=args))
        if self.journal is not None and created:
            states = dict(channels)
            self.journal.deliveries_created(article_id, [(name, states[name]) for name in created])
        return created

    def approve(self, article_id: str, channel: str) -> str:
        """A held delivery may go: awaiting_approval -> pending, due now. 'ok', else the state found
        ('' when there is no such delivery); the caller dispatches it (the sweep would, too)."""
        return self._decision(article_id, channel, "pending", approval="approved")

    def reject(self, article_id: str, channel: str, reason: str) -> str:
        """A held delivery must never be posted: awaiting_approval -> rejected (final). 'ok', else
        the state found ('' when there is no such delivery)."""
        return self._decision(article_id, channel, "rejected", approval="rejected", error=reason)

    def _decision(self, article_id: str, channel: str, state: str, **fields: str) -> str:
        now = time.time()
        args: list[str | float] = [state, now, f"{article_id}:{channel}"]
        for name, value in fields.items():
            args += [name, value]
        found = self._decide(
            keys=[self.keys.delivery(article_id, channel), self._due_key(), self.keys.deliveries_by_time()],
            args=args,
        )
        if found == "ok":
            self._journal(article_id, channel, state, error=fields.get("error", ""))
        return str(found)

    def restore(self, records: list[JournaledDelivery]) -> int:
        """Put journaled deliveries back where Redis has no record; how many were missing.

        Unfinished ones come back due now: a pending one is sent by the sweep, one that was being
        sent comes back with an expired lease, so the crash rules decide (idempotency key, read-back,
        or `unknown`), never a blind second post. A deletion under way (`deleting`) is due again too."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        deleting: dict[str, float] = {}  # deletions under way: due again for the sweep (their task was lost)
        for d in records:
            if d.state == "deleting":
                deleting[f"{d.article_id}:{d.channel}"] = now
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
            if d.state == AWAITING:  # held again, not due: it still waits for an operator
                fields["approval"] = "required"
            args: list[str | float] = [f"{d.article_id}:{d.channel}", now if unfinished else "", d.updated]
            for name, value in fields.items():
                args += [name, value]
            self._restore(
                keys=[self.keys.delivery(d.article_id, d.channel), self._due_key(), self.keys.deliveries_by_time()],
                args=args,
                client=pipe,
            )
        restored = sum(int(done) for done in pipe.execute()) if records else 0
        if deleting:  # a deletion is safe to repeat (a post already gone counts as deleted)
            self.redis.zadd(self.keys.post_ops_due(), deleting, nx=True)
        return restored

    def claim(self, article_id: str, channel: str, lease: float) -> Claim:
        result = self._claim(
            keys=[self.keys.delivery(article_id, channel), self._due_key()],
            args=[time.time(), lease, f"{article_id}:{channel}"],
        )
        claim: Claim = result[0]
        if claim in ("go", "crashed"):  # journaled before the post is attempted
            self._journal(article_id, channel, "sending")
        return claim

    def claim_with_article(self, article_id: str, channel: str, lease: float) -> Claimed:
        """`claim`, reading the article (JSON) and the delivery's intake time in the same round trip.
        While the article is missing nothing is claimed: 'gone' (the caller decides, see
        `distributor.delivery`)."""
        keys = [self.keys.delivery(article_id, channel), self._due_key(), self.keys.article(article_id)]
        status, *rest = self._claim(keys=keys, args=[time.time(), lease, f"{article_id}:{channel}"])
        if status not in ("go", "crashed"):
            return Claimed(status)
        self._journal(article_id, channel, "sending")  # journaled before the post is attempted
        return Claimed(status, rest[0], float(rest[1] or 0))

    def claim_next(
        self,
        channel: str,
        token: str,
        lease: float,
        drainer_lease: float,
        stay: bool = False,
        gate: tuple[list[str], list[Any]] | None = None,
    ) -> tuple[str, Claimed]:
        """The next delivery of `channel`'s ready list that can be claimed, claimed with its article:
        (article id, claim) with status go, crashed or gone; ('', 'missing') when the list is empty
        (the drainer `token` is struck off unless it `stay`s), ('', 'busy') when a long run of the
        list held nothing to claim (call again). One round trip; deliveries already done or held are
        dropped from the list. With `gate` (`Admission.plain_gate`), a 'go' claim also went through
        the admission gate, whose verdict is in `Claimed.gate`."""
        call = self.claim_next_call(channel, token, lease, drainer_lease, stay, gate)
        run_scripts(self.redis, [call])
        return self.claimed_next(channel, call)

    def claim_next_call(
        self,
        channel: str,
        token: str,
        lease: float,
        drainer_lease: float,
        stay: bool = False,
        gate: tuple[list[str], list[Any]] | None = None,
    ) -> ScriptCall:
        """`claim_next` as a script call, to be sent after another in one round trip (a drainer
        finishing one delivery claims the next with it); then `claimed_next` reads its answer."""
        keys = [self.keys.ready(channel), self.keys.drainers(channel), self._due_key()]
        prefixes = [self.keys.delivery_prefix(), self.keys.article_prefix()]
        args = [time.time(), lease, token, drainer_lease, *prefixes, channel, CLAIM_NEXT_POPS, "1" if stay else "0"]
        if gate is not None:
            keys += gate[0]
            args += gate[1]
        return ScriptCall(self._claim_next, keys, args)

    def claimed_next(self, channel: str, call: ScriptCall) -> tuple[str, Claimed]:
        """What a `claim_next_call` that ran claimed (see `claim_next`)."""
        status, *rest = call.result
        if status == "empty":
            return "", Claimed("missing")
        if status == "more":
            return "", Claimed("busy")
        article_id = rest[0]
        if status == "gone":
            return article_id, Claimed("gone")
        self._journal(article_id, channel, "sending")  # journaled before the post is attempted
        return article_id, Claimed(status, rest[1], float(rest[2] or 0), rest[3])

    def _finish_call(
        self,
        article_id: str,
        channel: str,
        state: str,
        *,
        outcome: str = "",
        history: dict[str, object] | None = None,
        refund: bool = False,
        latency: float | None = None,
        **fields: str | float,
    ) -> ScriptCall:
        """The script call that finishes a delivery we hold; `outcome` (see
        `distributor.counters.OUTCOMES`) and `latency` (publish-to-posted seconds) are counted for
        /metrics in the same script, so a figure never disagrees with the ledger."""
        fields.setdefault("updated", time.time())
        entry = json.dumps(history, ensure_ascii=False) if history else ""
        observed: list[str | float] = ["", "", "", 0]
        if latency is not None:
            bucket = counters.bucket(latency)
            names = (bucket, "count", "sum")
            observed = [*(counters.field_name(channel, name) for name in names), round(latency, 3)]
        args: list[str | float] = [
            state,
            counters.field_name(channel, outcome) if outcome else "",
            entry,
            "1" if refund else "0",
            *observed,
        ]
        for name, value in fields.items():
            args += [name, value]
        keys = [
            self.keys.delivery(article_id, channel),
            self._due_key(),
            f"{article_id}:{channel}",
            self.keys.deliveries_by_time(),
            self.keys.counters(counters.DELIVERIES),
            self.keys.delivery_history(article_id, channel),
            self.keys.counters(counters.LATENCY),
        ]
        return ScriptCall(self._finish, keys, args)

    def _set(
        self,
        article_id: str,
        channel: str,
        state: str,
        *,
        before: ScriptCall | None = None,
        after: ScriptCall | None = None,
        **finish: Any,
    ) -> bool:
        """Finish a delivery we hold (`finish`: `_finish_call`'s keywords), in one round trip with
        `before` and `after` (other script calls: the in-flight slot's release, a drainer's next
        claim) when given."""
        call = self._finish_call(article_id, channel, state, **finish)
        run_scripts(self.redis, [c for c in (before, call, after) if c is not None])
        if call.result:
            self._journal(
                article_id,
                channel,
                state,
                **{k: str(finish[k]) for k in ("post_id", "post_url", "error") if k in finish},
            )
        return bool(call.result)

    def sent(
        self,
        article_id: str,
        channel: str,
        post_id: str | None,
        post_url: str | None,
        note: str = "",
        *,
        data: dict[str, str] | None = None,
        post_hash: str = "",
        latency: float | None = None,
        before: ScriptCall | None = None,
        after: ScriptCall | None = None,
    ) -> bool:
        """The post exists; `data` (what a later edit or deletion needs) and `post_hash` (what was
        posted) let corrections reach it. `latency`: seconds from publication to this post, for
        /metrics; `before`, `after`: script calls sent in the same round trip."""
        receipt = Receipt(post_id=post_id or None, url=post_url or None, data=data or {})
        return self._set(
            article_id,
            channel,
            "sent",
            before=before,
            after=after,
            outcome="posted",
            history=_entry("posted", receipt, note),
            latency=latency,
            post_id=post_id or "",
            post_url=post_url or "",
            error=note,
            code="",
            sent_at=time.time(),
            post_hash=post_hash,
            edit_hash=post_hash,
            posts=_dump_posts([receipt]),
        )

    def failed(self, article_id: str, channel: str, error: str, code: str | None = None) -> bool:
        return self._set(article_id, channel, "failed", outcome="failed", error=error, code=code or "")

    def unknown(self, article_id: str, channel: str, error: str) -> bool:
        return self._set(article_id, channel, "unknown", outcome="unknown", error=error)

    def retry_later(
        self, article_id: str, channel: str, delay: float, error: str, code: str | None = None, refund: bool = False
    ) -> bool:
        """Back to pending, due after `delay`; `refund` gives back the attempt the claim counted."""
        return self._set(
            article_id,
            channel,
            "pending",
            outcome="deferred" if refund else "retried",
            refund=refund,
            due=time.time() + delay,
            error=error,
            code=code or "",
        )

    def cancel(self, article_id: str, channel: str, reason: str) -> bool:
        """Cancel a pending/awaiting/unknown/failed delivery (operator action or article unpublished)."""
        key = self.keys.delivery(article_id, channel)
        counted = [self.keys.counters(counters.DELIVERIES), counters.field_name(channel, "cancelled")]
        if not self._cancel(
            keys=[key, self._due_key(), counted[0]], args=[reason, time.time(), f"{article_id}:{channel}", counted[1]]
        ):
            return False
        self._journal(article_id, channel, "cancelled", error=reason)
        return True

    def requeue(self, article_id: str, channel: str) -> bool:
        """Operator retry of a failed/unknown/cancelled delivery: back to pending, due now; one that
        was cancelled while it awaited approval goes back to awaiting it (never a rejected one)."""
        key = self.keys.delivery(article_id, channel)
        state, approval = self.redis.hmget(key, ["state", "approval"])
        if state not in ("failed", "unknown", "cancelled"):
            return False
        now = time.time()
        pipe = self.redis.pipeline()
        if approval == "required":
            pipe.hset(key, mapping={"state": AWAITING, "updated": now, "attempts": 0, "error": ""})
            pipe.zadd(self.keys.deliveries_by_time(), {f"{article_id}:{channel}": now})
            pipe.execute()
            self._journal(article_id, channel, AWAITING)
            return True
        pipe.hset(key, mapping={"state": "pending", "due": now, "updated": now, "attempts": 0})
        pipe.zadd(self._due_key(), {f"{article_id}:{channel}": now})
        pipe.execute()
        self._journal(article_id, channel, "pending")
        return True

    def get(self, article_id: str, channel: str) -> Delivery | None:
        raw = self.redis.hgetall(self.keys.delivery(article_id, channel))
        return delivery_from_hash(raw) if raw else None

    def for_article(self, article_id: str, channels: list[str]) -> list[Delivery]:
        pipe = self.redis.pipeline()
        for channel in channels:
            pipe.hgetall(self.keys.delivery(article_id, channel))
        return [delivery_from_hash(raw) for raw in pipe.execute() if raw]

    def recent(self, limit: int = 100, state: str | None = None) -> list[Delivery]:
        members = self.redis.zrevrange(self.keys.deliveries_by_time(), 0, (limit * 5 if state else limit) - 1)
        pipe = self.redis.pipeline()
        for member in members:
            article_id, _, channel = member.partition(":")
            pipe.hgetall(self.keys.delivery(article_id, channel))
        found = [delivery_from_hash(raw) for raw in pipe.execute() if raw]
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

    # --- the post after it was sent (see distributor.corrections) ---------------------------------

    def _op_keys(self, article_id: str, channel: str) -> list[str]:
        return [self.keys.delivery(article_id, channel), self.keys.post_ops_due(), self.keys.deliveries_by_time()]

    def schedule_edit(self, article_id: str, channel: str, render_hash: str, due: float) -> int:
        """A new render to carry to the post: 0 nothing new, 1 a pending edit will take it, 2 an edit
        is now due at `due` (dispatch it)."""
        keys = self._op_keys(article_id, channel)[:2]
        return int(self._schedule_edit(keys=keys, args=[time.time(), due, render_hash, f"{article_id}:{channel}"]))

    def skip_edit(self, article_id: str, channel: str, render_hash: str, reason: str) -> bool:
        """A render that will not reach the post (the platform cannot edit, the post is too old):
        recorded once per render, in the history."""
        key = self.keys.delivery(article_id, channel)
        if self.redis.hget(key, "edit_hash") == render_hash:
            return False
        self.redis.hset(key, mapping={"edit_hash": render_hash, "edit_error": reason})
        self.add_history(article_id, channel, "edit skipped", note=reason)
        return True

    def claim_op(self, article_id: str, channel: str, kind: Literal["edit", "delete"], lease: float) -> OpClaim:
        token = uuid.uuid4().hex
        status, detail = self._claim_op(
            keys=self._op_keys(article_id, channel)[:2],
            args=[time.time(), lease, f"{article_id}:{channel}", kind, token],
        )
        if status in ("go", "crashed"):
            return OpClaim(status, token=token, version=int(detail))
        return OpClaim(status, wait=float(detail))

    def _end_op(
        self,
        article_id: str,
        channel: str,
        claim: OpClaim,
        mode: str,
        fields: dict[str, str | float],
        state: str = "",
        next_due: float = 0,
    ) -> str:
        args: list[str | float] = [
            claim.token,
            f"{article_id}:{channel}",
            time.time(),
            mode,
            state,
            claim.version,
            next_due,
        ]
        for name, value in fields.items():
            args += [name, value]
        return str(self._finish_op(keys=self._op_keys(article_id, channel), args=args))

    def edited(
        self,
        article_id: str,
        channel: str,
        claim: OpClaim,
        next_due: float,
        *,
        posts: list[Receipt] | None = None,
        post_hash: str = "",
        event: str = "",
        note: str = "",
    ) -> str:
        """An edit version is done with (applied, reposted, refused or nothing to change): 'more' when
        a newer version arrived meanwhile (then due at `next_due`), 'lost' when the claim was lost."""
        fields: dict[str, str | float] = {"edit_error": note if event in ("edit failed", "edit skipped") else ""}
        if posts is not None:
            current = posts[-1]
            fields |= {"posts": _dump_posts(posts), "post_hash": post_hash}
            fields |= {"post_id": current.post_id or "", "post_url": current.url or ""}
        outcome = self._end_op(article_id, channel, claim, "edit", fields, next_due=next_due)
        if outcome != "lost" and event:
            self.add_history(article_id, channel, event, posts[-1] if posts and event != "edit failed" else None, note)
            if posts is not None:
                self._journal(
                    article_id, channel, "sent", post_id=str(fields["post_id"]), post_url=str(fields["post_url"])
                )
        return outcome

    def op_retry(self, article_id: str, channel: str, claim: OpClaim, due: float, error: str) -> bool:
        """A transient failure of the claimed edit or deletion: try again at `due`."""
        return self._end_op(article_id, channel, claim, "retry", {self._op_note(article_id, channel): error},
                            next_due=due) != "lost"  # fmt: skip

    def op_wait(self, article_id: str, channel: str, claim: OpClaim, due: float, reason: str) -> bool:
        """The claimed edit or deletion waits for the channel (paused, spaced): try again at `due`
        without spending an attempt, `reason` shown as its note."""
        attempts = max(0, self.op_attempts(article_id, channel) - 1)  # the claim counted one
        fields: dict[str, str | float] = {self._op_note(article_id, channel): reason, "op_attempts": attempts}
        return self._end_op(article_id, channel, claim, "retry", fields, next_due=due) != "lost"

    def _op_note(self, article_id: str, channel: str) -> str:
        """Where a pending operation's note goes: `edit_error` for an edit, `error` for a deletion."""
        kind = self.redis.hget(self.keys.delivery(article_id, channel), "op_kind")
        return "edit_error" if kind == "edit" else "error"

    def wake_ops(self, channel: str) -> int:
        """Make the channel's waiting edits and deletions due now (the sweep sends them): the
        channel was resumed. Returns how many."""
        members = [m for m in self.redis.zrange(self.keys.post_ops_due(), 0, -1) if m.partition(":")[2] == channel]
        if members:
            records = [self.keys.delivery(member.partition(":")[0], channel) for member in members]
            reads = self.redis.pipeline(transaction=False)
            for record in records:
                reads.hget(record, "op_kind")
            kinds = reads.execute()
            pipe = self.redis.pipeline()
            pipe.zadd(self.keys.post_ops_due(), dict.fromkeys(members, 0))
            for record, kind in zip(records, kinds, strict=True):
                if kind == "edit":
                    pipe.hset(record, "edit_due", 0)
            pipe.execute()
        return len(members)

    def op_attempts(self, article_id: str, channel: str) -> int:
        return int(self.redis.hget(self.keys.delivery(article_id, channel), "op_attempts") or 0)

    def retract_post(self, article_id: str, channel: str, deletable: bool, reason: str) -> bool:
        """A retraction reaches a sent post: `deleting` (a deletion task follows), or `retracted` at
        once when the platform cannot delete (`reason` says why)."""
        state = "deleting" if deletable else "retracted"
        done = bool(
            self._retract_post(
                keys=self._op_keys(article_id, channel), args=[state, time.time(), f"{article_id}:{channel}", reason]
            )
        )
        if done:
            self._journal(article_id, channel, state, error=reason)
            if not deletable:
                self.add_history(article_id, channel, "not deleted", note=reason)
        return done

    def deletion_done(self, article_id: str, channel: str, claim: OpClaim, deleted: bool, note: str = "") -> bool:
        """The claimed deletion ended: `deleted`, or `retracted` with the platform's refusal."""
        state = "deleted" if deleted else "retracted"
        fields: dict[str, str | float] = {"error": note}
        if deleted:
            fields["posts"] = "[]"
        if self._end_op(article_id, channel, claim, "final", fields, state=state) == "lost":
            return False
        self._journal(article_id, channel, state, error=note)
        self.add_history(article_id, channel, "deleted" if deleted else "not deleted", note=note)
        return True

    def ops_overdue(self, grace: float = 30.0, limit: int = 500) -> list[tuple[str, str]]:
        """Edits and deletions whose time has passed by `grace` seconds: their task was lost."""
        members = self.redis.zrangebyscore(self.keys.post_ops_due(), "-inf", time.time() - grace, start=0, num=limit)
        return [(m.partition(":")[0], m.partition(":")[2]) for m in members]

    def add_history(
        self, article_id: str, channel: str, event: str, receipt: Receipt | None = None, note: str = ""
    ) -> None:
        key = self.keys.delivery_history(article_id, channel)
        pipe = self.redis.pipeline()
        pipe.rpush(key, json.dumps(_entry(event, receipt, note), ensure_ascii=False))
        pipe.ltrim(key, -HISTORY_LIMIT, -1)
        pipe.execute()

    def history(self, article_id: str, channel: str) -> list[dict[str, object]]:
        """The post's history, oldest first: posted, edited, edit skipped, edit failed, reposted,
        deleted, not deleted."""
        entries = []
        for raw in self.redis.lrange(self.keys.delivery_history(article_id, channel), 0, -1):
            try:
                entries.append(json.loads(raw))
            except ValueError:
                continue
        return entries


def _entry(event: str, receipt: Receipt | None = None, note: str = "") -> dict[str, object]:
    """One entry of a post's history."""
    entry: dict[str, object] = {"event": event, "at": time.time()}
    if receipt is not None:
        entry |= {"post_id": receipt.post_id, "url": receipt.url, "data": receipt.data}
    if note:
        entry["note"] = note
    return entry


def delivery_from_hash(raw: dict[str, str]) -> Delivery:
    """A delivery record as Redis holds it (a hash of strings) -> Delivery."""
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
        sent_at=float(raw.get("sent_at") or 0),
        post_hash=raw.get("post_hash", ""),
        edit_hash=raw.get("edit_hash", ""),
        edit_version=int(raw.get("edit_version") or 0),
        edit_done=int(raw.get("edit_done") or 0),
        edit_due=float(raw.get("edit_due") or 0),
        edit_error=raw.get("edit_error", ""),
        posts=_load_posts(raw),
    )


def _dump_posts(posts: list[Receipt]) -> str:
    return json.dumps([p.model_dump() for p in posts], ensure_ascii=False)


def _load_posts(raw: dict[str, str]) -> tuple[Receipt, ...]:
    """The live posts; a record from before corrections existed has only its post id and URL."""
    if raw.get("posts"):
        try:
            return tuple(Receipt.model_validate(p) for p in json.loads(raw["posts"]))
        except ValueError:
            pass
    if raw.get("state") in POSTED and (raw.get("post_id") or raw.get("post_url")):
        return (Receipt(post_id=raw.get("post_id") or None, url=raw.get("post_url") or None),)
    return ()
