"""The audit log: every operator action (approve, reject, retract, retry, cancel, publish, push ...)
with who, when, what and the outcome, kept in Redis for `[audit] retention`.

A Redis stream: entry ids are the times of the actions, so reading "since" is a range and the
retention is a MINID trim, done at each record. Who: the name of the API token (`[server]
api_tokens`), 'hmac' for a signed push, 'local' for a tokenless local client, `cli:<os user>` for
the command line (see `cli_actor`).

Recording never undoes or fails the action it records (the action has happened): when Redis cannot
take the entry, the log line below is its only trace, and says so.
"""

from __future__ import annotations

import getpass
import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from distributor.context import Context
from distributor.errors import N_, Refusal
from distributor.settings import parse_duration
from distributor.urls import mask_urls

log = logging.getLogger(__name__)

MAX_FIELD = 2000  # characters kept of a target, outcome or detail (platform messages can be long)


@dataclass(frozen=True)
class AuditEntry:
    id: str  # the stream id: '<milliseconds>-<sequence>'
    at: str  # ISO 8601, UTC
    actor: str
    action: str
    target: str
    outcome: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cli_actor() -> str:
    """The command line's actor: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        user = "unknown"
    return f"cli:{user}"


def _minid(ctx: Context, now: float | None = None) -> str:
    cutoff = (time.time() if now is None else now) - ctx.settings.audit.retention
    return str(max(0, int(cutoff * 1000)))


def record(ctx: Context, actor: str, action: str, target: str, outcome: str, detail: str = "") -> str | None:
    """Record one operator action; its entry id, or None when Redis could not take it (logged).

    `action`: a verb ('approve', 'reject', 'retract', 'retry', 'cancel', 'publish', 'push');
    `target`: what it acted on ('<article id>' or '<article id> -> <channel>'); `outcome`: what
    happened ('approved', 'refused', 'queued' ...), `detail`: the per-channel report or the reason.
    """
    # A URL's password or token (`publish https://reader:PW@host/?token=...`) is never kept or logged.
    fields = {
        "actor": actor[:MAX_FIELD],
        "action": action[:MAX_FIELD],
        "target": mask_urls(target)[:MAX_FIELD],
        "outcome": mask_urls(outcome)[:MAX_FIELD],
        "detail": mask_urls(detail)[:MAX_FIELD],
    }
    actor, action, target, outcome, detail = fields.values()
    log.info("audit: %s %s %s: %s %s", actor, action, target, outcome, detail)  # outlives Redis
    try:
        pipe = ctx.redis.pipeline()
        pipe.xadd(ctx.keys.audit(), fields)
        pipe.xtrim(ctx.keys.audit(), minid=_minid(ctx), approximate=False)
        entry_id, _ = pipe.execute()
    except redis.RedisError as exc:
        log.error("audit: could not record %s %s by %s (%s); the line above is its record", action, target, actor, exc)
        return None
    return str(entry_id)


def since_time(value: str | None, now: float | None = None) -> float | None:
    """'7d', '12h', '90m' (that long ago) or an ISO 8601 date/time (naive: UTC) -> unix time.

    Raises ValueError naming what was given."""
    if value is None or not value.strip():
        return None
    now = time.time() if now is None else now
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refusal(
            N_("since {value} is neither a duration like '7d', '12h' nor an ISO date like '2026-05-01'"),
            value=repr(value[:80]),
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read(ctx: Context, since: float | None = None, limit: int = 100) -> list[AuditEntry]:
    """The newest `limit` actions (newest first), only those at or after `since` (unix time), never
    older than the retention."""
    ctx.redis.xtrim(ctx.keys.audit(), minid=_minid(ctx), approximate=False)
    low = _minid(ctx) if since is None else str(max(int(_minid(ctx)), int(since * 1000)))
    rows = ctx.redis.xrevrange(ctx.keys.audit(), max="+", min=low, count=max(1, limit))
    return [_entry(entry_id, fields) for entry_id, fields in rows]


def _entry(entry_id: str, fields: dict[str, str]) -> AuditEntry:
    millis = int(entry_id.partition("-")[0])
    at = datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")
    return AuditEntry(
        id=entry_id,
        at=at,
        actor=fields.get("actor", ""),
        action=fields.get("action", ""),
        target=fields.get("target", ""),
        outcome=fields.get("outcome", ""),
        detail=fields.get("detail", ""),
    )
