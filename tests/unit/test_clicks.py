"""Clicks on our own posts: track_clicks links through /r/{id}/{channel}, counted once per reader,
redirected to the article with the channel's UTM tags, never anywhere else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
import redis
from starlette.testclient import TestClient

from distributor import clicks, pipeline
from distributor.context import Context
from distributor.normalize import Draft
from distributor.web.app import create_app

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
URL = "https://portal.example.gov.vn/tin-tức/hội-nghị-tổng-kết-công-tác-dân-vận?id=42&lang=vi"


@pytest.fixture
def web(make_settings) -> Iterator[tuple[Context, TestClient]]:  # type: ignore[no-untyped-def]
    ctx = Context.create(
        make_settings(
            sources=[],
            channels=[
                {"name": "outbox", "type": "outbox", "track_clicks": True, "utm_campaign": "tin-moi"},
                {"name": "plain", "type": "outbox", "utm": False},
            ],
        )
    )
    app = create_app(ctx, enqueue=lambda task, args: None)
    with TestClient(app, follow_redirects=False, client=("203.0.113.5", 40000)) as client:
        yield ctx, client


def add(ctx: Context, url: str = URL) -> str:
    draft = Draft(url=url, title="Hội nghị tổng kết", published=datetime.now(UTC).isoformat())
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    return article.id


def test_a_click_is_counted_then_redirected_to_the_article_with_the_channels_utm(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    article_id = add(ctx)
    article_url = ctx.store.get(article_id).url
    response = client.get(f"/r/{article_id}/outbox", headers={"user-agent": BROWSER})
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    target = response.headers["location"]
    assert target.isascii()  # Vietnamese characters percent-encoded in the Location header
    parts, article = urlsplit(target), urlsplit(article_url)
    assert (parts.scheme, parts.netloc, unquote(parts.path)) == (article.scheme, article.netloc, unquote(article.path))
    assert "hội-nghị-tổng-kết" in unquote(parts.path)
    assert parse_qsl(parts.query) == [
        *parse_qsl(article.query),
        ("utm_source", "outbox"),
        ("utm_medium", "social"),
        ("utm_campaign", "tin-moi"),
    ]
    assert clicks.clicks(ctx, article_id) == {"outbox": 1}
    assert clicks.top_clicks(ctx, "day") == [(article_id, 1)]
    # A channel without UTM tags sends the reader to the article's URL as it is.
    plain = client.get(f"/r/{article_id}/plain", headers={"user-agent": BROWSER})
    assert urlsplit(plain.headers["location"]).query == article.query
    assert clicks.clicks(ctx, article_id) == {"outbox": 1, "plain": 1}


def test_repeat_clicks_and_bots_are_redirected_but_not_counted(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    article_id = add(ctx)
    for agent in (BROWSER, BROWSER, "facebookexternalhit/1.1", "TelegramBot (like TwitterBot)", ""):
        assert client.get(f"/r/{article_id}/outbox", headers={"user-agent": agent}).status_code == 302
    assert clicks.clicks(ctx, article_id) == {"outbox": 1}
    phone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Zalo/24.07"  # another reader
    assert client.get(f"/r/{article_id}/outbox", headers={"user-agent": phone}).status_code == 302
    assert clicks.clicks(ctx, article_id) == {"outbox": 2}  # another reader counts


@pytest.mark.parametrize(
    "path", ["/r/{id}/nowhere", "/r/0000000000000000/outbox", "/r/{id}/javascript:alert(1)", "/r/{id}/%2Fevil.example"]
)
def test_unknown_articles_and_channels_are_404_never_a_redirect(web, path: str) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    article_id = add(ctx)
    response = client.get(path.format(id=article_id), headers={"user-agent": BROWSER})
    assert response.status_code == 404
    assert "location" not in response.headers
    assert set(response.json()["error"]) == {"status", "message"}
    assert clicks.clicks(ctx, article_id) == {}


def test_a_click_is_one_redis_round_trip(web, redis_url, prefix) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    article_id = add(ctx)
    client.get(f"/r/{article_id}/outbox", headers={"user-agent": BROWSER})  # the script is loaded by now
    seen: list[str] = []
    watching = threading.Event()

    def watch() -> None:  # MONITOR sees every command on the (shared) server: keep ours, by key prefix
        with redis.Redis.from_url(redis_url).monitor() as monitor:
            watching.set()
            for event in monitor.listen():
                if prefix in event["command"] and event.get("client_type") != "lua":  # not the script's own
                    seen.append(event["command"].split()[0].upper())
                if "STOP-WATCHING" in event["command"]:
                    return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    watching.wait(5)
    client.get(f"/r/{article_id}/outbox", headers={"user-agent": "Mozilla/5.0 another reader"})
    redis.Redis.from_url(redis_url).echo(f"{prefix} STOP-WATCHING")
    thread.join(5)
    assert [c for c in seen if c != "ECHO"] == ["EVALSHA"]
    assert clicks.clicks(ctx, article_id) == {"outbox": 2}


def test_a_channel_with_track_clicks_posts_the_counting_link(web) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = web
    article_id = add(ctx)
    article = ctx.store.get(article_id)
    tracked = ctx.channel("outbox").render(article)
    assert tracked.url == f"http://127.0.0.1:8000/r/{article_id}/outbox"
    assert tracked.url in tracked.text
    untracked = ctx.channel("plain").render(article)
    assert untracked.url == article.url


def test_a_client_past_its_hourly_limit_is_redirected_but_its_clicks_on_our_posts_not_counted(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(
        make_settings(sources=[], shares={"client_limit": 3}, channels=[{"name": "outbox", "type": "outbox"}])
    )
    articles = [add(ctx, f"{URL}&n={n}") for n in range(5)]
    with TestClient(create_app(ctx, enqueue=lambda task, args: None), follow_redirects=False,
                    client=("203.0.113.5", 40000)) as client:  # fmt: skip
        for article_id in articles:  # one client clicking through article after article
            assert client.get(f"/r/{article_id}/outbox", headers={"user-agent": BROWSER}).status_code == 302
    with TestClient(client.app, follow_redirects=False, client=("198.51.100.7", 1)) as other:
        assert other.get(f"/r/{articles[4]}/outbox", headers={"user-agent": BROWSER}).status_code == 302
    assert [clicks.clicks(ctx, a).get("outbox", 0) for a in articles] == [1, 1, 1, 0, 1]  # another reader counts
