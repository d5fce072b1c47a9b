"""The HTTP routes through the app: shares, API, push authentication, feeds, ops."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from distributor import pipeline, rebuild
from distributor.context import Context
from distributor.inline import InlineDispatcher
from distributor.normalize import Draft
from distributor.web.app import create_app
from distributor.web.auth import signature

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0"
TOKEN = "tok-en-1234567890"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
REMOTE = ("203.0.113.5", 40000)  # a documentation address: anyone on the network
LOCAL = ("127.0.0.1", 40000)


QUEUED: list[tuple[str, list]] = []


@pytest.fixture
def web(make_settings) -> Iterator[tuple[Context, TestClient]]:  # type: ignore[no-untyped-def]
    QUEUED.clear()
    ctx = Context.create(
        make_settings(
            sources=[],
            server={"api_tokens": [TOKEN], "push_secret": "shh-secret-key"},
        )
    )
    app = create_app(ctx, enqueue=lambda task, args: QUEUED.append((task, args)))
    with TestClient(app, follow_redirects=False, client=REMOTE) as client:
        yield ctx, client


def add(ctx: Context, slug: str = "bai-viet", title: str = "Bài viết thử") -> str:
    draft = Draft(
        url=f"https://portal.example.gov.vn/{slug}",
        title=title,
        published=datetime.now(UTC).isoformat(),
        categories=["Tin Tức Sự Kiện"],
    )
    article = pipeline.to_article(ctx, draft, "test")
    dispatch = InlineDispatcher(ctx)
    pipeline.ingest(ctx, article, dispatch, announce=True)
    rebuild.register_configured_feeds(ctx)
    rebuild.rebuild_feeds(ctx, ctx.store.feed_meta())
    return article.id


def test_articles_api_lists_newest_first_with_delivery_states(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    first = add(ctx, "mot", "Một")
    time.sleep(0.01)
    second = add(ctx, "hai", "Hai")
    body = client.get("/api/articles", headers=OPERATOR).json()
    assert [a["id"] for a in body["articles"]] == [second, first]
    assert body["articles"][0]["deliveries"]["outbox"]["state"] == "sent"
    one = client.get(f"/api/articles/{first}", headers=OPERATOR).json()
    assert one["title"] == "Một" and one["categories"] == ["Tin Tức Sự Kiện"]
    assert one["deliveries"]["outbox"]["state"] == "sent" and one["source"] == "test"
    assert client.get("/api/articles/ffffffffffffffff").status_code == 404


JSON = {"content-type": "application/json"}


def push(client: TestClient, payload: dict, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return client.post("/api/articles", content=json.dumps(payload).encode(), headers={**JSON, **headers})


ARTICLE = {"url": "https://portal.example.gov.vn/day", "title": "Bài đẩy", "content": "<p>x</p>"}


def test_push_requires_authentication(web) -> None:  # type: ignore[no-untyped-def]
    _, client = web
    assert push(client, ARTICLE, {}).status_code == 401
    assert push(client, ARTICLE, {"authorization": "Bearer wrong"}).status_code == 401
    stale = str(int(time.time()) - 3600)
    body = json.dumps(ARTICLE).encode()
    old = {"x-distributor-timestamp": stale, "x-distributor-signature": signature("shh-secret-key", stale, body)}
    response = push(client, ARTICLE, old)
    assert response.status_code == 401 and "replay window" in response.json()["error"]["message"]


def test_push_with_hmac_signature_and_replay_refusal(web) -> None:  # type: ignore[no-untyped-def]
    _, client = web
    now = str(int(time.time()))
    body = json.dumps(ARTICLE).encode()
    headers = {"x-distributor-timestamp": now, "x-distributor-signature": signature("shh-secret-key", now, body)}
    response = push(client, ARTICLE, headers)
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    [(task, (payload, source, announce))] = QUEUED
    assert (task, source, announce) == ("worker.tasks.ingest", "push", True)
    assert {k: payload[k] for k in ARTICLE} == ARTICLE
    assert push(client, ARTICLE, headers).status_code == 409  # the same signed request again
    tampered = {**headers, "x-distributor-signature": signature("shh-secret-key", now, body + b" ")}
    assert push(client, ARTICLE, tampered).status_code == 401


def test_push_with_bearer_token_validates_the_article(web) -> None:  # type: ignore[no-untyped-def]
    _, client = web
    auth = OPERATOR
    assert push(client, ARTICLE, auth).status_code == 202
    bad = push(client, {"url": "https://x.vn/a", "title": ""}, auth)
    assert bad.status_code == 422 and "title: String should have at least 1 character" in bad.text
    blank = push(client, {"url": "https://x.vn/a", "title": "   "}, auth)  # empty once cleaned
    assert blank.status_code == 422 and "has no title" in blank.json()["error"]["message"]
    relative = push(client, {"url": "/tin/a", "title": "A"}, auth)
    assert relative.status_code == 422 and "no absolute http(s) URL" in relative.json()["error"]["message"]
    unknown = push(client, {**ARTICLE, "colour": "red"}, auth)
    assert unknown.status_code == 422 and "colour: Extra inputs are not permitted" in unknown.json()["error"]["message"]
    wrong = push(client, {**ARTICLE, "categories": "Tin Tức"}, auth)
    assert wrong.status_code == 422 and "categories: Input should be a valid list" in wrong.json()["error"]["message"]
    assert len(QUEUED) == 1  # only the valid article was queued


def test_feeds_are_served_with_validators(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    add(ctx)
    response = client.get("/feeds/all.rss")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert b"B\xc3\xa0i vi\xe1\xba\xbft th\xe1\xbb\xad" in response.content
    etag, modified = response.headers["etag"], response.headers["last-modified"]
    assert client.get("/feeds/all.rss", headers={"if-none-match": etag}).status_code == 304
    assert client.get("/feeds/all.rss", headers={"if-modified-since": modified}).status_code == 304
    earlier = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert client.get("/feeds/all.rss", headers={"if-modified-since": earlier}).status_code == 200
    assert client.get("/feeds/all.rss", headers={"if-none-match": '"other"'}).status_code == 200
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert client.get("/feeds/tin-tuc-su-kien.json").headers["content-type"] == "application/feed+json; charset=utf-8"
    head = client.head("/feeds/all.atom")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"]
    assert client.get("/feeds/nope.rss").status_code == 404
    assert client.get("/feeds/all.xml").status_code == 404


def test_feeds_are_gzipped_when_asked_and_refreshed_after_a_rebuild(web) -> None:  # type: ignore[no-untyped-def]
    import gzip

    ctx, client = web
    add(ctx, "mot", "Một")
    raw = client.get("/feeds/all.rss", headers={"accept-encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip" and raw.headers["vary"] == "Accept-Encoding"
    assert "Một" in raw.text  # the client decompressed it
    identity = client.get("/feeds/all.rss", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in identity.headers
    assert gzip.compress(identity.content)  # sanity: a real body
    add(ctx, "hai", "Hai")  # a rebuild announces itself; the served copy follows

    def fresh() -> bool:
        return "Hai" in client.get("/feeds/all.rss").text

    deadline = time.monotonic() + 5
    while not fresh() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh()


def test_opml_lists_every_feed(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    add(ctx)
    response = client.get("/feeds.opml")
    assert response.status_code == 200
    assert "http://127.0.0.1:8000/feeds/all.rss" in response.text
    assert "http://127.0.0.1:8000/feeds/tin-tuc-su-kien.rss" in response.text


def test_dashboard_needs_the_operator_token_and_shows_no_secret(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    add(ctx)
    assert client.get("/dashboard").headers["location"] == "/dashboard/login?next=%2Fdashboard"
    page = client.get("/dashboard/articles", headers=OPERATOR)
    assert page.status_code == 200 and "Bài viết thử" in page.text
    assert "tok-en-1234567890" not in page.text and "shh-secret-key" not in page.text


def test_dashboard_lists_failures_and_retries_with_the_platform_message(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    one, two = add(ctx, "mot", "Một"), add(ctx, "hai", "Hai")
    for article_id in (one, two):
        ctx.ledger.create(article_id, "telegram")
        assert ctx.ledger.claim(article_id, "telegram", lease=60) == "go"
    ctx.ledger.failed(one, "telegram", "Unauthorized", "401")
    ctx.ledger.retry_later(two, "telegram", 30, "Too Many Requests: retry after 30", "429")
    page = client.get("/dashboard", headers={**OPERATOR, "accept-language": "en"}).text
    attention = page.split("Needs attention")[1].split("Awaiting approval")[0]
    assert "Unauthorized" in attention and "(code 401)" in attention and ">failed<" in attention
    assert "Too Many Requests: retry after 30" in attention and ">retrying<" in attention


def test_health_and_metrics(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    add(ctx)
    text = client.get("/metrics", headers=OPERATOR).text
    assert "distributor_shares_total" in text
    assert "distributor_articles 1.0" in text
    assert 'distributor_deliveries{state="sent"} 1.0' in text
    assert "distributor_feeds 2.0" in text  # all + tin-tuc-su-kien
