"""A Dispatcher that does follow-up work at once, in this process (CLI commands and tests).

Retries are not waited for here: a delivery that must retry stays pending in the ledger, and the
worker's sweep picks it up.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from distributor import approval, corrections, delivery, rebuild
from distributor.context import Context
from distributor.feeds import websub

log = logging.getLogger(__name__)


class InlineDispatcher:
    def __init__(self, ctx: Context, *, deliver: bool = True) -> None:
        self.ctx = ctx
        self.do_deliver = deliver
        self.results: list[tuple[str, str, delivery.DeliveryResult]] = []
        self.scheduled: list[tuple[str, datetime]] = []
        self.corrections: list[tuple[str, str, corrections.OpResult]] = []

    def rebuild(self, feeds: Iterable[str]) -> None:
        rebuild.rebuild_feeds(self.ctx, list(feeds), self)

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        if self.do_deliver and countdown <= 0:
            self.results.append((article_id, channel, delivery.deliver(self.ctx, article_id, channel)))

    def edit(self, article_id: str, channel: str, countdown: float = 0) -> None:
        if self.do_deliver and countdown <= 0:
            self.corrections.append((article_id, channel, corrections.edit(self.ctx, article_id, channel)))

    def delete(self, article_id: str, channel: str, countdown: float = 0) -> None:
        if countdown <= 0:
            self.corrections.append((article_id, channel, corrections.delete(self.ctx, article_id, channel)))

    def release(self, article_id: str, announce: bool, eta: datetime) -> None:
        self.scheduled.append((article_id, eta))

    def notify(self, article_id: str, channels: list[str]) -> None:
        approval.notify(self.ctx, article_id, channels)

    def ping(self, hubs: list[str], urls: list[str]) -> None:
        for error in websub.ping(hubs, urls):
            log.warning("WebSub: %s", error)
