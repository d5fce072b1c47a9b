"""End to end with a real worker (and beat) against a real Redis: a corrected title in the watched
folder becomes an "edit" line in the outbox after the debounce, and a deleted file, with
`retract_on_remove`, a "delete" line once a second poll confirms it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import redis as redis_py

from distributor.keys import Keys
from distributor.settings import load_settings
from distributor.store import Store
from tests.integration.helpers import REPO, config_file, wait_for, worker

SEED = next((REPO / "config" / "examples" / "articles").glob("*.md"))
TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"

REST = """
retract_on_remove = true

[worker]
edit_debounce = "1s"

[[feeds]]
name = "all"

[[channels]]
name = "outbox"
type = "outbox"
"""


def events(tmp_path: Path) -> list[str]:
    path = tmp_path / "data" / "outbox.jsonl"
    if not path.exists():
        return []
    return [json.loads(line).get("event", "post") for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_corrected_title_is_edited_and_a_removed_file_deleted(tmp_path: Path, redis_url: str, prefix: str) -> None:
    config = config_file(tmp_path, redis_url, prefix, REST)
    settings = load_settings(config)
    client = redis_py.Redis.from_url(settings.redis.url, decode_responses=True)
    store = Store(client, redis_py.Redis.from_url(settings.redis.url), Keys(settings.redis.key_prefix))
    with worker(config, tmp_path / "worker.log"):
        wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
        target = tmp_path / "articles" / SEED.name
        shutil.copy(SEED, target)
        wait_for(lambda: events(tmp_path) == ["post"], what="the post in the outbox")

        target.write_text(SEED.read_text(encoding="utf-8").replace(TITLE, TITLE + " (đính chính)"), encoding="utf-8")
        wait_for(lambda: events(tmp_path) == ["post", "edit"], what="the edit line in the outbox")
        edit = json.loads((tmp_path / "data" / "outbox.jsonl").read_text(encoding="utf-8").splitlines()[1])
        assert edit["title"] == TITLE + " (đính chính)" and edit["key"].endswith(":outbox")

        target.unlink()
        wait_for(lambda: events(tmp_path) == ["post", "edit", "delete"], what="the delete line in the outbox")
        [record] = [client.hgetall(Keys(settings.redis.key_prefix).delivery(edit["article_id"], "outbox"))]
        assert record["state"] == "deleted"
