"""What a delivery costs: its template is compiled once (an edited template file still applies at
once), and it talks to Redis in two round trips (claim with the article read, then the outcome),
with the ledger's rules unchanged. Throughput figures are in bench/bench_delivery.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from distributor import delivery, pipeline
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
