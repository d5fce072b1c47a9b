"""`distributor run`'s children (worker, beat) kept alive, and stopped with it, whatever happens.

- A child that dies is restarted after a short backoff; one that keeps dying (`GIVE_UP_AFTER`
  deaths within `CRASH_WINDOW` seconds: a broken config, a missing binary) makes the supervisor
  give up, so that `run` exits non-zero and its own supervisor (systemd, Docker) sees the truth.
- Each child runs in its own process group (Ctrl-C reaches `run`, which stops them in order) and
  gets SIGTERM from the kernel if `run` itself dies, even by SIGKILL (PR_SET_PDEATHSIG), so no
  orphaned beat is ever left holding the lock and queueing polls that nobody consumes.
- Stopping sends SIGTERM to every group, waits up to `grace` seconds (a worker finishes its
  running deliveries), then kills what is left, grandchildren included.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger("distributor.run")

CRASH_WINDOW = 120.0
GIVE_UP_AFTER = 5
MAX_BACKOFF = 30.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own process group that receives SIGTERM when this process dies."""
    return subprocess.Popen(list(argv), env=env, start_new_session=True, preexec_fn=_die_with_parent)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> int | None:
    """SIGTERM the child's process group, wait up to `grace`, then SIGKILL the group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("pid %d did not stop within %.0fs: killing it", process.pid, grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # grandchildren (a prefork pool) go too
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return process.returncode


@dataclass
class Child:
    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=lambda: deque(maxlen=GIVE_UP_AFTER))
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self, grace: float = 30.0, on_give_up: Callable[[], None] | None = None, max_backoff: float = MAX_BACKOFF
    ) -> None:
        self.children: list[Child] = []
        self.grace = grace
        self.max_backoff = max_backoff
        self.on_give_up = on_give_up
        self.gave_up: str | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def add(self, name: str, start: Callable[[], subprocess.Popen[bytes]]) -> Child:
        child = Child(name, start)
        with self._lock:
            child.process = start()
            self.children.append(child)
        log.info("started %s (pid %d)", name, child.process.pid)
        return child

    def run(self) -> None:
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for child in self.children:
                    self._check(child)

    def _check(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restart_at = None
                child.process = child.start()
                log.info("restarted %s (pid %d)", child.name, child.process.pid)
            return
        if child.process is None or child.process.poll() is None:
            return
        code = child.process.returncode
        child.deaths.append(now)
        recent = [t for t in child.deaths if now - t <= CRASH_WINDOW]
        if len(recent) >= GIVE_UP_AFTER:
            log.error(
                "%s exited with status %s, %d times in %.0fs: giving up", child.name, code, len(recent), CRASH_WINDOW
            )
            self.gave_up = child.name
            self._stopping.set()
            if self.on_give_up is not None:
                self.on_give_up()
            return
        delay = min(self.max_backoff, 2.0 ** (len(recent) - 1))
        log.error("%s exited with status %s; restarting it in %.0fs", child.name, code, delay)
        child.restart_at = now + delay

    def stop(self) -> None:
        """Stop every child (in reverse order of start), whatever state they are in."""
        self._stopping.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)
        with self._lock:
            for child in reversed(self.children):
                if child.process is not None:
                    stop_group(child.process, self.grace)
