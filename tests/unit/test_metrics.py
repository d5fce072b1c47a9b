"""/metrics figures computed through the same code paths the worker runs (deliveries, polls, shares
into Redis; the web process reads them), the latency rule, and what a RabbitMQ broker leaves out.
The real-worker version of this is tests/integration/test_metrics_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from distributor import counters, delivery, pipeline
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.inline import InlineDispatcher
from distributor.normalize import Draft
from distributor.web.app import create_app
from tests.unit.test_delivery import Scripted, registry  # noqa: F401 (the fixture registers "scripted")
from tests.unit.test_web import BROWSER, OPERATOR, TOKEN


def scrape(ctx: Context) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with TestClient(create_app(ctx, enqueue=lambda task, args: None)) as client:
        text = client.get("/metrics", headers=OPERATOR).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def stored(ctx: Context, path: str, published: datetime | None = None) -> str:
    when = (published or datetime.now(UTC)).isoformat()
    article = pipeline.to_article(
        ctx, Draft(url=f"https://portal.example.gov.vn/{path}", title=path, published=when), "t"
    )
    ctx.store.upsert(article)
    ctx.ledger.create(article.id, "social")
    return article.id


def test_outcomes_latency_and_shares_as_the_worker_records_them(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(
        make_settings(channels=[{"name": "social", "type": "scripted"}], sources=[], server={"api_tokens": [TOKEN]})
    )
    first, second, third = stored(ctx, "a"), stored(ctx, "b"), stored(ctx, "c")
    Scripted.answers = [ChannelError("HTTP 503", status=503), None, ChannelError("Unauthorized", permanent=True)]
    assert delivery.deliver(ctx, first, "social").state == "retry"
    assert delivery.deliver(ctx, first, "social").state == "sent"
    assert delivery.deliver(ctx, second, "social").state == "failed"
    assert ctx.ledger.cancel(third, "social", "not wanted")
    assert ctx.shares.record(first, "zalo", "203.0.113.1", BROWSER)
    assert not ctx.shares.record(first, "zalo", "203.0.113.1", BROWSER)  # a repeat: not counted
    found = scrape(ctx)
    outcome = "distributor_delivery_outcomes_total"
    assert found[(outcome, (("channel", "social"), ("outcome", "retried")))] == 1
    assert found[(outcome, (("channel", "social"), ("outcome", "posted")))] == 1
    assert found[(outcome, (("channel", "social"), ("outcome", "failed")))] == 1
    assert found[(outcome, (("channel", "social"), ("outcome", "cancelled")))] == 1
    assert found[("distributor_publish_to_posted_seconds_count", (("channel", "social"),))] == 1
    assert found[("distributor_publish_to_posted_seconds_bucket", (("channel", "social"), ("le", "+Inf")))] == 1
    assert found[("distributor_reader_shares_total", (("network", "zalo"),))] == 1
    assert found[("distributor_queue_depth", (("queue", "deliver.social"),))] == 0


def test_poll_outcomes_by_source(make_settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "articles"
    folder.mkdir()
    ctx = Context.create(
        make_settings(
            sources=[{"name": "files", "type": "directory", "path": str(folder)}], server={"api_tokens": [TOKEN]}
        )
    )
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)  # empty: unchanged
    (folder / "a.md").write_text('---\ntitle: "Tin"\n---\nNội dung.\n', encoding="utf-8")
    pipeline.poll_source(ctx, "files", dispatch)  # new
    pipeline.poll_source(ctx, "files", dispatch)  # unchanged
    folder.rename(tmp_path / "gone")
    pipeline.poll_source(ctx, "files", dispatch)  # error: the folder does not exist
    found = scrape(ctx)
    polls = {labels: value for (name, labels), value in found.items() if name == "distributor_source_polls_total"}
    assert polls == {
        (("outcome", "unchanged"), ("source", "files")): 2,
        (("outcome", "new"), ("source", "files")): 1,
        (("outcome", "error"), ("source", "files")): 1,
    }


def test_a_rabbitmq_broker_has_no_queue_depth_here(make_settings) -> None:  # type: ignore[no-untyped-def]
    rabbit = {"broker_url": "amqp://guest:guest@127.0.0.1:5672//"}
    ctx = Context.create(make_settings(sources=[], worker=rabbit, server={"api_tokens": [TOKEN]}))
    assert not [name for name, _ in scrape(ctx) if name == "distributor_queue_depth"]


def test_latency_counts_from_publication_or_intake() -> None:
    intake = 1_000_000.0
    assert counters.latency(intake - 120, intake, intake + 30) == 150  # published, found 2 min later
    assert counters.latency(intake - 3 * 86400, intake, intake + 30) == 30  # a backfill or a bare date
    assert counters.latency(intake + 600, intake, intake + 30) == 30  # a clock ahead of ours
    assert counters.bucket(0.5) == "1" and counters.bucket(61) == "120" and counters.bucket(10**6) == "+Inf"


def test_the_histogram_is_cumulative(ctx: Context) -> None:
    for seconds in (0.5, 3, 3, 100, 10**6):
        counters.observe_latency(ctx.redis, ctx.keys, "telegram", seconds)
    histogram = counters.read(ctx.redis, ctx.keys).latency["telegram"]
    buckets = dict(histogram.buckets)
    assert (buckets["1"], buckets["5"], buckets["60"], buckets["120"], buckets["+Inf"]) == (1, 3, 3, 4, 5)
    assert histogram.count == 5 and histogram.sum == 0.5 + 3 + 3 + 100 + 10**6
