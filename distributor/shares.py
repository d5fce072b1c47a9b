"""Share counting: exact, deduplicated, bot-proof, with top lists per period.

A reader's click on a share button goes through /s/{article}/{network}. One Lua script does the
dedupe (a fingerprint of client + UA + article + network, kept for the repeat window) and every
increment, so a crash or restart can neither lose nor double a count (Redis AOF keeps them).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, tzinfo
from urllib.parse import quote

import redis

from distributor.keys import Keys

NETWORKS: dict[str, str] = {
    "facebook": "https://www.facebook.com/sharer/sharer.php?u={url}",
    "x": "https://twitter.com/intent/tweet?url={url}&text={title}",
    "telegram": "https://t.me/share/url?url={url}&text={title}",
    "zalo": "https://sp.zalo.me/share_inline?url={url}",
    "linkedin": "https://www.linkedin.com/sharing/share-offsite/?url={url}",
    "bluesky": "https://bsky.app/intent/compose?text={title}%20{url}",
    "email": "mailto:?subject={title}&body={url}",
}
PERIODS = {"day": 1, "week": 7, "month": 30}
BUCKET_TTL = 40 * 86400

_BOTS = re.compile(
    r"bot|crawl|spider|slurp|facebookexternalhit|facebookcatalog|embedly|preview|monitor|"
    r"curl|wget|python-requests|httpx|go-http-client|java/|okhttp|headless|phantomjs|scrapy|zalo.*crawler",
    re.IGNORECASE,
)

COUNT_SCRIPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', tonumber(ARGV[1])) == false then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HINCRBY', KEYS[2], 'total', 1)
redis.call('ZINCRBY', KEYS[3], 1, ARGV[3])
redis.call('ZINCRBY', KEYS[4], 1, ARGV[3])
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[4]))
return 1
"""


def share_url(network: str, url: str, title: str) -> str:
    return NETWORKS[network].format(url=quote(url, safe=""), title=quote(title, safe=""))


def is_bot(user_agent: str) -> bool:
    return not user_agent.strip() or bool(_BOTS.search(user_agent))


def fingerprint(client: str, user_agent: str, article_id: str, network: str) -> str:
    """A one-way digest: no raw IP address is stored."""
    raw = f"{client}\x00{user_agent}\x00{article_id}\x00{network}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


class Shares:
    def __init__(self, client: redis.Redis, keys: Keys, tz: tzinfo, repeat_window: float) -> None:
        self.redis = client
        self.keys = keys
        self.tz = tz
        self.window = int(repeat_window)
        self._count = client.register_script(COUNT_SCRIPT)

    def _day(self, moment: datetime | None = None) -> str:
        return (moment or datetime.now(self.tz)).astimezone(self.tz).strftime("%Y-%m-%d")

    def script_call(
        self, article_id: str, network: str, client: str, user_agent: str
    ) -> tuple[list[str], list[str | int]]:
        """Keys and arguments of the counting script (shared by the sync and async callers)."""
        keys = [
            self.keys.share_seen(fingerprint(client, user_agent, article_id, network)),
            self.keys.shares(article_id),
            self.keys.shares_top("all"),
            self.keys.shares_top(f"day:{self._day()}"),
        ]
        return keys, [self.window, network, article_id, BUCKET_TTL]

    def record(self, article_id: str, network: str, client: str, user_agent: str) -> bool:
        """Count one share; False when it is a repeat within the window."""
        keys, args = self.script_call(article_id, network, client, user_agent)
        return bool(self._count(keys=keys, args=args))

    def counts(self, article_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self.keys.shares(article_id))
        return {network: int(value) for network, value in raw.items()}

    def top(self, period: str = "all", limit: int = 10) -> list[tuple[str, int]]:
        if period == "all":
            rows = self.redis.zrevrange(self.keys.shares_top("all"), 0, limit - 1, withscores=True)
        elif period in PERIODS:
            today = datetime.now(self.tz)
            days = [self.keys.shares_top(f"day:{self._day(today - timedelta(days=n))}") for n in range(PERIODS[period])]
            target = self.keys.shares_top(f"{period}:{self._day(today)}:sum")
            pipe = self.redis.pipeline()
            pipe.zunionstore(target, days)
            pipe.expire(target, 60)
            pipe.zrevrange(target, 0, limit - 1, withscores=True)
            rows = pipe.execute()[-1]
        else:
            raise ValueError(f"unknown period {period!r}: use day, week, month or all")
        return [(article_id, int(score)) for article_id, score in rows]
