"""/healthz (Redis reachable, state not lost) and /metrics (Prometheus)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor import recovery
from distributor.metrics import STATE
from distributor.web.state import state


async def healthz(request: Request) -> Response:
    web = state(request)
    try:
        await web.redis.ping()
        lost = recovery.parse(await web.redis.hgetall(web.ctx.keys.state_lost()))
    except Exception:
        return JSONResponse({"status": "unavailable", "redis": "down"}, status_code=503)
    if lost is not None:  # still serving, but the operator must look (until `distributor recovery ack`)
        return JSONResponse({"status": "degraded", "redis": "up", "state_lost": lost})
    return JSONResponse({"status": "ok", "redis": "up"})


async def metrics(request: Request) -> Response:
    ctx = state(request).ctx

    def read() -> tuple[int, dict[str, int], int]:
        return ctx.store.count(), ctx.ledger.counts(), len(ctx.store.feed_meta())

    STATE.read = read
    return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)
