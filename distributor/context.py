"""Everything a process needs, built once from settings: Redis, store, ledger, shares, adapters."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import redis

from distributor import redis as redis_support
from distributor.admission import Admission
from distributor.channel_state import RedisChannelState
from distributor.channels import channel_class
from distributor.channels.base import Channel
from distributor.dates import zone
from distributor.journal import Journal
from distributor.keys import Keys
from distributor.ledger import Ledger
from distributor.settings import Settings, load_settings
from distributor.shares import Shares
from distributor.sources import source_class
from distributor.sources.base import Source
from distributor.store import Store

log = logging.getLogger(__name__)


@dataclass
class Context:
    settings: Settings
    redis_url: str
    _channels: dict[str, Channel] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> Context:
        url = redis_support.resolve_url(settings.redis.url, settings.data_dir)
        return cls(settings=settings, redis_url=url)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.key_prefix)

    @cached_property
    def redis(self) -> redis.Redis:
        return redis_support.client(self.redis_url)

    @cached_property
    def journal(self) -> Journal:
        """What must outlive Redis, kept beside the data (see `distributor.journal`)."""
        return Journal(self.data_dir / "state" / "journal.sqlite3")

    @cached_property
    def store(self) -> Store:
        return Store(self.redis, redis_support.binary_client(self.redis_url), self.keys, self.journal)

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger(self.redis, self.keys, self.journal)

    @cached_property
    def admission(self) -> Admission:
        """Per-channel breaker, in-flight slots and spacing, shared through Redis."""
        return Admission(self.redis, self.keys, self.settings, self.tz)

    @cached_property
    def shares(self) -> Shares:
        shares = self.settings.shares
        return Shares(self.redis, self.keys, self.tz, shares.repeat_window, shares.client_limit)

    @property
    def tz(self):  # type: ignore[no-untyped-def]
        return zone(self.settings.site.timezone)

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def channel(self, name: str) -> Channel:
        """The configured adapter for channel `name`, built once, with its state in Redis."""
        if name not in self._channels:
            config = self.settings.channel(name)
            adapter = channel_class(config.type)(config, self.settings.site, self.data_dir)
            adapter.state = RedisChannelState(self.redis, self.keys, name)
            self._channels[name] = adapter
        return self._channels[name]

    def source(self, name: str) -> Source:
        config = self.settings.source(name)
        return source_class(config.type)(config, self.settings.site, self.data_dir)


_current: Context | None = None


def get_context(settings: Settings | None = None) -> Context:
    """The process-wide context (settings from DISTRIBUTOR_CONFIG unless given)."""
    global _current
    if _current is None or (settings is not None and settings is not _current.settings):
        _current = Context.create(settings or load_settings())
    return _current


def reset_context() -> None:
    global _current
    _current = None
