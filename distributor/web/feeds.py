"""GET/HEAD /feeds/{name}.{rss|atom|json} and /feeds.opml, served from memory.

Rendered feeds live in Redis (bytes, ETag, Last-Modified). Each web process keeps them in memory
and drops an entry when a rebuild announces it on a pub/sub channel (with a short re-check as a
safety net), so a cached feed costs no Redis round trip and 304s are answered from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

from starlette.requests import Request
from starlette.responses import Response

from distributor.feeds.build import FORMATS
from distributor.feeds.opml import render_opml
from distributor.web.errors import error, quoted
from distributor.web.state import WebState, state

log = logging.getLogger(__name__)
EXTENSIONS = {ext: fmt for fmt, (_, ext) in FORMATS.items()}
RECHECK_SECONDS = 30.0


@dataclass
class CachedFeed:
    body: bytes
    gzipped: bytes
    etag: str
    modified: float
    last_modified: str
    content_type: str
    loaded: float


class FeedCache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], CachedFeed | None] = {}

    async def get(self, web: WebState, name: str, fmt: str) -> CachedFeed | None:
        entry = self.entries.get((name, fmt))
        if entry is not None and time.monotonic() - entry.loaded < RECHECK_SECONDS:
            return entry
        raw = await web.binary.hgetall(web.ctx.keys.feed_render(name, fmt))
        if not raw:
            self.entries.pop((name, fmt), None)
            return None
        body = raw[b"body"]
        modified = float(raw[b"modified"])
        entry = CachedFeed(
            body=body,
            gzipped=gzip.compress(body, 6),
            etag=raw[b"etag"].decode(),
            modified=modified,
            last_modified=formatdate(modified, usegmt=True),
            content_type=FORMATS[fmt][0],
            loaded=time.monotonic(),
        )
        self.entries[(name, fmt)] = entry
        return entry

    def drop(self, name: str) -> None:
        for key in [k for k in self.entries if k[0] == name]:
            del self.entries[key]

    async def listen(self, web: WebState) -> None:
        """Drop entries as rebuilds announce them; reconnect on errors."""
        while True:
            try:
                pubsub = web.redis.pubsub()
                await pubsub.subscribe(web.ctx.keys.feed_updates())
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.drop(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restart: keep serving from memory, retry soon
                log.warning("feed cache listener: %s", exc)
                self.entries.clear()
                await asyncio.sleep(1)


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
    entry = await cache.get(web, name, fmt)
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
    from starlette.concurrency import run_in_threadpool

    from distributor import rebuild

    web = state(request)

    def build() -> bytes:
        metas = web.ctx.store.feed_meta()
        specs = [rebuild.spec_for(web.ctx, name, meta) for name, meta in sorted(metas.items())]
        return render_opml(web.ctx.settings.site.title, specs)

    return Response(await run_in_threadpool(build), media_type="text/x-opml; charset=utf-8")
