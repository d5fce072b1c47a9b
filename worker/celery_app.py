"""Celery configured from the Distributor settings: Redis broker and results, JSON, late acks,
RedBeat (the beat schedule lives in Redis and a Redis lock keeps one beat running; see worker.beat)."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import worker_ready

from distributor.context import get_context
from worker.schedule import beat_schedule

log = logging.getLogger(__name__)


def create_app() -> Celery:
    ctx = get_context()
    settings = ctx.settings
    app = Celery("distributor", include=["worker.tasks"])
    app.conf.update(
        broker_url=settings.worker.broker_url or ctx.redis_url,
        result_backend=ctx.redis_url,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="distributor",
        broker_transport_options={
            "visibility_timeout": 3600,
            "global_keyprefix": settings.redis.key_prefix + "celery:",
        },
        result_backend_transport_options={"global_keyprefix": settings.redis.key_prefix + "celery:"},
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_scheduler="worker.beat:Scheduler",  # RedBeat that rides out a Redis restart
        redbeat_redis_url=ctx.redis_url,
        redbeat_key_prefix=ctx.keys.beat_prefix(),
        redbeat_redis_options={},  # the broker's transport options are not the scheduler's
        redbeat_lock_timeout=60,  # a killed beat is replaced within a minute
        beat_max_loop_interval=5,
        beat_schedule=beat_schedule(settings),
    )
    return app


app = create_app()


@worker_ready.connect
def _on_ready(**_: Any) -> None:
    """On start, make sure every configured feed is rendered (and served) right away."""
    from worker.tasks import rebuild_all

    rebuild_all.delay()
