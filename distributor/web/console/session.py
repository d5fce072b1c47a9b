"""Console sign-in sessions: a random id in a signed, HttpOnly, SameSite=Strict cookie; the session
itself (operator name, CSRF token, flash messages) in Redis with the session's lifetime as TTL.

Why Redis and not only a signed cookie: logout must end the session for good (a copied cookie stops
working), and every web process, on every machine, sees the same sessions. The signing key comes
from `[server] session_secret` when set; else a random key made once and kept in Redis (SET NX), so
sessions survive restarts and all web processes agree on it. When Redis loses its data the
sessions are gone anyway, and a new key is made.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from distributor.web.auth import local_client, token_name
from distributor.web.shares import client_address
from distributor.web.state import WebState, state

COOKIE = "distributor_session"
LANG_COOKIE = "lang"
LOCAL = "local"  # the operator's name when no token is configured (a client on this machine)
SIGN_IN_LIMIT = 5  # failed sign-ins per client address ...
SIGN_IN_WINDOW = 300  # ... per this many seconds, then 429


@dataclass
class Session:
    id: str
    name: str
    csrf: str
    flashes: list[tuple[str, str]] = field(default_factory=list)


async def signing_key(web: WebState) -> bytes:
    if web.console_key is None:
        secret = web.ctx.settings.server.session_secret
        if secret is not None:
            web.console_key = hashlib.sha256(b"distributor-console:" + secret.get_secret_value().encode()).digest()
        else:
            key = web.ctx.keys.console_signing_key()
            await web.redis.set(key, secrets.token_hex(32), nx=True)
            web.console_key = bytes.fromhex(await web.redis.get(key) or secrets.token_hex(32))
    return web.console_key


def _signature(key: bytes, session_id: str) -> str:
    return hmac.new(key, session_id.encode(), hashlib.sha256).hexdigest()


async def cookie_value(web: WebState, session_id: str) -> str:
    return f"{session_id}.{_signature(await signing_key(web), session_id)}"


def lifetime(web: WebState) -> int:
    return int(web.ctx.settings.server.session_hours * 3600)


def valid_name(web: WebState, name: str) -> bool:
    """A session stays valid only while its token is configured (removing a token signs it out)."""
    tokens = web.ctx.settings.server.api_tokens
    return any(t.name == name for t in tokens) if tokens else name == LOCAL


async def load(request: Request) -> Session | None:
    """The request's session, or None (no cookie, a bad signature, expired, logged out)."""
    web = state(request)
    raw = request.cookies.get(COOKIE, "")
    session_id, _, presented = raw.partition(".")
    if not session_id or not presented:
        return None
    if not hmac.compare_digest(_signature(await signing_key(web), session_id), presented):
        return None
    data = await web.redis.hgetall(web.ctx.keys.console_session(session_id))
    if not data or not valid_name(web, data.get("name", "")):
        return None
    return Session(session_id, data["name"], data.get("csrf", ""))


async def create(web: WebState, name: str) -> Session:
    session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(32))
    key = web.ctx.keys.console_session(session.id)
    pipe = web.redis.pipeline()
    pipe.hset(key, mapping={"name": name, "csrf": session.csrf})
    pipe.expire(key, lifetime(web))
    await pipe.execute()
    return session


async def end(web: WebState, session: Session) -> None:
    await web.redis.delete(web.ctx.keys.console_session(session.id))


async def flash(web: WebState, session: Session, kind: str, message: str) -> None:
    """A message for the next page this session sees (after a redirect)."""
    key = web.ctx.keys.console_session(session.id)
    queued = json.loads(await web.redis.hget(key, "flash") or "[]")
    queued.append([kind, message[:500]])
    await web.redis.hset(key, "flash", json.dumps(queued[-5:], ensure_ascii=False))


async def take_flashes(web: WebState, session: Session) -> list[tuple[str, str]]:
    key = web.ctx.keys.console_session(session.id)
    pipe = web.redis.pipeline()
    pipe.hget(key, "flash")
    pipe.hdel(key, "flash")
    raw, _ = await pipe.execute()
    return [(str(k), str(m)) for k, m in json.loads(raw or "[]")]


def is_https(request: Request) -> bool:
    """HTTPS here, or at a trusted proxy that says so (X-Forwarded-Proto): the cookie gets Secure."""
    if request.url.scheme == "https":
        return True
    trusted = state(request).ctx.settings.server.trusted_proxies
    peer = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(peer)
        behind = any(address in ipaddress.ip_network(t, strict=False) for t in trusted)
    except ValueError:
        behind = False
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return behind and proto == "https"


async def set_cookie(request: Request, response: Response, session: Session) -> None:
    web = state(request)
    response.set_cookie(
        COOKIE,
        await cookie_value(web, session.id),
        max_age=lifetime(web),
        path="/dashboard",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict", secure=is_https(request))


async def identify(request: Request) -> tuple[Session | None, str | None]:
    """(the session, the operator's name): a session cookie, else a Bearer token, else (no token
    configured) a client on this machine, who gets a session made on the spot."""
    web = state(request)
    session = await load(request)
    if session is not None:
        return session, session.name
    server = web.ctx.settings.server
    if server.api_tokens:
        return None, token_name(request, server)
    if local_client(request):
        return None, LOCAL
    return None, None


def client_key(request: Request) -> str:
    return client_address(request, state(request).ctx.settings.server.trusted_proxies) or "unknown"


async def sign_in_blocked(request: Request) -> bool:
    web = state(request)
    count = await web.redis.get(web.ctx.keys.sign_in_failures(client_key(request)))
    return int(count or 0) >= SIGN_IN_LIMIT


async def sign_in_failed(request: Request) -> None:
    web = state(request)
    key = web.ctx.keys.sign_in_failures(client_key(request))
    pipe = web.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, SIGN_IN_WINDOW, nx=True)
    await pipe.execute()
