"""GET /r/{article_id}/{channel}: a reader clicked the link in our post; count it, then send them on.

The target is the article's own URL with that channel's UTM tags, never anything taken from the
request, so the route cannot be used as an open redirect: an unknown article or channel is a 404.
Bots (link-preview fetchers included: the platforms fetch this link to build their cards) and a
reader's repeat clicks within `[shares] repeat_window` are redirected but not counted.
"""

from __future__ import annotations

import logging
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


async def prepare(app: Starlette, web: WebState) -> None:
    """Load the click script at start, so a click is one EVALSHA (redis-py loads it again by itself
    after a Redis restart forgot it)."""
    app.state.click_script = web.redis.register_script(CLICK_SCRIPT)
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
    found = await script(keys=keys, args=args)
    if not found:
        return error(404, f"unknown article {quoted(article_id)}")
    url = found[0]
    return RedirectResponse(adapter.landing(url), status_code=302, headers={"Cache-Control": "no-store"})
