"""The JSON API: articles with their delivery states, share counts, top lists, and push."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor import metrics, pipeline
from distributor.context import Context
from distributor.models import Article
from distributor.sources.push import PushedArticle, problems
from distributor.web.auth import bearer_ok, signed_ok
from distributor.web.errors import error
from distributor.web.state import state

MAX_PUSH_BYTES = 5 * 1024 * 1024


def _int(request: Request, name: str, default: int, high: int) -> int:
    try:
        return max(0, min(high, int(request.query_params.get(name, default))))
    except ValueError:
        return default


def article_json(ctx: Context, article: Article, full: bool = False) -> dict[str, Any]:
    channels = [c.name for c in ctx.settings.channels]
    deliveries = {
        d.channel: {"state": d.state, "post_id": d.post_id or None, "url": d.post_url or None, "error": d.error or None}
        for d in ctx.ledger.for_article(article.id, channels)
    }
    data: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "published": article.published.isoformat(),
        "updated": article.updated.isoformat(),
        "categories": list(article.categories),
        "deliveries": deliveries,
    }
    if full:
        data |= {
            "summary": article.summary,
            "content": article.content,
            "image": article.image,
            "author": article.author,
            "tags": list(article.tags),
            "language": article.language,
            "source": article.source,
            "shares": ctx.shares.counts(article.id),
        }
    return data


async def list_articles(request: Request) -> Response:
    ctx = state(request).ctx
    limit = _int(request, "limit", 50, 200)
    offset = _int(request, "offset", 0, 1_000_000)

    def build() -> dict[str, Any]:
        articles = ctx.store.newest(offset, limit)
        return {"total": ctx.store.count(), "articles": [article_json(ctx, a) for a in articles]}

    return JSONResponse(await run_in_threadpool(build))


async def get_article(request: Request) -> Response:
    ctx = state(request).ctx
    article = await run_in_threadpool(ctx.store.get, request.path_params["article_id"])
    if article is None:
        return error(404, "unknown article")
    return JSONResponse(await run_in_threadpool(article_json, ctx, article, True))


async def article_shares(request: Request) -> Response:
    ctx = state(request).ctx
    article_id = request.path_params["article_id"]
    if await run_in_threadpool(ctx.store.get, article_id) is None:
        return error(404, "unknown article")
    counts = await run_in_threadpool(ctx.shares.counts, article_id)
    total = counts.pop("total", 0)
    return JSONResponse({"article_id": article_id, "total": total, "networks": counts})


async def top_shares(request: Request) -> Response:
    ctx = state(request).ctx
    period = request.query_params.get("period", "all")
    if period not in ("day", "week", "month", "all"):
        return error(400, "period must be one of day, week, month, all")
    limit = _int(request, "limit", 10, 100)

    def build() -> list[dict[str, Any]]:
        rows = ctx.shares.top(period, limit)
        articles = {a.id: a for a in ctx.store.get_many([r[0] for r in rows])}
        return [
            {"id": aid, "shares": count, "title": articles[aid].title if aid in articles else None,
             "url": articles[aid].url if aid in articles else None}
            for aid, count in rows
        ]  # fmt: skip

    return JSONResponse({"period": period, "articles": await run_in_threadpool(build)})


def push_source(ctx: Context) -> tuple[str, bool]:
    """The configured push source's name and announce rule (default 'push', posts on)."""
    for source in ctx.settings.sources:
        if source.type == "push":
            return source.name, source.enabled
    return "push", True


async def push_article(request: Request) -> Response:
    web = state(request)
    ctx = web.ctx
    server = ctx.settings.server
    body = await request.body()
    if len(body) > MAX_PUSH_BYTES:
        return error(413, f"article larger than {MAX_PUSH_BYTES} bytes")
    if not bearer_ok(request, server):
        reason = signed_ok(request, body, server)
        if reason is not None:
            return error(401, f"authentication failed: {reason}", {"WWW-Authenticate": "Bearer"})
        signature = request.headers.get("x-distributor-signature", "")
        fresh = await web.redis.set(ctx.keys.push_seen(signature), "1", nx=True, ex=int(server.push_window) * 2)
        if not fresh:
            return error(409, "this signed request was already received (replay)")
    source, enabled = push_source(ctx)
    if not enabled:
        return error(403, f"push source {source!r} is disabled")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return error(400, "body is not valid JSON")
    if not isinstance(payload, dict):
        return error(400, "body must be a JSON object describing one article")
    try:
        pushed = PushedArticle.model_validate(payload)
        article = await run_in_threadpool(pipeline.to_article, ctx, pushed.draft(), source)
    except ValidationError as exc:
        return error(422, f"invalid article: {problems(exc)}")
    except ValueError as exc:
        return error(422, f"invalid article: {exc}")
    await run_in_threadpool(request.app.state.enqueue, "worker.tasks.ingest", [pushed.model_dump(), source, True])
    metrics.PUSHED.inc()
    return JSONResponse({"id": article.id, "url": article.url, "status": "accepted"}, status_code=202)
