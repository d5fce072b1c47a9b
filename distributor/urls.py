"""URL rules: canonical form (the article identity), absolute links, UTM tagging, which links a
source may follow, and how a URL is shown without its secrets."""

from __future__ import annotations

import hashlib
import logging
import re
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

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


# --- which links a source may follow -------------------------------------------------------------


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _site_name(host: str) -> str:
    """A host as compared by `may_follow`: lower case, no trailing dot, `www.` dropped."""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def parse_allowed_host(entry: str) -> tuple[str, int | None]:
    """An `allowed_hosts` entry as (host, port or None): `news.example.vn`, `*.example.vn`,
    `cdn.example.vn:8080`, `[2001:db8::1]:8443`. ValueError when it is not a bare host."""
    text = entry.strip()
    if not text or "/" in text or "@" in text or "?" in text or "#" in text:
        raise ValueError(f"{mask_url(entry)!r} is not a host name (write news.example.vn, not a URL)")
    parts = urlsplit("//" + text)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{entry!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"{entry!r} is not a host name")
    return parts.hostname, port


def may_follow(url: str, home: str, allowed_hosts: tuple[str, ...] | list[str] = ()) -> bool:
    """True when a link found in the content of the source at `home` may be fetched.

    A link is followed on the source's own host (its `www.` variant counts as the same host), on
    the source's port or the default port of the link's scheme (http -> https on the same site);
    or on a host listed in `allowed_hosts` (`*.example.vn` covers example.vn and its subdomains),
    on the port the entry names or else the default port. Anything else would let whoever writes
    the content point this service at other servers.
    """
    try:
        parts, own = urlsplit(url), urlsplit(home)
        port = parts.port or _default_port(parts.scheme)
        own_port = own.port or _default_port(own.scheme)
    except ValueError:  # a port that is no number, a bracketed host that is no address
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = _site_name(parts.hostname)
    if host == _site_name(own.hostname or "") and port in (own_port, _default_port(parts.scheme)):
        return True
    for entry in allowed_hosts:
        try:
            name, entry_port = parse_allowed_host(entry)
        except ValueError:
            continue
        if port != (entry_port or _default_port(parts.scheme)):
            continue
        if name.startswith("*."):
            suffix = _site_name(name[2:])
            if host == suffix or host.endswith("." + suffix):
                return True
        elif _site_name(name) == host:
            return True
    return False


# --- secrets in URLs -----------------------------------------------------------------------------

MASK = "***"
# Query parameter names (lower case, without "-", "_" and ".") whose values are credentials.
_SECRET_NAMES = frozenset(
    {"key", "pass", "pw", "pwd", "sig", "code", "auth", "jwt", "sid", "hmac", "otp", "session", "ticket", "nonce"}
)
_SECRET_PARTS = (
    "token",
    "secret",
    "passw",
    "passphrase",
    "apikey",
    "signature",
    "credential",
    "sessionid",
    "authorization",
    "oauth",
    "privatekey",
)
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'`)\]]+")
_PAIR_IN_TEXT = re.compile(r"(?<=[?&;])([^=&;#\s?]+)=([^&;#\s\"'<>)]*)")


def is_secret_name(name: str) -> bool:
    """True for a query parameter name that looks like it carries a credential."""
    plain = re.sub(r"[-_.\s]", "", unquote(name).lower())
    return plain in _SECRET_NAMES or plain.endswith("key") or any(part in plain for part in _SECRET_PARTS)


def _mask_pair(match: re.Match[str]) -> str:
    name, value = match[1], match[2]
    return f"{name}={MASK}" if value and is_secret_name(name) else match[0]


def mask_url(url: str) -> str:
    """`url` as it may be shown in errors, logs and reports: a password in the userinfo (or a
    userinfo that is only a name: a token, as in `https://TOKEN@host/`) becomes `***`, and so does
    the value of every query parameter whose name looks secret (`token`, `key`, `api_key`,
    `password`, `sig`, `code`...). Everything else is kept as written, so the host and path still
    tell the operator where the problem is. Works on any scheme (`redis://:pw@host:6379/0` too)
    and on text that is not a URL at all (returned unchanged unless it holds `?name=secret`).
    """
    scheme, sep, rest = url.partition("://")
    if sep and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9+.-]*", scheme):
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        authority, tail = rest[:end], rest[end:]
        userinfo, at, hostport = authority.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            userinfo = f"{user}:{MASK}" if colon and password else (MASK if user and not colon else userinfo)
            authority = f"{userinfo}@{hostport}"
        url = f"{scheme}://{authority}{tail}"
    return _PAIR_IN_TEXT.sub(_mask_pair, url)


def mask_urls(text: str) -> str:
    """`text` (an error message, a log line) with every URL in it passed through `mask_url`, and
    secret query values masked where a bare path and query appear (`GET /feed?token=...`)."""
    return _PAIR_IN_TEXT.sub(_mask_pair, _URL_IN_TEXT.sub(lambda match: mask_url(match[0]), text))


class MaskUrlSecrets(logging.Filter):
    """A logging filter passing a record's message and traceback text through `mask_urls`, for
    loggers whose records may quote a source URL (an exception's text often does)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_urls(message)
        if masked != message:
            record.msg, record.args = masked, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_urls(record.exc_text)
        return True
