"""Shared fixtures: a real Redis (the machine's, else an embedded redis-server), isolated per test
by a unique key prefix, and a settings factory."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from distributor.context import Context, reset_context
from distributor.redis import EmbeddedRedis
from distributor.settings import Settings, settings_from_dict
from tests.sentinel import Sentinel, running_sentinel

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MACHINE_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis when it answers, else a real embedded redis-server for the session."""
    if _reachable(MACHINE_REDIS):
        yield MACHINE_REDIS
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentinel]:
    """A real Redis Sentinel (a password-protected master and one sentinel) for the session;
    `sentinel.url()` is the `redis+sentinel://` URL of its master. Isolate keys with `prefix`."""
    with running_sentinel(tmp_path_factory.mktemp("sentinel")) as found:
        yield found


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    value = f"test:{uuid.uuid4().hex[:10]}:"
    yield value
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{value}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def site() -> dict[str, Any]:
    return {
        "title": "Cổng thông tin thử nghiệm",
        "url": "https://portal.example.gov.vn",
        "public_url": "http://127.0.0.1:8000",
    }


@pytest.fixture
def make_settings(tmp_path: Path, redis_url: str, prefix: str, site: dict[str, Any]):  # type: ignore[no-untyped-def]
    """Settings on the test Redis and a temporary data dir; pass tables to override."""

    def make(**tables: Any) -> Settings:
        raw: dict[str, Any] = {
            "site": site,
            "redis": {"url": redis_url, "key_prefix": prefix},
            "paths": {"data_dir": str(tmp_path / "data")},
            "feeds": [{"name": "all", "per_category": True}],
            "channels": [{"name": "outbox", "type": "outbox"}],
        }
        raw.update(tables)
        return settings_from_dict(raw)

    return make


@pytest.fixture
def ctx(make_settings) -> Iterator[Context]:  # type: ignore[no-untyped-def]
    reset_context()
    yield Context.create(make_settings(sources=[]))
    reset_context()


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """A CLI command run in-process (`distributor serve`, `worker`...) installs this process's root
    log handler (distributor.logs) on the stream of that moment; the next test starts without it."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
