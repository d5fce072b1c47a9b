"""What the extraction layers found, shared by all of them so that the most trustworthy one wins."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from distributor import text as textlib


@dataclass
class Fields:
    """What the layers found; the first layer to set a field wins."""

    title: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    content: str = ""
    summary: str = ""
    image: str = ""
    author: str = ""
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def offer(self, **values: Any) -> None:
        for name, value in values.items():
            if value and not getattr(self, name):
                setattr(self, name, value)


def unique(labels: Iterable[str]) -> list[str]:
    """The labels cleaned, empty ones left out, each once, in first-seen order."""
    return list(dict.fromkeys(c for c in (textlib.clean_text(label) for label in labels) if c))
