"""The one JSON error shape: {"error": {"status": 404, "message": "..."}}, and how input is quoted in it.

Ids, names and URLs in a request come from anyone: an error names them (so the caller sees what was
refused) but only as a short, escaped quote, so an error is never a mirror for 10,000 characters of
someone else's text. `error` also caps the whole message, for messages built from library errors.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor.text import ELLIPSIS
from distributor.text import QUOTE_LIMIT as QUOTE_LIMIT  # re-exported: the routes quote with these
from distributor.text import quoted as quoted

MESSAGE_LIMIT = 1000


log = logging.getLogger(__name__)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT] + ELLIPSIS
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status, headers=headers)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def server_error(request: Request, exc: Exception) -> Response:
    # Never echo the exception: it may carry configuration values.
    return error(500, "internal error; see the server log")


async def storage_unavailable(request: Request, exc: Exception) -> Response:
    """Redis is down or restarting: a 503 the client may retry, and one log line, not a traceback."""
    log.warning("%s %s: Redis unavailable (%s: %s)", request.method, request.url.path, type(exc).__name__, exc)
    return error(503, "storage temporarily unavailable; try again shortly", {"Retry-After": "5"})
