"""Prometheus metrics. Counters are per process; scrape every web process and worker."""

from __future__ import annotations

from prometheus_client import Counter

SHARES = Counter("distributor_shares_total", "Shares counted", ["network"])
PUSHED = Counter("distributor_pushed_articles_total", "Articles accepted by POST /api/articles")
