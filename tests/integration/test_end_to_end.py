"""End to end with real processes: a Celery worker (with beat) and the HTTP server on loopback,
against a real Redis (the broker: Redis, then RabbitMQ). An article file dropped in the watched
folder reaches the feeds and the outbox exactly once, also after more polls and an edit, and a
share is counted."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import feedparser
import pytest
import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.settings import load_settings
from distributor.store import Store
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, REPO, config_file, server, wait_for, worker

SEED = next((REPO / "config" / "examples" / "articles").glob("*.md"))
TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"
BROWSER = {"User-Agent": "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36"}


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str, broker_url: str) -> Path:
    return config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX, broker_url)


def outbox(tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "data" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_article_file_to_feeds_outbox_and_share(tmp_path: Path, config: Path) -> None:
    settings = load_settings(config)
    client = redis_py.Redis.from_url(settings.redis.url, decode_responses=True)
    store = Store(client, redis_py.Redis.from_url(settings.redis.url), Keys(settings.redis.key_prefix))

    with worker(config, tmp_path / "worker.log"), server(config, tmp_path / "web.log") as base:
        # The folder's first (empty) poll: afterwards, anything dropped in is new and announced.
        wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
        target = tmp_path / "articles" / SEED.name
        shutil.copy(SEED, target)

        posts = wait_for(lambda: outbox(tmp_path), what="the outbox post")
        assert [p["title"] for p in posts] == [TITLE]
        assert "/ban-dan-van-trung-uong-6-thang-cuoi-nam-2021?utm_source=outbox" in posts[0]["text"]

        def feed_has(fmt: str, needle: str) -> bool:
            response = requests.get(f"{base}/feeds/all.{fmt}", timeout=5)
            return response.status_code == 200 and needle in response.text

        wait_for(lambda: feed_has("rss", TITLE), what="the article in the served RSS feed")
        rss = feedparser.parse(requests.get(f"{base}/feeds/all.rss", timeout=5).content)
        atom = feedparser.parse(requests.get(f"{base}/feeds/all.atom", timeout=5).content)
        for parsed in (rss, atom):
            assert parsed.bozo == 0
            [entry] = parsed.entries
            assert entry.title == TITLE
            assert entry.published_parsed[:5] == (2021, 7, 13, 14, 0)  # 21:00 +07:00
        assert requests.get(f"{base}/feeds/tin-tuc-su-kien.rss", timeout=5).status_code == 200

        # More polls of the same file, then an edit: feeds follow, nothing is posted again.
        store_id = requests.get(f"{base}/api/articles", timeout=5).json()["articles"][0]["id"]
        target.write_text(SEED.read_text(encoding="utf-8").replace(TITLE, TITLE + " (cập nhật)"), encoding="utf-8")
        wait_for(lambda: feed_has("atom", "(cập nhật)"), what="the edit in the served Atom feed")
        (tmp_path / "articles" / "broken.json").write_text("{ not json")
        wait_for(lambda: feed_has("rss", "(cập nhật)"), what="the edit in the RSS feed")
        time.sleep(3)  # several more polls
        assert len(outbox(tmp_path)) == 1

        # The worker survived the broken file and still announces new articles.
        (tmp_path / "articles" / "moi.md").write_text('---\ntitle: "Bài mới"\n---\nNội dung.\n', encoding="utf-8")
        wait_for(lambda: len(outbox(tmp_path)) == 2, what="the second article in the outbox")
        assert [p["title"] for p in outbox(tmp_path)] == [TITLE, "Bài mới"]

        # One share through the HTTP endpoint.
        response = requests.get(f"{base}/s/{store_id}/facebook", headers=BROWSER, allow_redirects=False, timeout=5)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2F")

        def shares() -> dict:  # type: ignore[type-arg]
            return requests.get(f"{base}/api/articles/{store_id}/shares", timeout=5).json()  # type: ignore[no-any-return]

        wait_for(lambda: shares()["total"] == 1, timeout=5, what="the click counted (batches every 100 ms)")
        assert shares()["networks"] == {"facebook": 1}

    log = (tmp_path / "worker.log").read_text()
    assert "broken.json" in log  # the malformed file was reported with its path
