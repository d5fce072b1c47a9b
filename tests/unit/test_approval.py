"""Approval (issue 10): a channel with `approval = true` holds each new delivery until an operator
approves it (then it is posted once) or rejects it (then nothing ever posts it: no sweep, retry or
later approval); the editors' channel gets one preview; the states survive a Redis loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from distributor import approval, delivery, pipeline, recovery
from distributor.context import Context
from distributor.errors import ConfigError
from distributor.inline import InlineDispatcher
from distributor.normalize import Draft
from distributor.settings import Settings
from tests.fakes.telegram import TOKEN, TelegramFake
from tests.unit.channels.secret_url_cases import fake_fixtures


class Recorder:
    """A dispatcher that only records what would be sent (the sweep's view)."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []
        self.notified: list[tuple[str, list[str]]] = []

    def deliver(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.delivered.append((article_id, channel))

    def notify(self, article_id: str, channels: list[str]) -> None:
        self.notified.append((article_id, channels))


def channels(tmp_path: Path, **social: Any) -> list[dict[str, Any]]:
    """`social` (held for approval), `editors` (only previews: disabled for articles), `open` (never held)."""
    return [
        {"name": "social", "type": "outbox", "path": str(tmp_path / "social.jsonl"), "approval": True, **social},
        {"name": "editors", "type": "outbox", "path": str(tmp_path / "editors.jsonl"), "enabled": False},
        {"name": "open", "type": "outbox", "path": str(tmp_path / "open.jsonl")},
    ]


def lines(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def held(make_settings, tmp_path: Path) -> tuple[Context, str]:  # type: ignore[no-untyped-def]
    """An article just published: posted to `open`, held on `social`, previewed on `editors`."""
    ctx = Context.create(make_settings(sources=[], channels=channels(tmp_path, approval_notify="editors")))
    return ctx, publish(ctx)


def publish(ctx: Context, slug: str = "bai-duyet", dispatch: Any = None) -> str:
    draft = Draft(url=f"https://portal.example.gov.vn/{slug}", title="Bài chờ duyệt", published="2026-05-01T08:00:00Z")
    article = pipeline.to_article(ctx, draft, "test")
    pipeline.ingest(ctx, article, dispatch or InlineDispatcher(ctx), announce=True)
    return article.id


def state(ctx: Context, article_id: str, channel: str = "social") -> str:
    record = ctx.ledger.get(article_id, channel)
    return record.state if record else ""


def test_a_held_delivery_waits_through_sweeps_then_an_approval_posts_it_once(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = held
    assert state(ctx, article_id) == "awaiting_approval"
    assert [line["article_id"] for line in lines(tmp_path, "open")] == [article_id]  # not held: posted
    assert lines(tmp_path, "social") == []
    sweep = Recorder()
    assert ctx.ledger.overdue(grace=-3600) == []
    assert delivery.sweep(ctx, sweep) == 0  # type: ignore[arg-type]
    assert delivery.deliver(ctx, article_id, "social").detail == "done"  # a stray task posts nothing
    assert lines(tmp_path, "social") == []

    dispatch = InlineDispatcher(ctx)
    [outcome] = approval.decide(ctx, "approve", article_id, dispatch=dispatch)
    assert (outcome.channel, outcome.done, outcome.state) == ("social", True, "pending")
    assert [(c, r.state) for _, c, r in dispatch.results] == [("social", "sent")]
    assert [line["article_id"] for line in lines(tmp_path, "social")] == [article_id]
    [again] = approval.decide(ctx, "approve", article_id, dispatch=dispatch)
    assert not again.done and again.message == "refused: not awaiting approval (state sent)"
    assert delivery.sweep(ctx, sweep) == 0  # type: ignore[arg-type]
    assert len(lines(tmp_path, "social")) == 1


def test_a_rejected_delivery_is_never_posted(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = held
    [outcome] = approval.decide(ctx, "reject", article_id, reason="sai số liệu")
    assert (outcome.done, outcome.state) == (True, "rejected")
    record = ctx.ledger.get(article_id, "social")
    assert record is not None and record.state == "rejected" and record.error == "sai số liệu"
    sweep = Recorder()
    assert delivery.sweep(ctx, sweep) == 0 and ctx.ledger.overdue(grace=-3600) == []  # type: ignore[arg-type]
    assert delivery.deliver(ctx, article_id, "social").detail == "done"
    assert not ctx.ledger.requeue(article_id, "social")  # `deliveries retry`
    assert not ctx.ledger.cancel(article_id, "social", "x")  # cancel, then retry, would post it
    dispatch = InlineDispatcher(ctx)
    [late] = approval.decide(ctx, "approve", article_id, dispatch=dispatch)
    assert not late.done and late.message == "refused: it was rejected earlier and will never be posted"
    assert dispatch.results == [] and lines(tmp_path, "social") == []
    assert state(ctx, article_id) == "rejected"


def test_one_channel_at_a_time_and_unknown_articles_or_channels_are_named(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    both = channels(tmp_path)
    both[2]["approval"] = True  # `open` is held too
    ctx = Context.create(make_settings(sources=[], channels=both))
    article_id = publish(ctx)
    assert (state(ctx, article_id, "social"), state(ctx, article_id, "open")) == ("awaiting_approval",) * 2
    [only] = approval.decide(ctx, "reject", article_id, "open")
    assert only.channel == "open" and state(ctx, article_id, "social") == "awaiting_approval"
    outcomes = approval.decide(ctx, "approve", article_id, dispatch=InlineDispatcher(ctx))
    assert {o.channel: o.done for o in outcomes} == {"social": True, "open": False}
    assert len(lines(tmp_path, "social")) == 1 and lines(tmp_path, "open") == []
    with pytest.raises(approval.NothingToDecide, match="no delivery of article 'nope'"):
        approval.decide(ctx, "approve", "nope")
    with pytest.raises(approval.NothingToDecide, match="no channel named 'telegramm'"):
        approval.decide(ctx, "approve", article_id, "telegramm")


def test_a_held_delivery_cancelled_then_retried_waits_for_approval_again(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = held
    pipeline.unpublish(ctx, article_id)
    assert state(ctx, article_id) == "cancelled"
    assert ctx.ledger.requeue(article_id, "social")
    assert state(ctx, article_id) == "awaiting_approval" and ctx.ledger.overdue(grace=-3600) == []


def test_the_editors_get_one_preview_with_the_command_and_the_console(held, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = held
    [preview] = lines(tmp_path, "editors")
    assert preview["channel"] == "editors" and preview["article_id"] == article_id
    text = preview["text"]
    assert "Awaiting approval on social: Bài chờ duyệt" in text
    assert f"distributor approve {article_id}" in text and f"distributor reject {article_id}" in text
    assert "http://127.0.0.1:8000/dashboard" in text
    assert "[social]" in text and "[open]" not in text
    assert ctx.ledger.get(article_id, "editors") is None  # not a delivery of the article
    # A retried task (or a second worker) sends nothing more.
    assert approval.notify(ctx, article_id, ["social"]) == {"editors": "already sent"}
    InlineDispatcher(ctx).notify(article_id, ["social"])
    assert len(lines(tmp_path, "editors")) == 1
    # Ingesting the article again (a duplicate entry) neither holds it twice nor previews again.
    publish(ctx)
    assert len(lines(tmp_path, "editors")) == 1


def test_no_preview_without_approval_notify(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(make_settings(sources=[], channels=channels(tmp_path)))
    recorder = Recorder()
    article_id = publish(ctx, dispatch=recorder)
    assert recorder.delivered == [(article_id, "open")] and recorder.notified == []
    assert state(ctx, article_id) == "awaiting_approval"


def config_problems(make_settings, tmp_path: Path, **social: Any) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        make_settings(sources=[], channels=channels(tmp_path, **social))
    return caught.value.problems


def test_check_refuses_an_approval_notify_that_names_no_other_channel(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    [unknown] = config_problems(make_settings, tmp_path, approval_notify="editor")
    assert "[[channels]] #1 (name 'social') key 'approval_notify' names unknown channel 'editor'" in unknown
    assert "editors" in unknown  # the channels it could have meant
    [itself] = config_problems(make_settings, tmp_path, approval_notify="social")
    assert "key 'approval_notify' names the channel itself" in itself
    [unused] = config_problems(make_settings, tmp_path, approval=False, approval_notify="editors")
    assert "key 'approval_notify' is set but approval is false" in unused
    assert isinstance(make_settings(sources=[], channels=channels(tmp_path, approval_notify="editors")), Settings)


def test_held_and_rejected_deliveries_come_back_as_they_were_after_a_redis_loss(  # type: ignore[no-untyped-def]
    make_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_recovery import lose_redis_state

    monkeypatch.setattr(recovery, "CHECK_EVERY", 0.0)
    ctx = Context.create(make_settings(sources=[], channels=channels(tmp_path)))
    recovery.ensure(ctx)  # the installation's identity, in Redis and in the journal
    waiting, rejected, approved = (publish(ctx, slug) for slug in ("cho", "tu-choi", "duyet"))
    approval.decide(ctx, "reject", rejected)
    approval.decide(ctx, "approve", approved)  # approved, not yet sent (no dispatcher)
    lose_redis_state(ctx)
    assert recovery.ensure(ctx)
    assert [state(ctx, a) for a in (waiting, rejected, approved)] == ["awaiting_approval", "rejected", "pending"]
    assert ctx.ledger.overdue(grace=-3600) == [(approved, "social")]  # only the approved one is due
    assert not ctx.ledger.create(waiting, "social")  # never made again
    [late] = approval.decide(ctx, "approve", rejected)
    assert not late.done
    assert approval.decide(ctx, "approve", waiting)[0].done


server, fake = fake_fixtures(TelegramFake)


def test_a_telegram_editors_group_gets_the_preview_as_written_once(make_settings, tmp_path: Path, fake) -> None:  # type: ignore[no-untyped-def]
    group = {"name": "editors", "type": "telegram", "token": TOKEN, "chat_id": "-1001234567890"}
    config = [channels(tmp_path, approval_notify="editors")[0], {**group, "api_base": fake.url, "enabled": False}]
    ctx = Context.create(make_settings(sources=[], channels=config))
    draft = Draft(url="https://portal.example.gov.vn/gia", title='Giá <vàng> & "USD"', published="2026-05-01T08:00:00Z")
    article = pipeline.to_article(ctx, draft, "test")
    pipeline.ingest(ctx, article, InlineDispatcher(ctx), announce=True)
    pipeline.ingest(ctx, article, InlineDispatcher(ctx), announce=True)  # the same entry again
    [sent] = fake.posts
    assert sent["method"] == "sendMessage" and sent["parse_mode"] == "HTML"
    assert sent["plain"].startswith('Awaiting approval on social: Giá <vàng> & "USD"')  # shown as written
    assert f"distributor approve {article.id}" in sent["plain"]
    assert state(ctx, article.id) == "awaiting_approval" and ctx.ledger.get(article.id, "editors") is None
