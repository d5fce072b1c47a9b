"""May this delivery be sent now? One answer per channel, shared by every worker through Redis.

Three rules, checked in one Lua call just before a post is sent (`enter`) and settled in one more
right after it (`leave`):

- Circuit breaker: `breaker_failures` transient failures in a row open the channel for a cool-down
  (`breaker_cooldown`, doubling on each trip in a row, up to an hour); then one probe delivery goes,
  and its success closes the circuit again. An authentication error pauses the channel until the
  operator acts (`distributor channels resume NAME`, or a passing `distributor channels test NAME`).
- In flight: at most `max_in_flight` deliveries of a channel are being sent at once, a slot leased
  like the ledger's claim (a crashed worker's slot expires), so a hanging platform holds only that
  many workers.
- Spacing (`min_interval`, `max_per_day`, `quiet_hours`, `rate_per_minute`): each delivery reserves
  the next free time slot once, in the order they arrive, and goes when its slot comes.

A delivery that must wait is put back by the caller with the wait (the attempt refunded), so waiting
never spends attempts. Waits are capped (`MAX_WAIT`) so that no task sits in the broker for hours.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import redis

from distributor import spacing
from distributor.errors import ChannelError
from distributor.keys import Keys
from distributor.redis import ScriptCall, run_scripts
from distributor.settings import ChannelSettings, Settings

log = logging.getLogger(__name__)

MAX_WAIT = 600.0  # a waiting task is re-queued at least this often (brokers dislike hours-long ETAs)
PROBE_WAIT = 10.0  # while a probe delivery is out, the others look again this often
MAX_COOLDOWN = 3600.0
BUSY_WAIT = (0.2, 10.0)  # bounds of the wait for an in-flight slot (about as long as the holders took so far)

# KEYS: breaker, in-flight, spacing, reservations.
# ARGV: now, member, max_in_flight, lease, spaced ('1'|'0'), min_interval.
# Returns {verdict, number, text}: go (text: 'half-open' when this is the probe), paused (reason),
# open (seconds left, reason), probing, reserve (spacing version; then the pace hash, flat),
# spaced (seconds), busy (age of the newest holder).
_ENTER = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local b = redis.call('HMGET', KEYS[1], 'state', 'until', 'probe', 'probe_until', 'reason', 'manual')
local state = b[1] or 'closed'
local probing = false
if state == 'open' then
  if b[6] == '1' then return {'paused', '0', b[5] or ''} end
  local open_until = tonumber(b[2] or '0')
  if open_until > now then return {'open', tostring(open_until - now), b[5] or ''} end
  probing = true
elseif state == 'half-open' then
  if b[3] ~= member and tonumber(b[4] or '0') > now then return {'probing', '0', ''} end
  probing = true
end
local spaced = ARGV[5] == '1'
if spaced then
  local slot = redis.call('ZSCORE', KEYS[4], member)
  if not slot then
    return {'reserve', redis.call('HGET', KEYS[3], 'version') or '0', '', redis.call('HGETALL', KEYS[3])}
  end
  slot = tonumber(slot)
  if slot > now then return {'spaced', tostring(slot - now), ''} end
  local last = redis.call('HGET', KEYS[3], 'last')
  if last and tonumber(last) + tonumber(ARGV[6]) > now then
    return {'spaced', tostring(tonumber(last) + tonumber(ARGV[6]) - now), ''}
  end
end
local lease = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], member) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local newest = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  return {'busy', tostring(now - (tonumber(newest[2]) - lease)), ''}
end
redis.call('ZADD', KEYS[2], now + lease, member)
if spaced then
  redis.call('ZREM', KEYS[4], member)
  redis.call('HSET', KEYS[3], 'last', now)
end
if probing then
  redis.call('HSET', KEYS[1], 'state', 'half-open', 'probe', member, 'probe_until', now + lease, 'changed', now)
  if state == 'open' then return {'go', '0', 'half-open'} end
end
return {'go', '0', ''}
"""

# `_ENTER` as a Lua function, for a script that claims a delivery and checks its gate in one call
# (`Ledger.claim_next`): its parameters shadow the script's own KEYS and ARGV.
ENTER_FUNCTION = "local function enter(KEYS, ARGV)\n" + _ENTER + "end\n"

# KEYS: spacing, reservations. ARGV: version, member, slot, next free, day field, now, stale fields...
# Takes the slot only if nobody else took one since the version was read (else 0: read again).
_RESERVE = """
if (redis.call('HGET', KEYS[1], 'version') or '0') ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('HSET', KEYS[1], 'next', ARGV[4])
redis.call('HINCRBY', KEYS[1], ARGV[5], 1)
for i = 7, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[6]) - 86400)
return 1
"""

# KEYS: breaker, in-flight. ARGV: now, member, outcome (ok|fail|auth), threshold, cooldown, max
# cooldown, reason. Frees the slot and updates the breaker; returns the change ('' when none).
_LEAVE = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local outcome = ARGV[3]
redis.call('ZREM', KEYS[2], member)
local b = redis.call('HMGET', KEYS[1], 'state', 'failures', 'trips', 'probe', 'manual')
local state = b[1] or 'closed'
local failures = tonumber(b[2] or '0')
local trips = tonumber(b[3] or '0')
if outcome == 'auth' then
  if state == 'open' and b[5] == '1' then return '' end
  redis.call('HSET', KEYS[1], 'state', 'open', 'manual', '1', 'until', 0, 'reason', ARGV[7], 'changed', now)
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  return 'paused'
end
local function trip()
  trips = trips + 1
  local cooldown = math.min(tonumber(ARGV[6]), tonumber(ARGV[5]) * 2 ^ (trips - 1))
  redis.call('HSET', KEYS[1], 'state', 'open', 'manual', '0', 'until', now + cooldown, 'trips', trips,
    'failures', failures, 'reason', ARGV[7], 'changed', now)
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  return 'opened'
end
if state == 'half-open' and b[4] == member then
  if outcome == 'ok' then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'trips', 0, 'until', 0, 'reason', '',
      'changed', now)
    redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
    return 'closed'
  end
  failures = failures + 1
  return trip()
end
if state ~= 'closed' then return '' end
if outcome == 'ok' then
  if failures ~= 0 then redis.call('HSET', KEYS[1], 'failures', 0) end
  return ''
end
failures = failures + 1
if failures >= tonumber(ARGV[4]) then return trip() end
redis.call('HSET', KEYS[1], 'failures', failures, 'reason', ARGV[7])
return ''
"""


# KEYS: breaker, in-flight. ARGV: member. Frees the slot; a probe that was not sent stops being one.
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'probe') == ARGV[1] then redis.call('HDEL', KEYS[1], 'probe', 'probe_until') end
"""


@dataclass(frozen=True)
class Gate:
    """`enter`'s answer: go now (wait 0), or wait this many seconds, and why."""

    wait: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Health:
    """One channel's delivery health, as `distributor channels` and the metrics show it."""

    breaker: str  # closed | open | half-open | paused
    failures: int  # transient failures in a row
    trips: int
    until: float | None  # when an open circuit lets a probe through (None: not open, or paused)
    reason: str
    in_flight: int
    next_post: float | None  # the earliest time a new post could go (spaced channels only)
    waiting: int  # deliveries holding a reserved slot


class Admission:
    def __init__(
        self, client: redis.Redis, keys: Keys, settings: Settings, tz: tzinfo, now: Callable[[], float] = time.time
    ) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self.tz = tz
        self.now = now  # injectable: tests freeze the clock
        self._enter = client.register_script(_ENTER)
        self._reserve = client.register_script(_RESERVE)
        self._leave = client.register_script(_LEAVE)
        self._release = client.register_script(_RELEASE)

    def enter(self, channel: ChannelSettings, member: str) -> Gate:
        """Take an in-flight slot (and this delivery's time slot) or say how long to wait."""
        rules = spacing.Rules.of(channel)
        keys = [
            self.keys.breaker(channel.name),
            self.keys.in_flight(channel.name),
            self.keys.spacing(channel.name),
            self.keys.reservations(channel.name),
        ]
        for _ in range(20):  # a reservation race is retried; each round trip is one Lua call
            now = self.now()
            args = [now, member, channel.max_in_flight, self.settings.worker.lease, 1 if rules else 0]
            verdict, number, text, *rest = self._enter(keys=keys, args=[*args, rules.min_interval if rules else 0])
            if verdict == "go":
                if text == "half-open":
                    log.info("channel %s: circuit half-open, sending one probe delivery (%s)", channel.name, member)
                return Gate()
            if verdict == "reserve" and rules is not None:
                wait = self._take_slot(channel.name, member, rules, number, rest[0], now)
                if wait is None or wait <= 0:
                    continue  # raced with another worker, or the slot is now: look again
                return self._wait(wait, f"spaced: posting at {self._clock(now + wait)}")
            if verdict == "paused":
                return self._wait(MAX_WAIT, f"channel paused until the operator acts: {text}")
            if verdict == "open":
                return self._wait(float(number), f"circuit open after repeated failures: {text}")
            if verdict == "probing":
                return self._wait(PROBE_WAIT, "circuit half-open: waiting for the probe delivery")
            if verdict == "spaced":
                return self._wait(float(number), f"spaced: posting at {self._clock(now + float(number))}")
            if verdict == "busy":
                low, high = BUSY_WAIT
                wait = min(high, max(low, float(number))) * random.uniform(0.8, 1.2)
                return Gate(wait, f"waiting for an in-flight slot (max_in_flight = {channel.max_in_flight})")
        return Gate(BUSY_WAIT[0], "waiting for a time slot (busy)")

    def plain_gate(self, channel: ChannelSettings) -> tuple[list[str], list[Any]] | None:
        """The keys and arguments with which a claim's own script can check the gate (`enter`) in
        the same round trip: only for a channel with no spacing and no rate_per_minute, whose answer
        never needs this process to reserve a time slot. None for the others."""
        if channel.rate_per_minute or spacing.Rules.of(channel) is not None:
            return None
        keys = [
            self.keys.breaker(channel.name),
            self.keys.in_flight(channel.name),
            self.keys.spacing(channel.name),
            self.keys.reservations(channel.name),
        ]
        return keys, [channel.max_in_flight, self.settings.worker.lease]

    def passed(self, channel: str, member: str, verdict: str) -> bool:
        """Whether the gate check a claim made (`plain_gate`) let `member` go; False: ask `enter`."""
        outcome, _, text = verdict.partition("|")
        if outcome != "go":
            return False
        if text == "half-open":
            log.info("channel %s: circuit half-open, sending one probe delivery (%s)", channel, member)
        return True

    def release(self, channel: str, member: str) -> None:
        """Give back the in-flight slot of a delivery that was let through and then not sent (its
        post did not render): no answer from the platform, so the breaker learns nothing; were it
        the probe, the next delivery may probe instead."""
        self._release(keys=[self.keys.breaker(channel), self.keys.in_flight(channel)], args=[member])

    def _take_slot(
        self, channel: str, member: str, rules: spacing.Rules, version: str, flat: list[str], now: float
    ) -> float | None:
        """Reserve the next free slot for `member`: its wait, or None when another worker moved first."""
        pace = dict(zip(flat[::2], flat[1::2], strict=True))
        counts = {k: int(v) for k, v in pace.items() if k.startswith("day:")}
        slot, field = spacing.next_slot(now, float(pace.get("next") or 0), counts, rules, self.tz)
        today = spacing.day_field(datetime.fromtimestamp(now, self.tz).date())
        stale = [k for k in counts if k < today and k != field]  # days gone by
        args = [version, member, slot, slot + rules.min_interval, field, now, *stale]
        keys = [self.keys.spacing(channel), self.keys.reservations(channel)]
        if not self._reserve(keys=keys, args=args):
            return None
        return slot - now

    def _wait(self, seconds: float, reason: str) -> Gate:
        return Gate(min(MAX_WAIT, max(0.05, seconds)), reason)

    def _clock(self, moment: float) -> str:
        return datetime.fromtimestamp(moment, self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def leave(self, channel: str, member: str, error: ChannelError | None) -> None:
        """Free the in-flight slot and tell the breaker how the platform answered.

        Transient errors count towards opening; an answer (a post, or a refusal of this one post's
        content) closes the count; an authentication error pauses the channel."""
        call = self.leave_call(channel, member, error)
        run_scripts(self.redis, [call])
        self.settled(channel, call)

    def leave_call(self, channel: str, member: str, error: ChannelError | None) -> ScriptCall:
        """`leave` as a script call, to be sent with the ledger's outcome in one round trip; then
        `settled` with the call reports what changed."""
        if error is None or (error.permanent and not error.auth):
            outcome, reason = "ok", ""
        else:
            outcome = "auth" if error.auth else "fail"
            reason = error.message if error.code is None else f"{error.message} (code {error.code})"
        worker = self.settings.worker
        args = [self.now(), member, outcome, worker.breaker_failures, worker.breaker_cooldown, MAX_COOLDOWN, reason]
        return ScriptCall(self._leave, [self.keys.breaker(channel), self.keys.in_flight(channel)], args)

    def settled(self, channel: str, call: ScriptCall) -> None:
        """Log the breaker's change after `channel`'s `leave_call` ran (nothing when it did not change)."""
        change, reason = call.result, call.args[-1]
        if not change:
            return
        if change == "opened":
            health = self.health(channel)
            pause = (health.until or self.now()) - self.now()
            log.warning(
                "channel %s: circuit opened for %.0fs after %d failures in a row (trip %d): %s",
                *(channel, pause, health.failures, health.trips, reason),
            )
        elif change == "closed":
            log.info("channel %s: circuit closed, the probe delivery went through", channel)
        elif change == "paused":
            log.warning(
                "channel %s: paused until the operator acts (fix the credentials, then "
                "`distributor channels resume %s`): %s",
                *(channel, channel, reason),
            )

    def pause(self, channel: str, reason: str) -> bool:
        """Hold the channel's deliveries until `resume` (an operator pause, like an authentication
        error's): they wait, nothing is lost. False when it was already paused."""
        key = self.keys.breaker(channel)
        current = self.redis.hmget(key, "state", "manual")
        if current[0] == "open" and current[1] == "1":
            return False
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "open", "manual": "1", "until": 0, "reason": reason, "changed": self.now()})
        pipe.hdel(key, "probe", "probe_until")
        pipe.execute()
        log.warning("channel %s: paused: %s", channel, reason)
        return True

    def resume(self, channel: str, by: str = "the operator") -> bool:
        """Close the channel's circuit (paused or open); False when it was already closed."""
        key = self.keys.breaker(channel)
        state = self.redis.hget(key, "state") or "closed"
        if state == "closed":
            return False
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"state": "closed", "manual": "0", "failures": 0, "trips": 0, "until": 0, "reason": ""})
        pipe.hset(key, "changed", self.now())
        pipe.hdel(key, "probe", "probe_until")
        pipe.execute()
        log.info("channel %s: circuit closed by %s (was %s)", channel, by, state)
        return True

    def health(self, channel: str, settings: ChannelSettings | None = None) -> Health:
        """The breaker, the slots and the pace of one channel, read in one round trip."""
        now = self.now()
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self.keys.breaker(channel))
        pipe.zcount(self.keys.in_flight(channel), now, "+inf")
        pipe.hgetall(self.keys.spacing(channel))
        pipe.zcard(self.keys.reservations(channel))
        breaker, in_flight, pace, waiting = pipe.execute()
        state = breaker.get("state") or "closed"
        if state == "open" and breaker.get("manual") == "1":
            state = "paused"
        until = float(breaker.get("until") or 0) if state == "open" else None
        next_post = None
        rules = spacing.Rules.of(settings) if settings is not None else None
        if rules is not None:
            counts = {k: int(v) for k, v in pace.items() if k.startswith("day:")}
            free = max(float(pace.get("next") or 0), float(pace.get("last") or 0) + rules.min_interval)
            next_post = spacing.next_slot(now, free, counts, rules, self.tz)[0]
        return Health(
            breaker=state,
            failures=int(breaker.get("failures") or 0),
            trips=int(breaker.get("trips") or 0),
            until=until,
            reason=breaker.get("reason") or "",
            in_flight=int(in_flight),
            next_post=next_post,
            waiting=int(waiting),
        )


def as_dict(health: Health) -> dict[str, Any]:
    return {
        "breaker": health.breaker,
        "failures_in_a_row": health.failures,
        "trips": health.trips,
        "open_until": health.until,
        "reason": health.reason,
        "in_flight": health.in_flight,
        "next_post": health.next_post,
        "waiting_for_slot": health.waiting,
    }
