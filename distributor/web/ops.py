"""/healthz (the whole installation: Redis, a live worker, an active beat) and /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor import channel_health, heartbeat, queues, recovery
from distributor.metrics import CHANNELS, STATE
from distributor.web.state import state


async def healthz(request: Request) -> Response:
    """200 ok only when Redis answers, a worker has beaten its heart and an active beat has ticked
    within `heartbeat.STALE_AFTER` seconds; else 503 saying which part is missing. 200 "degraded"
    while Redis's loss of state is unacknowledged (`distributor recovery ack`).

    `?scope=web` asks about this web process alone (for a load balancer: feeds are served from
    memory even while the rest is down).
    """
    web = state(request)
    if request.query_params.get("scope") == "web":
        return JSONResponse({"status": "ok", "web": "up"})
    try:
        async with web.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(web.ctx.keys.heartbeats())
            pipe.hgetall(web.ctx.keys.state_lost())
            beats, lost_raw = await pipe.execute()
    except Exception:
        return JSONResponse({"status": "unavailable", "redis": "down"}, status_code=503)
    verdict = heartbeat.judge(heartbeat.parse(beats), queues=queues.all_queues(web.ctx.settings))
    body: dict[str, object] = {"status": "ok", "redis": "up", "worker": verdict.worker, "beat": verdict.beat}
    lost = recovery.parse(lost_raw)
    if lost is not None:  # still serving, but the operator must look (until `distributor recovery ack`)
        body |= {"status": "degraded", "state_lost": lost}
    if not verdict.ok:
        body["status"] = "unavailable"
    return JSONResponse(body, status_code=200 if verdict.ok else 503)


async def metrics(request: Request) -> Response:
    ctx = state(request).ctx

    def read() -> tuple[int, dict[str, int], int]:
        return ctx.store.count(), ctx.ledger.counts(), len(ctx.store.feed_meta())

    STATE.read = read
    CHANNELS.read = lambda: channel_health.breaker_gauges(ctx)
    return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)
