"""Installation-wide counters for /metrics, kept in Redis.

The worker that posts an article and the web process that answers Prometheus are different
processes (often on different machines), so a per-process prometheus-client counter in the worker
would never reach /metrics. Instead, whoever does the work adds to a Redis hash (one HINCRBY,
pipelined with, or inside the script of, the write it counts) and `distributor.metrics` reads the
hashes at scrape time. Every web process then reports the same figures: aggregate them with max(),
not sum().

Fields are '<name>|<label>' ('telegram|posted', 'portal|new'); the latency histogram keeps one
field per bucket ('telegram|60'), plus '<channel>|sum' and '<channel>|count'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import redis

from distributor.keys import Keys

DELIVERIES, LATENCY, POLLS, SHARES = "deliveries", "latency", "polls", "shares"
# Seconds from publication to the platform's confirmation: a poll interval, a pace, an approval.
LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
# How a delivery attempt ended: `retried` a transient error (an attempt spent), `deferred` waiting
# for the channel's own state (pace, circuit breaker, paused credentials; no attempt spent).
OUTCOMES = ("posted", "failed", "unknown", "retried", "deferred", "cancelled")
POLL_OUTCOMES = ("new", "updated", "unchanged", "error")  # see `distributor.pipeline.poll_outcome`
INTAKE_GRACE = 86400.0  # a published time older than this before intake is a backfill or a bare date


def field_name(name: str, label: str) -> str:
    return f"{name}|{label}"


def bucket(seconds: float) -> str:
    """The histogram bucket (its upper bound) that `seconds` falls into."""
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return _bound(bound)
    return "+Inf"


def _bound(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def latency(published: float, intake: float, confirmed: float) -> float:
    """Seconds from the article's publication to the platform's confirmation. A published time
    that is far older than the article's intake (a backfill, a date without a time) or in the
    future (a skewed clock) says nothing about our speed: the intake time is used instead."""
    start = published if intake - INTAKE_GRACE <= published <= confirmed else intake
    return max(0.0, confirmed - start)


def observe_latency(client: redis.Redis, keys: Keys, channel: str, seconds: float) -> None:
    with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(keys.counters(LATENCY), field_name(channel, bucket(seconds)), 1)
        pipe.hincrby(keys.counters(LATENCY), field_name(channel, "count"), 1)
        pipe.hincrbyfloat(keys.counters(LATENCY), field_name(channel, "sum"), round(seconds, 3))
        pipe.execute()


def count_poll(client: redis.Redis, keys: Keys, source: str, outcome: str) -> None:
    client.hincrby(keys.counters(POLLS), field_name(source, outcome), 1)


@dataclass
class Histogram:
    buckets: list[tuple[str, int]]  # cumulative, ending with '+Inf'
    count: int
    sum: float


@dataclass
class Snapshot:
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, outcome) -> n
    polls: dict[tuple[str, str], int] = field(default_factory=dict)  # (source, outcome) -> n
    shares: dict[str, int] = field(default_factory=dict)  # network -> n
    latency: dict[str, Histogram] = field(default_factory=dict)  # channel -> histogram


def _pairs(raw: dict[str, str]) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for name, value in raw.items():
        first, sep, second = name.rpartition("|")
        if sep:
            found[(first, second)] = int(float(value))
    return found


def _histograms(raw: dict[str, str]) -> dict[str, Histogram]:
    per_channel: dict[str, dict[str, float]] = {}
    for name, value in raw.items():
        channel, sep, part = name.rpartition("|")
        if sep:
            per_channel.setdefault(channel, {})[part] = float(value)
    histograms = {}
    for channel, parts in sorted(per_channel.items()):
        running, buckets = 0, []
        for bound in [*map(_bound, LATENCY_BUCKETS), "+Inf"]:
            running += int(parts.get(bound, 0))
            buckets.append((bound, running))
        sum_ = parts.get("sum", 0.0)
        histograms[channel] = Histogram(buckets, int(parts.get("count", running)), sum_ if math.isfinite(sum_) else 0.0)
    return histograms


def read(client: redis.Redis, keys: Keys) -> Snapshot:
    """Every counter, in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for family in (DELIVERIES, POLLS, SHARES, LATENCY):
            pipe.hgetall(keys.counters(family))
        deliveries, polls, shares, latencies = pipe.execute()
    return Snapshot(
        deliveries=_pairs(deliveries),
        polls=_pairs(polls),
        shares={network: int(value) for network, value in shares.items()},
        latency=_histograms(latencies),
    )
