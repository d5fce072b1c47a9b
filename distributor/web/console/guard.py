"""Admission to the console: who the operator is (session, Bearer token, or this machine when no
token is configured) and, for a form POST, the session's CSRF token. Called by access.py only."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from distributor.web.console import session as sessions
from distributor.web.errors import error
from distributor.web.state import state

LOGIN = "/dashboard/login"
CSRF_FIELD = "csrf"


async def console_refusal(request: Request, *, action: bool) -> Response | None:
    """None to admit (the operator's name and session are left on `request.state`), else the refusal."""
    from distributor.web.access import NO_TOKEN

    session, name = await sessions.identify(request)
    if name is None:
        if not state(request).ctx.settings.server.api_tokens:
            return error(403, NO_TOKEN)
        if action:
            return error(403, "sign in first: this form needs a console session (/dashboard/login)")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN}?next={quote(target, safe='')}", status_code=303)
    if action:
        presented = (await form_fields(request)).get(CSRF_FIELD)
        if session is None or not isinstance(presented, str) or not session.csrf:
            return error(403, "missing CSRF token: send the form from the console page")
        if not hmac.compare_digest(presented.encode(), session.csrf.encode()):
            return error(403, "wrong CSRF token: reload the console page and try again")
    request.state.console_name = name
    request.state.console_session = session
    return None


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (the only body the console takes; access.py checked the type and
    the size). Parsed here with the standard library: no multipart, no extra dependency."""
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=50))
