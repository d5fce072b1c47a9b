"""Plain data passed between parts: articles, rendered posts, receipts. No I/O here."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from distributor.text import plain_text


class Article(BaseModel):
    """One published article, normalised (see `distributor.normalize`)."""

    model_config = ConfigDict(frozen=True)

    id: str
    url: str
    title: str
    summary: str = ""
    content: str = ""  # sanitised HTML
    image: str | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    language: str = "vi"
    published: datetime
    updated: datetime
    source: str = ""

    @field_validator("title", "author")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        """Plain text, also for articles stored before normalisation made it so (idempotent)."""
        return value if value is None else plain_text(value)

    @field_validator("categories", "tags")
    @classmethod
    def _plain_labels(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(label for label in map(plain_text, values) if label))

    def content_hash(self) -> str:
        """Hash of what readers see; `updated` and `source` are left out so re-polls compare equal."""
        payload = self.model_dump(mode="json", exclude={"updated", "source"})
        raw = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(raw).hexdigest()[:20]


class Post(BaseModel):
    """What one channel will send for one article, already fitted to the platform's limits."""

    model_config = ConfigDict(frozen=True)

    channel: str
    kind: str
    article_id: str
    text: str
    url: str
    title: str = ""
    image: str | None = None
    length: int = 0
    limit: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)


class Receipt(BaseModel):
    """The platform's answer to a successful post."""

    model_config = ConfigDict(frozen=True)

    post_id: str | None = None
    url: str | None = None
    # What the platform needs later to edit or delete this post, beyond its id (Telegram: the chat and
    # whether it is a photo caption; Slack: channel and ts). Kept in the ledger's post history.
    data: dict[str, str] = Field(default_factory=dict)
