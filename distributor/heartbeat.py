"""Heartbeats: each worker and beat process says it is alive in Redis every few seconds, so that
`/healthz` and `distributor health` tell the truth about the parts they cannot see.

One hash holds every process's last beat ('worker:celery@host' -> '1733320000.5 active'). A beat
process is 'active' while it holds the RedBeat lock and 'standby' while it waits for it; only an
active beat sends polls and sweeps, so the installation is healthy when one worker and one active
beat have beaten within `STALE_AFTER` seconds.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import redis

from distributor.keys import Keys

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between two beats of a healthy process
STALE_AFTER = 30.0  # a few intervals: a process silent for this long is down or cut off from Redis
FORGET_AFTER = 24 * 3600.0  # a process silent this long is dropped from the listing

Component = Literal["worker", "beat"]
STOPPED = "stopped"  # the role a process writes on a clean shutdown: gone now, not in 30 seconds


@dataclass(frozen=True)
class Beat:
    component: str
    node: str
    at: float
    role: str
    queues: tuple[str, ...] | None = None  # a worker's queues; None: not said (it consumes them all)

    def age(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.at)

    def fresh(self, now: float | None = None) -> bool:
        """Beaten recently, and not the last word of a process that said it stopped."""
        return self.role != STOPPED and self.age(now) <= STALE_AFTER


def node_name(component: Component) -> str:
    """How a process names itself: Celery's node name for workers, the host name for beats."""
    host = socket.gethostname()
    return f"celery@{host}" if component == "worker" else host


def beat(
    client: redis.Redis,
    keys: Keys,
    component: Component,
    node: str,
    role: str = "active",
    queues: tuple[str, ...] | None = None,
) -> None:
    said = f" {','.join(queues)}" if queues else ""
    client.hset(keys.heartbeats(), f"{component}:{node}", f"{time.time():.3f} {role}{said}")


def parse(raw: dict[str, str]) -> list[Beat]:
    beats = []
    for field, value in raw.items():
        component, _, node = field.partition(":")
        at, _, rest = value.partition(" ")
        role, _, queue_list = rest.partition(" ")
        queues = tuple(q for q in queue_list.split(",") if q) or None
        try:
            beats.append(Beat(component, node, float(at), role or "active", queues))
        except ValueError:
            continue  # not ours to judge: skip what does not parse
    return sorted(beats, key=lambda b: (b.component, b.node))


def read(client: redis.Redis, keys: Keys) -> list[Beat]:
    return parse(client.hgetall(keys.heartbeats()))


@dataclass(frozen=True)
class Verdict:
    ok: bool
    worker: str  # 'up' | 'stale 42s' | 'none'
    beat: str
    unconsumed: tuple[str, ...] = ()  # queues no fresh worker consumes (polls, a channel's posts...)


def judge(beats: list[Beat], now: float | None = None, queues: list[str] | None = None) -> Verdict:
    """Healthy when at least one active beat is fresh and fresh workers consume every queue in
    `queues` (workers dedicated with --queues may leave polls or a channel's posts to nobody)."""
    now = now or time.time()

    def describe(component: str, role: str | None) -> tuple[bool, str]:
        mine = [b for b in beats if b.component == component and (role is None or b.role == role)]
        if not mine:
            return False, "none"
        if any(b.fresh(now) for b in mine):
            return True, "up"
        newest = max(mine, key=lambda b: b.at)
        return False, (STOPPED if newest.role == STOPPED else f"stale {newest.age(now):.0f}s")

    worker_ok, worker = describe("worker", None)
    beat_ok, beat_state = describe("beat", "active")
    live = [b for b in beats if b.component == "worker" and b.fresh(now)]
    consumed = {q for b in live for q in (b.queues or queues or [])}
    unconsumed = tuple(q for q in (queues or []) if q not in consumed) if live else ()
    if worker_ok and unconsumed:
        worker = f"up; no worker consumes {', '.join(unconsumed)}"
    return Verdict(ok=worker_ok and beat_ok and not unconsumed, worker=worker, beat=beat_state, unconsumed=unconsumed)


def forget_old(client: redis.Redis, keys: Keys, beats: list[Beat], now: float | None = None) -> None:
    old = [f"{b.component}:{b.node}" for b in beats if b.age(now) > FORGET_AFTER]
    if old:
        client.hdel(keys.heartbeats(), *old)


class Heart(threading.Thread):
    """A daemon thread that beats every INTERVAL; Redis errors are logged once per outage."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        component: Component,
        node: str,
        alive: Callable[[], bool] | None = None,
        queues: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name=f"heartbeat-{component}", daemon=True)
        self.client, self.keys, self.component, self.node = client, keys, component, node
        self.alive = alive or (lambda: True)  # e.g. "the worker's consumer is connected to its broker"
        self.queues = queues
        self.stopped = threading.Event()

    def run(self) -> None:
        failing = False
        beats = 0
        while not self.stopped.is_set():
            try:
                if self.alive():
                    beat(self.client, self.keys, self.component, self.node, queues=self.queues)
                    beats += 1
                    if beats % 720 == 1:  # at start, then hourly: containers get new host names
                        forget_old(self.client, self.keys, read(self.client, self.keys))
                if failing:
                    log.info("heartbeat: Redis is back")
                failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning("heartbeat: Redis unavailable (%s); trying again every %.0fs", exc, INTERVAL)
                failing = True
            self.stopped.wait(INTERVAL)

    def stop(self) -> None:
        self.stopped.set()


# --- who holds the beat lock (RedBeat's lock names no owner: the beat that takes it says so) -----


def _digest(token: str | bytes) -> str:
    raw = token if isinstance(token, bytes) else token.encode()
    return hashlib.sha256(raw).hexdigest()[:16]  # the token itself would let anyone release the lock


def record_lock_holder(client: redis.Redis, keys: Keys, token: str | bytes, host: str, pid: int) -> None:
    client.hset(
        keys.beat_holder(), mapping={"host": host, "pid": pid, "since": f"{time.time():.3f}", "token": _digest(token)}
    )


def lock_holder(token: str | None, ttl_ms: int, holder: dict[str, str], now: float | None = None) -> dict[str, object]:
    """What /healthz says about the beat lock: free, or held (by which host and process, since when,
    expiring in how many seconds unless renewed). A holder record that does not match the lock's
    token (an older beat's) is not believed."""
    if not token:
        return {"held": False}
    said: dict[str, object] = {"held": True, "expires_in": round(max(0, ttl_ms) / 1000, 1)}
    if holder.get("token") == _digest(token):
        since = float(holder.get("since") or 0)
        said |= {"host": holder.get("host", ""), "pid": int(holder.get("pid") or 0),
                 "held_for": round(max(0.0, (now or time.time()) - since))}  # fmt: skip
    else:
        said["host"] = "unknown"
    return said
