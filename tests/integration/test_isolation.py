"""A platform that hangs (no answer until its timeout) never delays the other channels: through a
real Celery worker, the healthy channels' posts all arrive within seconds while the hanging one
holds no more than its `max_in_flight` workers (issue 14)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis as redis_py

from distributor.keys import Keys
from distributor.store import Store
from tests.fakes.server import Reply, Request
from tests.fakes.webhook import SIGNING_SECRET, WebhookFake
from tests.integration.helpers import config_file, wait_for, worker

ARTICLES = 6
HANG = 25.0  # seconds the hanging platform keeps a request (its answer comes after the test)


def hang(fake: WebhookFake, release: threading.Event) -> list[float]:
    """Every request to `fake` waits until `release` (or HANG seconds); returns when each arrived."""
    arrived: list[float] = []
    for index, (method, pattern, handler) in enumerate(fake.routes):

        def stuck(request: Request, handler: Callable[[Request], Reply] = handler) -> Reply:
            arrived.append(time.monotonic())
            release.wait(HANG)
            return handler(request)

        fake.routes[index] = (method, pattern, stuck)
    return arrived


def channel(name: str, fake: WebhookFake) -> str:
    return f"""
[[channels]]
name = "{name}"
type = "webhook"
url = "{fake.url + fake.hook_path}"
secret = "{SIGNING_SECRET}"
"""


def test_a_hanging_platform_leaves_the_others_on_time(tmp_path: Path, redis_url: str, prefix: str) -> None:
    release = threading.Event()
    with WebhookFake() as stuck, WebhookFake() as first, WebhookFake() as second:
        arrived = hang(stuck, release)
        rest = '[[feeds]]\nname = "all"\n' + channel("stuck", stuck) + channel("first", first)
        config = config_file(tmp_path, redis_url, prefix, rest + channel("second", second))
        store = Store(
            redis_py.Redis.from_url(redis_url, decode_responses=True), redis_py.Redis.from_url(redis_url), Keys(prefix)
        )
        try:
            with worker(config, tmp_path / "worker.log"):  # 4 threads: without isolation all would hang
                wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
                for n in range(ARTICLES):
                    (tmp_path / "articles" / f"tin-{n}.md").write_text(
                        f'---\ntitle: "Tin số {n}"\n---\nNội dung {n}.\n', encoding="utf-8"
                    )
                wait_for(lambda: arrived, timeout=15, what="the hanging platform to get a request")
                started = time.monotonic()

                def healthy_done() -> bool:
                    return len(first.posts) == ARTICLES and len(second.posts) == ARTICLES

                wait_for(healthy_done, timeout=8, interval=0.1, what="the healthy channels' posts")
                took = time.monotonic() - started
                assert took < 8, took
                assert not release.is_set() and stuck.posts == []  # still stuck meanwhile
                assert len(arrived) <= 2  # max_in_flight: the others wait their turn, off the workers
                release.set()  # the platform answers: its posts go out too, once each
                wait_for(lambda: len(stuck.posts) == ARTICLES, timeout=40, what="the stuck channel's posts")
                assert len({p["body"]["article"]["url"] for p in stuck.posts}) == ARTICLES
        finally:
            release.set()
