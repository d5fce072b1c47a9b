"""A per-channel pace kept in Redis, so a rate limit holds across every worker and machine."""

from __future__ import annotations

import time

import redis

# Reserve the next slot: returns 0 when we may go now, else the seconds to wait.
_RESERVE = """
local now = tonumber(ARGV[1])
local spacing = tonumber(ARGV[2])
local next_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_at > now then return tostring(next_at - now) end
redis.call('SET', KEYS[1], tostring(now + spacing), 'PX', math.ceil(spacing * 1000) + 1000)
return '0'
"""


class RateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._reserve = client.register_script(_RESERVE)

    def wait_time(self, key: str, per_minute: float) -> float:
        """0 when a send may happen now (and the slot is taken), else seconds until the next slot."""
        return float(self._reserve(keys=[key], args=[time.time(), 60.0 / per_minute]))
