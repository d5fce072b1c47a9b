"""The JSON API: articles (with delivery states for operators), share counts, top lists, and push.

Who may call each route is declared in app.py and enforced in access.py, not here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor import approval, audit, clicks, corrections, engagement, metrics, pipeline
from distributor.context import Context
from distributor.inline import InlineDispatcher
from distributor.models import Article
from distributor.settings import SiteSettings
from distributor.sources.push import PushedArticle, problems
from distributor.urls import article_id as id_of_url
from distributor.urls import is_http_url
from distributor.web.access import actor, is_operator
from distributor.web.errors import error, quoted
from distributor.web.state import state


def _int(request: Request, name: str, default: int, high: int) -> int:
    try:
        return max(0, min(high, int(request.query_params.get(name, default))))
    except ValueError:
        return default


def article_json(ctx: Context, article: Article, full: bool = False, operator: bool = True) -> dict[str, Any]:
    """An article as the API shows it; `operator` adds where it was posted, the platforms' errors
    and its source (operator data); without it, only what the feeds publish anyway."""
    data: dict[str, Any] = {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "published": article.published.isoformat(),
        "updated": article.updated.isoformat(),
        "categories": list(article.categories),
    }
    if operator:
        channels = [c.name for c in ctx.settings.channels]
        data["deliveries"] = {
            d.channel: {
                "state": d.state,
                "post_id": d.post_id or None,
                "url": d.post_url or None,
                "error": d.error or None,
            }
            for d in ctx.ledger.for_article(article.id, channels)
        }
        if full:  # the posts' history: posted, edited, deleted ... (docs/corrections.md)
            for name, shown in data["deliveries"].items():
                shown["history"] = ctx.ledger.history(article.id, name)
    if full:
        data |= {
            "summary": article.summary,
            "content": article.content,
            "image": article.image,
            "author": article.author,
            "tags": list(article.tags),
            "language": article.language,
        }
        if operator:
            data["source"] = article.source
        data["shares"] = ctx.shares.counts(article.id)
    return data


async def list_articles(request: Request) -> Response:
    ctx = state(request).ctx
    limit = _int(request, "limit", 50, 200)
    offset = _int(request, "offset", 0, 1_000_000)
    operator = is_operator(request)

    def build() -> dict[str, Any]:
        articles = ctx.store.newest(offset, limit)
        return {"total": ctx.store.count(), "articles": [article_json(ctx, a, operator=operator) for a in articles]}

    return JSONResponse(await run_in_threadpool(build))


async def get_article(request: Request) -> Response:
    ctx = state(request).ctx
    article_id = request.path_params["article_id"]
    article = await run_in_threadpool(ctx.store.get, article_id)
    if article is None:
        gone = await run_in_threadpool(withdrawn_json, ctx, article_id) if is_operator(request) else None
        if gone is None:
            return error(404, f"unknown article {quoted(article_id)}")
        return JSONResponse(gone)
    return JSONResponse(await run_in_threadpool(article_json, ctx, article, True, is_operator(request)))


def withdrawn_json(ctx: Context, article_id: str) -> dict[str, Any] | None:
    """For operators, an article no longer stored (retracted, removed from its source) whose posts the
    ledger still knows: their states and history, what a retraction's follow-up needs. None when
    the ledger knows nothing of it either."""
    channels = [c.name for c in ctx.settings.channels]
    records = ctx.ledger.for_article(article_id, channels)
    if not records:
        return None
    return {
        "id": article_id,
        "stored": False,  # no title, feeds or shares any more: only what was posted
        "kept_out": corrections.is_retracted(ctx, article_id),  # retracted: its source cannot bring it back
        "deliveries": {
            d.channel: {
                "state": d.state,
                "post_id": d.post_id or None,
                "url": d.post_url or None,
                "error": d.error or None,
                "history": ctx.ledger.history(article_id, d.channel),
            }
            for d in records
        },
    }


def share_summary(ctx: Context, article: Article) -> dict[str, Any]:
    """What the portal shows for an article: readers' shares, clicks on the links in our own posts
    (per channel, `track_clicks`) and the engagement the platforms report (per channel)."""
    return {
        "article_id": article.id,
        "url": article.url,
        "title": article.title,
        **ctx.shares.summary(article.id),
        "clicks": clicks.clicks(ctx, article.id),
        "engagement": engagement.engagement(ctx, article.id),
    }


async def article_shares(request: Request) -> Response:
    ctx = state(request).ctx
    article_id = request.path_params["article_id"]
    article = await run_in_threadpool(ctx.store.get, article_id)
    if article is None:
        return error(404, f"unknown article {quoted(article_id)}")
    return JSONResponse(await run_in_threadpool(share_summary, ctx, article))


def find_by_url(ctx: Context, url: str) -> Article | None:
    """The article at `url`, as the portal writes it: the id is derived from the canonical URL, and a
    path with Vietnamese letters may come raw (tin-tức) or percent-encoded (tin-t%E1%BB%A9c)."""
    ids = list(dict.fromkeys(id_of_url(candidate) for candidate in url_forms(url)))
    found = ctx.store.get_many(ids)
    return found[0] if found else None


def url_forms(url: str) -> list[str]:
    """`url` itself, with its path decoded, and with its path percent-encoded."""
    parts = urlsplit(url.strip())
    decoded = unquote(parts.path)
    paths = [parts.path, decoded, quote(decoded, safe="/:@!$&'()*+,;=-._~")]
    return [urlunsplit((parts.scheme, parts.netloc, path, parts.query, "")) for path in paths]


async def shares_by_url(request: Request) -> Response:
    ctx = state(request).ctx
    url = request.query_params.get("url", "")
    if not is_http_url(url):
        return error(400, f"url must be an article's absolute http(s) URL, got {quoted(url)}")
    article = await run_in_threadpool(find_by_url, ctx, url)
    if article is None:
        return error(404, f"no article known at {quoted(url)}")
    return JSONResponse(await run_in_threadpool(share_summary, ctx, article))


TOP_BY = ("shares", "clicks", "engagement")


async def top_shares(request: Request) -> Response:
    ctx = state(request).ctx
    period = request.query_params.get("period", "all")
    if period not in ("day", "week", "month", "all"):
        return error(400, f"period must be one of day, week, month, all, got {quoted(period)}")
    by = request.query_params.get("by", "shares")
    if by not in TOP_BY:
        return error(400, f"by must be one of {', '.join(TOP_BY)}, got {quoted(by)}")
    limit = _int(request, "limit", 10, 100)

    def build() -> list[dict[str, Any]]:
        if by == "clicks":
            rows = clicks.top_clicks(ctx, period, limit)
        elif by == "engagement":
            rows = engagement.top_engaged(ctx, period, limit)
        else:
            rows = ctx.shares.top(period, limit)
        articles = {a.id: a for a in ctx.store.get_many([r[0] for r in rows])}
        return [
            {"id": aid, by: count, "title": articles[aid].title if aid in articles else None,
             "url": articles[aid].url if aid in articles else None}
            for aid, count in rows
        ]  # fmt: skip

    return JSONResponse({"period": period, "by": by, "articles": await run_in_threadpool(build)})


def push_source(ctx: Context) -> tuple[str, bool]:
    """The configured push source's name and announce rule (default 'push', posts on)."""
    for source in ctx.settings.sources:
        if source.type == "push":
            return source.name, source.enabled
    return "push", True


def _host(url_or_host: str) -> str:
    """The host name to compare: lower case, no trailing dot, IDNA-encoded when it can be."""
    host = (urlsplit(url_or_host).hostname if "//" in url_or_host else url_or_host) or ""
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def off_site(url: str, site: SiteSettings) -> bool:
    """True when `url` is on neither the site's host nor one of `[site] allowed_hosts`: a push may
    only announce the publisher's own pages."""
    allowed = {_host(site.url), *(_host(h) for h in site.allowed_hosts)}
    return _host(url) not in allowed - {""}


async def push_article(request: Request) -> Response:
    """Authentication, the cross-origin and JSON checks and the size cap happened in the route's guard."""
    ctx = state(request).ctx
    site = ctx.settings.site
    body = await request.body()
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
        return await _audited(request, "push", "(invalid article)", error(422, f"invalid article: {problems(exc)}"))
    except ValueError as exc:
        return await _audited(request, "push", "(invalid article)", error(422, f"invalid article: {exc}"))
    if off_site(article.url, site):
        hosts = ", ".join([_host(site.url), *site.allowed_hosts])
        refusal = error(
            422,
            f"article URL {quoted(article.url)} is not on this site ({hosts}); add its host to [site] allowed_hosts",
        )
        return await _audited(request, "push", article.url, refusal)
    await run_in_threadpool(request.app.state.enqueue, "worker.tasks.ingest", [pushed.model_dump(), source, True])
    metrics.PUSHED.inc()
    await run_in_threadpool(audit.record, ctx, actor(request), "push", article.id, "accepted", article.url)
    return JSONResponse({"id": article.id, "url": article.url, "status": "accepted"}, status_code=202)


async def _audited(request: Request, action: str, target: str, refusal: JSONResponse) -> JSONResponse:
    """Record a refused operator action (with the message the caller got), then return the refusal."""
    message = json.loads(bytes(refusal.body))["error"]["message"]
    ctx = state(request).ctx
    await run_in_threadpool(audit.record, ctx, actor(request), action, target, "refused", message)
    return refusal


# --- approval ------------------------------------------------------------------------------------


async def approve_article(request: Request) -> Response:
    return await _decide(request, "approve")


async def reject_article(request: Request) -> Response:
    return await _decide(request, "reject")


class _Enqueued:
    """A Dispatcher's `deliver` for the web process: the worker sends it (rate limits and all)."""

    def __init__(self, request: Request) -> None:
        self.enqueue = request.app.state.enqueue

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.enqueue("worker.tasks.deliver", [article_id, channel])


async def _decide(request: Request, decision: approval.Decision) -> Response:
    """Body (optional): {"channel": "telegram"} for one channel, and for a rejection "reason"."""
    ctx = state(request).ctx
    article_id = request.path_params["article_id"]
    body = await request.body()
    try:
        payload = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return await _audited(request, decision, article_id, error(400, "body is not valid JSON"))
    allowed = {"channel", "reason"} if decision == "reject" else {"channel"}
    if not isinstance(payload, dict) or set(payload) - allowed:
        keys = ", ".join(f'"{k}"' for k in sorted(allowed))
        return await _audited(request, decision, article_id, error(400, f"body must be a JSON object with {keys}"))
    channel, reason = payload.get("channel"), payload.get("reason", "")
    if not isinstance(channel, str | None) or not isinstance(reason, str):
        return await _audited(request, decision, article_id, error(400, '"channel" and "reason" must be strings'))
    target = f"{article_id} -> {channel}" if channel else article_id
    try:
        outcomes = await run_in_threadpool(
            approval.decide,
            ctx,
            decision,
            article_id,
            channel,
            _Enqueued(request),
            reason[:500],
        )
    except approval.NothingToDecide as exc:
        return await _audited(request, decision, target, error(404, str(exc)))
    done = any(o.done for o in outcomes)
    outcome = ("approved" if decision == "approve" else "rejected") if done else "refused"
    await run_in_threadpool(audit.record, ctx, actor(request), decision, target, outcome, approval.summary(outcomes))
    report = {"article_id": article_id, "action": decision, "channels": [o.as_dict() for o in outcomes]}
    if not done:
        return JSONResponse(
            {"error": {"status": 409, "message": approval.summary(outcomes)}, **report}, status_code=409
        )
    return JSONResponse(report)


# --- audit ---------------------------------------------------------------------------------------


async def audit_log(request: Request) -> Response:
    """`?since=7d` or an ISO date, `?limit=` (default 100, at most 1000); newest first."""
    ctx = state(request).ctx
    try:
        since = audit.since_time(request.query_params.get("since"))
    except ValueError as exc:
        return error(400, str(exc))
    limit = _int(request, "limit", 100, 1000)
    entries = await run_in_threadpool(audit.read, ctx, since, limit)
    return JSONResponse({"entries": [e.as_dict() for e in entries]})


async def retract_article(request: Request) -> Response:
    """Retract an article (operator): deletions run here, in a worker thread, so the answer is the
    report; feed rebuilds go to the worker. Body: {"channel": optional, "reason": optional}."""
    ctx = state(request).ctx
    article_id = request.path_params["article_id"]
    body = await request.body()
    try:
        payload = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        return await _audited(request, "retract", article_id, error(400, "body is not valid JSON"))
    if not isinstance(payload, dict):
        refusal = error(400, 'body must be a JSON object: {"channel": ..., "reason": ...}')
        return await _audited(request, "retract", article_id, refusal)
    channel, reason = payload.get("channel"), payload.get("reason", "")
    if not isinstance(channel, str | None) or not isinstance(reason, str):
        return await _audited(request, "retract", article_id, error(400, "channel and reason must be strings"))
    target = f"{article_id} -> {channel}" if channel else article_id
    try:
        found = await run_in_threadpool(corrections.article_reference, ctx, article_id, channel)
    except ValueError as exc:
        return await _audited(request, "retract", target, error(404, f"article {quoted(article_id)}: {exc}"))
    dispatch = WebDispatcher(ctx, request.app.state.enqueue)
    report = await run_in_threadpool(lambda: corrections.retract(ctx, found, dispatch, channel=channel, reason=reason))
    detail = "; ".join(f"{o.channel}: {o.outcome}" for o in report)
    await run_in_threadpool(audit.record, ctx, actor(request), "retract", target, "retracted", detail)
    return JSONResponse(corrections.report_json(found, report))


class WebDispatcher(InlineDispatcher):
    """Deletions inline (their outcome is the answer); everything else queued for the worker."""

    def __init__(self, ctx: Context, enqueue: Callable[[str, list[Any]], None]) -> None:
        super().__init__(ctx, deliver=False)
        self.enqueue = enqueue

    def rebuild(self, feeds: Iterable[str]) -> None:
        self.enqueue("worker.tasks.rebuild_feeds", [list(feeds)])
