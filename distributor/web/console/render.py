"""Rendering a console page: the reader's language, the session (made on the spot for a browser on
this machine when no token is configured), its flash messages and CSRF token, the shared layout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from distributor import i18n
from distributor.web.console import session as sessions
from distributor.web.state import state

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "console"
DOMAIN = "console"
# No script runs on these pages; styles are inline; nothing may frame them.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
YEAR = 365 * 86400


def locale_of(request: Request) -> str:
    """`?lang=` (the switcher), else the `lang` cookie, else Accept-Language."""
    for chosen in (request.query_params.get("lang"), request.cookies.get(sessions.LANG_COOKIE)):
        if chosen in i18n.LOCALES:
            return chosen
    return i18n.negotiate(request.headers.get("accept-language"))


def gettext_for(locale: str) -> Callable[[str], str]:
    return lambda message: i18n.gettext(message, locale, DOMAIN)


def _self_with(request: Request, **params: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k != "lang"} | params
    return request.url.path + "?" + urlencode(query)


async def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    web = state(request)
    locale = locale_of(request)
    settings = web.ctx.settings
    timezone = settings.site.timezone
    current: sessions.Session | None = getattr(request.state, "console_session", None)
    created = None
    # A browser on this machine (no token configured) gets its session here, for the forms' CSRF
    # token. A Bearer client (a script) gets none: it cannot send the forms anyway.
    if current is None and getattr(request.state, "console_name", None) and not settings.server.api_tokens:
        current = created = await sessions.create(web, request.state.console_name)
    flashes = await sessions.take_flashes(web, current) if current is not None and created is None else []

    def when(moment: float | None, format: str = "medium") -> str:
        return i18n.format_datetime(moment, locale, timezone, format) if moment else ""

    env = i18n.jinja_environment(TEMPLATES, locale, DOMAIN)
    body = env.get_template(template).render(
        request_path=request.url.path,
        operator=getattr(request.state, "console_name", None),
        csrf=current.csrf if current is not None else "",
        open_console=not settings.server.api_tokens,
        flashes=flashes,
        site=settings.site,
        when=when,
        number=lambda n: i18n.format_number(n, locale),
        switch={code: _self_with(request, lang=code) for code in i18n.LOCALES},
        timezone=timezone,
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=HEADERS)
    if created is not None:
        await sessions.set_cookie(request, response, created)
    if request.query_params.get("lang") in i18n.LOCALES:
        response.set_cookie(
            sessions.LANG_COOKIE, locale, max_age=YEAR, path="/dashboard", samesite="strict", httponly=True
        )
    return response


async def back(request: Request, kind: str, message: str, fallback: str = "/dashboard") -> Response:
    """303 to the page the form came from (its `next` field, a console path), with a flash message."""
    web = state(request)
    current: sessions.Session | None = getattr(request.state, "console_session", None)
    if current is not None:
        await sessions.flash(web, current, kind, message)
    from distributor.web.console.guard import form_fields

    target = (await form_fields(request)).get("next", "")
    if not safe_next(target):
        target = fallback
    return RedirectResponse(target, status_code=303)


def safe_next(target: str) -> bool:
    """Only a path of this console: never another site (`//evil.example`) after sign-in or a form."""
    return target.startswith("/dashboard") and not target.startswith("//") and "\\" not in target
