"""Redis high availability end to end: a real Celery worker with beat, on a `redis+sentinel://`
URL (store, broker, results, beat schedule and lock all through the sentinel), ingests an article
from a watched folder and posts it to the outbox; after the master is SIGKILLed and the sentinel
promotes its replica, the service carries on and posts the next article, once."""

from __future__ import annotations

import json
from pathlib import Path

from distributor.keys import Keys
from distributor.redis import connect
from distributor.store import Store
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file, wait_for, worker
from tests.sentinel import PASSWORD, running_sentinel


def outbox_titles(tmp_path: Path) -> list[str]:
    path = tmp_path / "data" / "outbox.jsonl"
    return [json.loads(line)["title"] for line in path.read_text().splitlines()] if path.exists() else []


def test_worker_and_beat_on_sentinel_post_before_and_after_a_failover(tmp_path: Path, prefix: str) -> None:
    with running_sentinel(tmp_path / "sentinel", replicas=1) as sentinel:
        url = sentinel.url()
        config = config_file(tmp_path, url, prefix, ALL_FEEDS_AND_OUTBOX)
        store = Store(connect(url, decode_responses=True), connect(url), Keys(prefix))
        with worker(config, tmp_path / "worker.log"):
            wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
            (tmp_path / "articles" / "a.md").write_text('---\ntitle: "Trước sự cố"\n---\nNội dung.\n', "utf-8")
            wait_for(lambda: outbox_titles(tmp_path) == ["Trước sự cố"], what="the first outbox post")

            old_master = sentinel.master_port
            master = connect(f"redis://:{PASSWORD}@127.0.0.1:{old_master}/0")
            master.wait(1, 5000)  # the replica has everything so far
            sentinel.processes[old_master].kill()
            wait_for(lambda: sentinel.master_address()[1] != old_master, timeout=20, what="the promotion")

            (tmp_path / "articles" / "b.md").write_text('---\ntitle: "Sau sự cố"\n---\nNội dung.\n', "utf-8")
            wait_for(lambda: len(outbox_titles(tmp_path)) == 2, timeout=40, what="the post after the failover")
            assert outbox_titles(tmp_path) == ["Trước sự cố", "Sau sự cố"]
            assert len(store.newest(0, 10)) == 2
