"""Beat entries derived from the configured sources' intervals, plus the housekeeping sweep."""

from __future__ import annotations

from typing import Any

from distributor.channels import channel_class
from distributor.channels.base import Channel
from distributor.queues import ENGAGEMENT as ENGAGEMENT_QUEUE  # every worker consumes it by default
from distributor.settings import Settings

TOKEN_CHECK_INTERVAL = 86400.0  # Facebook's debug_token, once a day: tokens lapse in days, not minutes


def tells_token_expiry(kind: str) -> bool:
    """Whether this channel type's platform can say when its token expires (`Channel.token_expiry`)."""
    return channel_class(kind).token_expiry is not Channel.token_expiry


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "sweep-deliveries": {"task": "worker.tasks.sweep_deliveries", "schedule": settings.worker.sweep_interval},
    }
    if settings.shares.engagement_days > 0:
        schedule["pull-engagement"] = {
            "task": "worker.tasks.pull_engagement",
            "schedule": settings.shares.engagement_interval,
            # A queue of its own: deliveries never wait behind engagement reads.
            "options": {"queue": ENGAGEMENT_QUEUE, "expires": settings.shares.engagement_interval},
        }
    if any(channel.enabled and tells_token_expiry(channel.type) for channel in settings.channels):
        schedule["check-token-expiry"] = {
            "task": "worker.tasks.check_token_expiry",
            "schedule": TOKEN_CHECK_INTERVAL,
            "options": {"queue": ENGAGEMENT_QUEUE, "expires": TOKEN_CHECK_INTERVAL},  # reads, like the pulls
        }
    for source in settings.sources:
        if source.enabled and source.type != "push":
            schedule[f"poll:{source.name}"] = {
                "task": "worker.tasks.poll_source",
                "schedule": source.interval,
                "args": [source.name],
                "options": {"expires": source.interval},  # a backlog of polls is pointless
            }
    return schedule
