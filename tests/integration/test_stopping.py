"""Stopping stops everything, and a restarted beat schedules at once.

- `distributor run` stopped (SIGTERM) while a delivery outlives the worker's stop timeout: the
  worker is killed, and so is everything else `run` started; nothing keeps the beat lock.
- `distributor run` killed with SIGKILL: the kernel stops its children (no orphaned beat).
- A beat killed with SIGKILL and started again on the same host takes its own lock back at once
  instead of waiting for it to expire (a minute).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.store import Store
from tests.fakes.server import FakeServer, Reply, Request
from tests.integration.helpers import (
    ALL_FEEDS_AND_OUTBOX,
    beat,
    config_file,
    free_port,
    kill_group,
    process,
    wait_for,
)


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (the test's own config path)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


class SlowReceiver(FakeServer):
    """A webhook receiver that takes a minute to answer: a delivery that outlives any stop timeout."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()
        self.add("POST", r"/slow", self._slow)

    def _slow(self, request: Request) -> Reply:
        self.started.set()
        self.release.wait(60)
        return Reply(200, {"id": "late"})


def run_args(port: int) -> list[str]:
    return [sys.executable, "-m", "distributor.cli", "run", "--host", "127.0.0.1", "--port", str(port)]


def test_run_stopped_during_a_slow_delivery_leaves_nothing_behind(tmp_path: Path, redis_url: str, prefix: str) -> None:
    with SlowReceiver() as receiver:
        config = config_file(tmp_path, redis_url, prefix, f"""
[worker]
stop_timeout = "2s"

[[channels]]
name = "slow"
type = "webhook"
url = "{receiver.url}/slow"
""")  # fmt: skip
        store = Store(redis_py.Redis.from_url(redis_url, decode_responses=True), redis_py.Redis.from_url(redis_url),
                      Keys(prefix))  # fmt: skip
        port = free_port()
        try:
            with process(run_args(port), config, tmp_path / "run.log") as run:
                wait_for(lambda: store.first_poll_done("articles"), timeout=60, what="the first poll")
                (tmp_path / "articles" / "a.md").write_text('---\ntitle: "Bài chậm"\n---\nNội dung.\n', "utf-8")
                assert receiver.started.wait(30), "the slow delivery never started"
                assert len(processes_with(str(config))) >= 3  # run, its worker, its beat
                stopped = time.monotonic()
                run.send_signal(signal.SIGTERM)
                run.wait(timeout=30)
                assert time.monotonic() - stopped < 15  # the stop timeout, then the kill
            wait_for(lambda: not processes_with(str(config)), timeout=10, what="every child to be gone")
            lock = redis_py.Redis.from_url(redis_url).get(f"{prefix}beat::lock")
            assert lock is None  # beat stopped cleanly and released its lock
        finally:
            receiver.release.set()


def test_run_killed_outright_takes_its_children_with_it(tmp_path: Path, redis_url: str, prefix: str) -> None:
    config = config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX)
    port = free_port()
    with process(run_args(port), config, tmp_path / "run.log") as run:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(f"{base}/healthz"), timeout=60, what="worker and beat to be healthy")
        children = [pid for pid in processes_with(str(config)) if pid != run.pid]
        assert len(children) >= 2
        run.kill()  # SIGKILL to `run` alone: no chance to stop anything itself
        run.wait()
        wait_for(lambda: not processes_with(str(config)), timeout=30, what="the orphaned children to stop")


def test_a_restarted_beat_takes_its_own_lock_back_at_once(tmp_path: Path, redis_url: str, prefix: str) -> None:
    config = config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX)
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    lock_key = f"{prefix}beat::lock"
    with process([sys.executable, "-m", "distributor.cli", "beat"], config, tmp_path / "beat-1.log") as first:
        wait_for(lambda: client.get(lock_key), timeout=30, what="the first beat to take the lock")
        kill_group(first)  # its lock stays in Redis for up to a minute
    assert client.ttl(lock_key) > 30
    started = time.monotonic()
    with beat(config, tmp_path / "beat-2.log"):
        log = tmp_path / "beat-2.log"
        wait_for(lambda: "holding the lock" in log.read_text(errors="replace"), timeout=30, what="the new beat")
        took = time.monotonic() - started
    assert took < 15, f"the restarted beat waited {took:.0f}s for its predecessor's lock"
    assert "took over the lock left by a stopped beat" in log.read_text(errors="replace")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False
