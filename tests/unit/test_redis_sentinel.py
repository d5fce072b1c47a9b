"""Redis high availability: a `redis+sentinel://` (or `sentinel://`) URL for `[redis] url` reaches
the master through a real Sentinel, for the store, the web app's async clients and its feed
listener; malformed ones are config errors naming the URL without its password; Celery and
RedBeat get the same Redis in their own spelling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from distributor.context import Context
from distributor.errors import ConfigError
from distributor.redis import SentinelUrl, celery_url, connect, redbeat_settings, sentinel_url
from distributor.settings import Environment, settings_from_dict
from tests.integration.helpers import wait_for
from tests.sentinel import PASSWORD, SERVICE, Sentinel
from tests.unit.test_feed_serving import add, get, serving


def test_sentinel_url_forms() -> None:
    assert sentinel_url("redis://127.0.0.1:6379/0") is None
    assert sentinel_url("redis+sentinel://:pw@s1:26380,[::1],s3:1/portal/2") == SentinelUrl(
        (("s1", 26380), ("::1", 26379), ("s3", 1)), "portal", 2, None, "pw"
    )
    assert sentinel_url("sentinel://ops:p%40ss@s1/portal") == SentinelUrl((("s1", 26379),), "portal", 0, "ops", "p@ss")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis+sentinel://:hunter2@s1:26379/0", "service name"),
        ("redis+sentinel://:hunter2@s1:26379", "service name"),
        ("sentinel://:hunter2@s1:26379;sentinel://s2:26379/0", "separated by commas"),
        ("redis+sentinel://:hunter2@s1:26379/portal/zero", "'zero' is not a number"),
        ("redis+sentinel://:hunter2@s1:port/portal", "bad sentinel address"),
    ],
)
def test_a_malformed_sentinel_url_is_a_config_error_without_its_password(url: str, problem: str, site: Any) -> None:
    for table in ({"redis": {"url": url}}, {"worker": {"broker_url": url}}):
        with pytest.raises(ConfigError) as caught:
            settings_from_dict({"site": site, **table}, env=Environment(redis_url=None, data_dir=None))
        message = str(caught.value)
        assert problem in message and "redis+sentinel://[[user]:password@]host:port" in message
        assert "hunter2" not in message and "s1:" in message


def test_celery_and_redbeat_spell_the_same_sentinel() -> None:
    url = "redis+sentinel://:p%40ss@s1:26380,s2/portal/3"
    assert celery_url(url) == (
        "sentinel://:p%40ss@s1:26380/3;sentinel://:p%40ss@s2:26379/3",
        {"master_name": "portal", "sentinel_kwargs": {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}},
    )
    redbeat_url, options = redbeat_settings(url)
    assert redbeat_url.startswith("redis-sentinel")
    assert options["sentinels"] == [("s1", 26380), ("s2", 26379)]
    assert (options["service_name"], options["db"], options["password"]) == ("portal", 3, "p@ss")
    assert celery_url("redis://h:1/0") == ("redis://h:1/0", {}) and redbeat_settings("redis://h:1/0")[1] == {}


@pytest.mark.parametrize("scheme", ["redis+sentinel", "sentinel"])
def test_context_on_a_sentinel_url_stores_and_reads_articles(
    sentinel: Sentinel, make_settings, prefix: str, scheme: str
) -> None:  # type: ignore[no-untyped-def]
    url = sentinel.url(db=1, scheme=scheme)
    ctx = Context.create(make_settings(sources=[], redis={"url": url, "key_prefix": prefix}))
    add(ctx, 1)
    [article] = ctx.store.newest(0, 10)
    assert ctx.store.get(article.id) == article and article.title == "Bài viết số 1"
    assert ctx.store.load_render("all", "rss")[b"body"].count(b"<item>") == 1
    # It really is the master behind the sentinel, in the database the URL names.
    direct = redis.Redis(port=sentinel.master_port, db=1, password=PASSWORD)
    assert direct.exists(ctx.keys.feed_render("all", "rss"))


def test_web_app_serves_and_follows_feeds_through_sentinel(sentinel: Sentinel, make_settings, prefix: str) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(make_settings(sources=[], redis={"url": sentinel.url(), "key_prefix": prefix}))
    add(ctx, 1)
    with serving(ctx) as base:  # feeds are re-checked only when the listener hears of a rebuild
        assert get(f"{base}/feeds/all.rss").text.count("<item>") == 1
        add(ctx, 2)
        wait_for(lambda: get(f"{base}/feeds/all.rss").text.count("<item>") == 2, what="the pub/sub refresh")
        assert get(f"{base}/api/articles").json()["articles"][0]["title"] == "Bài viết số 2"


def test_async_client_and_a_wrong_service_name(sentinel: Sentinel) -> None:
    async def roundtrip() -> str:
        client = connect(sentinel.url(), asynchronous=True, decode_responses=True)
        await client.set("test:sentinel:async", "xin chào", ex=10)
        value = await client.get("test:sentinel:async")
        await client.aclose()
        return str(value)

    assert asyncio.run(roundtrip()) == "xin chào"
    wrong = sentinel.url().replace(f"/{SERVICE}/", "/khong-co/")
    with pytest.raises(redis.ConnectionError, match="khong-co"):
        connect(wrong).ping()
