"""The Starlette application factory: routes, lifespan (Redis clients, feed cache listener)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from distributor.context import Context
from distributor.redis import connect
from distributor.web import api, clicks, embed, feeds, ops, shares
from distributor.web.access import Access, GuardedRoute, require_access
from distributor.web.auth import is_loopback
from distributor.web.console import actions as console_actions
from distributor.web.console import pages as console
from distributor.web.cors import cors
from distributor.web.errors import http_exception, server_error, storage_unavailable
from distributor.web.share_counter import ClickPath
from distributor.web.state import WebState

log = logging.getLogger(__name__)
Enqueue = Callable[[str, list[Any]], None]
CORS = ["GET", "OPTIONS"]


def celery_enqueue(task: str, args: list[Any]) -> None:
    """Queue a worker task by name (the web process never runs pipeline work itself)."""
    from worker.celery_app import app

    app.send_task(task, args=args)


def warn_if_open(ctx: Context, bind_host: str | None) -> None:
    """One warning when the service is published (a non-loopback bind or public URL) with no token:
    operator routes then answer only to clients on this machine, which is rarely what was meant."""
    if ctx.settings.server.api_tokens:
        return
    public_host = urlsplit(ctx.settings.site.public_url).hostname or ""
    exposed = [
        f"{host} ({what})"
        for host, what in ((bind_host, "listen address"), (public_host, "[site] public_url"))
        if host and not is_loopback(host)
    ]
    if exposed:
        log.warning(
            "published on %s without [server] api_tokens: the dashboard, delivery details and metrics answer only "
            'to clients on this machine (403 for everyone else). Set api_tokens = ["${DISTRIBUTOR_API_TOKEN}"] '
            "and the DISTRIBUTOR_API_TOKEN environment variable to reach them from elsewhere.",
            " and ".join(exposed),
        )


def create_app(ctx: Context, enqueue: Enqueue = celery_enqueue, *, bind_host: str | None = None) -> Starlette:
    """The app; `bind_host` (the listen address, when known) only decides the startup warning."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        web = WebState(
            ctx=ctx,
            redis=connect(ctx.redis_url, asynchronous=True, decode_responses=True),
            binary=connect(ctx.redis_url, asynchronous=True, decode_responses=False),
        )
        app.state.web = web
        await clicks.prepare(app, web)
        listener = asyncio.create_task(app.state.feed_cache.listen(web))
        web.clicks = await ClickPath.start(web.redis, ctx.shares, ctx.keys, ctx.settings.shares.flush_interval)
        try:
            yield
        finally:
            await web.clicks.stop()  # counts the clicks still queued
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await web.redis.aclose()
            await web.binary.aclose()

    # Every route declares who may call it (docs/operations.md, "Who can see what"); the guard
    # in access.py enforces it, and a route without a level stops the app from being built.
    routes = [
        GuardedRoute("/feeds/{filename}", feeds.feed, methods=["GET", "HEAD"], access=Access.PUBLIC),
        GuardedRoute("/feeds.opml", feeds.opml, methods=["GET", "HEAD"], access=Access.PUBLIC),
        GuardedRoute("/s/{article_id}/{network}", shares.share, methods=["GET"], access=Access.PUBLIC),
        GuardedRoute("/r/{article_id}/{channel}", clicks.click, methods=["GET"], access=Access.PUBLIC),
        GuardedRoute("/api/articles", api.list_articles, methods=["GET"], access=Access.PUBLIC),
        GuardedRoute("/api/articles", api.push_article, methods=["POST"], access=Access.PUSH),
        GuardedRoute("/api/articles/{article_id}", api.get_article, methods=["GET"], access=Access.PUBLIC),
        GuardedRoute(
            "/api/articles/{article_id}/shares",
            cors(api.article_shares),
            methods=["GET", "OPTIONS"],
            access=Access.PUBLIC,
        ),
        GuardedRoute(
            "/api/articles/{article_id}/approve", api.approve_article, methods=["POST"], access=Access.OPERATOR
        ),
        GuardedRoute("/api/articles/{article_id}/reject", api.reject_article, methods=["POST"], access=Access.OPERATOR),
        GuardedRoute("/api/audit", api.audit_log, methods=["GET"], access=Access.OPERATOR),
        GuardedRoute(
            "/api/articles/{article_id}/retract", api.retract_article, methods=["POST"], access=Access.OPERATOR
        ),
        GuardedRoute("/api/shares", cors(api.shares_by_url), methods=["GET", "OPTIONS"], access=Access.PUBLIC),
        GuardedRoute("/api/shares/top", cors(api.top_shares), methods=["GET", "OPTIONS"], access=Access.PUBLIC),
        GuardedRoute("/embed/share-bar", embed.share_bar, methods=["GET", "HEAD"], access=Access.PUBLIC),
        GuardedRoute("/embed/share-bar.js", embed.share_bar_js, methods=["GET", "HEAD"], access=Access.PUBLIC),
        # The operator console (docs/console.md): pages, the sign-in form, and form actions.
        GuardedRoute("/dashboard", console.overview, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/articles", console.articles, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/articles/{article_id}", console.article, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/channels", console.channels, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/sources", console.sources, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/feeds", console.feeds, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/audit", console.audit_log, methods=["GET"], access=Access.CONSOLE),
        GuardedRoute("/dashboard/login", console.login_form, methods=["GET"], access=Access.PUBLIC),
        GuardedRoute("/dashboard/login", console_actions.login, methods=["POST"], access=Access.SIGN_IN),
        GuardedRoute("/dashboard/logout", console_actions.logout, methods=["POST"], access=Access.CONSOLE_ACTION),
        *[
            GuardedRoute(path, endpoint, methods=["POST"], access=Access.CONSOLE_ACTION)
            for path, endpoint in (
                ("/dashboard/deliveries/{article_id}/{channel}/retry", console_actions.retry),
                ("/dashboard/deliveries/{article_id}/{channel}/cancel", console_actions.cancel),
                ("/dashboard/articles/{article_id}/approve", console_actions.approve),
                ("/dashboard/articles/{article_id}/reject", console_actions.reject),
                ("/dashboard/articles/{article_id}/retract", console_actions.retract),
                ("/dashboard/channels/{channel}/pause", console_actions.pause),
                ("/dashboard/channels/{channel}/resume", console_actions.resume),
                ("/dashboard/channels/{channel}/test", console_actions.test),
                ("/dashboard/sources/{source}/poll", console_actions.poll),
            )
        ],
        GuardedRoute("/metrics", ops.metrics, methods=["GET"], access=Access.METRICS),
        GuardedRoute("/healthz", ops.healthz, methods=["GET", "HEAD"], access=Access.PUBLIC),
    ]
    require_access(routes)
    warn_if_open(ctx, bind_host)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: http_exception,
            redis.ConnectionError: storage_unavailable,
            redis.TimeoutError: storage_unavailable,
            Exception: server_error,
        },
    )
    app.state.feed_cache = feeds.FeedCache()
    app.state.enqueue = enqueue
    return app
