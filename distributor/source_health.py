"""Each source's latest poll: when, what it found, the error if any. Written by the poll task, read
by the console's sources page (an operator asks "why did this source stop producing articles?")."""

from __future__ import annotations

import time
from typing import Any

from distributor.context import Context
from distributor.pipeline import PollReport
from distributor.urls import mask_urls


def record(ctx: Context, report: PollReport, now: float | None = None) -> None:
    """Keep the outcome of one poll (the last one replaces the one before)."""
    errors = [mask_urls(e) for e in report.errors]
    ctx.redis.hset(
        ctx.keys.source_health(report.source),
        mapping={
            "at": str(time.time() if now is None else now),
            "found": str(report.found),
            "new": str(len(report.new)),
            "updated": str(len(report.updated)),
            "removed": str(len(report.removed)),
            "not_modified": "1" if report.not_modified else "0",
            "errors": str(len(errors)),
            "error": errors[0][:1000] if errors else "",
        },
    )


def read_all(ctx: Context) -> dict[str, dict[str, Any]]:
    """The latest poll of every configured source, in one round trip; {} for a source never polled."""
    names = [s.name for s in ctx.settings.sources]
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(ctx.keys.source_health(name))
    found: dict[str, dict[str, Any]] = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        if not raw:
            found[name] = {}
            continue
        found[name] = {
            "at": float(raw.get("at") or 0) or None,
            "found": int(raw.get("found") or 0),
            "new": int(raw.get("new") or 0),
            "updated": int(raw.get("updated") or 0),
            "removed": int(raw.get("removed") or 0),
            "not_modified": raw.get("not_modified") == "1",
            "errors": int(raw.get("errors") or 0),
            "error": raw.get("error") or "",
        }
    return found
