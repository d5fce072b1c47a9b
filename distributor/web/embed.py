"""The portal's share block: an HTML fragment for an iframe (no JavaScript needed) and a small script.

GET /embed/share-bar?url=ARTICLE_URL (or ?id=) renders the bar: buttons through the counting
redirect /s/{id}/{network}, the counts, the seed page's labels ("Chia sẻ", or "Share" with lang=en).
An article we don't know yet (a URL on the site, not yet ingested) gets the same buttons with no
count, linking straight to each network's share page: /s/ would 404 for it, and nothing is counted.
GET /embed/share-bar.js renders the same bar into every `<div data-distributor-share>` of a page,
for the page's canonical URL, with counts from /api/shares?url= (no cookies, no other host).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from distributor.models import Article
from distributor.settings import Settings
from distributor.shares import LABELS, NETWORKS, share_url
from distributor.urls import is_http_url
from distributor.web.api import find_by_url, off_site
from distributor.web.cors import allowed_origins
from distributor.web.errors import error, quoted
from distributor.web.state import state

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"), autoescape=True)

WORDS: dict[str, dict[str, str]] = {
    "vi": {"share": "Chia sẻ", "on": "Chia sẻ lên {network}", "copy": "Sao chép liên kết", "copied": "Đã sao chép",
           "email": "Gửi email"},
    "en": {"share": "Share", "on": "Share on {network}", "copy": "Copy link", "copied": "Copied",
           "email": "Email"},
}  # fmt: skip
FRAGMENT_MAX_AGE = 60  # counts in the iframe may be a minute old
SCRIPT_MAX_AGE = 300


def language(request: Request) -> str:
    return "en" if request.query_params.get("lang", "").lower().startswith("en") else "vi"


def buttons(settings: Settings, lang: str) -> list[dict[str, str]]:
    """The configured networks with their labels, in the configured order."""
    words = WORDS[lang]
    return [
        {
            "network": network,
            "label": words["copy"] if network == "copy" else words["email"] if network == "email" else LABELS[network],
            "title": words["copy"] if network == "copy" else words["on"].format(network=LABELS[network]),
            "template": NETWORKS[network] or "",
        }
        for network in settings.shares.networks
    ]


async def share_bar(request: Request) -> Response:
    ctx = state(request).ctx
    lang = language(request)
    url = request.query_params.get("url", "")
    wanted_id = request.query_params.get("id", "")
    article: Article | None
    if wanted_id:
        article = await run_in_threadpool(ctx.store.get, wanted_id)
        if article is None:
            return error(404, f"unknown article {quoted(wanted_id)}")
    elif is_http_url(url):
        if off_site(url, ctx.settings.site):
            return error(400, f"url {quoted(url)} is not on this site; add its host to [site] allowed_hosts")
        article = await run_in_threadpool(find_by_url, ctx, url)
    else:
        return error(400, f"give the article as ?url=ARTICLE_URL (absolute http(s)) or ?id=, got {quoted(url)}")
    summary = await run_in_threadpool(ctx.shares.summary, article.id) if article else None
    rows = []
    for button in buttons(ctx.settings, lang):
        network = button["network"]
        if network == "copy":
            continue  # copying needs JavaScript: the script's bar has it
        href = f"/s/{article.id}/{network}" if article else share_url(network, url, "")
        count = summary["networks"].get(network, 0) if summary else None  # type: ignore[attr-defined]
        rows.append({**button, "href": href, "count": count})
    html = _templates.get_template("share_bar.html").render(
        lang=lang, words=WORDS[lang], buttons=rows, total=summary["total"] if summary else None
    )
    ancestors = " ".join(allowed_origins(ctx.settings)) if ctx.settings.shares.cors_origins else "*"
    headers = {
        "Cache-Control": f"public, max-age={FRAGMENT_MAX_AGE}",
        "Content-Security-Policy": f"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors {ancestors}; "
        "base-uri 'none'; form-action 'none'",
        "Referrer-Policy": "no-referrer",
    }
    return HTMLResponse(html, headers=headers)


@lru_cache(maxsize=8)
def _script(config: tuple[tuple[str, ...], ...]) -> str:
    return _templates.get_template("share_bar.js").render(config=_config(config))


def _config(rows: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    networks = [dict(zip(("network", "label_vi", "label_en", "template"), row, strict=True)) for row in rows]
    return {"networks": networks, "words": WORDS}


async def share_bar_js(request: Request) -> Response:
    settings = state(request).ctx.settings
    vi, en = buttons(settings, "vi"), buttons(settings, "en")
    rows = tuple((a["network"], a["label"], b["label"], a["template"]) for a, b in zip(vi, en, strict=True))
    return Response(
        _script(rows),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={SCRIPT_MAX_AGE}", "X-Content-Type-Options": "nosniff"},
    )
