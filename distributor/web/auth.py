"""Credentials: operator tokens (Bearer; HTTP Basic only where a page allows it), HMAC-signed pushes,
and the local client who stands in for an operator when no token is configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time

from starlette.requests import Request

from distributor.settings import ServerSettings

SIGNATURE_HEADER = "x-distributor-signature"
TIMESTAMP_HEADER = "x-distributor-timestamp"
# Any of these means a proxy relayed the request: its peer address is the proxy's, not the client's.
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via")


def _matching(presented: str, server: ServerSettings) -> str | None:
    """The name of the configured token `presented` is, or None."""
    # Compare against every token without an early exit, in constant time per token.
    matches = [hmac.compare_digest(presented.encode(), t.token.get_secret_value().encode()) for t in server.api_tokens]
    return next((t.name for t, hit in zip(server.api_tokens, matches, strict=True) if hit), None)


def matching_token(presented: str, server: ServerSettings) -> str | None:
    """The name of the configured token typed into the console's sign-in form, or None."""
    return _matching(presented.strip(), server) if presented.strip() else None


def token_name(request: Request, server: ServerSettings, *, basic: bool = False) -> str | None:
    """The name of the configured token in `Authorization: Bearer` (with `basic`, also as an HTTP
    Basic password), or None: who acts, for the audit log.

    Basic is for pages an operator opens in a browser only: the browser re-sends it by itself, to
    requests other sites make it send too, so it must never authorise a change.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return _matching(value.strip(), server)
    if basic and scheme.lower() == "basic" and value:  # any user name, the token as password
        try:
            password = base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
        return _matching(password, server)
    return None


def token_ok(request: Request, server: ServerSettings, *, basic: bool = False) -> bool:
    """A configured token in `Authorization: Bearer`; with `basic`, also as an HTTP Basic password."""
    return token_name(request, server, basic=basic) is not None


def is_loopback(host: str) -> bool:
    """'127.0.0.1', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost': this machine only."""
    name = host.strip().removeprefix("[").removesuffix("]").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def local_client(request: Request) -> bool:
    """A client on this machine, not relayed by a proxy, that addressed this machine by a local name.

    The name matters: a page whose host name was re-pointed at 127.0.0.1 (DNS rebinding) reaches us
    from the operator's own browser, but with its own name in the Host header.
    """
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    peer = request.client.host if request.client else ""
    return is_loopback(peer) and is_loopback(request.url.hostname or "")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_ok(request: Request, body: bytes, server: ServerSettings) -> str | None:
    """None when the HMAC signature is valid and fresh, else the reason it is not."""
    if server.push_secret is None:
        return "no push_secret configured"
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    presented = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp or not presented:
        return "missing signature headers"
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        return "bad timestamp"
    if age > server.push_window:
        return "timestamp outside the replay window"
    expected = signature(server.push_secret.get_secret_value(), timestamp, body)
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        return "bad signature"
    return None
