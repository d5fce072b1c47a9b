"""WebSub publish pings: tell each hub the feeds changed so subscribers get them in seconds.

A ping is a courtesy, not a delivery: failures come back as messages for the log, never as
exceptions, and the time spent is bounded (few attempts, short timeouts) so a dead hub cannot
hold up a feed rebuild.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from distributor import http
from distributor.errors import ChannelError

PING_TIMEOUT = (3.0, 5.0)  # connect, read: hubs answer a publish ping at once


def ping(
    hubs: Sequence[str],
    topic_urls: Sequence[str],
    *,
    attempts: int = 3,
    timeout: float | tuple[float, float] = PING_TIMEOUT,
    backoff: float = 0.5,
) -> list[str]:
    """POST hub.mode=publish with one hub.url per topic to every hub; returns the errors."""
    if not topic_urls:
        return []
    form = [("hub.mode", "publish"), *(("hub.url", url) for url in topic_urls)]
    errors = []
    for hub in hubs:
        try:
            error = _ping_one(hub, form, max(1, attempts), timeout, backoff)
        except Exception as exc:  # a ping must never break a feed rebuild (bad hub URL...)
            error = f"WebSub hub ping failed: {type(exc).__name__}"
        if error:
            errors.append(error)
    return errors


def _ping_one(
    hub: str,
    form: list[tuple[str, str]],
    attempts: int,
    timeout: float | tuple[float, float],
    backoff: float,
) -> str | None:
    problem = ""
    tried = 0
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        tried += 1
        try:
            response = http.request("POST", hub, data=form, timeout=timeout)
        except ChannelError as exc:
            # The message names the host as typed, which may carry user:password@.
            problem = exc.message.replace(urlsplit(hub).netloc, _host(hub))
            if exc.permanent:
                break
            continue
        if 200 <= response.status_code < 300:
            return None
        reply = " ".join((response.text or "").split())[:200]
        problem = f"HTTP {response.status_code} {reply}".strip()
        if response.status_code < 500 and response.status_code != 429:
            break  # the hub refused the request itself; asking again will not change that
    tries = f"{tried} attempt{'s' if tried > 1 else ''}"
    return f"WebSub hub {_public(hub)}: {problem} (after {tries})"


def _public(url: str) -> str:
    """The hub URL without credentials or query (hub URLs may embed tokens)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, _host(url), parts.path, "", ""))


def _host(url: str) -> str:
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[2]
