"""CORS for the public share routes: the portal's pages (the origins in `[shares] cors_origins`, by
default the `[site] url` origin) may read share counts from their own scripts.

Only GET is granted, never credentials, and no request header beyond the CORS-safelisted ones: a
page elsewhere can read public counts and nothing more (an operator's token cannot ride along).
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from distributor.settings import Settings
from distributor.web.access import Endpoint
from distributor.web.state import state

MAX_AGE = "600"


def allowed_origins(settings: Settings) -> list[str]:
    """`[shares] cors_origins`, or the site's own origin when none is configured."""
    if settings.shares.cors_origins:
        return settings.shares.cors_origins
    parts = urlsplit(settings.site.url)
    return [f"{parts.scheme}://{parts.netloc}".lower()]


def _allow(request: Request) -> str | None:
    origin = request.headers.get("origin")
    if origin is None:
        return None
    allowed = allowed_origins(state(request).ctx.settings)
    if "*" in allowed:
        return "*"
    return origin if origin.lower() in allowed else None


def cors(endpoint: Endpoint) -> Endpoint:
    """Answer a preflight (OPTIONS) and add Access-Control-Allow-Origin to every answer, errors too
    (a page must be able to read a 404 to show its buttons without a count)."""

    @functools.wraps(endpoint)
    async def with_cors(request: Request) -> Response:
        allow = _allow(request)
        if request.method == "OPTIONS":
            response = Response(status_code=204)
            if allow is not None:
                response.headers["Access-Control-Allow-Methods"] = "GET"
                response.headers["Access-Control-Max-Age"] = MAX_AGE
        else:
            response = await endpoint(request)
        if allow is not None:
            response.headers["Access-Control-Allow-Origin"] = allow
        if allow != "*":
            response.headers["Vary"] = "Origin"
        return response

    return with_cors
