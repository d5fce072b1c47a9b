"""A fix for a kombu bug that ends a worker after a Redis outage.

When the broker connection breaks while tasks are unacknowledged, Celery closes the channel, and
kombu's Redis channel tries to put those tasks back on the queue through a new client, built from
`self.connection.client`, which the closing connection has already set to None. The resulting
AttributeError escapes Celery's connection-error handling and stops the worker ("Unrecoverable
error: 'NoneType' object has no attribute 'hostname'"). Raising the connection error it really is
lets Celery handle it as the outage it is: the messages stay in Redis's unacked set and are
restored later, and the worker reconnects.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis

_original: Any = kombu_redis.Channel._connparams


def _connparams(self: Any, asynchronous: bool = False) -> Any:
    if self.connection.client is None:
        raise redis.ConnectionError("the broker connection is closed (Redis outage)")
    return _original(self, asynchronous)


def apply() -> None:
    if kombu_redis.Channel._connparams is not _connparams:
        kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
