"""Clicks on the links in our own posts: channels with `track_clicks` post `/r/{article}/{channel}`.

One Lua script, loaded once and called by its SHA, does everything a click needs in one Redis round
trip: it reads the article's URL from the stored article (cjson), and unless the click is a bot's or
a repeat within `[shares] repeat_window`, counts it per (article, channel) and in the top lists. An
unknown article answers nil (a 404). Counts are increments inside Redis (AOF keeps them), so a
restart of the web app neither loses nor doubles one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from distributor.context import Context
from distributor.keys import Keys
from distributor.shares import BUCKET_TTL, PERIODS, RATE_TTL, client_digest, fingerprint

# KEYS: article, seen, clicks, top:all, top:day, client rate. ARGV: window, channel, article id, bucket ttl,
# count (1|0), client limit (0: none), rate ttl. Past the client's hourly limit a click is redirected, not counted.
CLICK_SCRIPT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local ok, article = pcall(cjson.decode, raw)
if not ok or type(article) ~= 'table' or type(article['url']) ~= 'string' then return false end
local counted = 0
if ARGV[5] == '1' and redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then
  local used = redis.call('INCR', KEYS[6])
  if used == 1 then redis.call('EXPIRE', KEYS[6], tonumber(ARGV[7])) end
  local limit = tonumber(ARGV[6])
  if limit > 0 and used > limit then return {article['url'], 0} end
  redis.call('HINCRBY', KEYS[3], ARGV[2], 1)
  redis.call('ZINCRBY', KEYS[4], 1, ARGV[3])
  redis.call('ZINCRBY', KEYS[5], 1, ARGV[3])
  redis.call('EXPIRE', KEYS[5], tonumber(ARGV[4]))
  counted = 1
end
return {article['url'], counted}
"""


def script_call(
    keys: Keys,
    now: datetime,
    window: float,
    article_id: str,
    channel: str,
    client: str,
    user_agent: str,
    count: bool,
    client_limit: int = 0,
) -> tuple[list[str], list[str | int]]:
    """Keys and arguments of the click script. The fingerprint (client, user agent, article,
    channel) and the client's rate key are one-way digests: no address is stored."""
    seen = keys.click_seen(fingerprint(client, user_agent, article_id, f"r/{channel}"))
    script_keys = [
        keys.article(article_id),
        seen,
        keys.clicks(article_id),
        keys.clicks_top("all"),
        keys.clicks_top(f"day:{now:%Y-%m-%d}"),
        keys.click_client_rate(f"{client_digest(client)}:{now:%Y-%m-%dT%H}"),
    ]
    args: list[str | int] = [int(window), channel, article_id, BUCKET_TTL, 1 if count else 0, client_limit, RATE_TTL]
    return script_keys, args


def clicks(ctx: Context, article_id: str) -> dict[str, int]:
    """Channel -> clicks on the link in our post of this article."""
    return {channel: int(n) for channel, n in ctx.redis.hgetall(ctx.keys.clicks(article_id)).items()}


def top_clicks(ctx: Context, period: str = "all", limit: int = 10) -> list[tuple[str, int]]:
    """The articles whose posts were clicked most in `period` (day, week, month or all)."""
    if period == "all":
        rows = ctx.redis.zrevrange(ctx.keys.clicks_top("all"), 0, limit - 1, withscores=True)
    elif period in PERIODS:
        today = datetime.now(ctx.tz)
        days = [ctx.keys.clicks_top(f"day:{(today - timedelta(days=n)):%Y-%m-%d}") for n in range(PERIODS[period])]
        target = ctx.keys.clicks_top(f"{period}:{today:%Y-%m-%d}:sum")
        pipe = ctx.redis.pipeline()
        pipe.zunionstore(target, days)
        pipe.expire(target, 60)
        pipe.zrevrange(target, 0, limit - 1, withscores=True)
        rows = pipe.execute()[-1]
    else:
        raise ValueError(f"unknown period {period!r}: use day, week, month or all")
    return [(article_id, int(score)) for article_id, score in rows]
