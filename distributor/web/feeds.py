"""GET/HEAD /feeds/{name}.{rss|atom|json} and /feeds.opml, served from memory.

Rendered feeds live in Redis (body, gzip bytes made at build time, ETag, Last-Modified). Each web
process keeps them in memory, so a request for a cached feed never waits on Redis:

- a rebuild announces itself on a pub/sub channel and the listener refreshes that feed at once;
  every RECHECK_SECONDS a request also starts a re-check (a safety net for lost announcements);
- a refresh reads the ETag alone (HGET) and fetches the bytes only when it changed, one refresh per
  (feed, format) at a time, in the background: requests meanwhile get the copy in memory;
- nothing is compressed on the event loop (renders from before gzip was stored are compressed once,
  in a thread, and kept);
- an outage keeps every copy in memory (a 503 only for a feed this process never loaded), and the
  listener re-checks them all when it is back, since announcements may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from distributor.feeds.build import FORMATS
from distributor.feeds.opml import render_opml
from distributor.redis import connect
from distributor.store import compress
from distributor.web.errors import error, quoted
from distributor.web.state import WebState, state

log = logging.getLogger(__name__)
EXTENSIONS = {ext: fmt for fmt, (_, ext) in FORMATS.items()}
RECHECK_SECONDS = 30.0  # how old a cached copy may get before a request starts a re-check
FETCH_TIMEOUT = 5.0  # a refresh (or first load) that takes longer counts as Redis being unreachable
RETRY_AFTER = 5  # seconds, on the 503 for a feed that could not be loaded
LISTENER_RETRY = 1.0  # seconds between reconnection attempts of the pub/sub listener

Key = tuple[str, str]  # (feed name, format)


@dataclass
class CachedFeed:
    body: bytes
    gzipped: bytes
    etag: str
    modified: float
    last_modified: str
    content_type: str
    checked: float  # monotonic time of the last check against Redis (successful or not)


class FeedUnavailable(Exception):
    """Redis could not be reached to load a feed this process has no copy of."""


class FeedCache:
    """The rendered feeds of this process, refreshed in the background (stale-while-revalidate)."""

    def __init__(self, recheck: float = RECHECK_SECONDS, timeout: float = FETCH_TIMEOUT) -> None:
        self.recheck = recheck
        self.timeout = timeout
        self.entries: dict[Key, CachedFeed] = {}
        self.tasks: dict[Key, asyncio.Task[CachedFeed | None]] = {}  # the one refresh per key in flight
        self.dirty: set[Key] = set()  # announced while their refresh was in flight: refresh again

    async def get(self, web: WebState, name: str, fmt: str) -> CachedFeed | None:
        """The feed from memory (starting a background re-check when due); a feed not in memory
        is loaded once for all the requests that want it. None: no such feed. Raises
        FeedUnavailable when it is not in memory and Redis cannot be reached."""
        key = (name, fmt)
        entry = self.entries.get(key)
        if entry is None:
            # shield: a client that goes away does not cancel the load the others wait for
            return await asyncio.shield(self._start(web, key))
        if time.monotonic() - entry.checked >= self.recheck:
            self._start(web, key)
        return entry

    def invalidate(self, web: WebState, name: str) -> None:
        """A rebuild announced `name`: refresh its cached formats now."""
        for key in {k for k in [*self.entries, *self.tasks] if k[0] == name}:
            self._schedule(web, key)

    def revalidate(self, web: WebState) -> None:
        """Re-check every cached feed (after the listener reconnects: announcements were missed)."""
        for key in list(self.entries):
            self._schedule(web, key)

    def cancel(self) -> None:
        for task in list(self.tasks.values()):
            task.cancel()

    def _schedule(self, web: WebState, key: Key) -> None:
        if key in self.tasks:
            self.dirty.add(key)  # the refresh in flight may have read the ETag before the rebuild
        else:
            self._start(web, key)

    def _start(self, web: WebState, key: Key) -> asyncio.Task[CachedFeed | None]:
        task = self.tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(web, key))
            self.tasks[key] = task
            task.add_done_callback(functools.partial(self._finished, web, key))
        return task

    def _finished(self, web: WebState, key: Key, task: asyncio.Task[CachedFeed | None]) -> None:
        if self.tasks.get(key) is task:
            del self.tasks[key]
        if task.cancelled():
            self.dirty.discard(key)
            return
        task.exception()  # a failed first load was answered (503 or 500) to the requests that waited
        if key in self.dirty:
            self.dirty.discard(key)
            self._start(web, key)

    async def _refresh(self, web: WebState, key: Key) -> CachedFeed | None:
        name, fmt = key
        entry = self.entries.get(key)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._fetch(web, key, entry)
        except (RedisError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            if entry is None:
                log.warning("feed %s (%s): Redis unreachable (%s); answering 503", name, fmt, reason)
                raise FeedUnavailable(reason) from exc
            entry.checked = time.monotonic()  # try again after the next re-check interval
            log.warning("feed %s (%s): Redis unreachable (%s); serving the copy in memory", name, fmt, reason)
            return entry
        except Exception:  # a stored rendering this code cannot read: keep what was good
            if entry is None:
                raise  # the request answers 500 and the server logs it
            entry.checked = time.monotonic()
            log.exception("feed %s (%s): unreadable rendering in Redis; serving the copy in memory", name, fmt)
            return entry

    async def _fetch(self, web: WebState, key: Key, entry: CachedFeed | None) -> CachedFeed | None:
        name, fmt = key
        redis_key = web.ctx.keys.feed_render(name, fmt)
        if entry is not None:
            etag = await web.binary.hget(redis_key, "etag")
            if etag is None:  # the feed is gone
                self.entries.pop(key, None)
                return None
            if etag.decode() == entry.etag:
                entry.checked = time.monotonic()
                return entry
        body, gzipped, etag, modified = await web.binary.hmget(redis_key, ["body", "gzip", "etag", "modified"])
        if body is None or etag is None or modified is None:
            self.entries.pop(key, None)
            return None
        if gzipped is None:  # stored before the gzip bytes were: compress once, off the event loop
            gzipped = await run_in_threadpool(compress, body)
        fresh = CachedFeed(
            body=body,
            gzipped=gzipped,
            etag=etag.decode(),
            modified=float(modified),
            last_modified=formatdate(float(modified), usegmt=True),
            content_type=FORMATS[fmt][0],
            checked=time.monotonic(),
        )
        self.entries[key] = fresh
        return fresh

    async def listen(self, web: WebState) -> None:
        """Refresh feeds as rebuilds announce them. A lost connection leaves the cache alone: the
        listener reconnects, then re-checks every cached feed. Its connection does not retry by
        itself, so that every reconnection is seen (a silent one would hide missed messages)."""
        client = connect(web.ctx.redis_url, asynchronous=True, decode_responses=True, retry=Retry(NoBackoff(), 0))
        down = False
        try:
            while True:
                pubsub = client.pubsub()
                try:
                    await pubsub.subscribe(web.ctx.keys.feed_updates())
                    if down:
                        log.info("feed cache listener: Redis is back; re-checking %d cached feeds", len(self.entries))
                        down = False
                    self.revalidate(web)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.invalidate(web, str(message["data"]))
                except (RedisError, OSError) as exc:
                    if not down:
                        log.warning("feed cache listener: Redis unreachable (%s); serving feeds from memory", exc)
                    down = True
                except Exception:  # a bug must not end the listener: the cache would go stale
                    log.exception("feed cache listener failed; restarting it")
                finally:
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()
                await asyncio.sleep(LISTENER_RETRY)
        finally:
            self.cancel()
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()


def _not_modified(request: Request, entry: CachedFeed) -> bool:
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return entry.etag in tags or "*" in tags
    since = request.headers.get("if-modified-since")
    if since:
        with contextlib.suppress(TypeError, ValueError):
            return int(entry.modified) <= int(parsedate_to_datetime(since).timestamp())
    return False


async def feed(request: Request) -> Response:
    name, _, ext = request.path_params["filename"].rpartition(".")
    fmt = EXTENSIONS.get(ext)
    if fmt is None or not name:
        return error(404, "unknown feed format: use .rss, .atom or .json")
    web = state(request)
    cache: FeedCache = request.app.state.feed_cache
    try:
        entry = await cache.get(web, name, fmt)
    except FeedUnavailable:
        message = f"feed {name!r} is temporarily unavailable; try again shortly"
        return error(503, message, headers={"Retry-After": str(RETRY_AFTER)})
    if entry is None:
        return error(404, f"no feed named {quoted(name)}")
    ttl = 60
    headers = {
        "ETag": entry.etag,
        "Last-Modified": entry.last_modified,
        "Cache-Control": f"public, max-age={ttl}",
        "Vary": "Accept-Encoding",
    }
    if _not_modified(request, entry):
        return Response(status_code=304, headers=headers)
    body = entry.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = entry.gzipped
        headers["Content-Encoding"] = "gzip"
    return Response(body, media_type=entry.content_type, headers=headers)


async def opml(request: Request) -> Response:
    from distributor import rebuild

    web = state(request)

    def build() -> bytes:
        metas = web.ctx.store.feed_meta()
        specs = [rebuild.spec_for(web.ctx, name, meta) for name, meta in sorted(metas.items())]
        return render_opml(web.ctx.settings.site.title, specs)

    return Response(await run_in_threadpool(build), media_type="text/x-opml; charset=utf-8")
