"""A real Redis Sentinel for tests: a password-protected master `redis-server` and one sentinel
(the same binary run with `--sentinel`), on free loopback ports under a temporary directory."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis

from distributor.redis import redis_binary

SERVICE = "portal"
PASSWORD = "s3cret-sentinel-pw"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Sentinel:
    """A master (with replicas added by `replica`) watched by one sentinel."""

    directory: Path
    sentinel_port: int
    master_port: int
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, db: int = 0, scheme: str = "redis+sentinel") -> str:
        return f"{scheme}://:{PASSWORD}@127.0.0.1:{self.sentinel_port}/{SERVICE}/{db}"

    def server(self, port: int, *extra: str) -> subprocess.Popen[bytes]:
        work = self.directory / str(port)
        work.mkdir(exist_ok=True)
        command = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work), "--save", ""]
        command += ["--requirepass", PASSWORD, "--masterauth", PASSWORD, "--daemonize", "no", *extra]
        child = subprocess.Popen(command, stdout=(work / "out.log").open("wb"), stderr=subprocess.STDOUT)
        self.processes[port] = child
        wait_until(lambda: _pings(port, PASSWORD), f"redis-server on port {port}")
        return child

    def replica(self) -> int:
        port = free_port()
        self.server(port, "--replicaof", "127.0.0.1", str(self.master_port))
        return port

    def master_address(self) -> tuple[str, int]:
        client = redis.Redis(port=self.sentinel_port, socket_timeout=2)
        host, port = client.sentinel_get_master_addr_by_name(SERVICE)
        return str(host), int(port)


def _pings(port: int, password: str | None = None) -> bool:
    try:
        return bool(redis.Redis(port=port, password=password, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def wait_until(check, what: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def running_sentinel(directory: Path, replicas: int = 0, down_after_ms: int = 1000) -> Iterator[Sentinel]:
    """Start the master, `replicas` replicas in sync with it, and the sentinel (which then knows
    them all from its first look at the master); stop everything afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    setup = Sentinel(directory, free_port(), free_port())
    with ExitStack() as stack:
        stack.callback(_stop_all, setup)
        setup.server(setup.master_port)
        for _ in range(replicas):
            port = setup.replica()
            wait_until(lambda port=port: _in_sync(port), f"the replica on port {port} to sync")
        conf = directory / "sentinel.conf"  # the sentinel rewrites its file: it must be writable
        conf.write_text(
            f"port {setup.sentinel_port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {setup.master_port} 1\n"
            f"sentinel auth-pass {SERVICE} {PASSWORD}\n"
            f"sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        log = (directory / "sentinel.log").open("wb")
        command = [redis_binary(), str(conf), "--sentinel"]
        setup.processes[setup.sentinel_port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: _pings(setup.sentinel_port), "the sentinel")
        wait_until(lambda: _knows_master(setup), "the sentinel to know the master")
        wait_until(lambda: _known_replicas(setup) >= replicas, "the sentinel to know the replicas")
        yield setup


def _knows_master(setup: Sentinel) -> bool:
    try:
        return setup.master_address()[1] == setup.master_port
    except (redis.RedisError, TypeError):
        return False


def _in_sync(port: int) -> bool:
    info = redis.Redis(port=port, password=PASSWORD, socket_timeout=1).info("replication")
    return info.get("master_link_status") == "up"


def _known_replicas(setup: Sentinel) -> int:
    try:
        found = redis.Redis(port=setup.sentinel_port, socket_timeout=2).sentinel_slaves(SERVICE)
    except redis.RedisError:
        return 0
    return sum(1 for replica in found if not replica.get("is_disconnected"))


def _stop_all(setup: Sentinel) -> None:
    for child in setup.processes.values():
        with suppress(ProcessLookupError):
            child.kill()
    for child in setup.processes.values():
        child.wait()
