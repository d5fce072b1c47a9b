"""Celery configured from the Distributor settings: the broker (the Redis store's server, or
`[worker] broker_url`, e.g. RabbitMQ), results in Redis, JSON, late acks, RedBeat (the beat
schedule lives in Redis and a Redis lock keeps one beat running; see worker.beat). Any Redis URL
may be a Sentinel one (see distributor.redis)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import redis
from celery import Celery
from celery.exceptions import CPendingDeprecationWarning
from celery.signals import setup_logging, worker_ready, worker_shutdown
from kombu.entity import Queue

from distributor import heartbeat, logs, queues
from distributor import redis as redis_support
from distributor.context import get_context
from worker import kombu_patch
from worker.schedule import beat_schedule

kombu_patch.apply()

log = logging.getLogger(__name__)
# Celery warns at every broker reconnection about a default that changes in 6.0; we set it.
warnings.filterwarnings("ignore", category=CPendingDeprecationWarning)


def _route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **_: Any) -> dict[str, str] | None:
    """A delivery or drainer task goes to its channel's queue, however it was sent (dispatcher, CLI, sweep)."""
    if name == "worker.tasks.deliver":
        channel = (args[1] if args and len(args) > 1 else None) or (kwargs or {}).get("channel")
    elif name == "worker.tasks.drain_channel":
        channel = (args[0] if args else None) or (kwargs or {}).get("channel")
    else:
        return None
    if isinstance(channel, str):
        return {"queue": queues.for_delivery(get_context().settings, channel)}
    return None


REDIS_BROKER_SCHEMES = redis_support.REDIS_SCHEMES


def broker(url: str, key_prefix: str) -> tuple[str, dict[str, Any]]:
    """The broker URL and its transport options. On Redis, Celery's keys get the store's prefix
    and an unacknowledged task returns to the queue after an hour; other brokers (RabbitMQ) take
    neither option: they return a dead worker's tasks when its connection closes."""
    if url.partition("://")[0].lower() not in REDIS_BROKER_SCHEMES:
        return url, {}
    url, options = redis_support.celery_url(url)
    return url, {"visibility_timeout": 3600, "global_keyprefix": key_prefix + "celery:", **options}


def create_app() -> Celery:
    ctx = get_context()
    settings = ctx.settings
    prefix = settings.redis.key_prefix
    broker_url, broker_options = broker(settings.worker.broker_url or ctx.redis_url, prefix)
    backend_url, backend_options = redis_support.celery_url(ctx.redis_url)
    redbeat_url, redbeat_options = redis_support.redbeat_settings(ctx.redis_url)
    app = Celery("distributor", include=["worker.tasks"])
    app.conf.update(
        broker_url=broker_url,
        result_backend=backend_url,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=queues.DEFAULT,
        # Each channel's deliveries in a queue of its own; a worker consumes them all unless told
        # otherwise (`-Q`, `distributor worker --queues`).
        task_queues=[Queue(name) for name in queues.all_queues(settings)],  # type: ignore[no-untyped-call]
        task_routes=(_route,),
        broker_transport_options=broker_options,
        result_backend_transport_options={"global_keyprefix": prefix + "celery:", **backend_options},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a Redis outage is waited out, however long
        worker_cancel_long_running_tasks_on_connection_loss=False,  # the ledger's lease settles them
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_scheduler="worker.beat:ResilientScheduler",
        redbeat_redis_url=redbeat_url,
        redbeat_key_prefix=ctx.keys.beat_prefix(),
        redbeat_lock_key=ctx.keys.beat_lock(),  # RedBeat's default name, said here: /healthz reads it
        redbeat_redis_options=redbeat_options,  # the broker's transport options are not the scheduler's
        redbeat_lock_timeout=60,  # a killed beat is replaced within a minute
        beat_max_loop_interval=5,
        beat_schedule=beat_schedule(settings),
    )
    return app


app = create_app()


_hearts: list[heartbeat.Heart] = []


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    """On start, say so every few seconds (heartbeat), and render every configured feed right away."""
    from worker.tasks import rebuild_all

    ctx = get_context()
    node = getattr(sender, "hostname", None) or heartbeat.node_name("worker")
    # Beat only while the consumer is connected: a worker waiting to reconnect consumes nothing.
    consumed = tuple(sorted(getattr(getattr(sender, "app", app).amqp.queues, "consume_from", None) or ()))
    heart = heartbeat.Heart(
        ctx.redis, ctx.keys, "worker", node, alive=lambda: sender.connection is not None, queues=consumed or None
    )
    heart.start()
    _hearts.append(heart)
    rebuild_all.delay()


@worker_shutdown.connect
def _on_shutdown(**_: Any) -> None:
    """Say "stopped" on the way out, so /healthz turns 503 at once (not when the beat goes stale)."""
    for heart in _hearts:
        heart.stop()
        heart.join(timeout=2)  # its last beat must not land after the word "stopped"
        with contextlib.suppress(redis.RedisError):
            heartbeat.beat(heart.client, heart.keys, "worker", heart.node, heartbeat.STOPPED, heart.queues)


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    """The worker's and beat's logging is ours, not Celery's (which would add its own handler and
    format to the root logger): the configured `[logging]` format and level, secrets masked (distributor.logs),
    without a traceback per expected Redis outage or a line per task run: what matters (posts,
    failures, outages) is logged by the library in one line each."""
    logs.configure(get_context().settings)
    for noisy in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
