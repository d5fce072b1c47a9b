"""What the web app shares between requests: settings, the sync context, async Redis clients."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from starlette.requests import Request

from distributor.context import Context
from distributor.web.share_counter import ClickPath


@dataclass
class WebState:
    ctx: Context
    redis: aioredis.Redis  # text
    binary: aioredis.Redis  # bytes (feeds)
    clicks: ClickPath | None = None  # share clicks: set while the app runs
    console_key: bytes | None = None  # signs console session cookies (distributor.web.console.session)

    @property
    def click_path(self) -> ClickPath:
        if self.clicks is None:
            raise RuntimeError("the share click path is not started (the app's lifespan did not run)")
        return self.clicks


def state(request: Request) -> WebState:
    current: WebState = request.app.state.web
    return current
