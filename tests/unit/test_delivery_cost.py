"""What a delivery costs: its template is compiled once (an edited template file still applies at
once), and a post talks to Redis in three round trips (the claim with the article read, the
admission gate, then the outcome with the in-flight slot's release), with the ledger's rules
unchanged. Throughput figures are in bench/bench_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from distributor import counters, delivery, pipeline
from distributor.channels import base
from distributor.context import Context
from distributor.errors import ChannelError
from distributor.models import Article
from distributor.normalize import Draft
from tests.unit.test_delivery import Scripted, make_ctx, registry  # noqa: F401 (the fixture)


def stored_article(ctx: Context, url: str = "https://portal.example.gov.vn/a") -> Article:
    draft = Draft(url=url, title="Tin tức", summary="Tóm tắt", published=datetime.now(UTC).isoformat())
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    ctx.ledger.create(article.id, "social")
    return article


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every request written to Redis meanwhile (a pipeline or a script call is one), by any client."""
    sent: list[bytes] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counted(self: redis.connection.AbstractConnection, command: object, check_health: bool = True) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else command)  # type: ignore[arg-type]
        real(self, command, check_health)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
        yield sent


def test_template_is_compiled_once_and_an_edited_file_applies_at_once(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    template = tmp_path / "post.j2"
    template.write_text("Mới: {{ title }}", encoding="utf-8")
    ctx = make_ctx(make_settings, template=str(template))
    article = stored_article(ctx)
    channel = ctx.channel("social")
    base.compiled.cache_clear()
    assert channel.render(article).text == "Mới: Tin tức"
    assert channel.render(article).text == "Mới: Tin tức"
    assert base.compiled.cache_info().misses == 1  # the second render reused the compiled template
    template.write_text("Đã sửa: {{ title }}", encoding="utf-8")  # the operator edits the file
    assert channel.render(article).text == "Đã sửa: Tin tức"


def test_html_and_text_channels_do_not_share_a_compiled_template() -> None:
    text = base.compiled("{{ title }}", False).render(title="<b>")
    html = base.compiled("{{ title }}", True).render(title="<b>")
    assert (text, html) == ("<b>", "&lt;b&gt;")


def test_an_article_gone_claims_nothing_until_the_ledger_decides(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    article = stored_article(ctx)
    ctx.redis.delete(ctx.keys.article(article.id))  # gone without an unpublish (e.g. an operator's hand)
    result = delivery.deliver(ctx, article.id, "social")
    assert (result.state, result.detail) == ("failed", "article gone")
    record = ctx.ledger.get(article.id, "social")
    assert record and record.state == "failed" and "no longer exists" in record.error
    assert Scripted.sent == []


def test_retry_backoff_sets_the_first_wait_without_retry_after(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        channels=[{"name": "social", "type": "scripted"}], sources=[], worker={"retry_backoff": "2s"}
    )
    ctx = Context.create(settings)
    article = stored_article(ctx)
    Scripted.answers = [ChannelError("HTTP 503", status=503), ChannelError("HTTP 503", status=503)]
    first = delivery.deliver(ctx, article.id, "social")
    second = delivery.deliver(ctx, article.id, "social")
    assert first.state == second.state == "retry"
    assert 1.6 <= first.retry_in <= 2.4 and 3.2 <= second.retry_in <= 4.8  # doubling, with jitter


def test_a_post_costs_three_round_trips_and_keeps_its_record_history_and_metrics(make_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    article = stored_article(ctx)
    ctx.admission  # noqa: B018 (its scripts registered before counting)
    with round_trips(monkeypatch) as sent:
        result = delivery.deliver(ctx, article.id, "social")
    assert result.state == "sent"
    # The claim with the article read, the admission gate, then the outcome with the slot's release
    # (history and /metrics counters inside the outcome's script).
    assert len(sent) == 3, [s[:60] for s in sent]
    record = ctx.ledger.get(article.id, "social")
    assert record and (record.state, record.attempts, record.post_id) == ("sent", 1, "p1")
    assert [entry["event"] for entry in ctx.ledger.history(article.id, "social")] == ["posted"]
    assert ctx.admission.health("social").in_flight == 0  # the slot was given back
    snapshot = counters.read(ctx.redis, ctx.keys)
    assert snapshot.deliveries[("social", "posted")] == 1
    assert snapshot.latency["social"].count == 1


def test_a_redis_that_forgot_the_scripts_still_posts_once(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings)
    article = stored_article(ctx)
    ctx.redis.script_flush()  # a restarted Redis knows no script
    assert delivery.deliver(ctx, article.id, "social").state == "sent"
    assert delivery.deliver(ctx, article.id, "social").state == "skipped"
    assert Scripted.sent == [f"{article.id}:social"]
    assert ctx.admission.health("social").in_flight == 0
    assert counters.read(ctx.redis, ctx.keys).deliveries[("social", "posted")] == 1


def test_waiting_for_a_slot_gives_the_attempt_back(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = make_ctx(make_settings, max_in_flight=1)
    article = stored_article(ctx)
    ctx.admission.enter(ctx.settings.channel("social"), "someone-else:social")  # the one slot is taken
    result = delivery.deliver(ctx, article.id, "social")
    assert result.state == "retry" and "in-flight slot" in result.detail
    record = ctx.ledger.get(article.id, "social")
    assert record and (record.state, record.attempts) == ("pending", 0)
    assert counters.read(ctx.redis, ctx.keys).deliveries[("social", "deferred")] == 1
