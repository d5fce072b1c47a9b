"""What the console pages show, read from Redis in few round trips (pipelines, not one call per
article): the pages stay fast on a page of 50 articles. Ledger and store records only, never the
configuration's secrets."""

from __future__ import annotations

import base64
import json
import math
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from distributor import channel_health, engagement, heartbeat, queues, recovery, source_health
from distributor.context import Context
from distributor.ledger import AWAITING, Delivery, delivery_from_hash

PAGE_SIZE = 50
EXPIRY_SOON = 7 * 86400  # a token expiring within this is shown as needing attention
CHART_DAYS = 14


def channel_names(ctx: Context) -> list[str]:
    return [c.name for c in ctx.settings.channels]


def deliveries_for(ctx: Context, article_ids: list[str]) -> dict[str, dict[str, Delivery]]:
    """Article id -> channel -> delivery, for many articles in one pipeline."""
    channels = channel_names(ctx)
    pipe = ctx.redis.pipeline(transaction=False)
    for article_id in article_ids:
        for channel in channels:
            pipe.hgetall(ctx.keys.delivery(article_id, channel))
    raws = iter(pipe.execute())
    found: dict[str, dict[str, Delivery]] = {}
    for article_id in article_ids:
        row = found.setdefault(article_id, {})
        for channel in channels:
            raw = next(raws)
            if raw:
                row[channel] = delivery_from_hash(raw)
    return found


def share_totals(ctx: Context, article_ids: list[str]) -> dict[str, int]:
    pipe = ctx.redis.pipeline(transaction=False)
    for article_id in article_ids:
        pipe.hget(ctx.keys.shares(article_id), "total")
    return {a: int(n or 0) for a, n in zip(article_ids, pipe.execute(), strict=True)}


def titles_of(ctx: Context, article_ids: set[str], known: dict[str, str] | None = None) -> dict[str, str]:
    titles = dict(known or {})
    titles |= {a.id: a.title for a in ctx.store.get_many(sorted(article_ids - set(titles)))}
    return titles


def jwt_expiry(token: str | None) -> float | None:
    """The `exp` claim of a JWT (a Bluesky session), read without verifying: only the date is shown."""
    if not token or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) if isinstance(claims, dict) and "exp" in claims else None
    except (ValueError, TypeError, KeyError):
        return None


def token_expiry(ctx: Context) -> dict[str, float]:
    """Channel -> when its stored credentials expire, where the platform tells: Zalo's access token
    and Facebook's Page token (`expires_at`; `math.inf` for a token that never expires), a Bluesky
    session (its refresh token's `exp`). Never the credentials themselves."""
    names = channel_names(ctx)
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.hmget(ctx.keys.channel_state(name), "expires_at", "refresh_jwt")
    found = {}
    for name, (expires_at, refresh_jwt) in zip(names, pipe.execute(), strict=True):
        try:
            moment = math.inf if expires_at == "never" else float(expires_at) if expires_at else jwt_expiry(refresh_jwt)
        except ValueError:
            moment = None
        if moment:
            found[name] = moment
    return found


def overview(ctx: Context) -> dict[str, Any]:
    recent = ctx.ledger.recent(300)
    attention = [d for d in recent if d.state in ("failed", "unknown") or (d.state == "pending" and d.error)][:50]
    awaiting = [d for d in recent if d.state == AWAITING][:50]
    channels = channel_health.report(ctx)
    held = [c for c in channels if c["breaker"] != "closed"]
    sources = source_health.read_all(ctx)
    failing = {name: s for name, s in sources.items() if s.get("errors")}
    now = time.time()
    expiring = {name: at for name, at in token_expiry(ctx).items() if at - now < EXPIRY_SOON}
    top = ctx.shares.top("week", 10)
    ids = {d.article_id for d in attention + awaiting} | {aid for aid, _ in top}
    return {
        "state_lost": recovery.status(ctx),
        "health": heartbeat.judge(heartbeat.read(ctx.redis, ctx.keys), queues=queues.all_queues(ctx.settings)),
        "counts": ctx.ledger.counts(),
        "total_articles": ctx.store.count(),
        "attention": attention,
        "awaiting": awaiting,
        "held": held,
        "failing": failing,
        "expiring": expiring,
        "top": top,
        "titles": titles_of(ctx, ids),
        "now": now,
    }


@dataclass
class ArticleQuery:
    text: str = ""
    source: str = ""
    category: str = ""
    state: str = ""
    page: int = 1

    @property
    def filtered(self) -> bool:
        return bool(self.text or self.source or self.category or self.state)

    def params(self, page: int | None = None) -> dict[str, str]:
        values = {"q": self.text, "source": self.source, "category": self.category, "state": self.state}
        values["page"] = str(page or self.page)
        return {k: v for k, v in values.items() if v}


@dataclass
class ArticleList:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    pages: int = 1


def articles(ctx: Context, query: ArticleQuery) -> ArticleList:
    """A page of the articles, newest first; a search or filter looks through the whole archive
    (the store's search index, then the deliveries' states for a state filter)."""
    offset = (query.page - 1) * PAGE_SIZE
    if not query.filtered:
        total = ctx.store.count()
        page = ctx.store.newest(offset, PAGE_SIZE)
    else:
        found = ctx.store.search(query.text, query.source, query.category)
        if query.state:
            found = with_state(ctx, found, query.state)
        total = len(found)
        page = ctx.store.get_many(found[offset : offset + PAGE_SIZE])
    ids = [a.id for a in page]
    deliveries = deliveries_for(ctx, ids)
    shares = share_totals(ctx, ids)
    rows = [{"article": a, "deliveries": deliveries[a.id], "shares": shares[a.id]} for a in page]
    return ArticleList(rows, total, max(1, -(-total // PAGE_SIZE)))


def with_state(ctx: Context, article_ids: list[str], state: str, chunk: int = 500) -> list[str]:
    """The articles (order kept) with at least one delivery in `state`."""
    kept: list[str] = []
    for start in range(0, len(article_ids), chunk):
        ids = article_ids[start : start + chunk]
        states = deliveries_for(ctx, ids)
        kept += [i for i in ids if any(d.state == state for d in states[i].values())]
    return kept


def source_names(ctx: Context) -> list[str]:
    return [s.name for s in ctx.settings.sources] + ["push", "cli"]


def shares_per_day(ctx: Context, article_id: str, days: int = CHART_DAYS) -> list[tuple[str, int]]:
    """(day, shares) for the last `days` days, oldest first, in the site's timezone."""
    today = ctx.shares.now()
    labels = [ctx.shares.day(today - timedelta(days=n)) for n in reversed(range(days))]
    pipe = ctx.redis.pipeline(transaction=False)
    for label in labels:
        pipe.zscore(ctx.keys.shares_top(f"day:{label}"), article_id)
    return [(label, int(score or 0)) for label, score in zip(labels, pipe.execute(), strict=True)]


def chart(points: list[tuple[str, int]], width: int = 420, height: int = 90) -> dict[str, Any]:
    """Bars for a small server-rendered SVG: each (x, y, width, height, label, value)."""
    peak = max((v for _, v in points), default=0) or 1
    step = width / max(1, len(points))
    bars = []
    for index, (label, value) in enumerate(points):
        bar_height = round((height - 14) * value / peak, 1)
        x = round(index * step + 1, 1)
        bars.append({"x": x, "y": round(height - 12 - bar_height, 1), "w": round(step - 2, 1), "h": bar_height,
                     "label": label[5:], "value": value})  # fmt: skip
    return {"width": width, "height": height, "bars": bars, "peak": peak}


def article_page(ctx: Context, article_id: str) -> dict[str, Any] | None:
    article = ctx.store.get(article_id)
    channels = channel_names(ctx)
    deliveries = {d.channel: d for d in ctx.ledger.for_article(article_id, channels)}
    if article is None and not deliveries:
        return None
    history = {name: ctx.ledger.history(article_id, name) for name in deliveries}
    previews: dict[str, dict[str, Any]] = {}
    if article is not None:
        for name in channels:
            try:
                adapter = ctx.channel(name)
                post = adapter.render(article)
                previews[name] = {"kind": adapter.kind, "text": post.text, "length": post.length, "limit": post.limit}
            except Exception as exc:  # a preview must not take the page down; say why it is missing
                previews[name] = {"kind": "", "text": "", "length": 0, "limit": 0, "error": type(exc).__name__}
    daily = shares_per_day(ctx, article_id)
    engaged_daily = engagement.per_day(ctx, article_id, CHART_DAYS)
    return {
        "article_id": article_id,
        "article": article,
        "channels": channels,
        "deliveries": deliveries,
        "history": history,
        "previews": previews,
        "shares": ctx.shares.summary(article_id),
        "engagement": engagement.engagement(ctx, article_id),
        "daily": daily,
        "chart": chart(daily),
        "engagement_daily": engaged_daily,
        "engagement_chart": chart(engaged_daily),
    }


def channels_page(ctx: Context) -> dict[str, Any]:
    entries = channel_health.report(ctx)
    expiry = token_expiry(ctx)
    names = channel_names(ctx)
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.get(ctx.keys.rate(name))
    budgets = dict(zip(names, pipe.execute(), strict=True))
    for entry in entries:
        expires = expiry.get(entry["name"])
        entry["token_never_expires"] = expires == math.inf
        entry["token_expires"] = None if expires == math.inf else expires
        rate_next = float(budgets.get(entry["name"]) or 0)  # the rate limiter's next free moment
        entry["rate_next"] = rate_next if rate_next > time.time() else None
        entry["rate_per_minute"] = ctx.settings.channel(entry["name"]).rate_per_minute
        entry["max_per_day"] = ctx.settings.channel(entry["name"]).max_per_day
    return {"channels": entries, "now": time.time()}


def sources_page(ctx: Context) -> dict[str, Any]:
    health = source_health.read_all(ctx)
    rows = []
    for source in ctx.settings.sources:
        last = health.get(source.name) or {}
        interval = float(source.interval)
        rows.append({
            "name": source.name,
            "type": source.type,
            "enabled": source.enabled,
            "interval": interval,
            "last": last,
            "next": (last["at"] + interval) if last.get("at") else None,
            "items": len(ctx.store.source_items(source.name)),
        })  # fmt: skip
    return {"sources": rows}


def feeds_page(ctx: Context) -> dict[str, Any]:
    from distributor import rebuild
    from distributor.feeds.build import FORMATS, feed_url

    rebuild.register_configured_feeds(ctx)
    metas = ctx.store.feed_meta()
    names = sorted(metas)
    pipe = ctx.redis.pipeline(transaction=False)
    for name in names:
        pipe.zcard(ctx.keys.feed_index(name))
        pipe.hget(ctx.keys.feed_render(name, "rss"), "modified")
    raw = pipe.execute()
    rows = []
    for index, name in enumerate(names):
        spec = rebuild.spec_for(ctx, name, metas[name])
        rows.append({
            "name": name,
            "title": spec.title,
            "items": int(raw[2 * index] or 0),
            "built": float(raw[2 * index + 1] or 0) or None,
            "links": {fmt: feed_url(spec, fmt) for fmt in FORMATS},
        })  # fmt: skip
    return {"feeds": rows}
