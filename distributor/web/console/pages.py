"""The console's pages (GET): overview, articles, one article, channels, sources, feeds, audit log,
and the sign-in form. Reads run in a worker thread (the sync Redis client), rendering here."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from distributor import audit
from distributor.ledger import STATES
from distributor.web.console import data
from distributor.web.console.render import page, safe_next
from distributor.web.state import state


async def overview(request: Request) -> Response:
    ctx = state(request).ctx
    return await page(request, "overview.html", **await run_in_threadpool(data.overview, ctx))


def _query(request: Request) -> data.ArticleQuery:
    params = request.query_params
    try:
        number = max(1, min(10_000, int(params.get("page", "1"))))
    except ValueError:
        number = 1
    state_ = params.get("state", "")
    return data.ArticleQuery(
        text=params.get("q", "").strip()[:200],
        source=params.get("source", "").strip()[:100],
        category=params.get("category", "").strip()[:100],
        state=state_ if state_ in STATES else "",
        page=number,
    )


async def articles(request: Request) -> Response:
    ctx = state(request).ctx
    query = _query(request)
    found = await run_in_threadpool(data.articles, ctx, query)
    return await page(
        request,
        "articles.html",
        query=query,
        found=found,
        channels=data.channel_names(ctx),
        sources=data.source_names(ctx),
        states=STATES,
    )


async def article(request: Request) -> Response:
    ctx = state(request).ctx
    article_id = request.path_params["article_id"][:100]
    found = await run_in_threadpool(data.article_page, ctx, article_id)
    if found is None:
        return await page(request, "not_found.html", status=404, what=article_id)
    return await page(request, "article.html", **found)


async def channels(request: Request) -> Response:
    ctx = state(request).ctx
    return await page(request, "channels.html", **await run_in_threadpool(data.channels_page, ctx))


async def sources(request: Request) -> Response:
    ctx = state(request).ctx
    return await page(request, "sources.html", **await run_in_threadpool(data.sources_page, ctx))


async def feeds(request: Request) -> Response:
    ctx = state(request).ctx
    return await page(request, "feeds.html", **await run_in_threadpool(data.feeds_page, ctx))


async def audit_log(request: Request) -> Response:
    ctx = state(request).ctx
    entries = await run_in_threadpool(audit.read, ctx, None, 200)
    timed = [(e, int(e.id.partition("-")[0]) / 1000) for e in entries]  # the stream id is the time
    return await page(request, "audit.html", entries=timed)


async def login_form(request: Request) -> Response:
    """The sign-in form; with no token configured there is nothing to sign in to."""
    if not state(request).ctx.settings.server.api_tokens:
        return RedirectResponse("/dashboard", status_code=303)
    target = request.query_params.get("next", "/dashboard")
    return await page(request, "login.html", next=target if safe_next(target) else "/dashboard", failed=False)
