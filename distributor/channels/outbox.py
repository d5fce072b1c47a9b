"""Outbox: appends each post as one JSON line to a local file. The default, dev and dry-run channel."""

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

    @property
    def path(self) -> Path:
        assert isinstance(self.settings, OutboxSettings)
        return Path(self.settings.path) if self.settings.path else self.data_dir / "outbox.jsonl"

    def send(self, post: Post, key: str) -> Receipt:
        record = {
            "key": key,
            "channel": post.channel,
            "article_id": post.article_id,
            "text": post.text,
            "url": post.url,
            "title": post.title,
            "image": post.image,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # whole lines even with several workers
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return Receipt(post_id=key, url=self.path.resolve().as_uri())

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
