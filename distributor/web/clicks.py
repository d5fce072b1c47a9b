"""GET /r/{article_id}/{channel}: a reader clicked the link in our post; count it, then send them on.

The target is the article's own URL with that channel's UTM tags, never anything taken from the
request, so the route cannot be used as an open redirect: an unknown article or channel is a 404.
Bots (link-preview fetchers included: the platforms fetch this link to build their cards) and a
reader's repeat clicks within `[shares] repeat_window` are redirected but not counted.

While Redis is unreachable, a reader who clicks the link in our post still reaches the article when
this process has seen a click on it before (the URLs of the last `KNOWN_SIZE` clicked articles are
kept in memory): redirected, not counted, logged. An article it has not seen yet answers 503.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import datetime

import redis
from redis.commands.core import AsyncScript
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from distributor.clicks import CLICK_SCRIPT, script_call
from distributor.shares import is_bot
from distributor.web.errors import error, quoted
from distributor.web.shares import client_address
from distributor.web.state import WebState, state

log = logging.getLogger(__name__)

KNOWN_SIZE = 5_000  # article id -> URL of recently clicked articles, for clicks while Redis is down
OUTAGE_LOG_EVERY = 60.0  # seconds between two log lines about clicks redirected uncounted


class KnownTargets:
    """The article URLs the click script returned lately, newest last (a bounded LRU)."""

    def __init__(self, size: int = KNOWN_SIZE) -> None:
        self.size = size
        self._urls: OrderedDict[str, str] = OrderedDict()
        self.uncounted = 0
        self._logged_at = 0.0

    def remember(self, article_id: str, url: str) -> None:
        self._urls[article_id] = url
        self._urls.move_to_end(article_id)
        if len(self._urls) > self.size:
            self._urls.popitem(last=False)

    def during_outage(self, article_id: str, error: Exception) -> str | None:
        """The URL to send a reader to while Redis is down (the click is not counted), or None."""
        url = self._urls.get(article_id)
        if url is not None:
            self.uncounted += 1
            now = time.monotonic()
            if now - self._logged_at >= OUTAGE_LOG_EVERY:
                self._logged_at = now
                log.warning("clicks on our posts redirected but not counted while Redis is unreachable "
                            "(%d so far): %s", self.uncounted, type(error).__name__)  # fmt: skip
        return url


async def prepare(app: Starlette, web: WebState) -> None:
    """Load the click script at start, so a click is one EVALSHA (redis-py loads it again by itself
    after a Redis restart forgot it)."""
    app.state.click_script = web.redis.register_script(CLICK_SCRIPT)
    app.state.click_targets = KnownTargets()
    try:
        await web.redis.script_load(CLICK_SCRIPT)
    except redis.RedisError:  # Redis is down at start: the web app still starts (feeds from memory)
        log.info("click script not loaded yet: Redis is unavailable; it is loaded at the first click")


async def click(request: Request) -> Response:
    web = state(request)
    ctx = web.ctx
    settings = ctx.settings
    article_id = request.path_params["article_id"]
    channel = request.path_params["channel"]
    try:
        settings.channel(channel)
    except KeyError:
        return error(404, f"unknown channel {quoted(channel)}")
    adapter = ctx.channel(channel)
    user_agent = request.headers.get("user-agent", "")
    count = not (settings.shares.ignore_bots and is_bot(user_agent))
    keys, args = script_call(
        ctx.keys,
        datetime.now(ctx.tz),
        settings.shares.repeat_window,
        article_id,
        channel,
        client_address(request, settings.server.trusted_proxies),
        user_agent,
        count,
        settings.shares.client_limit,
    )
    script: AsyncScript = request.app.state.click_script
    known: KnownTargets = request.app.state.click_targets
    try:
        found = await script(keys=keys, args=args)
    except (redis.RedisError, OSError) as exc:
        url = known.during_outage(article_id, exc)
        if url is None:
            raise  # never seen here: the app's outage answer (503), not a guess
    else:
        if not found:
            return error(404, f"unknown article {quoted(article_id)}")
        url = found[0]
        known.remember(article_id, url)
    return RedirectResponse(adapter.landing(url), status_code=302, headers={"Cache-Control": "no-store"})
