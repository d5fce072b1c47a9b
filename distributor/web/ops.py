"""/healthz (the whole installation: Redis, a live worker, an active beat) and /metrics."""

from __future__ import annotations

import functools

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from distributor import channel_health, counters, heartbeat, queues, recovery
from distributor import redis as redis_support
from distributor.context import Context
from distributor.metrics import CHANNELS, COUNTERS, STATE
from distributor.web.state import state


async def healthz(request: Request) -> Response:
    """200 ok only when Redis answers, a worker has beaten its heart and an active beat has ticked
    within `heartbeat.STALE_AFTER` seconds; else 503 saying which part is missing. `beat_lock` says
    which beat (host and process) holds the RedBeat lock, and for how much longer. 200 "degraded"
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
            pipe.get(web.ctx.keys.beat_lock())
            pipe.pttl(web.ctx.keys.beat_lock())
            pipe.hgetall(web.ctx.keys.beat_holder())
            beats, lost_raw, lock_token, lock_ttl, holder = await pipe.execute()
    except Exception:
        return JSONResponse({"status": "unavailable", "redis": "down"}, status_code=503)
    verdict = heartbeat.judge(heartbeat.parse(beats), queues=queues.all_queues(web.ctx.settings))
    body: dict[str, object] = {"status": "ok", "redis": "up", "worker": verdict.worker, "beat": verdict.beat}
    body["beat_lock"] = heartbeat.lock_holder(lock_token, int(lock_ttl or 0), holder)
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
    COUNTERS.read = lambda: counters.read(ctx.redis, ctx.keys)
    COUNTERS.depths = lambda: _queue_depths(ctx)
    return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)


@functools.cache
def _broker_client(url: str) -> redis.Redis:
    return redis_support.client(url)


def _queue_depths(ctx: Context) -> dict[str, int] | None:
    """The queues' depths on a Redis broker (the store's Redis unless `[worker] broker_url` names
    another); None for another broker (RabbitMQ), which this process does not read."""
    url = ctx.settings.worker.broker_url
    if not url:
        client = ctx.redis
    elif url.partition("://")[0].lower() in redis_support.REDIS_SCHEMES:
        client = _broker_client(url)
    else:
        return None
    return queues.depths(client, ctx.keys, ctx.settings)
