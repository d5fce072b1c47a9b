"""Who may call each route: every route declares an access level, enforced here and nowhere else.

Levels (the table per route is in docs/operations.md, "Who can see what"):
- public: anyone. A public route may show an operator more (`is_operator`), e.g. delivery states.
- operator: a configured token as `Authorization: Bearer`; with no token configured, a client on
  this machine (loopback, no proxy headers, a local Host name) and nobody else.
- operator page: the same, and HTTP Basic (the token as password) for pages opened in a browser.
- metrics: operator, unless `[server] public_metrics = true`.
- push: a token (Bearer) or a valid HMAC signature; never Basic, the client's address or cookies.
- console page: the operator console (docs/console.md): a signed-in session cookie or a Bearer
  token; with no token configured, a client on this machine. Others are sent to the sign-in page.
- console action: a console form POST: a session and its CSRF token (hidden field), nothing less.
- sign in: the sign-in form's POST: anyone, rate-limited per client address.

Every state-changing request (any method but GET, HEAD, OPTIONS), on every route present and
future, first passes `_forgery_refusal`: a browser can be made to send one from any site, with the
operator's remembered credentials, so cross-origin browser requests are refused and the body must
be JSON (which a page elsewhere cannot send without a CORS preflight, which we never grant). Such
routes may only be declared operator or push, so Basic credentials never authorise a change. The
console's forms are the exception to JSON (a form works with JavaScript off): their levels take
`application/x-www-form-urlencoded` only, and a console action must carry the session's CSRF token.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from distributor.web.auth import SIGNATURE_HEADER, local_client, signed_ok, token_name, token_ok
from distributor.web.errors import error, quoted
from distributor.web.state import state

Endpoint = Callable[[Request], Awaitable[Response]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 5 * 1024 * 1024
NO_TOKEN = (
    "operator routes need a token from this address: set [server] api_tokens = "
    '["${DISTRIBUTOR_API_TOKEN}"] in the config and DISTRIBUTOR_API_TOKEN in the environment, then send '
    "Authorization: Bearer <token> (without a token, only clients on this machine are operators)"
)


class Access(StrEnum):
    PUBLIC = "public"
    OPERATOR = "operator"
    OPERATOR_PAGE = "operator page"
    METRICS = "metrics"
    PUSH = "push"
    CONSOLE = "console page"
    CONSOLE_ACTION = "console action"
    SIGN_IN = "sign in"


CHANGING_LEVELS = frozenset({Access.OPERATOR, Access.PUSH, Access.CONSOLE_ACTION, Access.SIGN_IN})
FORM_LEVELS = frozenset({Access.CONSOLE_ACTION, Access.SIGN_IN})
FORM = "application/x-www-form-urlencoded"


class GuardedRoute(Route):
    """A route with its declared access level; the only kind of route the app accepts."""

    def __init__(self, path: str, endpoint: Endpoint, *, methods: list[str], access: Access) -> None:
        changing = {m.upper() for m in methods} - SAFE_METHODS
        if changing and access not in CHANGING_LEVELS:
            raise ValueError(
                f"{path}: {', '.join(sorted(changing))} changes state, so its access must be operator or push "
                f"(no Basic credentials, no anonymous callers) or a console form, not {access.value}"
            )
        self.access = access
        super().__init__(path, _guarded(endpoint, access), methods=methods)


def require_access(routes: Sequence[BaseRoute]) -> None:
    """Refuse to build an app with a route that declares no access level."""
    bare = [getattr(route, "path", repr(route)) for route in routes if not isinstance(route, GuardedRoute)]
    if bare:
        raise TypeError(
            f"route {', '.join(bare)} declares no access level: declare it as GuardedRoute(..., access=Access.X) "
            "and add it to docs/operations.md, 'Who can see what'"
        )


def _guarded(endpoint: Endpoint, access: Access) -> Endpoint:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        refusal = await _admit(request, access)
        return refusal if refusal is not None else await endpoint(request)

    return guarded


async def _admit(request: Request, access: Access) -> Response | None:
    """None to let the request through, else the response refusing it."""
    if request.method not in SAFE_METHODS:
        refusal = _forgery_refusal(request) or await _read_body(request)
        if refusal is None:
            body = await request.body()
            refusal = _form_refusal(request) if access in FORM_LEVELS else _json_refusal(request, body)
        if refusal is not None:
            return refusal
    if access in (Access.PUBLIC, Access.SIGN_IN):
        return None  # the sign-in endpoint rate-limits its own failures
    if access in (Access.CONSOLE, Access.CONSOLE_ACTION):
        from distributor.web.console.guard import console_refusal

        return await console_refusal(request, action=access is Access.CONSOLE_ACTION)
    if access is Access.METRICS and state(request).ctx.settings.server.public_metrics:
        return None
    if access is Access.PUSH:
        return await _push_refusal(request)
    return operator_refusal(request, basic=access is Access.OPERATOR_PAGE and request.method in SAFE_METHODS)


def operator_refusal(request: Request, *, basic: bool = False) -> Response | None:
    """None for an operator, else 401 (a token is configured, none valid was sent) or 403 (none is
    configured and the client is not on this machine)."""
    server = state(request).ctx.settings.server
    if server.api_tokens:
        if token_ok(request, server, basic=basic):
            return None
        challenge = 'Basic realm="distributor"' if basic else 'Bearer realm="distributor"'
        how = "Authorization: Bearer <token>" + (" (or HTTP Basic, the token as password)" if basic else "")
        return error(401, f"operator token required: send {how}", {"WWW-Authenticate": challenge})
    if local_client(request):
        return None
    return error(403, NO_TOKEN)


def actor(request: Request) -> str:
    """Who made an admitted request, for the audit log: the name of its token (or of the console
    session's), 'hmac' for a signed push, 'local' for a client on this machine when no token is
    configured."""
    console_name = getattr(request.state, "console_name", None)
    if isinstance(console_name, str):
        return console_name
    name = token_name(request, state(request).ctx.settings.server)
    if name is not None:
        return name
    return "hmac" if request.headers.get(SIGNATURE_HEADER) else "local"


def is_operator(request: Request) -> bool:
    """For public routes that show an operator more: a Bearer token (or a local client when none is set)."""
    return operator_refusal(request) is None


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def _forgery_refusal(request: Request) -> Response | None:
    """403 for a request a browser sent on behalf of another site."""
    public_url = state(request).ctx.settings.site.public_url
    fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return error(403, f"cross-origin request refused (Sec-Fetch-Site: {fetch_site})")
    origin = request.headers.get("origin")
    if origin is not None and (_origin(origin) is None or _origin(origin) != _origin(public_url)):
        return error(403, f"cross-origin request refused: origin {quoted(origin)} is not this service ({public_url})")
    return None


async def _read_body(request: Request) -> Response | None:
    """Read the body, refusing it (413) past MAX_BODY whether or not its length was declared."""
    too_large = error(413, f"request body larger than {MAX_BODY} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return too_large
        chunks.append(chunk)
    request._body = b"".join(chunks)  # what request.body() returns to the endpoint
    return None


def _form_refusal(request: Request) -> Response | None:
    """415 unless the body is an HTML form (the console's forms; CSRF is checked on admission)."""
    declared = request.headers.get("content-type")
    if (declared or "").partition(";")[0].strip().lower() != FORM:
        got = quoted(declared) if declared is not None else "no Content-Type"
        return error(415, f"send the form as Content-Type: {FORM} (got {got})")
    return None


def _json_refusal(request: Request, body: bytes) -> Response | None:
    """415 unless the body (if any) is declared application/json: forms and text/plain are what
    other sites' pages can send without asking."""
    declared = request.headers.get("content-type")
    if declared is None and not body:
        return None
    if (declared or "").partition(";")[0].strip().lower() != "application/json":
        got = quoted(declared) if declared is not None else "no Content-Type"
        return error(415, f"send the body as Content-Type: application/json (got {got})")
    return None


async def _push_refusal(request: Request) -> Response | None:
    """A token, else a fresh HMAC signature seen for the first time (409 for a replay)."""
    web = state(request)
    server = web.ctx.settings.server
    if token_ok(request, server):
        return None
    reason = signed_ok(request, await request.body(), server)
    if reason is not None:
        return error(401, f"authentication failed: {reason}", {"WWW-Authenticate": 'Bearer realm="distributor"'})
    signature = request.headers.get(SIGNATURE_HEADER, "")
    fresh = await web.redis.set(web.ctx.keys.push_seen(signature), "1", nx=True, ex=int(server.push_window) * 2)
    if not fresh:
        return error(409, "this signed request was already received (replay)")
    return None
