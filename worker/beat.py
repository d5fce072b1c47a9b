"""RedBeat, made to ride out a Redis restart.

Stock RedBeat ends beat for good when Redis goes away for a moment (extending its lock raises), so
polls and sweeps stop until someone restarts it; and a Redis that comes back empty has lost the
schedule and the lock. Here a tick that meets a Redis error logs it and tries again shortly, a lost
lock is taken again when free (else this beat stands by: another one runs), and a lost schedule is
installed again from the configuration.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from redbeat import RedBeatScheduler
from redbeat.schedulers import LUA_EXTEND_TO_SCRIPT, get_redis

log = logging.getLogger(__name__)

RETRY = 1.0  # seconds before a tick that met a Redis error is tried again


class Scheduler(RedBeatScheduler):  # type: ignore[misc]
    lock: Any  # RedBeat's redis-py Lock, None until taken

    def tick(self, min: Any = min, **kwargs: Any) -> float:  # Celery's signature
        try:
            if self.lock_key and not self._hold_lock():
                return float(self.max_interval)
            statics = self.app.redbeat_conf.statics_key
            if self.app.redbeat_conf.schedule and not get_redis(self.app).exists(statics):
                log.warning("beat: the schedule is missing from Redis (it restarted without its data); installing it")
                self.setup_schedule()
            return float(super().tick(min=min, **kwargs))
        except redis.RedisError as exc:
            log.warning("beat: Redis unavailable (%s: %s); trying again in %.0f s", type(exc).__name__, exc, RETRY)
            return RETRY

    def _hold_lock(self) -> bool:
        """Keep the single-beat lock; take it again if Redis lost it. False: another beat has it."""
        if self.lock is None:  # Redis was down when this beat started
            client = get_redis(self.app)
            lock: Any = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
            lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)  # extend *to* the timeout, as RedBeat
            self.lock = lock
            return self._take_lock()
        try:
            self.lock.extend(int(self.lock_timeout))
            return True
        except redis.exceptions.LockNotOwnedError:
            return self._take_lock()

    def _take_lock(self) -> bool:
        if self.lock.acquire(blocking=False):
            log.warning("beat: took the lock (again)")
            return True
        log.info("beat: another beat holds the lock; standing by")
        return False

    def close(self) -> None:
        with contextlib.suppress(redis.RedisError):  # Redis may be the reason we stop
            super().close()
