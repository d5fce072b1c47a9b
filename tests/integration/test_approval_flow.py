"""Approval through the real worker, beat and HTTP server: a new article is held on the approval
channel while sweeps run, the editors' channel gets one preview, an operator's approval over the API
posts it once, a rejected one is never posted; both actions are in the audit log with the token's name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.store import Store
from tests.integration.helpers import config_file, server, wait_for, worker

TOKEN = "editor-token-0123456789"


def outbox(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_held_until_approved_over_the_api_and_rejected_never_posted(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    social, editors = tmp_path / "social.jsonl", tmp_path / "editors.jsonl"
    rest = f"""
[server]
api_tokens = [{{ name = "editor-an", token = "{TOKEN}" }}]
[worker]
sweep_interval = "1s"
[[feeds]]
name = "all"
[[channels]]
name = "social"
type = "outbox"
path = "{social}"
approval = true
approval_notify = "editors"
[[channels]]
name = "editors"
type = "outbox"
path = "{editors}"
enabled = false
"""
    config = config_file(tmp_path, redis_url, prefix, rest)
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    store = Store(client, redis_py.Redis.from_url(redis_url), Keys(prefix))
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with worker(config, tmp_path / "worker.log"), server(config, tmp_path / "web.log") as base:
        wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
        for name, title in (("duyet.md", "Bài được duyệt"), ("tu-choi.md", "Bài bị từ chối")):
            (tmp_path / "articles" / name).write_text(f'---\ntitle: "{title}"\n---\nNội dung.\n', encoding="utf-8")
        wait_for(lambda: len(outbox(editors)) == 2, what="one preview per article for the editors")
        ids = {line["text"].splitlines()[0].partition(": ")[2]: line["article_id"] for line in outbox(editors)}
        approved, rejected = ids["Bài được duyệt"], ids["Bài bị từ chối"]
        time.sleep(3)  # several sweeps
        assert outbox(social) == []

        answer = requests.post(f"{base}/api/articles/{rejected}/reject", data=b"{}", headers=auth, timeout=5)
        assert answer.status_code == 200, answer.text
        answer = requests.post(f"{base}/api/articles/{approved}/approve", data=b"{}", headers=auth, timeout=5)
        assert answer.status_code == 200, answer.text
        wait_for(lambda: outbox(social), what="the approved post")
        late = requests.post(f"{base}/api/articles/{rejected}/approve", data=b"{}", headers=auth, timeout=5)
        assert late.status_code == 409
        time.sleep(3)  # more sweeps and polls: nothing else is posted, no second preview
        assert [line["article_id"] for line in outbox(social)] == [approved]
        assert len(outbox(editors)) == 2

        log = requests.get(f"{base}/api/audit", headers=auth, timeout=5).json()["entries"]
        assert [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(log)] == [
            ("editor-an", "reject", rejected, "rejected"),
            ("editor-an", "approve", approved, "approved"),
            ("editor-an", "approve", rejected, "refused"),
        ]
        assert requests.get(f"{base}/api/audit", timeout=5).status_code == 401
