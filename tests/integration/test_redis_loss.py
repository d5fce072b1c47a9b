"""Redis killed and restarted empty (no AOF) under a running worker, beat and web server: the next
new article is posted once, none of the old ones is posted again, and the loss is reported."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.redis import redis_binary
from distributor.store import Store
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file, free_port, server, wait_for, worker


@contextmanager
def volatile_redis(directory: Path) -> Iterator[Callable[[], None]]:
    """A redis-server of this test's own that keeps nothing on disk; yields `lose`: SIGKILL it and
    start it again, empty, on the same port."""
    port = free_port()
    directory.mkdir()
    command = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(directory)]
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_py.Redis.from_url(url, socket_connect_timeout=1)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis_py.RedisError:
            return False

    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]
    wait_for(up, timeout=10, what="redis-server")

    def lose() -> None:
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait()
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        wait_for(up, timeout=10, what="redis-server back")
        assert not list(directory.iterdir())  # nothing it could have read back

    try:
        lose.url = url  # type: ignore[attr-defined]
        yield lose
    finally:
        processes[-1].kill()
        processes[-1].wait()


def outbox_titles(tmp_path: Path) -> list[str]:
    path = tmp_path / "data" / "outbox.jsonl"
    return [json.loads(line)["title"] for line in path.read_text().splitlines()] if path.exists() else []


def article(folder: Path, name: str, title: str) -> None:
    (folder / name).write_text(f'---\ntitle: "{title}"\n---\nNội dung.\n', encoding="utf-8")


def test_redis_restarted_empty_posts_the_next_article_only_and_reports_it(tmp_path: Path, prefix: str) -> None:
    with volatile_redis(tmp_path / "redis") as lose:
        url: str = lose.url  # type: ignore[attr-defined]
        config = config_file(tmp_path, url, prefix, ALL_FEEDS_AND_OUTBOX)
        folder = tmp_path / "articles"
        article(folder, "cu-1.md", "Bài cũ 1")  # there before the service: never posted
        article(folder, "cu-2.md", "Bài cũ 2")
        client = redis_py.Redis.from_url(url, decode_responses=True)
        store = Store(client, redis_py.Redis.from_url(url), Keys(prefix))

        with worker(config, tmp_path / "worker.log"), server(config, tmp_path / "web.log") as base:
            wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
            article(folder, "moi-1.md", "Bài mới 1")
            wait_for(lambda: outbox_titles(tmp_path), what="the first new article in the outbox")

            lose()
            article(folder, "moi-2.md", "Bài mới 2")
            wait_for(lambda: len(outbox_titles(tmp_path)) >= 2, what="the article published after the loss")

            def degraded() -> dict[str, object] | None:
                try:
                    body = requests.get(f"{base}/healthz", timeout=2).json()
                except (requests.RequestException, ValueError):
                    return None
                return body if body.get("status") == "degraded" else None

            health = wait_for(degraded, what="/healthz to report the loss")
            time.sleep(3)  # more polls and sweeps: nothing else is posted
            assert outbox_titles(tmp_path) == ["Bài mới 1", "Bài mới 2"]

    lost = health["state_lost"]
    assert isinstance(lost, dict)
    # What the journal knew when the loss was noticed: the second article may already be in it.
    assert lost["sources"] == 1 and lost["deliveries"] in (1, 2) and lost["articles"] in (3, 4)
    log = (tmp_path / "worker.log").read_text()
    assert log.count("Redis lost its state") == 1
