"""What the web app shares between requests: settings, the sync context, async Redis clients."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.requests import Request

from distributor.context import Context


@dataclass
class WebState:
    ctx: Context
    redis: aioredis.Redis  # text
    binary: aioredis.Redis  # bytes (feeds)


def state(request: Request) -> WebState:
    current: WebState = request.app.state.web
    return current
