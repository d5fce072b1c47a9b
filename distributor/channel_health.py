"""Each channel's delivery health in one report: circuit, slots, pace and latest outcomes.

Read by `distributor channels` and the metrics; the state comes from Redis (`distributor.admission`)
and the latest outcomes from the ledger's recent records.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from distributor.admission import as_dict
from distributor.channels import channel_class
from distributor.channels.base import Channel
from distributor.context import Context
from distributor.errors import ChannelError

log = logging.getLogger(__name__)

RECENT = 1000  # ledger records looked at for the latest outcomes and today's posts
BREAKER_CODES = {"closed": 0, "half-open": 1, "open": 2, "paused": 3}


def report(ctx: Context) -> list[dict[str, Any]]:
    """One entry per configured channel, in config order."""
    midnight = datetime.now(ctx.tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    latest: dict[str, dict[str, Any]] = {}
    for record in ctx.ledger.recent(RECENT):  # newest first
        seen = latest.setdefault(record.channel, {"last_sent": None, "last_error": None, "posts_today": 0})
        if record.state == "sent":
            seen["posts_today"] += record.updated >= midnight
            seen["last_sent"] = seen["last_sent"] or record.updated
        elif record.error and seen["last_error"] is None:
            seen["last_error"] = {"at": record.updated, "state": record.state, "message": record.error}
    entries = []
    for channel in ctx.settings.channels:
        health = ctx.admission.health(channel.name, channel)
        entry: dict[str, Any] = {"name": channel.name, "type": channel.type, "enabled": channel.enabled}
        entry |= as_dict(health)
        entry |= {"max_in_flight": channel.max_in_flight}
        entry |= latest.get(channel.name, {"last_sent": None, "last_error": None, "posts_today": 0})
        entries.append(entry)
    return entries


def breaker_gauges(ctx: Context) -> list[tuple[str, int, int]]:
    """(channel, breaker state code, deliveries in flight) for the metrics."""
    out = []
    for channel in ctx.settings.channels:
        health = ctx.admission.health(channel.name)
        out.append((channel.name, BREAKER_CODES[health.breaker], health.in_flight))
    return out


def refresh_token_expiry(ctx: Context) -> dict[str, float]:
    """Ask each enabled channel whose platform tells (Facebook's debug_token) when its token expires;
    the adapter keeps the answer for the console. Beat runs this daily, so a token that lapses is on
    the overview a week ahead. A failed read is logged and left for tomorrow: posting decides."""
    found: dict[str, float] = {}
    for channel in ctx.settings.channels:
        if not channel.enabled or channel_class(channel.type).token_expiry is Channel.token_expiry:
            continue
        adapter = ctx.channel(channel.name)
        try:
            expires = adapter.token_expiry()
        except ChannelError as exc:
            log.warning("channel %s: could not read when its token expires: %s", channel.name, exc.message)
            continue
        if expires is not None:
            found[channel.name] = expires
    return found
