"""Start the real processes (Celery worker with beat, the HTTP server) for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]


# The default installation's shape: a site-wide feed with category feeds, and the outbox.
ALL_FEEDS_AND_OUTBOX = """
[[feeds]]
name = "all"
per_category = true

[[channels]]
name = "outbox"
type = "outbox"
"""


def config_file(tmp_path: Path, redis_url: str, prefix: str, rest: str) -> Path:
    """A config on the test Redis and a temp data dir, watching `tmp_path/articles` every second;
    `rest` adds the feeds and channels (TOML)."""
    (tmp_path / "articles").mkdir(exist_ok=True)
    path = tmp_path / "distributor.toml"
    path.write_text(
        f"""
[site]
title = "Cổng thông tin thử nghiệm"
url = "https://portal.example.gov.vn"
public_url = "http://127.0.0.1:8000"

[redis]
url = "{redis_url}"
key_prefix = "{prefix}"

[paths]
data_dir = "{tmp_path / "data"}"

[[sources]]
name = "articles"
type = "directory"
path = "{tmp_path / "articles"}"
interval = "1s"
{rest}""",
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@contextmanager
def process(
    args: list[str], config: Path, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group; on the way out the whole group is stopped (then killed),
    so that nothing it started (a beat, a pool) outlives the test."""
    env = {**os.environ, "DISTRIBUTOR_CONFIG": str(config), "PYTHONUNBUFFERED": "1", **(env or {})}
    env.pop("DISTRIBUTOR_REDIS_URL", None)
    with log.open("ab") as out:
        child = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield child
        finally:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                child.wait(timeout=20)
            with suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started by `process` and everything it started."""
    with suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


@contextmanager
def worker(config: Path, log: Path, beat: bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """`celery -A worker worker`, with beat embedded unless `beat=False` (then start `beat()`)."""
    args = [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool", "threads", "--concurrency", "4"]
    args += [
        "-Q",
        "distributor,engagement",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]
    args += ["--beat"] if beat else []
    with process(args, config, log) as child:
        yield child


@contextmanager
def beat(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with process([sys.executable, "-m", "distributor.cli", "beat"], config, log) as child:
        yield child


@contextmanager
def server(config: Path, log: Path) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "distributor.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with process(args, config, log):
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz?scope=web", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, what=f"the HTTP server (log: {log})")
        yield base
