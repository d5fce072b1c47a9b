"""Serving feeds from memory: through a Redis outage, one refresh at a time, gzip made at build
time, and the access log switch. A redis-server of the test's own (so it can be killed) and a real
uvicorn server on loopback."""

from __future__ import annotations

import gzip
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests
import uvicorn

from distributor import pipeline, rebuild
from distributor.context import Context
from distributor.normalize import Draft
from distributor.redis import redis_binary
from distributor.settings import Settings
from distributor.web.app import create_app
from distributor.web.feeds import FeedCache
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file, free_port, server, wait_for

BODY_FETCHES = ("hmget", "hgetall")  # the commands that bring a feed's bytes over


class OwnRedis:
    """A redis-server of this test's own, its AOF written on every change, so that it can be
    killed (SIGKILL, like a crash) and started again with its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def start(self) -> None:
        command = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

        def up() -> bool:
            try:
                return bool(self.client().ping())
            except redis.RedisError:
                return False

        wait_for(up, timeout=10, interval=0.05, what="redis-server")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def calls(self, *commands: str) -> int:
        stats = self.client().info("commandstats")
        return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in commands)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None:
        server.kill()


@pytest.fixture
def own_ctx(make_settings, own_redis: OwnRedis, prefix: str) -> Context:  # type: ignore[no-untyped-def]
    settings: Settings = make_settings(sources=[], redis={"url": own_redis.url, "key_prefix": prefix})
    return Context.create(settings)


def add(ctx: Context, n: int) -> None:
    """Article number n, published and its feeds rebuilt (as the worker does)."""
    draft = Draft(
        url=f"https://portal.example.gov.vn/tin/{n}",
        title=f"Bài viết số {n}",
        content="<p>Hội nghị sơ kết công tác dân vận 6 tháng đầu năm.</p>" * 20,
        published=(datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=n)).isoformat(),
        categories=["Tin Tức Sự Kiện"],
    )
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    pipeline.publish(ctx, article)
    rebuild.register_configured_feeds(ctx)
    rebuild.rebuild_feeds(ctx, ctx.store.feed_meta())


@contextmanager
def serving(ctx: Context, recheck: float = 3600.0) -> Iterator[str]:
    """The app under a real uvicorn on loopback, in a thread, its cache re-checking every `recheck` s."""
    app = create_app(ctx, enqueue=lambda task, args: None)
    app.state.feed_cache = FeedCache(recheck=recheck)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    wait_for(lambda: web.started, timeout=10, interval=0.05, what="uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        web.should_exit = True
        thread.join(timeout=10)


def get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers, timeout=10)


def raw_gzip(url: str) -> bytes:
    """The response bytes as sent (still compressed)."""
    response = requests.get(url, headers={"Accept-Encoding": "gzip"}, stream=True, timeout=10)
    assert response.headers["Content-Encoding"] == "gzip"
    return bytes(response.raw.read(decode_content=False))


def test_a_loaded_feed_is_served_from_memory_through_an_outage(  # type: ignore[no-untyped-def]
    own_ctx: Context, own_redis: OwnRedis, caplog
) -> None:
    add(own_ctx, 1)
    with serving(own_ctx, recheck=0.2) as base:
        before = get(f"{base}/feeds/all.rss")
        assert before.status_code == 200
        compressed = raw_gzip(f"{base}/feeds/all.rss")
        own_redis.kill()
        caplog.set_level(logging.WARNING, logger="distributor.web.feeds")

        def refresh_failed() -> bool:  # requests keep coming while the cache tries Redis again
            response = get(f"{base}/feeds/all.rss")
            assert response.status_code == 200 and response.content == before.content
            assert response.headers["ETag"] == before.headers["ETag"]
            return any("serving the copy in memory" in r.getMessage() for r in caplog.records)

        wait_for(refresh_failed, timeout=15, interval=0.1, what="a refresh that failed")
        assert all(r.exc_info is None for r in caplog.records), "a failed refresh logs one line, not a traceback"
        assert get(f"{base}/feeds/all.rss", **{"If-None-Match": before.headers["ETag"]}).status_code == 304
        assert raw_gzip(f"{base}/feeds/all.rss") == compressed

        never_loaded = get(f"{base}/feeds/all.atom")
        assert never_loaded.status_code == 503
        assert int(never_loaded.headers["Retry-After"]) > 0
        assert "unavailable" in never_loaded.json()["error"]["message"]


def test_after_redis_returns_a_rebuilt_feed_is_served_without_waiting_for_the_recheck(
    own_ctx: Context, own_redis: OwnRedis
) -> None:
    add(own_ctx, 1)
    with serving(own_ctx, recheck=3600) as base:
        before = get(f"{base}/feeds/all.rss")
        own_redis.kill()
        assert get(f"{base}/feeds/all.rss").content == before.content
        own_redis.start()  # with its data (AOF); the rebuild's announcement may come before the
        add(own_ctx, 2)  # listener is back: on reconnecting it checks every cached feed
        etag = own_ctx.store.render_etag("all", "rss")
        assert etag and etag != before.headers["ETag"]
        wait_for(lambda: get(f"{base}/feeds/all.rss").headers["ETag"] == etag, timeout=15, what="the rebuilt feed")
        assert "Bài viết số 2" in get(f"{base}/feeds/all.rss").text
        assert get(f"{base}/feeds/all.atom").status_code == 200


def test_a_cached_feed_is_rechecked_by_its_etag_and_fetched_only_when_it_changed(
    own_ctx: Context, own_redis: OwnRedis
) -> None:
    add(own_ctx, 1)
    with serving(own_ctx, recheck=0.1) as base:
        first = get(f"{base}/feeds/all.rss")
        own_redis.client().config_resetstat()
        checks = own_redis.calls("hget")

        def rechecked_twice() -> bool:
            assert get(f"{base}/feeds/all.rss").content == first.content
            return own_redis.calls("hget") >= checks + 2

        wait_for(rechecked_twice, timeout=10, interval=0.05, what="two re-checks")
        assert own_redis.calls(*BODY_FETCHES) == 0, "an unchanged feed is never fetched again"
        # A render written without an announcement (a lost message): the re-check finds it.
        own_ctx.store.save_render("all", "rss", b"<rss>new</rss>", '"new-etag"', datetime(2026, 12, 1, tzinfo=UTC))
        wait_for(lambda: get(f"{base}/feeds/all.rss").content == b"<rss>new</rss>", timeout=10, what="the new render")
        assert own_redis.calls(*BODY_FETCHES) == 1


def test_an_unreadable_rendering_keeps_the_copy_in_memory(  # type: ignore[no-untyped-def]
    own_ctx: Context, own_redis: OwnRedis, caplog
) -> None:
    add(own_ctx, 1)
    with serving(own_ctx, recheck=0.1) as base:
        first = get(f"{base}/feeds/all.rss")
        key = own_ctx.keys.feed_render("all", "rss")
        own_redis.client().hset(key, mapping={"etag": '"broken"', "modified": "not a number"})
        caplog.set_level(logging.ERROR, logger="distributor.web.feeds")

        def refresh_failed() -> bool:
            response = get(f"{base}/feeds/all.rss")
            assert response.status_code == 200 and response.content == first.content
            return any("unreadable rendering" in r.getMessage() for r in caplog.records)

        wait_for(refresh_failed, timeout=10, interval=0.05, what="the refresh of the unreadable rendering")


def test_concurrent_requests_during_a_refresh_fetch_the_body_once_and_wait_only_for_their_own_feed(
    own_ctx: Context, own_redis: OwnRedis
) -> None:
    add(own_ctx, 1)
    with serving(own_ctx, recheck=0.2) as base:
        old = get(f"{base}/feeds/all.rss").content
        rebuilt = datetime(2026, 12, 1, tzinfo=UTC)
        own_ctx.store.save_render("all", "rss", b"<rss>rebuilt</rss>", '"rebuilt"', rebuilt)  # unannounced
        time.sleep(0.3)  # the cached copy is now due for a re-check
        control = own_redis.client()
        control.config_resetstat()
        control.execute_command("CLIENT", "PAUSE", "2000", "ALL")  # Redis answers no one for 2 s
        with ThreadPoolExecutor(max_workers=64) as pool:
            cold = [pool.submit(get, f"{base}/feeds/all.atom") for _ in range(32)]  # never loaded
            stale = [pool.submit(get, f"{base}/feeds/all.rss") for _ in range(32)]
            answers = [future.result() for future in stale]
            # The cached feed answered (its old copy) while the other feed's load still waits.
            assert not any(future.done() for future in cold)
            assert {a.status_code for a in answers} == {200} and {a.content for a in answers} == {old}
            assert {future.result().status_code for future in cold} == {200}
        assert len({future.result().content for future in cold}) == 1
        wait_for(lambda: get(f"{base}/feeds/all.rss").content == b"<rss>rebuilt</rss>", timeout=10, what="rebuilt")
        # One body fetch for the 32 cold requests, one for the 32 requests on the stale copy.
        assert own_redis.calls(*BODY_FETCHES) == 2


def test_gzip_is_made_at_build_time_and_decompresses_to_the_body(own_ctx: Context, own_redis: OwnRedis) -> None:
    add(own_ctx, 1)
    stored = own_redis.client().hgetall(own_ctx.keys.feed_render("all", "rss"))
    assert gzip.decompress(stored[b"gzip"]) == stored[b"body"]
    with serving(own_ctx) as base:
        body = get(f"{base}/feeds/all.rss", **{"Accept-Encoding": "identity"}).content
        assert body == stored[b"body"]
        assert raw_gzip(f"{base}/feeds/all.rss") == stored[b"gzip"]  # served as stored: no compression


def test_a_render_stored_without_gzip_before_the_upgrade_is_still_served_gzipped(
    own_ctx: Context, own_redis: OwnRedis
) -> None:
    add(own_ctx, 1)
    key = own_ctx.keys.feed_render("all", "rss")
    own_redis.client().hdel(key, "gzip")
    body = own_redis.client().hget(key, "body")
    with serving(own_ctx) as base:
        compressed = raw_gzip(f"{base}/feeds/all.rss")
        assert gzip.decompress(compressed) == body
        assert raw_gzip(f"{base}/feeds/all.rss") == compressed  # compressed once, then kept
        assert get(f"{base}/feeds/all.rss").content == body


def test_a_feed_that_does_not_exist_is_404_and_one_that_appears_is_served(own_ctx: Context) -> None:
    with serving(own_ctx) as base:
        assert get(f"{base}/feeds/all.rss").status_code == 404
        add(own_ctx, 1)
        assert get(f"{base}/feeds/all.rss").status_code == 200


@pytest.mark.parametrize("setting", ["", "access_log = true"])
def test_the_access_log_is_off_unless_turned_on(tmp_path: Path, redis_url: str, prefix: str, setting: str) -> None:
    config = config_file(tmp_path, redis_url, prefix, f"[server]\n{setting}\n{ALL_FEEDS_AND_OUTBOX}")
    log = tmp_path / "serve.log"
    with server(config, log) as base:
        assert get(f"{base}/healthz?scope=web").status_code == 200
    logged = '"GET /healthz?scope=web HTTP/1.1" 200' in log.read_text()
    assert logged == bool(setting), log.read_text()
