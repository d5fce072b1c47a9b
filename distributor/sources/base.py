"""The small interface every source type implements.

A source turns one configured place (folder, feed URL, listing page...) into Drafts. It keeps what
it needs between polls (ETags, cursors, file mtimes) in a flat `state` dict that the pipeline
stores in Redis, so a poll of an unchanged source costs one conditional request.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from distributor.errors import SourceError
from distributor.normalize import Draft
from distributor.settings import SiteSettings, SourceSettings


@dataclass
class PollResult:
    drafts: list[Draft] = field(default_factory=list)
    # True when `drafts` is every live article of the source: articles seen before and absent now
    # were removed (unpublished). Feeds and listings that show only the newest items are not complete.
    complete: bool = False
    state: dict[str, str] = field(default_factory=dict)
    errors: list[SourceError] = field(default_factory=list)  # per-item problems; the rest goes on
    not_modified: bool = False  # the source answered 304 / nothing changed: nothing to do
    # True when a per-poll budget left articles the source already knows of for later polls. A new
    # source's first poll lasts until one leaves none: what it holds fills the feeds unposted.
    backlog: bool = False


class Source(ABC):
    type: ClassVar[str]
    settings_model: ClassVar[builtins.type[SourceSettings]] = SourceSettings  # `type` is shadowed above

    def __init__(self, settings: SourceSettings, site: SiteSettings, data_dir: Path = Path("data")) -> None:
        self.settings = settings
        self.site = site
        self.data_dir = data_dir

    @property
    def name(self) -> str:
        return self.settings.name

    @abstractmethod
    def poll(self, state: dict[str, str]) -> PollResult:
        """Read the source once. Raise SourceError when the whole source is unreadable."""

    def error(self, message: str, input: str | None = None) -> SourceError:
        return SourceError(self.name, message, input=input or self.settings.url or self.settings.path)
