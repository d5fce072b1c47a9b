"""The beat scheduler: RedBeat, made to live through Redis outages and to take its own lock back.

RedBeat as shipped dies at the first Redis error of a tick, blocks at start until the lock is
free (up to a minute after its own predecessor was killed), and forgets its schedule when Redis
comes back empty. This scheduler:

- turns a Redis or broker error into one log line and a retry with backoff, never an exit;
- takes the lock without blocking: a beat that does not hold it stands by and keeps ticking (so
  its heartbeat says 'standby'), and takes over as soon as the lock is free;
- remembers its lock token in the data directory, so a beat restarted on the same host (after a
  crash or a SIGKILL, when the lock is still in Redis) recognises its dead predecessor's lock and
  takes it at once instead of waiting for it to expire;
- re-installs the schedule when Redis lost it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import redis
from celery.beat import SchedulingError
from celery.signals import beat_init
from kombu.exceptions import OperationalError
from redbeat.schedulers import RedBeatScheduler, acquire_distributed_beat_lock, get_redis
from redis.exceptions import LockError

from distributor import heartbeat
from distributor.context import get_context

log = logging.getLogger("distributor.beat")

# RedBeat's own start-up hook blocks until the lock is free; the scheduler takes it in `tick`.
beat_init.disconnect(acquire_distributed_beat_lock)

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OperationalError, OSError)
STANDBY_POLL = 5.0
MAX_BACKOFF = 2.0  # a refused connection costs nothing: try often, resume soon after Redis is back

# Replace the lock's token only when it still holds the token we remembered (compare-and-set).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, SchedulingError) and exc.__cause__ is not None:
        return _is_outage(exc.__cause__)
    return isinstance(exc, OUTAGE_ERRORS)


class ResilientScheduler(RedBeatScheduler):  # type: ignore[misc]
    """RedBeat that survives Redis outages and restarts (see the module docstring)."""

    lock: Any = None

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self._failures = 0
        self._role = "starting"
        self._token_file = self._lock_file()
        super().__init__(app, **kwargs)

    # --- the loop --------------------------------------------------------------------------------

    def tick(self, min: Any = min, **kwargs: Any) -> float:
        try:
            interval = self._tick()
        except Exception as exc:
            if not _is_outage(exc):
                raise
            return self._outage(exc)
        if self._failures:
            log.info("beat: Redis is reachable again; scheduling resumed")
        self._failures = 0
        return interval

    def _tick(self) -> float:
        if not self._hold_lock():
            self._beat("standby")
            return STANDBY_POLL
        client = get_redis(self.app)
        if not client.exists(self.app.redbeat_conf.schedule_key):
            log.warning("beat: the schedule is missing from Redis (emptied or restarted without data); reinstalling it")
            self.setup_schedule()
        remaining = [self.max_interval]
        for entry in self.schedule.values():
            next_time_to_run = self.maybe_due(entry, **self._maybe_due_kwargs)
            if next_time_to_run:
                remaining.append(next_time_to_run)
        self._beat("active")
        return float(min(remaining))

    def maybe_due(self, entry: Any, **kwargs: Any) -> Any:
        is_due, next_time_to_run = entry.is_due()
        if is_due:
            log.debug("beat: sending due task %s (%s)", entry.name, entry.task)
            try:
                self.apply_async(entry, **kwargs)
            except Exception as exc:
                if _is_outage(exc):
                    raise  # one line from tick(), not a traceback per entry
                log.error("beat: could not send %s: %s", entry.name, exc)
        return next_time_to_run

    def _outage(self, exc: BaseException) -> float:
        self._failures += 1
        delay: float = min(MAX_BACKOFF, 0.5 * 2 ** min(self._failures, 6))
        cause = exc.__cause__ if isinstance(exc, SchedulingError) and exc.__cause__ else exc
        log.warning("beat: Redis or the broker is unavailable (%s: %s); next try in %.1fs",
                    type(cause).__name__, cause, delay)  # fmt: skip
        # The broker connection may be dead: let the next send open a new one.
        for name in ("producer", "connection"):
            self.__dict__.pop(name, None)
        return delay

    def _beat(self, role: str) -> None:
        if role != self._role:
            log.info(
                "beat: %s",
                "holding the lock: scheduling" if role == "active" else "another beat holds the lock: standing by",
            )
            self._role = role
        ctx = get_context()
        heartbeat.beat(ctx.redis, ctx.keys, "beat", heartbeat.node_name("beat"), role)

    # --- the lock --------------------------------------------------------------------------------

    def _hold_lock(self) -> bool:
        """Keep (extend) or take the lock without waiting; False while another beat holds it."""
        if not self.lock_key:
            return True
        if self.lock is None:
            self.lock = get_redis(self.app).lock(self.lock_key, timeout=self.lock_timeout, thread_local=False)
        if self.lock.local.token is not None:
            try:
                self.lock.extend(int(self.lock_timeout), replace_ttl=True)
                return True
            except LockError:
                log.warning("beat: lost the lock (expired during an outage, or Redis was emptied)")
                self.lock.local.token = None
        if self._take_over_own_lock() or self.lock.acquire(blocking=False):
            self._remember_token()
            return True
        return False

    def _lock_file(self) -> Path:
        return get_context().data_dir / "beat" / "lock.json"

    def _remember_token(self) -> None:
        token = self.lock.local.token
        record = {"token": token.decode() if isinstance(token, bytes) else token, "pid": os.getpid(),
                  "host": socket.gethostname()}  # fmt: skip
        with contextlib.suppress(*OUTAGE_ERRORS):  # for /healthz; the next take-over says it again
            ctx = get_context()
            heartbeat.record_lock_holder(ctx.redis, ctx.keys, token, socket.gethostname(), os.getpid())
        with contextlib.suppress(OSError):
            self._token_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self._token_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(record))
            temporary.replace(self._token_file)

    def _take_over_own_lock(self) -> bool:
        """The lock still held by a dead beat of this host (we remembered its token): take it now."""
        try:
            record = json.loads(self._token_file.read_text())
            token, pid, host = str(record["token"]), int(record["pid"]), str(record["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if host != socket.gethostname() or (pid != os.getpid() and _pid_alive(pid)):
            return False
        new_token = uuid.uuid1().hex
        client = get_redis(self.app)
        taken = client.eval(_TAKE_OVER, 1, self.lock_key, token, new_token, int(self.lock_timeout * 1000))
        if not taken:
            return False
        self.lock.local.token = new_token.encode()
        log.info("beat: took over the lock left by a stopped beat of this host (pid %d)", pid)
        return True

    def close(self) -> None:
        """Release the lock on the way out, so a successor starts at once; Redis may be gone."""
        try:
            if self.lock is not None and self.lock.local.token is not None and self.lock.owned():
                self.lock.release()
                log.info("beat: released the lock")
        except (redis.RedisError, LockError) as exc:
            log.warning("beat: could not release the lock (%s); the next beat of this host takes it back", exc)
        self.lock = None
        if self._role == "active":  # /healthz: gone now, not once the heartbeat is stale
            with contextlib.suppress(*OUTAGE_ERRORS):
                ctx = get_context()
                heartbeat.beat(ctx.redis, ctx.keys, "beat", heartbeat.node_name("beat"), heartbeat.STOPPED)
        with contextlib.suppress(Exception):
            super(RedBeatScheduler, self).close()

    @property
    def info(self) -> str:
        return f"       . lock -> {self.lock_key} ({self.lock_timeout}s)"
