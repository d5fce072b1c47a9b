"""What our own posts achieved, as the platforms report it: pulled on a schedule, kept in Redis.

Beat queues one pull per channel every `[shares] engagement_interval`; a pull reads, for each post
the channel sent in the last `[shares] engagement_days`, the platform's counts (`Channel.engagement`)
and stores them in one hash per article: '<channel>:<metric>' -> count, plus '<channel>:pulled_at'
and, when the last read failed, '<channel>:error'. Each pull also records the channel's total for
the day (`keys.engagement_daily`), so the console can draw engagement per day.

Reads are paced per channel in Redis (the channel's `rate_per_minute`, else `DEFAULT_PER_MINUTE`)
under a key of their own, so they never take a posting slot; a pull stops where the pace says wait
and tells the caller when to go on. A platform that refuses these reads to the account for good
(X's API tiers) is recorded once and not asked again for `UNAVAILABLE_TTL`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from distributor.channels.base import Channel, EngagementUnavailable
from distributor.context import Context
from distributor.errors import N_, ChannelError, Refusal
from distributor.ledger import Delivery
from distributor.models import Receipt
from distributor.ratelimit import RateLimiter

log = logging.getLogger(__name__)

DEFAULT_PER_MINUTE = 30.0  # reads per minute for a channel without its own rate_per_minute
BATCH = 10  # posts read by one pull task at most, so a task never holds a worker for long
UNAVAILABLE_TTL = 30 * 86400  # an "unavailable" verdict is asked again after this long (a tier may change)
DAILY_TTL = 90 * 86400  # per-day totals outlive the pull window (engagement_days) for the console's chart
FRESH = 0.9  # a post read within this share of the interval is not read again


@dataclass
class PullResult:
    channel: str
    pulled: int = 0  # posts whose counts were stored
    failed: int = 0  # posts whose read failed (kept as '<channel>:error')
    remaining: int = 0  # posts still due when the pull stopped
    retry_in: float = 0.0  # > 0: pull this channel again after this many seconds
    unavailable: str = ""  # the platform's reason, when it refuses these reads for good


def reports_engagement(adapter: Channel) -> bool:
    """Whether this channel type reads engagement at all (Telegram bots, webhooks... cannot)."""
    return type(adapter).engagement is not Channel.engagement


def channels_to_pull(ctx: Context) -> list[str]:
    """Enabled channels whose platform reports engagement and has not refused it to this account."""
    if ctx.settings.shares.engagement_days <= 0:
        return []
    names = [c.name for c in ctx.settings.channels if c.enabled and reports_engagement(ctx.channel(c.name))]
    pipe = ctx.redis.pipeline()
    for name in names:
        pipe.exists(ctx.keys.engagement_unavailable(name))
    return [name for name, refused in zip(names, pipe.execute(), strict=True) if not refused]


def due(ctx: Context, channel: str, now: float | None = None) -> list[Delivery]:
    """The channel's sent posts of the last `engagement_days`, least recently read first, leaving out
    those read within the last interval."""
    now = time.time() if now is None else now
    shares = ctx.settings.shares
    cutoff = now - shares.engagement_days * 86400
    members = ctx.redis.zrangebyscore(ctx.keys.deliveries_by_time(), cutoff, "+inf")
    articles = [m.partition(":")[0] for m in members if m.partition(":")[2] == channel]
    pipe = ctx.redis.pipeline()
    for article_id in articles:
        pipe.hget(ctx.keys.engagement(article_id), f"{channel}:pulled_at")
    found: list[tuple[float, Delivery]] = []
    for article_id, pulled_at in zip(articles, pipe.execute(), strict=True):
        last = float(pulled_at or 0)
        if now - last < shares.engagement_interval * FRESH:
            continue
        delivery = ctx.ledger.get(article_id, channel)
        if delivery is not None and delivery.state == "sent":
            found.append((last, delivery))
    found.sort(key=lambda pair: pair[0])
    return [delivery for _, delivery in found]


def pull_channel(ctx: Context, channel: str, limit: int = BATCH) -> PullResult:
    """Read and store the counts of up to `limit` due posts of `channel`, at the channel's pace."""
    result = PullResult(channel)
    if ctx.redis.exists(ctx.keys.engagement_unavailable(channel)):
        return result
    adapter = ctx.channel(channel)
    if not reports_engagement(adapter):
        return result
    posts = due(ctx, channel)
    limiter = RateLimiter(ctx.redis)
    per_minute = adapter.settings.rate_per_minute or DEFAULT_PER_MINUTE
    for index, delivery in enumerate(posts):
        if index >= limit:
            result.remaining, result.retry_in = len(posts) - index, 0.001
            break
        wait = limiter.wait_time(ctx.keys.engagement_rate(channel), per_minute)
        if wait > 0:
            result.remaining, result.retry_in = len(posts) - index, wait
            break
        article = ctx.store.get(delivery.article_id)
        receipt = Receipt(
            post_id=delivery.post_id or None,
            url=delivery.post_url or None,
            data={"article_url": article.url} if article else {},
        )
        try:
            counts = adapter.engagement(receipt)
        except EngagementUnavailable as refused:
            ctx.redis.set(ctx.keys.engagement_unavailable(channel), refused.message, ex=UNAVAILABLE_TTL)
            log.warning("%s: engagement unavailable, not asked again for 30 days: %s", channel, refused.message)
            result.unavailable = refused.message
            break
        except ChannelError as exc:
            ctx.redis.hset(ctx.keys.engagement(delivery.article_id), f"{channel}:error", exc.message)
            if not exc.permanent:  # the platform struggles or asks us to wait: leave the rest for later
                log.warning("%s: engagement pull stopped: %s", channel, exc.message)
                result.failed += 1
                result.remaining = len(posts) - index - 1
                break
            log.info("%s: engagement of %s not read: %s", channel, delivery.article_id, exc.message)
            result.failed += 1
            continue
        if counts is not None:
            store(ctx, delivery.article_id, channel, counts)
            result.pulled += 1
    return result


def store(ctx: Context, article_id: str, channel: str, counts: dict[str, int]) -> None:
    key = ctx.keys.engagement(article_id)
    pipe = ctx.redis.pipeline()
    fields: dict[str, float] = {f"{channel}:{metric}": int(n) for metric, n in counts.items()}
    fields[f"{channel}:pulled_at"] = time.time()
    pipe.hset(key, mapping=fields)
    pipe.hdel(key, f"{channel}:error")
    daily = ctx.keys.engagement_daily(article_id)
    pipe.hset(daily, f"{ctx.shares.day()}:{channel}", sum(int(n) for n in counts.values()))
    pipe.expire(daily, DAILY_TTL)
    pipe.execute()


# --- readers (the API, the dashboard, exports) -------------------------------------------------------


def engagement(ctx: Context, article_id: str) -> dict[str, dict[str, int]]:
    """Channel -> metric -> count, as last pulled, for one article."""
    found: dict[str, dict[str, int]] = {}
    for field, value in ctx.redis.hgetall(ctx.keys.engagement(article_id)).items():
        channel, _, metric = field.rpartition(":")
        if metric in ("pulled_at", "error"):
            continue
        found.setdefault(channel, {})[metric] = int(value)
    return found


def per_day(ctx: Context, article_id: str, days: int) -> list[tuple[str, int]]:
    """(day, engagement) for the last `days` days, oldest first: every channel's counts added up as
    last pulled on or before that day (the platforms report running totals, so a day without a pull
    carries the day before forward)."""
    today = ctx.shares.now()
    labels = [ctx.shares.day(today - timedelta(days=n)) for n in reversed(range(days))]
    recorded: dict[str, dict[str, int]] = {}
    for field, value in ctx.redis.hgetall(ctx.keys.engagement_daily(article_id)).items():
        day, _, channel = field.partition(":")
        recorded.setdefault(day, {})[channel] = int(value)
    latest: dict[str, int] = {}
    for day in sorted(d for d in recorded if d < labels[0]):
        latest.update(recorded[day])
    points = []
    for label in labels:
        latest.update(recorded.get(label, {}))
        points.append((label, sum(latest.values())))
    return points


def pulled_at(ctx: Context, article_id: str) -> dict[str, float]:
    """Channel -> when its counts for this article were last read (unix time)."""
    raw = ctx.redis.hgetall(ctx.keys.engagement(article_id))
    return {f.rpartition(":")[0]: float(v) for f, v in raw.items() if f.endswith(":pulled_at")}


def unavailable(ctx: Context) -> dict[str, str]:
    """Channel -> why its platform does not report engagement to this account (e.g. X's tier)."""
    names = [c.name for c in ctx.settings.channels]
    pipe = ctx.redis.pipeline()
    for name in names:
        pipe.get(ctx.keys.engagement_unavailable(name))
    return {name: reason for name, reason in zip(names, pipe.execute(), strict=True) if reason}


PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}


def top_engaged(ctx: Context, period: str = "all", limit: int = 10, scan: int = 500) -> list[tuple[str, int]]:
    """The articles whose posts the platforms report most engagement for (every metric of every
    channel added up), among the newest `scan` articles published in `period`."""
    if period != "all" and period not in PERIOD_DAYS:
        raise Refusal(N_("unknown period {period}: use day, week, month or all"), period=repr(period))
    articles = ctx.store.newest(0, scan)
    if period != "all":
        since = time.time() - PERIOD_DAYS[period] * 86400
        articles = [a for a in articles if a.published.timestamp() >= since]
    pipe = ctx.redis.pipeline()
    for article in articles:
        pipe.hgetall(ctx.keys.engagement(article.id))
    totals = []
    for article, raw in zip(articles, pipe.execute(), strict=True):
        total = sum(int(v) for f, v in raw.items() if not f.endswith((":pulled_at", ":error")) and v.isdigit())
        if total:
            totals.append((article.id, total))
    return sorted(totals, key=lambda row: -row[1])[:limit]
