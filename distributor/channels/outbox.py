"""Outbox: appends each post as one JSON line to a local file. The default, dev and dry-run channel.

Corrections are lines too: an edit appends `"event": "edit"` with the delivery key and the new
text, a deletion `"event": "delete"`. Both are written once: an edit identical to the key's last
version, or a second deletion, appends nothing (a retried task leaves one version).
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from distributor.channels.base import Channel
from distributor.models import Post, Receipt
from distributor.settings import ChannelSettings


class OutboxSettings(ChannelSettings):
    path: str = ""  # empty: <data_dir>/outbox.jsonl, set by the caller


class Outbox(Channel):
    kind = "outbox"
    settings_model = OutboxSettings
    limit = 100_000
    supports_readback = True
    can_edit = True
    can_delete = True

    @property
    def path(self) -> Path:
        assert isinstance(self.settings, OutboxSettings)
        return Path(self.settings.path) if self.settings.path else self.data_dir / "outbox.jsonl"

    def send(self, post: Post, key: str) -> Receipt:
        record = {"key": key, **self._content(post), "sent_at": datetime.now(UTC).isoformat()}
        self._append(record)
        return Receipt(post_id=key, url=self.path.resolve().as_uri())

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        target = receipt.post_id or key
        content = self._content(post)
        last = self._last(target)
        if last is None or any(last.get(k) != v for k, v in content.items()):  # same text twice: one version
            self._append({"event": "edit", "key": target, **content, "edited_at": datetime.now(UTC).isoformat()})
        return Receipt(post_id=target, url=self.path.resolve().as_uri())

    def delete(self, receipt: Receipt, key: str) -> None:
        target = receipt.post_id or key
        last = self._last(target)
        if last is not None and last.get("event") == "delete":
            return  # already deleted: a repeated deletion is a success
        self._append({"event": "delete", "key": target, "deleted_at": datetime.now(UTC).isoformat()})

    @staticmethod
    def _content(post: Post) -> dict[str, object]:
        return {
            "channel": post.channel,
            "article_id": post.article_id,
            "text": post.text,
            "url": post.url,
            "title": post.title,
            "image": post.image,
        }

    def _append(self, record: dict[str, object]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # whole lines even with several workers
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def _last(self, key: str) -> dict[str, object] | None:
        """The newest line about `key` (its post, edit or deletion)."""
        if not self.path.is_file():
            return None
        found = None
        needle = f'"key": {json.dumps(key, ensure_ascii=False)}'
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if needle in line:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if record.get("key") == key:
                        found = record
        return found

    def find_existing(self, post: Post, key: str) -> Receipt | None:
        if not self.path.is_file():
            return None
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                if f'"key": "{key}"' in line:
                    return Receipt(post_id=key, url=self.path.resolve().as_uri())
        return None

    def check(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(self.path.parent, os.W_OK):
            return f"cannot write to {self.path.parent}"
        return f"writes to {self.path}"
