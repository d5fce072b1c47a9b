"""URL rules: canonical form (the article identity), absolute links, UTM tagging."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

_TRACKING_PREFIXES = ("utm_", "fbclid", "gclid", "zarsrc", "mc_cid", "mc_eid")


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and tracking parameters dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query), ""))


def article_id(url: str) -> str:
    """A stable, URL-safe id derived from the canonical URL."""
    return hashlib.sha256(canonical_url(url).encode("utf-8")).hexdigest()[:16]


def absolute(url: str | None, base: str) -> str | None:
    """`url` resolved against `base`; None when it is empty or cannot be parsed ("http://[x")."""
    if not url or not url.strip():
        return None
    try:
        return urljoin(base, url.strip())
    except ValueError:  # a bracketed host that is no IP address
        return None


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def with_params(url: str, params: dict[str, str]) -> str:
    """Add query parameters (UTM tags) without disturbing those already there."""
    if not params:
        return url
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in params.items() if k not in present]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def mask_url(url: str) -> str:
    """TEMPORARY (replaced by the ssrf branch's version): the URL with its password masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit((parts.scheme, f"{user}:***@{netloc[2]}", parts.path, parts.query, parts.fragment))
