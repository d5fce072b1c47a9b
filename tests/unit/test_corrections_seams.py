"""Where corrections meet the parts written beside them: approval, the API's article view, and the
recovery of Redis from the journal. Real Redis, the outbox and the webhook fake on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_py
from starlette.testclient import TestClient

from distributor import approval, corrections, pipeline, recovery
from distributor.inline import InlineDispatcher
from distributor.ledger import Ledger
from distributor.web.app import create_app
from tests.fakes.webhook import WebhookFake
from tests.unit.test_corrections import Recorder, draft, lines, make, posted
from tests.unit.test_recovery import lose_redis_state


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookFake]:
    with WebhookFake() as started:
        yield started


@pytest.fixture
def fake(hook: WebhookFake) -> WebhookFake:
    hook.reset()
    return hook


def test_retracting_a_rejected_delivery_reports_it_was_never_posted(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    """An editor rejected the post; the article is then withdrawn. The report must not tell the
    operator that a post is still up there ("not deleted"): nothing was ever posted."""
    ctx = make(make_settings, fake, {"name": "held", "type": "outbox", "path": "held.jsonl", "approval": True})
    article = posted(ctx)
    assert ctx.ledger.get(article.id, "held").state == "awaiting_approval"
    [outcome] = approval.decide(ctx, "reject", article.id, "held", reason="sai")
    assert outcome.done
    report = {o.channel: o for o in corrections.retract(ctx, article.id, InlineDispatcher(ctx))}
    assert report["held"].outcome == corrections.NOT_POSTED
    assert "rejected" in report["held"].detail
    assert ctx.ledger.get(article.id, "held").state == "rejected"


def test_retracting_an_article_awaiting_approval_cancels_it_for_good(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    ctx = make(make_settings, fake, {"name": "held", "type": "outbox", "path": "held.jsonl", "approval": True})
    article = posted(ctx)
    report = {o.channel: o.outcome for o in corrections.retract(ctx, article.id, InlineDispatcher(ctx))}
    assert report["held"] == corrections.CANCELLED
    [outcome] = approval.decide(ctx, "approve", article.id, "held", InlineDispatcher(ctx))
    assert not outcome.done
    assert not (ctx.data_dir / "held.jsonl").exists()


def test_operators_still_see_the_history_of_a_retracted_article(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    """A retraction takes the article out of the store; its posts' history (posted, deleted, the
    platforms' refusals) is what the operator needs most then, and only the operator sees it."""
    ctx = make(make_settings, fake)
    article = posted(ctx)
    corrections.retract(ctx, article.id, InlineDispatcher(ctx), reason="sai số liệu")
    app = create_app(ctx, enqueue=lambda task, args: None)
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)) as client:
        answer = client.get(f"/api/articles/{article.id}")
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()
        assert shown["id"] == article.id and shown["stored"] is False and shown["kept_out"] is True
        assert shown["deliveries"]["outbox"]["state"] == "deleted"
        assert [e["event"] for e in shown["deliveries"]["outbox"]["history"]] == ["posted", "deleted"]
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("203.0.113.9", 50000)) as public:
        assert public.get(f"/api/articles/{article.id}").status_code == 404


@pytest.fixture(autouse=True)
def check_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "CHECK_EVERY", 0.0)


def test_a_deletion_under_way_when_redis_lost_its_state_is_still_done(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    """Retracted, the deletion queued, then Redis restarts empty: the journal restores the delivery as
    `deleting`, and the sweep must find it again, or the post stays up while the ledger says it
    is being deleted."""
    ctx = make(make_settings, fake)
    recovery.ensure(ctx)  # the installation's identity, in Redis and in the journal (as a poll does)
    article = posted(ctx)
    corrections.retract(ctx, article.id, Recorder(ctx))  # the delete tasks are lost with Redis
    assert ctx.ledger.get(article.id, "outbox").state == "deleting"
    lose_redis_state(ctx)
    assert recovery.ensure(ctx)
    assert ctx.ledger.get(article.id, "outbox").state == "deleting"
    assert sorted(ctx.ledger.ops_overdue(grace=-1)) == [(article.id, "hook"), (article.id, "outbox")]
    for channel in ("outbox", "hook"):
        assert corrections.delete(ctx, article.id, channel).state == "done"
    assert [line.get("event", "post") for line in lines(ctx)] == ["post", "delete"]
    assert [e["delivery"] for e in fake.events("article.retracted")] == [f"{article.id}:hook"]


def test_an_update_never_reaches_a_rejected_or_awaiting_delivery(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    ctx = make(make_settings, fake, {"name": "held", "type": "outbox", "path": "held.jsonl", "approval": True})
    article = posted(ctx)
    dispatch = Recorder(ctx)
    changed = pipeline.to_article(ctx, draft("Tiêu đề đã sửa"), "test")
    assert pipeline.ingest(ctx, changed, dispatch, announce=True)[0] == "updated"
    assert {c for _, c, _ in dispatch.edits} == {"outbox", "hook"}
    assert ctx.ledger.get(article.id, "held").state == "awaiting_approval"
    assert corrections.edit(ctx, article.id, "held").state == "skipped"
    assert not (ctx.data_dir / "held.jsonl").exists()


class ClaimsMidCancel(redis_py.Redis):
    """A real Redis client after whose first command (whatever the cancelling code sends first) a
    worker claims the delivery: the moment a retraction meets a post about to be sent."""

    def __init__(self, worker: Ledger, article_id: str, channel: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.worker, self.target = worker, (article_id, channel)
        self.claimed = ""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        found = super().execute_command(*args, **options)
        if not self.claimed:
            self.claimed = self.worker.claim(*self.target, lease=300)
        return found


def test_a_retraction_never_marks_cancelled_a_post_being_sent_meanwhile(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    """Either the cancellation wins and no worker may post, or the worker's claim wins and the
    cancellation refuses (the retraction reports it as being sent): never a post going up under a
    ledger saying `cancelled`, out of every later retraction's reach."""
    ctx = make(make_settings, fake)
    article = pipeline.to_article(ctx, draft("Quyết định"), "test")
    pipeline.ingest(ctx, article, InlineDispatcher(ctx, deliver=False), announce=True)
    assert ctx.ledger.get(article.id, "outbox").state == "pending"
    racing = ClaimsMidCancel(ctx.ledger, article.id, "outbox", decode_responses=True, **_where(ctx.redis_url))
    cancelled = Ledger(racing, ctx.keys, ctx.journal).cancel(article.id, "outbox", "retracted")
    state = ctx.ledger.get(article.id, "outbox").state
    if cancelled:
        assert racing.claimed == "done" and state == "cancelled"
    else:
        assert racing.claimed == "go" and state == "sending"
        assert ctx.ledger.sent(article.id, "outbox", "p1", None)  # on record: a retraction can delete it


def _where(url: str) -> dict[str, Any]:
    kwargs = redis_py.connection.parse_url(url)
    return {k: v for k, v in kwargs.items() if k in ("host", "port", "db", "password", "username")}
