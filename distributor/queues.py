"""Celery queue names: one for everything but deliveries, one per channel for its deliveries.

A channel's own queue keeps a burst for one platform from standing in front of the others' posts,
and lets an operator dedicate workers to a channel (`distributor worker --queues deliver.facebook`).
"""

from __future__ import annotations

from distributor.settings import Settings

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
    if any(c.name == channel for c in settings.channels):
        return delivery_queue(channel)
    return DEFAULT


def unknown(settings: Settings, names: list[str]) -> list[str]:
    known = set(all_queues(settings))
    return [name for name in names if name not in known]
