"""Engagement on our own posts: read from each platform's fake, stored in Redis by the pull, the X
tier refusal recorded once, reads paced per channel apart from posting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from distributor import engagement, pipeline
from distributor.context import Context
from distributor.normalize import Draft
from tests.fakes import x as fake_x
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.facebook import PAGE_ID, PAGE_TOKEN, FakeFacebook
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.x import FakeX
from tests.fakes.zalo import ACCESS_TOKEN, APP_ID, REFRESH_TOKEN, SECRET_KEY, FakeZalo

URL = "https://portal.example.gov.vn/tin-tuc/hội-nghị-tổng-kết?id=42&lang=vi"


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    servers = {
        "facebook": FakeFacebook(),
        "mastodon": FakeMastodon(),
        "bluesky": FakeBluesky(),
        "x": FakeX(),
        "zalo": FakeZalo(),
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


def channels(fakes: dict[str, Any], **overrides: dict[str, Any]) -> list[dict[str, Any]]:
    entries = {
        "facebook": {"page_id": PAGE_ID, "access_token": PAGE_TOKEN},
        "mastodon": {"access_token": "mastodon-test-token-5f2e", "media": False},
        "bluesky": {"handle": "tintuc.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"},
        "x": {
            "api_key": fake_x.API_KEY,
            "api_secret": fake_x.API_SECRET,
            "access_token": fake_x.ACCESS_TOKEN,
            "access_token_secret": fake_x.ACCESS_TOKEN_SECRET,
        },
        "zalo": {
            "access_token": ACCESS_TOKEN,
            "refresh_token": REFRESH_TOKEN,
            "app_id": APP_ID,
            "secret_key": SECRET_KEY,
            "oauth_base": fakes["zalo"].url,
            "cover": "https://portal.example.gov.vn/logo.jpg",
            "verify_interval": 0.01,
        },
    }
    return [
        {"name": kind, "type": kind, "api_base": fakes[kind].url, **keys, **overrides.get(kind, {})}
        for kind, keys in entries.items()
    ] + [{"name": "telegram", "type": "telegram", "token": "123:abc", "chat_id": "@tintuc_tayninh"}]


@pytest.fixture
def ctx(make_settings, fakes) -> Context:  # type: ignore[no-untyped-def]
    for server in fakes.values():
        server.reset()
    fast = {kind: {"rate_per_minute": 6000} for kind in fakes}  # the pace has a test of its own
    return Context.create(make_settings(sources=[], channels=channels(fakes, **fast)))


def post(ctx: Context, channel: str, url: str = URL) -> str:
    """An article stored and really posted to `channel`'s fake, recorded as sent in the ledger."""
    draft = Draft(url=url, title=f"Hội nghị tổng kết {url[-6:]}", published=datetime.now(UTC).isoformat())
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    adapter = ctx.channel(channel)
    receipt = adapter.send(adapter.render(article), f"{article.id}:{channel}")
    ctx.ledger.create(article.id, channel)
    assert ctx.ledger.claim(article.id, channel, 60) == "go"
    ctx.ledger.sent(article.id, channel, receipt.post_id, receipt.url)
    return article.id


def test_each_platform_reports_its_counts_and_the_pull_stores_them(ctx, fakes) -> None:  # type: ignore[no-untyped-def]
    ids = {name: post(ctx, name, f"{URL}&kenh={name}") for name in ("facebook", "mastodon", "bluesky", "x", "zalo")}
    facebook_post = fakes["facebook"].posts[-1]["post_id"]
    fakes["facebook"].engagement[facebook_post] = {"shares": 3, "reactions": 12, "comments": 4}
    article_url = ctx.store.get(ids["facebook"]).url
    fakes["facebook"].url_engagement[article_url] = {"share_count": 57, "reaction_count": 210, "comment_count": 9}
    fakes["mastodon"].statuses[-1].update(reblogs_count=5, favourites_count=8, replies_count=1)
    [record] = fakes["bluesky"].records.values()
    fakes["bluesky"].counts[record["uri"]] = {"likeCount": 21, "repostCount": 6, "replyCount": 2, "quoteCount": 1}
    fakes["x"].metrics[fakes["x"].posts[-1]["id"]] = {"like_count": 14, "retweet_count": 3, "impression_count": 900}
    [zalo_article] = fakes["zalo"].articles.values()
    zalo_article.update(total_view=1234, total_share=17)

    assert engagement.channels_to_pull(ctx) == ["facebook", "mastodon", "bluesky", "x", "zalo"]  # no telegram
    for name in ids:
        result = engagement.pull_channel(ctx, name)
        assert (result.pulled, result.failed) == (1, 0), name

    assert engagement.engagement(ctx, ids["facebook"]) == {
        "facebook": {
            "shares": 3,
            "reactions": 12,
            "comments": 4,
            "url_shares": 57,
            "url_reactions": 210,
            "url_comments": 9,
            "url_plugin_comments": 0,
        }
    }
    assert engagement.engagement(ctx, ids["mastodon"]) == {"mastodon": {"reblogs": 5, "favourites": 8, "replies": 1}}
    assert engagement.engagement(ctx, ids["bluesky"]) == {
        "bluesky": {"likes": 21, "reposts": 6, "replies": 2, "quotes": 1}
    }
    assert engagement.engagement(ctx, ids["x"])["x"] == {
        "retweet": 3,
        "reply": 0,
        "like": 14,
        "quote": 0,
        "bookmark": 0,
        "impression": 900,
    }
    assert engagement.engagement(ctx, ids["zalo"]) == {"zalo": {"views": 1234, "shares": 17}}
    assert set(engagement.pulled_at(ctx, ids["zalo"])) == {"zalo"}
    # The Graph URL read asked about the article's own URL, not our post's tagged link.
    [url_read] = [r for r in fakes["facebook"].requests if r.path.rstrip("/").count("/") == 1 and "id" in r.query]
    assert url_read.query["id"] == [article_url]


def test_a_post_read_within_the_interval_is_not_read_again(ctx, fakes) -> None:  # type: ignore[no-untyped-def]
    post(ctx, "mastodon")
    assert engagement.pull_channel(ctx, "mastodon").pulled == 1
    reads = len(fakes["mastodon"].requests)
    assert engagement.pull_channel(ctx, "mastodon").pulled == 0
    assert len(fakes["mastodon"].requests) == reads


def test_posts_older_than_engagement_days_are_left_alone(make_settings, fakes) -> None:  # type: ignore[no-untyped-def]
    for server in fakes.values():
        server.reset()
    ctx = Context.create(make_settings(sources=[], channels=channels(fakes), shares={"engagement_days": 0}))
    post(ctx, "mastodon")
    assert engagement.channels_to_pull(ctx) == []
    assert engagement.due(ctx, "mastodon") == []


def test_x_free_tier_is_recorded_unavailable_once_and_not_asked_again(ctx, fakes) -> None:  # type: ignore[no-untyped-def]
    article_id = post(ctx, "x")
    fakes["x"].read_access = False
    result = engagement.pull_channel(ctx, "x")
    assert result.pulled == 0 and "access tier" in result.unavailable
    assert "different access level" in engagement.unavailable(ctx)["x"]
    lookups = [r for r in fakes["x"].requests if r.method == "GET"]
    assert len(lookups) == 1
    ctx.redis.delete(ctx.keys.engagement(article_id))  # even a post never read is not asked about again
    assert engagement.pull_channel(ctx, "x").pulled == 0
    assert "x" not in engagement.channels_to_pull(ctx)
    assert len([r for r in fakes["x"].requests if r.method == "GET"]) == 1
    assert engagement.engagement(ctx, article_id) == {}


def test_reads_follow_the_channels_pace_apart_from_its_posting(make_settings, fakes) -> None:  # type: ignore[no-untyped-def]
    for server in fakes.values():
        server.reset()
    slow = channels(fakes, mastodon={"rate_per_minute": 1})
    ctx = Context.create(make_settings(sources=[], channels=slow))
    ids = [post(ctx, "mastodon", f"https://portal.example.gov.vn/bai-{n}") for n in range(3)]
    first = engagement.pull_channel(ctx, "mastodon")
    assert first.pulled == 1 and first.remaining == 2
    assert 0 < first.retry_in <= 60  # the next read is due a minute later
    again = engagement.pull_channel(ctx, "mastodon")
    assert again.pulled == 0 and again.remaining == 2 and again.retry_in > 0
    assert sum(bool(engagement.engagement(ctx, i)) for i in ids) == 1
    # Posting has its own pace: the engagement reads did not take the posting slot.
    assert ctx.redis.get(ctx.keys.rate("mastodon")) is None
    ctx.redis.delete(ctx.keys.engagement_rate("mastodon"))  # a minute later
    assert engagement.pull_channel(ctx, "mastodon").pulled == 1
    assert sum(bool(engagement.engagement(ctx, i)) for i in ids) == 2


def test_a_deleted_post_keeps_its_error_and_the_other_posts_are_read(ctx, fakes) -> None:  # type: ignore[no-untyped-def]
    gone = post(ctx, "bluesky", "https://portal.example.gov.vn/da-xoa")
    kept = post(ctx, "bluesky", "https://portal.example.gov.vn/con-lai")
    uri = ctx.ledger.get(gone, "bluesky").post_id
    fakes["bluesky"].records = {k: r for k, r in fakes["bluesky"].records.items() if r["uri"] != uri}
    result = engagement.pull_channel(ctx, "bluesky")
    assert (result.pulled, result.failed) == (1, 1)
    assert engagement.engagement(ctx, kept) == {"bluesky": {"likes": 0, "reposts": 0, "replies": 0, "quotes": 0}}
    assert "not found" in ctx.redis.hget(ctx.keys.engagement(gone), "bluesky:error")


def test_a_transient_error_stops_the_channel_until_the_next_pull(ctx, fakes) -> None:  # type: ignore[no-untyped-def]
    post(ctx, "facebook", "https://portal.example.gov.vn/mot")
    post(ctx, "facebook", "https://portal.example.gov.vn/hai")
    fakes["facebook"].fail_next(4, "(#4) Application request limit reached")
    result = engagement.pull_channel(ctx, "facebook")
    assert (result.pulled, result.failed, result.remaining) == (0, 1, 1)
    assert engagement.pull_channel(ctx, "facebook").pulled == 2  # the next pull reads both


def test_beat_queues_the_pulls_on_their_own_queue_which_the_worker_consumes(make_settings) -> None:  # type: ignore[no-untyped-def]
    from distributor import queues
    from distributor.cli import _worker_argv
    from worker.schedule import beat_schedule

    settings = make_settings(sources=[], shares={"engagement_interval": "10m"})
    entry = beat_schedule(settings)["pull-engagement"]
    assert entry["task"] == "worker.tasks.pull_engagement" and entry["schedule"] == 600
    assert entry["options"]["queue"] == "engagement"
    # Workers consume every queue by default (no -Q), the engagement queue among them.
    assert "-Q" not in _worker_argv(settings, beat=False) and "engagement" in queues.all_queues(settings)
    assert "pull-engagement" not in beat_schedule(make_settings(sources=[], shares={"engagement_days": 0}))


def test_engagement_per_day_adds_up_the_channels_and_carries_a_day_without_a_pull(ctx, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The console's chart: each day shows every channel's running total as last pulled that day or
    before, in the site's timezone."""
    article_id = "a1"
    day = datetime(2026, 12, 1, 23, 30, tzinfo=ctx.shares.tz)
    monkeypatch.setattr(ctx.shares, "now", lambda: day)
    engagement.store(ctx, article_id, "facebook", {"shares": 3, "reactions": 10, "comments": 1})
    engagement.store(ctx, article_id, "mastodon", {"reblogs": 2, "favourites": 4, "replies": 0})
    day = datetime(2026, 12, 3, 8, 0, tzinfo=ctx.shares.tz)  # nothing pulled on the 2nd
    engagement.store(ctx, article_id, "facebook", {"shares": 5, "reactions": 20, "comments": 1})
    day = datetime(2026, 12, 4, 8, 0, tzinfo=ctx.shares.tz)
    points = engagement.per_day(ctx, article_id, 5)
    assert points == [("2026-11-30", 0), ("2026-12-01", 20), ("2026-12-02", 20), ("2026-12-03", 32), ("2026-12-04", 32)]
    day = datetime(2026, 12, 20, 8, 0, tzinfo=ctx.shares.tz)  # days before the window still count
    assert engagement.per_day(ctx, article_id, 2) == [("2026-12-19", 32), ("2026-12-20", 32)]


def test_the_daily_read_of_facebooks_token_expiry_reaches_the_console(ctx, fakes, caplog) -> None:  # type: ignore[no-untyped-def]
    from distributor import channel_health
    from distributor.web.console import data
    from tests.fakes.server import Reply
    from worker.schedule import beat_schedule

    facebook = fakes["facebook"]
    facebook.token_expires_at = int(time.time()) + 3 * 86400  # made from a short-lived user token
    assert channel_health.refresh_token_expiry(ctx) == {"facebook": float(facebook.token_expires_at)}
    assert data.overview(ctx)["expiring"] == {"facebook": float(facebook.token_expires_at)}
    [entry] = [c for c in data.channels_page(ctx)["channels"] if c["name"] == "facebook"]
    assert entry["token_expires"] == facebook.token_expires_at and not entry["token_never_expires"]

    facebook.token_expires_at = 0  # a Page token from a long-lived user token
    channel_health.refresh_token_expiry(ctx)
    [entry] = [c for c in data.channels_page(ctx)["channels"] if c["name"] == "facebook"]
    assert entry["token_never_expires"] and entry["token_expires"] is None
    assert "facebook" not in data.overview(ctx)["expiring"]

    facebook.then(Reply(500, {"error": {"message": "An unknown error has occurred.", "code": 1}}))
    assert channel_health.refresh_token_expiry(ctx) == {}  # logged, left for tomorrow; the last answer stays
    assert "could not read when its token expires" in caplog.text and PAGE_TOKEN not in caplog.text
    assert data.token_expiry(ctx)["facebook"] == float("inf")

    entry = beat_schedule(ctx.settings)["check-token-expiry"]
    assert entry["task"] == "worker.tasks.check_token_expiry" and entry["options"]["queue"] == "engagement"
