"""Share counting through the app: redirect targets, 404s, honest counts (repeats, bots, the
client limit, uniques), exactly-once batches, the share API with CORS, and the share bar."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
import redis
from starlette.testclient import TestClient

from distributor.context import Context
from distributor.settings import SHARE_NETWORKS
from distributor.shares import Batch, Click, is_bot
from distributor.web.app import create_app
from tests.unit.test_web import BROWSER, REMOTE, add

VI_PATH = "tin-tức/bài-viết-số-1?id=5&loại=tin"  # what `add` is given: Vietnamese letters and a query
TITLE = 'Hội nghị sơ kết công tác dân vận & "đổi mới"'
PORTAL = "https://portal.example.gov.vn"


def settle(client: TestClient, timeout: float = 5.0) -> None:
    """Wait until the clicks answered so far are applied in Redis (the click path never waits on it)."""
    counter = client.app.state.web.click_path.counter  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while counter.pending:
        assert time.monotonic() < deadline, f"{counter.pending} clicks still queued"
        time.sleep(0.02)


@pytest.fixture
def shares_web(make_settings) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    def start(**shares: Any) -> tuple[Context, TestClient]:
        ctx = Context.create(make_settings(sources=[], shares=shares))
        client = TestClient(create_app(ctx, enqueue=lambda task, args: None), follow_redirects=False, client=REMOTE)
        clients.append(client.__enter__())
        return ctx, client

    clients: list[TestClient] = []
    yield start
    for client in clients:
        client.__exit__(None, None, None)


def click(client: TestClient, path: str, ua: str = BROWSER, **headers: str) -> Any:
    return client.get(path, headers={"user-agent": ua, **headers})


def shared_url(network: str, location: str) -> str:
    """The article URL a network's share page was given."""
    if network == "email":
        return parse_qs(urlsplit(location).query)["body"][0]
    query = parse_qs(urlsplit(location).query)
    if network == "bluesky":
        return query["text"][0].rsplit(" ", 1)[1]
    return query["u" if network == "facebook" else "url"][0]


@pytest.mark.parametrize("network", [n for n in SHARE_NETWORKS if n != "copy"])
def test_every_network_gets_the_article_url_with_utm_tags(shares_web, network: str) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(utm_campaign="chia-se")
    article_id = add(ctx, VI_PATH, TITLE)
    response = click(client, f"/s/{article_id}/{network}")
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    host = {"email": ""}.get(network, urlsplit(location).hostname)
    assert host == {"facebook": "www.facebook.com", "x": "twitter.com", "telegram": "t.me", "zalo": "sp.zalo.me",
                    "linkedin": "www.linkedin.com", "bluesky": "bsky.app", "email": ""}[network]  # fmt: skip
    url = shared_url(network, location)
    parts = urlsplit(url)
    assert unquote(parts.path) == "/tin-tức/bài-viết-số-1"
    assert parse_qs(parts.query) == {
        "id": ["5"], "loại": ["tin"], "utm_source": [network], "utm_medium": ["share"], "utm_campaign": ["chia-se"]
    }  # fmt: skip
    if network in ("x", "telegram", "email"):
        title = parse_qs(urlsplit(location).query)["subject" if network == "email" else "text"][0]
        assert title == TITLE
    assert " " not in location and "&quot;" not in location


def test_utm_off_shares_the_article_url_as_published(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(utm=False)
    article_id = add(ctx, VI_PATH, TITLE)
    location = click(client, f"/s/{article_id}/facebook").headers["location"]
    assert shared_url("facebook", location) == ctx.store.get(article_id).url  # type: ignore[union-attr]


def test_copy_is_counted_and_answered_without_a_redirect(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web()
    article_id = add(ctx)
    response = click(client, f"/s/{article_id}/copy")
    assert response.status_code == 204 and "location" not in response.headers
    settle(client)
    assert client.get(f"/api/articles/{article_id}/shares").json()["networks"] == {"copy": 1}


@pytest.mark.parametrize(
    "path", ["/s/{id}/myspace", "/s/0000000000000000/facebook", "/s/{id}/javascript:alert(1)", "/s/{id}/zalo"]
)
def test_unknown_article_or_network_is_a_404_never_a_redirect(shares_web, path: str) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(networks=["facebook", "copy"])  # zalo not configured here
    article_id = add(ctx)
    response = click(client, path.format(id=article_id))
    assert response.status_code == 404
    assert "location" not in response.headers
    assert set(response.json()["error"]) == {"status", "message"}


def test_repeats_and_bots_do_not_count_and_uniques_are_sharers(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web()
    article_id = add(ctx)
    readers = [f"{BROWSER} reader/{n}" for n in range(3)]
    for ua in readers:
        assert click(client, f"/s/{article_id}/facebook", ua).status_code == 302
        assert click(client, f"/s/{article_id}/facebook", ua).status_code == 302  # a repeat within the window
        assert click(client, f"/s/{article_id}/zalo", ua).status_code == 302
    for bot in ("facebookexternalhit/1.1", "Twitterbot/1.0", "TelegramBot (like TwitterBot)", "curl/8.5.0", ""):
        assert click(client, f"/s/{article_id}/facebook", bot).status_code == 302  # redirected, not counted
    settle(client)
    body = client.get(f"/api/articles/{article_id}/shares").json()
    assert body == {
        "article_id": article_id, "url": "https://portal.example.gov.vn/bai-viet", "title": "Bài viết thử",
        "total": 6, "unique": 3, "networks": {"facebook": 3, "zalo": 3}, "clicks": {}, "engagement": {},
    }  # fmt: skip
    top = client.get("/api/shares/top?period=day").json()
    assert top["by"] == "shares"
    assert top["articles"][0] == {"id": article_id, "shares": 6, "title": "Bài viết thử", "url": body["url"]}


def test_a_client_past_its_hourly_limit_is_redirected_but_not_counted(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(client_limit=3)
    articles = [add(ctx, f"bai-{n}", f"Bài {n}") for n in range(5)]
    for article_id in articles:
        assert click(client, f"/s/{article_id}/facebook").status_code == 302
    other = TestClient(client.app, follow_redirects=False, client=("198.51.100.7", 1))
    assert click(other, f"/s/{articles[4]}/facebook").status_code == 302  # another reader still counts
    settle(client)
    totals = [client.get(f"/api/articles/{a}/shares").json()["total"] for a in articles]
    assert totals == [1, 1, 1, 0, 1]


@pytest.mark.parametrize(
    "ua",
    [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "TelegramBot (like TwitterBot)",
        "Zalo/1.0 (link preview)",
        "Mozilla/5.0 (compatible; Zalo-crawler/1.0)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0 A",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "curl/8.5.0",
        "Wget/1.21.4",
        "",
        "   ",
    ],
)
def test_bots_and_link_preview_fetchers_are_recognised(ua: str) -> None:
    assert is_bot(ua)


@pytest.mark.parametrize(
    "ua",
    [
        BROWSER,
        "Mozilla/5.0 (Linux; Android 13; SM-A536E) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile "
        "Safari/537.36 Zalo android/12100656 ZaloTheme/light ZaloLanguage/vi",  # a reader in Zalo's browser
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Mobile/15E148 [FBAN/FBIOS;FBAV/440.0]",  # a reader in Facebook's browser
    ],
)
def test_readers_in_in_app_browsers_are_not_bots(ua: str) -> None:
    assert not is_bot(ua)


def test_a_batch_retried_after_a_lost_reply_counts_once(ctx: Context) -> None:
    clicks = [Click.make("a1", "facebook", "203.0.113.9", BROWSER, ctx.shares.hour())]
    batch = Batch.of(clicks)
    keys, args = ctx.shares.batch_call(batch)
    script = ctx.redis.register_script(__import__("distributor.shares", fromlist=["x"]).COUNT_SCRIPT)
    assert script(keys=keys, args=args) == "1"
    assert script(keys=keys, args=args) == -1  # the same batch again: already applied
    assert ctx.shares.counts("a1") == {"facebook": 1, "total": 1}


def test_clicks_answered_while_redis_is_unreachable_are_kept_and_counted_later(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web()
    article_id = add(ctx)
    click(client, f"/s/{article_id}/facebook")  # the article's URL is now cached
    counter = client.app.state.web.click_path.counter  # type: ignore[attr-defined]
    settle(client)
    real = counter.client
    # Nothing listens there; no retries, so a failed flush returns at once (redis-py retries by default).
    counter.client = redis.asyncio.Redis(host="127.0.0.1", port=1, retry=None, retry_on_error=[])
    counter._script = counter.client.register_script(counter._script.script)
    try:
        assert click(client, f"/s/{article_id}/zalo").status_code == 302  # answered from memory
        time.sleep(0.5)
        assert counter.pending == 1
    finally:
        counter.client = real
        counter._script = real.register_script(counter._script.script)
    settle(client, timeout=20)  # a flush that was under way on the dead client finishes failing first
    assert ctx.shares.counts(article_id) == {"facebook": 1, "zalo": 1, "total": 2}


# --- the API by URL, top lists, CORS ---


def test_shares_by_url_finds_the_article_however_the_portal_writes_its_url(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web()
    article_id = add(ctx, VI_PATH, TITLE)
    click(client, f"/s/{article_id}/telegram")
    settle(client)
    raw = f"{PORTAL}/{VI_PATH}#binh-luan"
    encoded = f"{PORTAL}/{quote('tin-tức/bài-viết-số-1')}?id=5&{quote('loại')}=tin&utm_source=zalo"
    for url in (raw, encoded):
        body = client.get("/api/shares", params={"url": url}).json()
        assert body["article_id"] == article_id and body["networks"] == {"telegram": 1}, url
    unknown = client.get("/api/shares", params={"url": f"{PORTAL}/chua-co"})
    assert unknown.status_code == 404 and "chua-co" in unknown.json()["error"]["message"]
    assert client.get("/api/shares", params={"url": "javascript:alert(1)"}).status_code == 400


def test_top_accepts_clicks_and_engagement_and_refuses_other_orders(shares_web) -> None:  # type: ignore[no-untyped-def]
    _, client = shares_web()
    assert client.get("/api/shares/top?by=clicks&period=week").json() == {"period": "week", "by": "clicks",
                                                                         "articles": []}  # fmt: skip
    refused = client.get("/api/shares/top?by=likes")
    assert refused.status_code == 400 and "'likes'" in refused.json()["error"]["message"]


def test_cors_for_the_configured_origins_only(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(cors_origins=["https://portal.example.gov.vn", "https://www.portal.example.gov.vn"])
    article_id = add(ctx)
    allowed = {"origin": "https://www.portal.example.gov.vn"}
    for path in (f"/api/articles/{article_id}/shares", f"/api/shares?url={PORTAL}/bai-viet", "/api/shares/top"):
        response = client.get(path, headers=allowed)
        assert response.headers["access-control-allow-origin"] == allowed["origin"], path
        assert "access-control-allow-credentials" not in response.headers
        assert "Origin" in response.headers["vary"]
        assert "access-control-allow-origin" not in client.get(path, headers={"origin": "https://evil.example"}).headers
        preflight = client.options(path, headers={**allowed, "access-control-request-method": "GET"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-methods"] == "GET"
    missing = client.get("/api/shares?url=https://portal.example.gov.vn/khong-co", headers=allowed)
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == allowed["origin"]


def test_cors_defaults_to_the_site_origin(shares_web) -> None:  # type: ignore[no-untyped-def]
    _, client = shares_web()
    response = client.get("/api/shares/top", headers={"origin": PORTAL})
    assert response.headers["access-control-allow-origin"] == PORTAL


# --- the share bar ---


def test_share_bar_fragment_links_through_the_counting_redirect_with_counts(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web(cors_origins=[PORTAL])
    article_id = add(ctx, VI_PATH, TITLE)
    click(client, f"/s/{article_id}/facebook")
    settle(client)
    page = client.get("/embed/share-bar", params={"url": f"{PORTAL}/{VI_PATH}"})
    assert page.status_code == 200
    assert "x-frame-options" not in page.headers
    assert f"frame-ancestors {PORTAL}" in page.headers["content-security-policy"]
    assert page.headers["cache-control"].startswith("public")
    html = page.text
    assert "Chia sẻ:" in html and "<script" not in html
    assert f'href="/s/{article_id}/facebook"' in html and f'href="/s/{article_id}/zalo"' in html
    assert '<span class="dsb-n">1</span>' in html and "/copy" not in html
    english = client.get("/embed/share-bar", params={"id": article_id, "lang": "en"}).text
    assert "Share:" in english and "Share on Facebook" in english and "Chia sẻ" not in english


def test_share_bar_for_an_article_not_yet_known_links_straight_to_the_networks(shares_web) -> None:  # type: ignore[no-untyped-def]
    _, client = shares_web()
    url = f"{PORTAL}/moi-dang?id=7"
    page = client.get("/embed/share-bar", params={"url": url})
    assert page.status_code == 200
    assert "frame-ancestors *" in page.headers["content-security-policy"]
    assert f'href="https://www.facebook.com/sharer/sharer.php?u={quote(url, safe="")}"' in page.text
    assert 'href="/s/' not in page.text and 'class="dsb-n"' not in page.text
    assert client.get("/embed/share-bar", params={"url": "https://elsewhere.example/x"}).status_code == 400
    assert client.get("/embed/share-bar", params={"id": "ffffffffffffffff"}).status_code == 404
    assert client.get("/embed/share-bar").status_code == 400


def test_share_bar_script_is_small_cacheable_and_names_no_other_host(shares_web) -> None:  # type: ignore[no-untyped-def]
    _, client = shares_web()
    response = client.get("/embed/share-bar.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=300"
    assert len(response.content) < 8 * 1024
    script = response.text
    assert 'credentials: "omit"' in script and "/api/shares?url=" in script
    assert "Chia s\\u1ebb" in script and "Copy link" in script  # JSON-escaped: right in any page charset
    hosts = set(re.findall(r"https?://([^/\"'?]+)", script))
    assert hosts == {"www.facebook.com", "twitter.com", "t.me", "sp.zalo.me", "www.linkedin.com", "bsky.app"}


def test_summary_and_top_lists_carry_clicks_on_our_posts_and_engagement(make_settings) -> None:  # type: ignore[no-untyped-def]
    from distributor import engagement

    ctx = Context.create(
        make_settings(sources=[], channels=[{"name": "outbox", "type": "outbox", "track_clicks": True}])
    )
    article_id = add(ctx, VI_PATH, TITLE)
    engagement.store(ctx, article_id, "outbox", {"shares": 2, "reactions": 5})
    with TestClient(create_app(ctx, enqueue=lambda task, args: None), follow_redirects=False, client=REMOTE) as client:
        assert click(client, f"/r/{article_id}/outbox").status_code == 302
        body = client.get("/api/shares", params={"url": f"{PORTAL}/{VI_PATH}"}).json()
        assert (body["article_id"], body["clicks"], body["engagement"]) == (
            article_id, {"outbox": 1}, {"outbox": {"shares": 2, "reactions": 5}}
        )  # fmt: skip
        for by, count in (("clicks", 1), ("engagement", 7)):
            top = client.get(f"/api/shares/top?by={by}&period=week").json()["articles"]
            assert top == [{"id": article_id, by: count, "title": TITLE, "url": ctx.store.get(article_id).url}], by


def test_the_share_bar_and_its_clicks_set_no_cookies(shares_web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = shares_web()
    article_id = add(ctx, VI_PATH, TITLE)
    answers = [
        client.get("/embed/share-bar", params={"url": f"{PORTAL}/{VI_PATH}"}),
        client.get("/embed/share-bar.js"),
        client.get("/api/shares", params={"url": f"{PORTAL}/{VI_PATH}"}, headers={"origin": PORTAL}),
        click(client, f"/s/{article_id}/zalo"),
        click(client, f"/s/{article_id}/copy"),
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 302, 204]
    assert [a.headers.get("set-cookie") for a in answers] == [None] * 5
