"""A worker killed in the middle of a post (SIGKILL while the platform is still answering): a new
worker never posts it twice. On Telegram (no idempotency, no read-back) the delivery is flagged
`unknown` for the operator; on Mastodon the same Idempotency-Key is sent again and the platform
returns the post it already made."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import redis as redis_py

from distributor.keys import Keys
from distributor.ledger import Ledger
from distributor.store import Store
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.server import FakeServer, Reply, Request
from tests.fakes.telegram import TOKEN, TelegramFake
from tests.integration.helpers import beat, config_file, kill_group, wait_for, worker

FAST_RECOVERY = """
[worker]
lease = "2s"
sweep_interval = "1s"
[[feeds]]
name = "all"
"""


def slow_first(fake: FakeServer, path_end: str, seconds: float) -> list[float]:
    """The first matching request is answered only after `seconds` (it is still processed)."""
    started: list[float] = []
    for index, (method, pattern, handler) in enumerate(fake.routes):

        def slow(request: Request, handler: Callable[[Request], Reply] = handler) -> Reply:
            if request.path.endswith(path_end) and not started:
                started.append(time.monotonic())
                time.sleep(seconds)
            return handler(request)

        fake.routes[index] = (method, pattern, slow)
    return started


def crash_mid_post(
    tmp_path: Path, redis_url: str, prefix: str, broker_url: str, channel: str, fake: FakeServer, path_end: str
):  # type: ignore[no-untyped-def]
    config = config_file(tmp_path, redis_url, prefix, FAST_RECOVERY + channel, broker_url)
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(prefix)
    store = Store(client, redis_py.Redis.from_url(redis_url), keys)
    # The platform answers after 1.5 s: the worker is killed before that, and the request is done
    # before its claim's 2 s lease ends, as in production, where the lease (300 s) outlasts any
    # request (30 s timeout). A request outliving the lease could meet its own resend still in
    # flight, which no idempotency key covers (a platform records the key once the post exists).
    started = slow_first(fake, path_end, seconds=1.5)
    # Beat runs apart from the workers, so killing a worker leaves nothing of it behind; this
    # test starts (and stops) every process it relies on.
    with beat(config, tmp_path / "beat.log"):
        with worker(config, tmp_path / "worker-1.log", beat=False) as first:
            wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
            (tmp_path / "articles" / "a.md").write_text('---\ntitle: "Tin khẩn"\n---\nNội dung.\n', encoding="utf-8")
            wait_for(lambda: started, what="the post to reach the platform")
            kill_group(first)  # dies before the platform answers
        return settle_with_new_worker(config, tmp_path, client, keys, store)


def settle_with_new_worker(config: Path, tmp_path: Path, client, keys: Keys, store: Store):  # type: ignore[no-untyped-def]
    with worker(config, tmp_path / "worker-2.log", beat=False):
        [article] = store.newest(0, 1)
        ledger = Ledger(client, keys)

        def settled() -> str | None:
            record = ledger.get(article.id, "social")
            return record.state if record and record.state in ("sent", "unknown", "failed") else None

        state = wait_for(settled, timeout=30, what="the new worker to settle the delivery")
        time.sleep(2)  # more sweeps: nothing else happens
        return state, ledger.get(article.id, "social")


def test_telegram_post_of_unknown_fate_is_flagged_not_repeated(
    tmp_path: Path, redis_url: str, prefix: str, broker_url: str
) -> None:
    with TelegramFake() as fake:
        channel = f"""
[[channels]]
name = "social"
type = "telegram"
api_base = "{fake.url}"
token = "{TOKEN}"
chat_id = "@tintuc_tayninh"
"""
        state, record = crash_mid_post(tmp_path, redis_url, prefix, broker_url, channel, fake, "/sendMessage")
        assert state == "unknown"
        assert "may exist" in record.error
        assert len(fake.posts) == 1  # the dead worker's post landed; no second one


def test_mastodon_post_is_completed_with_the_same_idempotency_key(
    tmp_path: Path, redis_url: str, prefix: str, broker_url: str
) -> None:
    with FakeMastodon() as fake:
        channel = f"""
[[channels]]
name = "social"
type = "mastodon"
api_base = "{fake.url}"
access_token = "{fake.token}"
"""
        state, record = crash_mid_post(tmp_path, redis_url, prefix, broker_url, channel, fake, "/api/v1/statuses")
        assert state == "sent"
        assert len(fake.statuses) == 1
        keys = [r.header("Idempotency-Key") for r in fake.requests if r.path == "/api/v1/statuses"]
        assert len(keys) == 2 and keys[0] == keys[1]  # the resend carried the same key
        assert record.post_id == fake.statuses[0]["id"]
