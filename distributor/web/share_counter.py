"""The click path's state in the web process: articles' URL and title cached, clicks counted in memory.

A click is answered without waiting on Redis (the awaited round trip was what made the redirect
cost 6x a plain response). Clicks queue here and a background task applies them every
`[shares] flush_interval` as one script call per batch (distributor/shares.py). A batch that fails
(Redis down, restarting, a reply lost) is kept and retried with the same id, which the script
records, so it is applied exactly once; a graceful stop flushes what is queued. What is lost: the
clicks of the last interval if the web process is killed (SIGKILL) or if Redis stays down for the
whole of a stop's `flush_timeout`; both are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from urllib.parse import quote

import redis
import redis.asyncio as aioredis

from distributor import metrics
from distributor.keys import Keys
from distributor.shares import ARTICLE_SCRIPT, COUNT_SCRIPT, MAX_BATCH, Batch, Click, Shares, share_url, tagged

log = logging.getLogger(__name__)

LOCATION_SAFE = ":/%#?=@[]!$&'()*+,;"  # what Starlette's RedirectResponse leaves unquoted

MAX_QUEUED = 200_000  # clicks held while Redis is unreachable; past it new clicks are dropped (logged)
CACHE_SIZE = 20_000
CACHE_TTL = 60.0  # a title edit shows in share texts within a minute
MISS_TTL = 5.0  # an unknown id is asked again after this (an article published meanwhile)
RETRY_AFTER = 1.0


@dataclass
class Shared:
    url: str
    title: str
    targets: dict[str, bytes | None] = field(default_factory=dict)  # network -> Location header, made once

    def target(self, network: str, utm: bool, campaign: str) -> bytes | None:
        """The network's share page for this article (with UTM tags) as a Location header value,
        quoted and encoded once per network; None for `copy`."""
        if network not in self.targets:
            page = share_url(network, tagged(self.url, network, utm, campaign), self.title)
            self.targets[network] = None if page is None else quote(page, safe=LOCATION_SAFE).encode("latin-1")
        return self.targets[network]


class ArticleCache:
    """Article id -> (URL, title), read through one EVALSHA that returns only those two fields.
    While Redis is unreachable an entry past its `CACHE_TTL` is still used (stale beats a 503)."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._entries: OrderedDict[str, tuple[float, Shared | None]] = OrderedDict()
        self._script = client.register_script(ARTICLE_SCRIPT)

    async def get(self, article_id: str) -> Shared | None:
        now = time.monotonic()
        entry = self._entries.get(article_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        try:
            found = await self._script(keys=[self.keys.article(article_id)])
        except (redis.RedisError, OSError):
            if entry is not None and entry[1] is not None:
                return entry[1]  # Redis is down: a URL a minute old beats no redirect at all
            raise
        shared = Shared(str(found[0]), str(found[1])) if found else None
        self._entries[article_id] = (now + (CACHE_TTL if shared else MISS_TTL), shared)
        self._entries.move_to_end(article_id)
        while len(self._entries) > CACHE_SIZE:
            self._entries.popitem(last=False)
        return shared


STOP_TIMEOUT = 10.0  # a stopping web process retries an unreachable Redis this long before giving up


class ShareCounter:
    """Queues clicks and applies them in batches; exactly once across retries and Redis restarts."""

    def __init__(self, client: aioredis.Redis, shares: Shares, interval: float) -> None:
        self.client = client
        self.shares = shares
        self.interval = max(0.01, interval)
        self._queued: list[Click] = []
        self._failed: Batch | None = None  # a batch whose outcome is unknown: retried as it is
        self._script = client.register_script(COUNT_SCRIPT)
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    @property
    def pending(self) -> int:
        """Clicks not yet applied (queued or in a batch being retried)."""
        return len(self._queued) + (len(self._failed.clicks) if self._failed else 0)

    async def start(self) -> None:
        """SCRIPT LOAD now (later calls are EVALSHA; a NOSCRIPT after a Redis restart loads it again)."""
        with contextlib.suppress(redis.RedisError, OSError):
            await self.client.script_load(COUNT_SCRIPT)
            await self.client.script_load(ARTICLE_SCRIPT)
        self._task = asyncio.create_task(self._run(), name="share-counter")

    def add(self, click: Click) -> None:
        if self.pending >= MAX_QUEUED:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.error("share clicks not counted: %d queued while Redis is unreachable (%d dropped)",
                          self.pending, self._dropped)  # fmt: skip
            return
        self._queued.append(click)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not await self.flush():
                await asyncio.sleep(RETRY_AFTER)

    async def flush(self) -> bool:
        """Apply everything queued; False (everything kept) when Redis did not answer."""
        while self._failed is not None or self._queued:
            if self._failed is None:
                clicks, self._queued = self._queued[:MAX_BATCH], self._queued[MAX_BATCH:]
                self._failed = Batch.of(clicks)
            batch = self._failed
            keys, args = self.shares.batch_call(batch)
            try:
                codes = await self._script(keys=keys, args=args)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("share counts kept in memory (%d clicks), Redis unreachable: %s", self.pending, exc)
                return False
            except redis.ResponseError as exc:  # LOADING after a restart, READONLY on a failover
                log.warning("share counts kept in memory (%d clicks): Redis said %s", self.pending, exc)
                return False
            self._failed = None
            if isinstance(codes, str):  # -1: the batch had been applied before its reply was lost
                counted = Counter(click.network for click, code in zip(batch.clicks, codes, strict=True) if code == "1")
                for network, n in counted.items():
                    metrics.SHARES.labels(network).inc(n)
        return True

    async def stop(self, timeout: float) -> None:
        """Stop the loop, then flush what is queued, retrying until `timeout`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        deadline = time.monotonic() + timeout
        while not await self.flush():
            if time.monotonic() > deadline:
                log.error("%d share clicks not counted: Redis unreachable while the web process stopped", self.pending)
                return
            await asyncio.sleep(0.2)


@dataclass
class ClickPath:
    """What the click route needs in memory: the article cache and the click queue."""

    articles: ArticleCache
    counter: ShareCounter

    @classmethod
    async def start(cls, client: aioredis.Redis, shares: Shares, keys: Keys, interval: float) -> ClickPath:
        path = cls(ArticleCache(client, keys), ShareCounter(client, shares, interval))
        await path.counter.start()
        return path

    async def stop(self) -> None:
        await self.counter.stop(STOP_TIMEOUT)
