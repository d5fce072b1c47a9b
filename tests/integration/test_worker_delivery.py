"""Delivery through a real Celery worker to a loopback Telegram fake: a 429 is retried after the
platform's Retry-After and posted exactly once; a permanent error is recorded with the platform's
message while the other channels still get the article."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis as redis_py

from distributor.keys import Keys
from distributor.ledger import Ledger
from distributor.store import Store
from tests.fakes.telegram import TOKEN, TelegramFake, error, rate_limited
from tests.integration.helpers import config_file, wait_for, worker


def write_config(tmp_path: Path, redis_url: str, prefix: str, api_base: str, broker_url: str = "") -> Path:
    channels = f"""
[[feeds]]
name = "all"
[[channels]]
name = "telegram"
type = "telegram"
api_base = "{api_base}"
token = "{TOKEN}"
chat_id = "@tintuc_tayninh"
[[channels]]
name = "outbox"
type = "outbox"
"""
    return config_file(tmp_path, redis_url, prefix, channels, broker_url)


def test_retry_after_429_then_exactly_one_post_and_permanent_errors_recorded(
    tmp_path: Path, redis_url: str, prefix: str, broker_url: str
) -> None:
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(prefix)
    store = Store(client, redis_py.Redis.from_url(redis_url), keys)
    ledger = Ledger(client, keys)
    with TelegramFake() as fake:
        config = write_config(tmp_path, redis_url, prefix, fake.url, broker_url)
        with worker(config, tmp_path / "worker.log"):
            wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
            fake.then(rate_limited(2))
            (tmp_path / "articles" / "a.md").write_text(
                '---\ntitle: "Tin thứ nhất"\n---\nNội dung.\n', encoding="utf-8"
            )
            wait_for(lambda: fake.posts, timeout=30, what="the Telegram post after the 429")
            sends = [r for r in fake.requests if r.path.endswith("/sendMessage")]
            assert len(sends) == 2  # the 429, then the post
            [article] = store.newest(0, 10)

            def recorded():  # type: ignore[no-untyped-def]
                found = ledger.get(article.id, "telegram")  # the worker records it just after the answer
                return found if found is not None and found.state != "sending" else None

            record = wait_for(recorded, timeout=10, what="the post to be recorded")
            assert record.state == "sent" and record.attempts == 2
            assert record.post_url == f"https://t.me/tintuc_tayninh/{record.post_id}"

            fake.then(error(403, "Forbidden: bot is not a member of the channel chat"))
            (tmp_path / "articles" / "b.md").write_text('---\ntitle: "Tin thứ hai"\n---\nNội dung.\n', encoding="utf-8")

            def failed() -> bool:
                newest = store.newest(0, 1)
                found = newest and ledger.get(newest[0].id, "telegram")
                return bool(found and found.state == "failed")

            wait_for(failed, timeout=30, what="the permanent failure to be recorded")
            [latest] = store.newest(0, 1)
            record = ledger.get(latest.id, "telegram")
            assert record is not None
            assert record.error == "Telegram: Forbidden: bot is not a member of the channel chat (code 403)"
            outbox = tmp_path / "data" / "outbox.jsonl"
            wait_for(lambda: outbox.exists() and len(outbox.read_text().splitlines()) == 2, what="both outbox posts")

            time.sleep(3)  # more polls and sweeps: nothing is posted again
            assert len(fake.posts) == 1
            assert [json.loads(x)["title"] for x in outbox.read_text().splitlines()] == ["Tin thứ nhất", "Tin thứ hai"]
    log = (tmp_path / "worker.log").read_text()
    assert TOKEN not in log
