"""GET /dashboard: what was posted where, what failed and why, how often articles were shared.

It shows ledger records, never configuration: no secret can reach this page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from distributor import heartbeat, queues, recovery
from distributor.context import Context
from distributor.web.state import state

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)


def dashboard_context(ctx: Context) -> dict[str, Any]:
    channels = [c.name for c in ctx.settings.channels]
    articles = ctx.store.newest(0, 50)
    rows = [
        {
            "article": article,
            "deliveries": {d.channel: d for d in ctx.ledger.for_article(article.id, channels)},
            "shares": ctx.shares.counts(article.id),
        }
        for article in articles
    ]
    # Failed and unknown deliveries need the operator; pending ones with an error are retrying.
    attention = [
        d for d in ctx.ledger.recent(200) if d.state in ("failed", "unknown") or (d.state == "pending" and d.error)
    ][:50]
    top = ctx.shares.top("week", 10)
    titles = {a.id: a.title for a in articles}
    missing = {d.article_id for d in attention} | {aid for aid, _ in top}
    titles |= {a.id: a.title for a in ctx.store.get_many(missing - set(titles))}
    return {
        "state_lost": recovery.status(ctx),
        "health": heartbeat.judge(heartbeat.read(ctx.redis, ctx.keys), queues=queues.all_queues(ctx.settings)),
        "site": ctx.settings.site,
        "channels": channels,
        "rows": rows,
        "attention": attention,
        "counts": ctx.ledger.counts(),
        "top": top,
        "titles": titles,
        "total_articles": ctx.store.count(),
        "feeds": sorted(ctx.store.feed_meta()),
    }


async def dashboard(request: Request) -> Response:
    """Operators only: the route is declared `operator page` in app.py."""
    ctx = state(request).ctx
    context = await run_in_threadpool(dashboard_context, ctx)
    return HTMLResponse(_templates.get_template("dashboard.html").render(**context))
