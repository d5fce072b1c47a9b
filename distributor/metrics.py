"""Prometheus metrics.

`distributor_shares_total` and `distributor_pushed_articles_total` are counters of this web
process. Everything else describes the whole installation and is read from Redis at scrape time
(the store and ledger, channel state, the broker's queues and the counters every process adds to:
`distributor.counters`), so any one web process reports what every worker did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from distributor import counters

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


class CountersCollector(Collector):
    """The installation-wide counters of `distributor.counters` (deliveries by outcome, the
    publish-to-posted histogram, source polls, reader shares) and the broker's queue depths, read
    from Redis at scrape time: the same figures from every web process, whichever worker did the work."""

    def __init__(self) -> None:
        self.read: Callable[[], counters.Snapshot] | None = None
        self.depths: Callable[[], dict[str, int] | None] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.read is not None:
            yield from _counter_families(self.read())
        if self.depths is not None:
            depths = self.depths()
            if depths is not None:  # None: not a Redis broker
                gauge = GaugeMetricFamily("distributor_queue_depth", "Tasks waiting in each queue", labels=["queue"])
                for queue, depth in depths.items():
                    gauge.add_metric([queue], depth)
                yield gauge


def _counter_families(snapshot: counters.Snapshot) -> Iterator[Metric]:
    outcomes = CounterMetricFamily(
        "distributor_delivery_outcomes",
        "Delivery attempts by channel and outcome (posted, failed, unknown, retried, deferred, cancelled)",
        labels=["channel", "outcome"],
    )
    for (channel, outcome), count in sorted(snapshot.deliveries.items()):
        outcomes.add_metric([channel, outcome], count)
    yield outcomes
    latency = HistogramMetricFamily(
        "distributor_publish_to_posted_seconds",
        "Seconds from an article's publication (or intake) to the platform's confirmation of its post",
        labels=["channel"],
    )
    for channel, histogram in snapshot.latency.items():
        buckets = [(bound if bound == "+Inf" else str(float(bound)), n) for bound, n in histogram.buckets]
        latency.add_metric([channel], buckets, histogram.sum)
    yield latency
    polls = CounterMetricFamily(
        "distributor_source_polls",
        "Source polls by outcome (new, updated, unchanged, error)",
        labels=["source", "outcome"],
    )
    for (source, outcome), count in sorted(snapshot.polls.items()):
        polls.add_metric([source, outcome], count)
    yield polls
    shares = CounterMetricFamily(
        "distributor_reader_shares",
        "Readers' shares counted, by network, for the whole installation",
        labels=["network"],
    )
    for network, count in sorted(snapshot.shares.items()):
        shares.add_metric([network], count)
    yield shares


COUNTERS = CountersCollector()
REGISTRY.register(COUNTERS)
