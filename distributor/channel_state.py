"""What a channel must keep between deliveries (refreshed tokens, sessions), kept in Redis so it
holds across workers and restarts, with a lock for single-use refreshes (Zalo)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

import redis

from distributor.keys import Keys


class ChannelState(Protocol):
    def get(self, field: str) -> str | None: ...

    def set(self, **values: str) -> None: ...

    def forget(self, *fields: str) -> None: ...

    def lock(self, purpose: str, timeout: float = 30.0) -> AbstractContextManager[None]: ...


class RedisChannelState:
    def __init__(self, client: redis.Redis, keys: Keys, channel: str) -> None:
        self.client = client
        self.keys = keys
        self.channel = channel

    def get(self, field: str) -> str | None:
        value = self.client.hget(self.keys.channel_state(self.channel), field)
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def set(self, **values: str) -> None:
        """Write several fields atomically (a token pair must never be half-saved)."""
        self.client.hset(self.keys.channel_state(self.channel), mapping=values)

    def forget(self, *fields: str) -> None:
        """Drop fields no longer needed (per-delivery progress once the delivery is done)."""
        if fields:
            self.client.hdel(self.keys.channel_state(self.channel), *fields)

    @contextmanager
    def lock(self, purpose: str, timeout: float = 30.0) -> Iterator[None]:
        with self.client.lock(self.keys.channel_lock(self.channel, purpose), timeout=timeout, blocking_timeout=timeout):
            yield


class MemoryChannelState:
    """For `preview` and one-off checks where nothing must persist."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, field: str) -> str | None:
        return self.values.get(field)

    def set(self, **values: str) -> None:
        self.values.update(values)

    def forget(self, *fields: str) -> None:
        for field in fields:
            self.values.pop(field, None)

    @contextmanager
    def lock(self, purpose: str, timeout: float = 30.0) -> Iterator[None]:
        yield
