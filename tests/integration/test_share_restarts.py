"""N human clicks count exactly N through restarts: Redis killed (SIGKILL) while clicks go on and
restarted, the web process stopped (SIGTERM) right after clicks and started again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis as redis_py
import requests

from distributor.context import Context
from distributor.settings import settings_from_dict
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file, server, wait_for
from tests.integration.test_redis_outages import redis_server
from tests.unit.test_web import add

SHARES = "\n[shares]\nclient_limit = 0\n"  # every click here comes from 127.0.0.1


def article_on(tmp_path: Path, url: str, prefix: str) -> tuple[Path, Context, str]:
    """A config on this test's Redis and one stored article to click on."""
    config = config_file(tmp_path, url, prefix, ALL_FEEDS_AND_OUTBOX + SHARES)
    ctx = Context.create(
        settings_from_dict({"site": {"title": "t", "url": "https://portal.example.gov.vn"},
                            "redis": {"url": url, "key_prefix": prefix},
                            "paths": {"data_dir": str(tmp_path / "data")}})
    )  # fmt: skip
    return config, ctx, add(ctx, "tin-tức/chia-sẻ?id=1", "Chia sẻ")


def clicker(path: str, check: Callable[[requests.Response], None] = lambda answer: None) -> Callable[[str, int], None]:
    """Clicks on `path` by distinct readers (one user agent each), each answered with a redirect."""
    reader = iter(range(1000))

    def clicks(base: str, n: int) -> None:
        for _ in range(n):
            ua = f"Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0 reader/{next(reader)}"
            answer = requests.get(f"{base}{path}", headers={"User-Agent": ua}, allow_redirects=False, timeout=5)
            assert answer.status_code == 302, answer.text
            check(answer)

    return clicks


def test_n_clicks_count_exactly_n_across_redis_and_web_restarts(tmp_path: Path) -> None:
    prefix = "restarts:"
    with redis_server(tmp_path / "redis") as redis_:
        config, ctx, article_id = article_on(tmp_path, redis_.url, prefix)
        clicks = clicker(f"/s/{article_id}/zalo")

        def total() -> int:
            try:
                return int(redis_py.Redis.from_url(redis_.url).hget(ctx.keys.shares(article_id), "total") or 0)
            except redis_py.RedisError:
                return -1

        with server(config, tmp_path / "web1.log") as base:
            clicks(base, 10)
            redis_.kill()  # whatever was not applied yet stays queued in the web process
            clicks(base, 10)  # answered from memory while Redis is down
            redis_.start()
            wait_for(lambda: total() == 20, timeout=15, what="the clicks queued through the outage")
            clicks(base, 10)
        # the web process was stopped (SIGTERM) right after its last clicks: the stop flushed them
        assert total() == 30
        with server(config, tmp_path / "web2.log") as base:
            clicks(base, 5)
            wait_for(lambda: total() == 35, timeout=10, what="the last clicks")
        redis_.kill()
        redis_.start()
        assert total() == 35  # nothing more, nothing less, after a crash of Redis (AOF)
        assert redis_py.Redis.from_url(redis_.url).pfcount(ctx.keys.share_uniques(article_id)) in range(34, 37)


def test_clicks_on_our_posts_count_exactly_across_redis_and_web_restarts(tmp_path: Path) -> None:
    """/r/ counts inside Redis, one EVALSHA a click: after a Redis restart (its script cache empty, the
    connections gone) the next click is still answered and counted, and a web restart loses none."""
    prefix = "rrestarts:"
    with redis_server(tmp_path / "redis") as redis_:
        config, ctx, article_id = article_on(tmp_path, redis_.url, prefix)

        def to_the_article(answer: requests.Response) -> None:
            assert answer.headers["location"].startswith("https://portal.example.gov.vn/")

        clicks = clicker(f"/r/{article_id}/outbox", to_the_article)

        def total() -> int:
            return int(redis_py.Redis.from_url(redis_.url).hget(ctx.keys.clicks(article_id), "outbox") or 0)

        with server(config, tmp_path / "web1.log") as base:
            clicks(base, 10)
            redis_.kill()
            redis_.start()  # forgets the loaded script; the web process's connections are dead
            clicks(base, 10)
            assert total() == 20
            redis_.kill()  # and left down: a reader still reaches an article this process knows
            clicks(base, 3)
            unknown = requests.get(f"{base}/r/0123456789abcdef/outbox", allow_redirects=False, timeout=5)
            assert unknown.status_code == 503  # never seen here: no guess at its URL
            redis_.start()
            assert total() == 20  # the clicks during the outage were redirected, not counted
        with server(config, tmp_path / "web2.log") as base:
            clicks(base, 5)
        redis_.kill()
        redis_.start()
        assert total() == 25


def test_a_share_click_during_a_long_outage_still_redirects(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The share path caches an article's URL for a minute; with Redis down longer than that, the
    entry it has is used rather than answering 503."""
    import asyncio

    import redis.asyncio as aioredis

    from distributor.web import share_counter

    with redis_server(tmp_path / "redis") as redis_:
        _config, ctx, article_id = article_on(tmp_path, redis_.url, "stale:")
        monkeypatch.setattr(share_counter, "CACHE_TTL", 0.0)  # every entry is past its time at once

        async def clicks_through_an_outage() -> None:
            client = aioredis.Redis.from_url(redis_.url, socket_timeout=1, decode_responses=True)
            cache = share_counter.ArticleCache(client, ctx.keys)
            first = await cache.get(article_id)
            assert first is not None and first.url.startswith("https://portal.example.gov.vn/")
            redis_.kill()
            again = await cache.get(article_id)
            assert again is not None and again.url == first.url
            try:
                await cache.get("0123456789abcdef")
            except (redis_py.RedisError, OSError):
                pass  # an article it never saw: the outage answer, not a guess
            else:
                raise AssertionError("an unknown article was answered while Redis was down")

        asyncio.run(clicks_through_an_outage())
