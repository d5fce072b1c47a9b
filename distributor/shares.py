"""Share counting: exact, deduplicated, bot-proof, rate-limited, with uniques and top lists per period.

A reader's click on a share button goes through /s/{article}/{network}. The web process answers it
from memory and queues the click (distributor/web/share_counter.py); a batch of clicks is applied by
one Lua script, atomically, under a batch id that the script records, so a batch retried after a
lost reply (or a Redis restart) is never applied twice. Per click the script does the dedupe (a
fingerprint of client + UA + article + network, kept for the repeat window), the per-client hourly
limit, every increment and the unique-sharer HyperLogLog.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

import redis

from distributor import counters
from distributor.errors import N_, Refusal
from distributor.keys import Keys
from distributor.urls import with_params

# network -> its share page ({url} and {title} are percent-encoded); `copy` has none: a "copy link"
# click is counted and answered 204.
NETWORKS: dict[str, str | None] = {
    "facebook": "https://www.facebook.com/sharer/sharer.php?u={url}",
    "x": "https://twitter.com/intent/tweet?url={url}&text={title}",
    "telegram": "https://t.me/share/url?url={url}&text={title}",
    "zalo": "https://sp.zalo.me/share_inline?url={url}",
    "linkedin": "https://www.linkedin.com/sharing/share-offsite/?url={url}",
    "bluesky": "https://bsky.app/intent/compose?text={title}%20{url}",
    "email": "mailto:?subject={title}&body={url}",
    "copy": None,
}
LABELS: dict[str, str] = {
    "facebook": "Facebook",
    "x": "X",
    "telegram": "Telegram",
    "zalo": "Zalo",
    "linkedin": "LinkedIn",
    "bluesky": "Bluesky",
    "email": "Email",
    "copy": "",  # the bar's own words: "Sao chép liên kết" / "Copy link"
}
PERIODS = {"day": 1, "week": 7, "month": 30}
BUCKET_TTL = 40 * 86400
RATE_TTL = 3600
BATCH_TTL = 86400  # how long an applied batch id is remembered (a retry comes within seconds)
MAX_BATCH = 500  # clicks per script call: keeps one call well under a millisecond of Redis time

# Link-preview fetchers, crawlers and scripts, matched as lower-case substrings (a regex alternation
# cost 15 us a click; this, 2). Zalo and WhatsApp are matched only as the fetcher's own user agent
# (it starts with the name): readers inside Zalo's in-app browser send a browser UA that also says
# "Zalo" somewhere, and their clicks are real.
_BOT_TOKENS = (
    "bot", "crawl", "spider", "slurp", "facebookexternalhit", "facebookcatalog", "meta-externalagent",
    "slack-imgproxy", "embedly", "preview", "monitor", "pinterest", "vkshare", "yandex", "lighthouse",
    "curl", "wget", "python-requests", "python-urllib", "aiohttp", "httpx", "go-http-client", "java/",
    "okhttp", "libwww", "headless", "phantomjs", "scrapy",
)  # fmt: skip
_BOT_STARTS = ("zalo", "whatsapp")
_BOT_PATTERN = re.compile("|".join(re.escape(token) for token in _BOT_TOKENS))  # one scan, not one per token

# One batch, one script call with few arguments: the clicks travel as one string (records split by
# \x1e, fields by \x1f), because packing nine arguments per click cost more than the rest of the
# click path. Key names come from keys.py as prefixes (ARGV[6..11]); the script appends the click's
# part; ARGV[13] is the installation's shares by network (for /metrics). KEYS[1] is the batch
# marker. Returns -1 when the batch was already applied, else one code per click as one string (one
# character each, cheaper to read back than an array): 1 counted, 0 a repeat within the window, 2
# past the client's hourly limit. (The click keys
# are not declared in KEYS: one Redis, as everywhere in this service, not Redis Cluster.)
COUNT_SCRIPT = r"""
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) == false then return -1 end
local window, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local limit, rate_ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local p_seen, p_counts, top_all, p_day, p_uniques, p_rate = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local codes = {}
-- Per click only what decides whether it counts (the repeat window, the client's hourly limit);
-- the counts themselves are added up per article, network and day, then written once per group.
local by_network, by_article, by_day, sharers, totals = {}, {}, {}, {}, {}
for record in string.gmatch(ARGV[12], '[^\30]+') do
  local f = {}
  for field in string.gmatch(record, '[^\31]+') do f[#f + 1] = field end
  local seen, article, network, sharer, rate, day = f[1], f[2], f[3], f[4], f[5], f[6]
  local code = 0
  if redis.call('SET', p_seen .. seen, '1', 'NX', 'EX', window) then
    local used = redis.call('INCR', p_rate .. rate)
    if used == 1 then redis.call('EXPIRE', p_rate .. rate, rate_ttl) end
    if limit > 0 and used > limit then
      code = 2
    else
      by_network[article] = by_network[article] or {}
      by_network[article][network] = (by_network[article][network] or 0) + 1
      by_article[article] = (by_article[article] or 0) + 1
      totals[network] = (totals[network] or 0) + 1
      by_day[day] = by_day[day] or {}
      by_day[day][article] = (by_day[day][article] or 0) + 1
      sharers[article] = sharers[article] or {}
      table.insert(sharers[article], sharer)
      code = 1
    end
  end
  codes[#codes + 1] = code
end
for article, networks in pairs(by_network) do
  for network, n in pairs(networks) do redis.call('HINCRBY', p_counts .. article, network, n) end
  redis.call('HINCRBY', p_counts .. article, 'total', by_article[article])
  redis.call('ZINCRBY', top_all, by_article[article], article)
  redis.call('PFADD', p_uniques .. article, unpack(sharers[article]))
end
for day, articles in pairs(by_day) do
  for article, n in pairs(articles) do redis.call('ZINCRBY', p_day .. day, n, article) end
  redis.call('EXPIRE', p_day .. day, ttl)
end
for network, n in pairs(totals) do redis.call('HINCRBY', ARGV[13], network, n) end
return table.concat(codes)
"""
RECORD, FIELD = "\x1e", "\x1f"

# The article's URL and title without shipping its whole JSON (content included) to the web process.
ARTICLE_SCRIPT = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local article = cjson.decode(raw)
return {article['url'], article['title']}
"""


def share_url(network: str, url: str, title: str) -> str | None:
    """The network's share page for `url`; None for `copy` (no page to send the reader to)."""
    from urllib.parse import quote

    template = NETWORKS[network]
    if template is None:
        return None
    return template.format(url=quote(url, safe=""), title=quote(title, safe=""))


def tagged(url: str, network: str, utm: bool, campaign: str = "") -> str:
    """The article URL as shared: with utm_source=<network>, utm_medium=share (and the campaign)
    so the portal's own analytics see where the visit came from; parameters already there stay."""
    if not utm:
        return url
    params = {"utm_source": network, "utm_medium": "share"}
    if campaign:
        params["utm_campaign"] = campaign
    return with_params(url, params)


def is_bot(user_agent: str) -> bool:
    """Crawlers, link-preview fetchers (they open a shared link to draw its card), scripts, and
    clients that send no user agent at all."""
    ua = user_agent.strip().lower()
    return not ua or ua.startswith(_BOT_STARTS) or _BOT_PATTERN.search(ua) is not None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


_CLIENT_DIGESTS: dict[str, str] = {}
_CLIENT_DIGESTS_MAX = 50_000


def client_digest(client: str) -> str:
    """The client address as the hourly limits key it: one-way, no raw IP address is stored.
    Remembered per address in this process (readers come back), forgotten wholesale past a bound."""
    found = _CLIENT_DIGESTS.get(client)
    if found is None:
        if len(_CLIENT_DIGESTS) >= _CLIENT_DIGESTS_MAX:
            _CLIENT_DIGESTS.clear()
        found = _CLIENT_DIGESTS[client] = _digest(client)
    return found


def fingerprint(client: str, user_agent: str, article_id: str, network: str) -> str:
    """A one-way digest: no raw IP address is stored."""
    return _digest(client, user_agent, article_id, network)


@dataclass(frozen=True)
class Click:
    """One human click, as queued by the web process until its batch is applied."""

    article_id: str
    network: str
    seen: str  # fingerprint of client + UA + article + network (the repeat window)
    sharer: str  # digest of client + UA (unique sharers)
    client: str  # digest of the client address alone (the hourly limit, across articles)
    day: str  # the site's day when it was clicked (the top lists' bucket)
    hour: str

    @classmethod
    def make(cls, article_id: str, network: str, client: str, user_agent: str, hour: str) -> Click:
        """`hour` is the site's hour as `Shares.hour()` writes it. One digest per click: the repeat
        window's key is the sharer's digest with the article and network, and the client's own
        digest is remembered per address."""
        if RECORD in article_id or FIELD in article_id or RECORD in network or FIELD in network:
            raise ValueError(f"article id {article_id!r} or network {network!r} holds a control character")
        sharer = _digest(client, user_agent)
        return cls(
            article_id=article_id,
            network=network,
            seen=f"{sharer}:{article_id}:{network}",
            sharer=sharer,
            client=client_digest(client),
            day=hour[:10],
            hour=hour,
        )


@dataclass(frozen=True)
class Batch:
    """Clicks applied together, under an id the script records (a retry is then harmless)."""

    id: str
    clicks: tuple[Click, ...]

    @classmethod
    def of(cls, clicks: Sequence[Click]) -> Batch:
        return cls(uuid.uuid4().hex, tuple(clicks))


class Shares:
    def __init__(
        self, client: redis.Redis, keys: Keys, tz: tzinfo, repeat_window: float, client_limit: int = 0
    ) -> None:
        self.redis = client
        self.keys = keys
        self.tz = tz
        self.window = int(repeat_window)
        self.client_limit = client_limit
        self._count = client.register_script(COUNT_SCRIPT)
        self._hour_at, self._hour = -1, ""

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def hour(self) -> str:
        """The site's current hour as the click keys name it ("2026-12-04T18"), formatted once a second."""
        second = int(time.time())
        if second != self._hour_at:
            self._hour_at, self._hour = second, self.now().strftime("%Y-%m-%dT%H")
        return self._hour

    def day(self, moment: datetime | None = None) -> str:
        """The calendar day in the site's timezone ("2026-12-04"), as the per-day keys name it."""
        return (moment or self.now()).astimezone(self.tz).strftime("%Y-%m-%d")

    def batch_call(self, batch: Batch) -> tuple[list[str], list[str | int]]:
        """Keys and arguments of the counting script for a batch (shared by the sync and async callers)."""
        keys = self.keys
        prefixes = [keys.share_seen(""), keys.shares(""), keys.shares_top("all"), keys.shares_top("day:"),
                    keys.share_uniques(""), keys.share_client_rate("")]  # fmt: skip
        data = RECORD.join(
            FIELD.join((c.seen, c.article_id, c.network, c.sharer, f"{c.client}:{c.hour}", c.day)) for c in batch.clicks
        )
        return [keys.share_batch(batch.id)], [BATCH_TTL, self.window, BUCKET_TTL, self.client_limit, RATE_TTL,
                                              *prefixes, data, keys.counters(counters.SHARES)]  # fmt: skip

    def record(self, article_id: str, network: str, client: str, user_agent: str) -> bool:
        """Count one share now (one round trip); False when it is a repeat or past the client's limit."""
        click = Click.make(article_id, network, client, user_agent, self.hour())
        keys, args = self.batch_call(Batch.of([click]))
        return bool(self._count(keys=keys, args=args) == "1")

    def counts(self, article_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.keys.shares(article_id))
        return {network: int(value) for network, value in raw.items()}

    def summary(self, article_id: str) -> dict[str, object]:
        """Reader shares by network, their total, and unique sharers (estimated, ±1%)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.shares(article_id))
            pipe.pfcount(self.keys.share_uniques(article_id))
            raw, unique = pipe.execute()
        networks = {network: int(value) for network, value in raw.items()}
        total = networks.pop("total", 0)
        return {"total": total, "unique": min(int(unique), total), "networks": networks}

    def _period_key(self, period: str) -> str:
        """The sorted set of article id -> shares for a period (a short-lived union for day/week/month)."""
        if period == "all":
            return self.keys.shares_top("all")
        if period not in PERIODS:
            raise Refusal(N_("unknown period {period}: use day, week, month or all"), period=repr(period))
        today = self.now()
        days = [self.keys.shares_top(f"day:{self.day(today - timedelta(days=n))}") for n in range(PERIODS[period])]
        target = self.keys.shares_top(f"{period}:{self.day(today)}:sum")
        with self.redis.pipeline() as pipe:
            pipe.zunionstore(target, days)
            pipe.expire(target, 60)
            pipe.execute()
        return target

    def top(self, period: str = "all", limit: int = 10) -> list[tuple[str, int]]:
        rows = self.redis.zrevrange(self._period_key(period), 0, limit - 1, withscores=True)
        return [(article_id, int(score)) for article_id, score in rows]

    def ranked(self, period: str, page: int = 500) -> tuple[int, Iterator[tuple[str, int]]]:
        """Every article shared in the period, most shared first, read a page at a time: (how many, rows)."""
        key = self._period_key(period)
        total = int(self.redis.zcard(key))

        def rows() -> Iterator[tuple[str, int]]:
            for start in range(0, total, page):
                for article_id, score in self.redis.zrevrange(key, start, start + page - 1, withscores=True):
                    yield article_id, int(score)

        return total, rows()
