"""Beat entries derived from the configured sources' intervals, plus the housekeeping sweep."""

from __future__ import annotations

from typing import Any

from distributor.queues import ENGAGEMENT as ENGAGEMENT_QUEUE  # every worker consumes it by default
from distributor.settings import Settings


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
    for source in settings.sources:
        if source.enabled and source.type != "push":
            schedule[f"poll:{source.name}"] = {
                "task": "worker.tasks.poll_source",
                "schedule": source.interval,
                "args": [source.name],
                "options": {"expires": source.interval},  # a backlog of polls is pointless
            }
    return schedule
