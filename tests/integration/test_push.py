"""A CMS push through the real HTTP server and worker: a signed POST /api/articles is in the feed
and posted once; a replay of the same request is refused; operator data stays with local clients."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from distributor.web.auth import signature
from tests.integration.helpers import config_file, server, wait_for, worker

SECRET = "cms-push-secret-for-tests"


def test_signed_push_reaches_feed_and_outbox_once(tmp_path: Path, redis_url: str, prefix: str) -> None:
    rest = f"""
[server]
push_secret = "{SECRET}"
[[sources]]
name = "cms"
type = "push"
[[feeds]]
name = "all"
[[channels]]
name = "outbox"
type = "outbox"
"""
    config = config_file(tmp_path, redis_url, prefix, rest)
    article = {
        "url": "https://portal.example.gov.vn/tin/khai-truong-trung-tam-hanh-chinh-cong",
        "title": "Khai trương Trung tâm Phục vụ hành chính công tỉnh",
        "content": "<p>Sáng nay, Trung tâm Phục vụ hành chính công tỉnh chính thức đi vào hoạt động.</p>",
        "published": "2026-11-27T08:00:00+07:00",
        "categories": ["Thông báo"],
    }
    body = json.dumps(article, ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Distributor-Timestamp": timestamp,
        "X-Distributor-Signature": signature(SECRET, timestamp, body),
    }
    with worker(config, tmp_path / "worker.log"), server(config, tmp_path / "web.log") as base:
        response = requests.post(f"{base}/api/articles", data=body, headers=headers, timeout=5)
        assert response.status_code == 202, response.text
        article_id = response.json()["id"]
        assert requests.post(f"{base}/api/articles", data=body, headers=headers, timeout=5).status_code == 409

        def in_feed() -> bool:
            return article["title"] in requests.get(f"{base}/feeds/all.rss", timeout=5).text

        wait_for(in_feed, what="the pushed article in the feed")
        outbox = tmp_path / "data" / "outbox.jsonl"
        wait_for(outbox.exists, what="the outbox post")
        time.sleep(2)
        [line] = outbox.read_text().splitlines()
        assert json.loads(line)["article_id"] == article_id
        details = requests.get(f"{base}/api/articles/{article_id}", timeout=5).json()
        assert details["source"] == "cms" and details["deliveries"]["outbox"]["state"] == "sent"
        # No token configured: this loopback client is the operator, but not once a proxy relays it
        # (uvicorn takes the client address from X-Forwarded-For for a loopback peer).
        relayed = {"X-Forwarded-For": "198.51.100.7"}
        public = requests.get(f"{base}/api/articles/{article_id}", headers=relayed, timeout=5).json()
        assert public["title"] == article["title"] and "deliveries" not in public
        assert requests.get(f"{base}/metrics", headers=relayed, timeout=5).status_code == 403
        # A page elsewhere cannot make a browser push, whatever it sends.
        forged = {**headers, "Content-Type": "text/plain", "Origin": "https://attacker.example"}
        assert requests.post(f"{base}/api/articles", data=body, headers=forged, timeout=5).status_code == 403
