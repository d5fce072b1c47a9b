"""Authentication for push and operator routes: bearer tokens or an HMAC-signed body."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from starlette.requests import Request

from distributor.settings import ServerSettings

SIGNATURE_HEADER = "x-distributor-signature"
TIMESTAMP_HEADER = "x-distributor-timestamp"


def _token_ok(presented: str, server: ServerSettings) -> bool:
    # Compare against every token without an early exit, in constant time per token.
    matches = [hmac.compare_digest(presented.encode(), t.get_secret_value().encode()) for t in server.api_tokens]
    return any(matches)


def bearer_ok(request: Request, server: ServerSettings) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return _token_ok(value.strip(), server)
    if scheme.lower() == "basic" and value:  # browsers: any user name, the token as password
        try:
            password = base64.b64decode(value).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
        return _token_ok(password, server)
    return False


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


def operator_ok(request: Request, server: ServerSettings) -> bool:
    """Operator pages are open when no token is configured (local use), else need a token."""
    return not server.api_tokens or bearer_ok(request, server)
