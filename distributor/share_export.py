"""Share counts as a report, as CSV or JSON: every article shared in a period, most shared first,
then the period's other articles (published in it, or whose posts were clicked in it) that readers
did not share, newest first, so the weekly report also shows the week's articles nobody shared.

Beside readers' shares, each row has what our own posts achieved: clicks on their links (`track_clicks`)
and the engagement the platforms report, in all and per configured channel (all-time, like `total`).

Rows are read a page at a time (articles and counts in batches), so an export of a large archive
neither loads it whole nor holds Redis for long.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from distributor import clicks, engagement
from distributor.context import Context
from distributor.settings import SHARE_NETWORKS
from distributor.shares import PERIODS

PAGE = 500
FIELDS = ["id", "url", "title", "published", "period_shares", "total", "unique", *SHARE_NETWORKS]


def fields(ctx: Context) -> list[str]:
    """The columns: the shares, then clicks and engagement in all and per configured channel."""
    names = [c.name for c in ctx.settings.channels]
    return [*FIELDS, "clicks", *(f"clicks:{n}" for n in names), "engagement", *(f"engagement:{n}" for n in names)]


@dataclass(frozen=True)
class Plan:
    """Which articles an export lists, in order (ids and period counts only: the rows are read a page
    at a time): those shared in the period, most shared first, then the others."""

    shared: list[tuple[str, int]]
    others: list[str]

    def __len__(self) -> int:
        return len(self.shared) + len(self.others)


def plan(ctx: Context, period: str) -> Plan:
    """The export's articles, looked up once (ValueError for an unknown period)."""
    shared = list(ctx.shares.ranked(period, PAGE)[1])
    return Plan(shared, _unshared(ctx, period, {article_id for article_id, _ in shared}))


def rows(ctx: Context, period: str, planned: Plan | None = None) -> Iterator[dict[str, Any]]:
    """One dict per article: its shares in the period, then all-time figures."""
    planned = plan(ctx, period) if planned is None else planned
    listed = [*planned.shared, *((article_id, 0) for article_id in planned.others)]
    for start in range(0, len(listed), PAGE):
        yield from _page(ctx, listed[start : start + PAGE])


def _unshared(ctx: Context, period: str, shared: set[str]) -> list[str]:
    """The period's articles readers did not share: published in it (newest first), then older ones
    whose posts were clicked in it."""
    if period == "all":
        since = float("-inf")
    else:
        first_day = ctx.shares.now() - timedelta(days=PERIODS[period] - 1)
        since = first_day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    found = [a for a in ctx.store.ids_published_since(since) if a not in shared]
    listed = shared | set(found)
    clicked = [a for a, _ in clicks.top_clicks(ctx, period, limit=1_000_000) if a not in listed]
    return found + clicked


def _page(ctx: Context, page: list[tuple[str, int]]) -> Iterator[dict[str, Any]]:
    articles = {a.id: a for a in ctx.store.get_many([article_id for article_id, _ in page])}
    for article_id, shares in page:
        article = articles.get(article_id)
        summary = ctx.shares.summary(article_id)
        networks: dict[str, int] = summary["networks"]  # type: ignore[assignment]
        yield {
            "id": article_id,
            "url": article.url if article else None,
            "title": article.title if article else None,
            "published": article.published.isoformat() if article else None,
            "period_shares": shares,
            "total": summary["total"],
            "unique": summary["unique"],
            **{network: networks.get(network, 0) for network in SHARE_NETWORKS},
            **_achieved(ctx, article_id),
        }


def _achieved(ctx: Context, article_id: str) -> dict[str, int]:
    """Clicks on our posts and the platforms' engagement (every metric added up), in all and per channel."""
    clicked = clicks.clicks(ctx, article_id)
    engaged = {channel: sum(metrics.values()) for channel, metrics in engagement.engagement(ctx, article_id).items()}
    names = [c.name for c in ctx.settings.channels]
    return {
        "clicks": sum(clicked.values()),
        **{f"clicks:{n}": clicked.get(n, 0) for n in names},
        "engagement": sum(engaged.values()),
        **{f"engagement:{n}": engaged.get(n, 0) for n in names},
    }


def write(
    out: IO[str],
    fmt: str,
    period: str,
    items: Iterator[dict[str, Any]],
    tick: Callable[[], None],
    columns: list[str] = FIELDS,
) -> None:
    """Write the rows as `fmt` (csv: one line per article, `columns` (see `fields`); json: an object)."""
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for item in items:
            writer.writerow(item)
            tick()
        return
    out.write(f'{{"period": {json.dumps(period)}, "articles": [')
    for n, item in enumerate(items):
        out.write(("," if n else "") + "\n" + json.dumps(item, ensure_ascii=False))
        tick()
    out.write("\n]}\n")
