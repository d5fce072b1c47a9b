"""Celery queue names: one for everything but deliveries, one per channel for its deliveries.

A channel's own queue keeps a burst for one platform from standing in front of the others' posts,
and lets an operator dedicate workers to a channel (`distributor worker --queues deliver.facebook`).
"""

from __future__ import annotations

import redis

from distributor.keys import Keys
from distributor.settings import Settings

# kombu's Redis transport keeps a task sent with a priority in '<queue>\x06\x16<step>'.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")

DEFAULT = "distributor"  # polls, feed rebuilds, sweeps, pings, and deliveries to unknown channels
DELIVERY_PREFIX = "deliver."
ENGAGEMENT = "engagement"  # reading the platforms' counts: never in front of a delivery


def delivery_queue(channel: str) -> str:
    return f"{DELIVERY_PREFIX}{channel}"


def all_queues(settings: Settings) -> list[str]:
    """Every queue a worker consumes by default."""
    return [DEFAULT, ENGAGEMENT, *(delivery_queue(channel.name) for channel in settings.channels)]


def for_delivery(settings: Settings, channel: str) -> str:
    """The channel's queue; a channel no longer configured goes to the default queue, where the
    delivery is cancelled (a queue nobody consumes would keep it forever)."""
    if settings.has_channel(channel):
        return delivery_queue(channel)
    return DEFAULT


def unknown(settings: Settings, names: list[str]) -> list[str]:
    known = set(all_queues(settings))
    return [name for name in names if name not in known]


def depths(client: redis.Redis, keys: Keys, settings: Settings) -> dict[str, int]:
    """Tasks waiting in each queue of a Redis broker (one pipelined LLEN per list). A RabbitMQ
    broker is not read here: its management API or exporter reports its queues."""
    names = all_queues(settings)
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(keys.broker_queue(name + suffix))
        lengths = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {name: sum(int(n) for n in lengths[i * step : (i + 1) * step]) for i, name in enumerate(names)}
