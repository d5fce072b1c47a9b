"""The Starlette application factory: routes, lifespan (Redis clients, feed cache listener)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from distributor.context import Context
from distributor.web import api, dashboard, feeds, ops, shares
from distributor.web.errors import http_exception, server_error
from distributor.web.state import WebState

Enqueue = Callable[[str, list[Any]], None]


def celery_enqueue(task: str, args: list[Any]) -> None:
    """Queue a worker task by name (the web process never runs pipeline work itself)."""
    from worker.celery_app import app

    app.send_task(task, args=args)


def create_app(ctx: Context, enqueue: Enqueue = celery_enqueue) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        web = WebState(
            ctx=ctx,
            redis=aioredis.Redis.from_url(ctx.redis_url, decode_responses=True),
            binary=aioredis.Redis.from_url(ctx.redis_url, decode_responses=False),
        )
        app.state.web = web
        listener = asyncio.create_task(app.state.feed_cache.listen(web))
        try:
            yield
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await web.redis.aclose()
            await web.binary.aclose()

    routes = [
        Route("/feeds/{filename}", feeds.feed, methods=["GET", "HEAD"]),
        Route("/feeds.opml", feeds.opml, methods=["GET", "HEAD"]),
        Route("/s/{article_id}/{network}", shares.share, methods=["GET"]),
        Route("/api/articles", api.list_articles, methods=["GET"]),
        Route("/api/articles", api.push_article, methods=["POST"]),
        Route("/api/articles/{article_id}", api.get_article, methods=["GET"]),
        Route("/api/articles/{article_id}/shares", api.article_shares, methods=["GET"]),
        Route("/api/shares/top", api.top_shares, methods=["GET"]),
        Route("/dashboard", dashboard.dashboard, methods=["GET"]),
        Route("/metrics", ops.metrics, methods=["GET"]),
        Route("/healthz", ops.healthz, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception, Exception: server_error},
    )
    app.state.feed_cache = feeds.FeedCache()
    app.state.enqueue = enqueue
    return app
