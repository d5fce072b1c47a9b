"""Prometheus metrics.

Counters are per process. The state of the whole installation (articles, deliveries by state,
feeds) is read from Redis at scrape time, so any one web process reports what every worker did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SHARES = Counter("distributor_shares_total", "Shares counted", ["network"])
PUSHED = Counter("distributor_pushed_articles_total", "Articles accepted by POST /api/articles")


class StateCollector(Collector):
    """Gauges computed from the store and ledger when Prometheus scrapes."""

    def __init__(self) -> None:
        self.read: Callable[[], tuple[int, dict[str, int], int]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.read is None:
            return
        articles, deliveries, feeds = self.read()
        yield GaugeMetricFamily("distributor_articles", "Published articles", value=articles)
        by_state = GaugeMetricFamily(
            "distributor_deliveries", "Deliveries among the latest 1000, by state", labels=["state"]
        )
        for state, count in sorted(deliveries.items()):
            by_state.add_metric([state], count)
        yield by_state
        yield GaugeMetricFamily("distributor_feeds", "Feeds served", value=feeds)


STATE = StateCollector()
REGISTRY.register(STATE)


class ChannelCollector(Collector):
    """Each channel's circuit breaker and in-flight deliveries, read from Redis at scrape time."""

    def __init__(self) -> None:
        self.read: Callable[[], list[tuple[str, int, int]]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.read is None:
            return
        rows = self.read()
        breaker = GaugeMetricFamily(
            "distributor_channel_breaker",
            "Circuit breaker per channel: 0 closed, 1 half-open (probing), 2 open (cooling down), 3 paused",
            labels=["channel"],
        )
        in_flight = GaugeMetricFamily("distributor_channel_in_flight", "Deliveries being sent", labels=["channel"])
        for channel, state, sending in rows:
            breaker.add_metric([channel], state)
            in_flight.add_metric([channel], sending)
        yield breaker
        yield in_flight


CHANNELS = ChannelCollector()
REGISTRY.register(CHANNELS)
