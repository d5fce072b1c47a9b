"""Thin Celery tasks: each is one call into `distributor.pipeline`.

Arguments are ids and names (JSON), every task is safe to run twice, and follow-up work is queued
through `CeleryDispatcher`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from celery import shared_task
from celery.utils.log import get_task_logger

from distributor import (
    approval,
    channel_health,
    corrections,
    delivery,
    drain,
    engagement,
    pipeline,
    rebuild,
    source_health,
)
from distributor.context import get_context
from distributor.feeds import websub
from distributor.queues import ENGAGEMENT as ENGAGEMENT_QUEUE
from distributor.sources.push import PushedArticle

log = get_task_logger(__name__)


class CeleryDispatcher:
    def rebuild(self, feeds: Iterable[str]) -> None:
        rebuild_feeds.delay(list(feeds))

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        """Due now: onto the channel's ready list (`distributor.drain`); later: a task with a countdown."""
        if countdown > 0:
            deliver.apply_async((article_id, channel), countdown=countdown)
        else:
            self.deliver_now(article_id, [channel])

    def deliver_now(self, article_id: str, channels: list[str]) -> None:
        """Deliveries due now: onto their channels' ready lists in one round trip, drainers queued
        where needed (`distributor.drain`). A channel no longer configured gets a task, which
        cancels its delivery."""
        ctx = get_context()
        known = [name for name in channels if ctx.settings.has_channel(name)]
        for name in channels:
            if name not in known:
                deliver.delay(article_id, name)
        for name, token in drain.push(ctx, article_id, known):
            drain_channel.delay(name, token)

    def release(self, article_id: str, announce: bool, eta: datetime) -> None:
        release_article.apply_async((article_id, announce), eta=eta)

    def ping(self, hubs: list[str], urls: list[str]) -> None:
        ping_hubs.delay(hubs, urls)

    def notify(self, article_id: str, channels: list[str]) -> None:
        notify_approval.delay(article_id, channels)

    def edit(self, article_id: str, channel: str, countdown: float = 0) -> None:
        edit_post.apply_async((article_id, channel), countdown=max(0.0, countdown))

    def delete(self, article_id: str, channel: str, countdown: float = 0) -> None:
        delete_post.apply_async((article_id, channel), countdown=max(0.0, countdown))


dispatcher = CeleryDispatcher()


@shared_task(name="worker.tasks.poll_source", ignore_result=True)
def poll_source(name: str) -> dict[str, Any]:
    ctx = get_context()
    report = pipeline.poll_source(ctx, name, dispatcher)
    source_health.record(ctx, report)  # the console's sources page: last poll, result, error
    return {"new": len(report.new), "updated": len(report.updated), "removed": len(report.removed)}


@shared_task(name="worker.tasks.ingest", ignore_result=True)
def ingest(draft: dict[str, Any], source: str = "push", announce: bool = True) -> str:
    ctx = get_context()
    article = pipeline.to_article(ctx, PushedArticle.model_validate(draft).draft(), source)
    change, feeds = pipeline.ingest(ctx, article, dispatcher, announce=announce)
    if feeds:
        dispatcher.rebuild(sorted(feeds))
    return change


@shared_task(name="worker.tasks.release_article", ignore_result=True)
def release_article(article_id: str, announce: bool) -> None:
    pipeline.release(get_context(), article_id, announce, dispatcher)


@shared_task(name="worker.tasks.rebuild_feeds", ignore_result=True)
def rebuild_feeds(names: list[str]) -> list[str]:
    return rebuild.rebuild_feeds(get_context(), names, dispatcher)


@shared_task(name="worker.tasks.rebuild_all", ignore_result=True)
def rebuild_all() -> list[str]:
    ctx = get_context()
    rebuild.register_configured_feeds(ctx)
    return rebuild.rebuild_feeds(ctx, ctx.store.feed_meta(), dispatcher)


@shared_task(name="worker.tasks.deliver", ignore_result=True)
def deliver(article_id: str, channel: str) -> str:
    result = delivery.deliver(get_context(), article_id, channel)
    if result.state == "retry":
        dispatcher.deliver(article_id, channel, countdown=result.retry_in)
    return result.state


@shared_task(name="worker.tasks.drain_channel", ignore_result=True)
def drain_channel(channel: str, token: str) -> int:
    """Post the channel's ready deliveries for a while; queue this drainer again if work is left."""
    result = drain.drain(get_context(), channel, token, dispatcher)
    if result.more:
        drain_channel.delay(channel, token)
    return result.delivered


@shared_task(name="worker.tasks.edit_post", ignore_result=True)
def edit_post(article_id: str, channel: str) -> str:
    result = corrections.edit(get_context(), article_id, channel)
    if result.state in ("retry", "more"):
        countdown = result.retry_in if result.state == "retry" else get_context().settings.worker.edit_debounce
        dispatcher.edit(article_id, channel, countdown=countdown)
    return result.state


@shared_task(name="worker.tasks.delete_post", ignore_result=True)
def delete_post(article_id: str, channel: str) -> str:
    result = corrections.delete(get_context(), article_id, channel)
    if result.state == "retry":
        dispatcher.delete(article_id, channel, countdown=result.retry_in)
    return result.state


@shared_task(name="worker.tasks.sweep_deliveries", ignore_result=True)
def sweep_deliveries() -> int:
    ctx = get_context()
    finished = pipeline.finish_fanouts(ctx, dispatcher)  # before: their new deliveries are due at once
    swept = finished + delivery.sweep(ctx, dispatcher) + corrections.sweep(ctx, dispatcher)
    for channel, token in drain.idle_lists(ctx):  # ready lists whose drainers died
        drain_channel.delay(channel, token)
    return swept


@shared_task(name="worker.tasks.notify_approval", ignore_result=True)
def notify_approval(article_id: str, channels: list[str]) -> dict[str, str]:
    return approval.notify(get_context(), article_id, channels)


@shared_task(name="worker.tasks.ping_hubs", ignore_result=True)
def ping_hubs(hubs: list[str], urls: list[str]) -> list[str]:
    errors = websub.ping(hubs, urls)
    for error in errors:
        log.warning("WebSub: %s", error)
    return errors


@shared_task(name="worker.tasks.pull_engagement", ignore_result=True)
def pull_engagement() -> list[str]:
    """Queue one engagement pull per channel that reports engagement."""
    channels = engagement.channels_to_pull(get_context())
    for name in channels:
        pull_channel_engagement.apply_async((name,), queue=ENGAGEMENT_QUEUE)
    return channels


@shared_task(name="worker.tasks.pull_channel_engagement", ignore_result=True)
def pull_channel_engagement(channel: str) -> int:
    """Read one channel's due posts at its pace; what the pace leaves is queued for when it allows."""
    result = engagement.pull_channel(get_context(), channel)
    if result.remaining and result.retry_in > 0:
        pull_channel_engagement.apply_async((channel,), countdown=result.retry_in, queue=ENGAGEMENT_QUEUE)
    return result.pulled


@shared_task(name="worker.tasks.check_token_expiry", ignore_result=True)
def check_token_expiry() -> list[str]:
    """Read when the channels' tokens expire, where the platform tells (daily, for the console)."""
    return sorted(channel_health.refresh_token_expiry(get_context()))
