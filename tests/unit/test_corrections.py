"""Corrections and retractions reach the posts: one edit per burst, exactly once under crashes, and a
retraction that deletes what it can and says why for the rest. Against the outbox file and the
webhook fake on loopback, with a real Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from distributor import corrections, pipeline
from distributor.context import Context
from distributor.inline import InlineDispatcher
from distributor.models import Article
from distributor.normalize import Draft
from distributor.web.app import create_app
from tests.fakes.webhook import SIGNING_SECRET, WebhookFake


class Recorder(InlineDispatcher):
    """Does feed work inline but only records the edits and deletions it is asked to dispatch, so a
    test decides when each task runs."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.edits: list[tuple[str, str, float]] = []
        self.deletes: list[tuple[str, str]] = []

    def rebuild(self, feeds: Iterable[str]) -> None:
        pass

    def edit(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.edits.append((article_id, channel, countdown))

    def delete(self, article_id: str, channel: str, countdown: float = 0) -> None:
        self.deletes.append((article_id, channel))


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookFake]:
    with WebhookFake() as started:
        yield started


@pytest.fixture
def fake(hook: WebhookFake) -> WebhookFake:
    hook.reset()
    return hook


def lines(ctx: Context) -> list[dict[str, Any]]:
    path = ctx.data_dir / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def make(make_settings, fake: WebhookFake, *extra: dict[str, Any], **tables: Any) -> Context:  # type: ignore[no-untyped-def]
    channels = [
        {"name": "outbox", "type": "outbox"},
        {"name": "hook", "type": "webhook", "url": fake.url + fake.hook_path, "secret": SIGNING_SECRET},
        *extra,
    ]
    return Context.create(make_settings(channels=channels, sources=tables.pop("sources", []), **tables))


def draft(title: str) -> Draft:
    return Draft(
        url="https://portal.example.gov.vn/tin/quyet-dinh-123",
        title=title,
        summary="Tóm tắt.",
        published=datetime(2026, 3, 2, 8, 0, tzinfo=UTC).isoformat(),
    )


def posted(ctx: Context, title: str = "Quyết định số 123") -> Article:
    """A new article, posted at once to every channel."""
    article = pipeline.to_article(ctx, draft(title), "test")
    change, _ = pipeline.ingest(ctx, article, InlineDispatcher(ctx), announce=True)
    assert change == "new"
    return article


def due_now(ctx: Context, article_id: str, channel: str) -> None:
    """The debounce has passed (instead of waiting for it)."""
    ctx.redis.hset(ctx.keys.delivery(article_id, channel), "edit_due", 1)


def update(ctx: Context, dispatch: InlineDispatcher, title: str) -> str:
    change, _ = pipeline.ingest(ctx, pipeline.to_article(ctx, draft(title), "test"), dispatch, announce=True)
    return change


def test_a_burst_of_three_updates_is_one_edit_of_each_post(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    ctx = make(make_settings, fake)
    article = posted(ctx)
    dispatch = Recorder(ctx)
    for title in ("Quyết định số 124", "Quyết định số 125", "Quyết định số 126"):
        assert update(ctx, dispatch, title) == "updated"
    # One edit task per channel, the debounce later; the later updates only raised the version.
    assert sorted((c, d) for _, c, d in dispatch.edits) == [("hook", 60.0), ("outbox", 60.0)]
    record = ctx.ledger.get(article.id, "outbox")
    assert record and record.edit_pending and record.edit_version == 3
    assert corrections.edit(ctx, article.id, "outbox").state == "retry"  # not before the debounce
    for name in ("outbox", "hook"):
        due_now(ctx, article.id, name)
        assert corrections.edit(ctx, article.id, name).state == "done"
        assert corrections.edit(ctx, article.id, name).state == "skipped"  # a duplicate task: nothing
    edits = [line for line in lines(ctx) if line.get("event") == "edit"]
    assert [(e["key"], e["title"]) for e in edits] == [(f"{article.id}:outbox", "Quyết định số 126")]
    assert len([line for line in lines(ctx) if "event" not in line]) == 1  # never posted again
    [event] = fake.events("article.updated")
    assert event["article"]["title"] == "Quyết định số 126" and event["delivery"] == f"{article.id}:hook"
    assert [p["body"]["event"] for p in fake.posts] == ["article.published", "article.updated"]
    history = [h["event"] for h in ctx.ledger.history(article.id, "outbox")]
    assert history == ["posted", "edited"]
    # The same text again is no change for any channel: nothing is scheduled.
    assert update(ctx, dispatch, "Quyết định số 126") == "unchanged"
    assert len(dispatch.edits) == 2


def test_an_edit_whose_worker_crashed_is_redone_once_never_reposted(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    ctx = make(make_settings, fake)
    article = posted(ctx)
    update(ctx, Recorder(ctx), "Quyết định số 123 (đính chính)")
    due_now(ctx, article.id, "outbox")
    # A worker claims the edit, writes it to the platform, and dies before recording it.
    crashed = ctx.ledger.claim_op(article.id, "outbox", "edit", lease=0)
    assert crashed.status == "go"
    channel = ctx.channel("outbox")
    record = ctx.ledger.get(article.id, "outbox")
    assert record is not None
    channel.edit(channel.render(ctx.store.get(article.id)), record.posts[-1], record.key)  # type: ignore[arg-type]
    # Its lease has expired: the next task takes the edit over and applies the version again.
    assert corrections.edit(ctx, article.id, "outbox").state == "done"
    assert corrections.edit(ctx, article.id, "outbox").state == "skipped"
    assert ctx.ledger.claim_op(article.id, "outbox", "edit", lease=300).status == "done"
    outbox = lines(ctx)
    assert [line.get("event", "post") for line in outbox] == ["post", "edit"]  # one version, no second post
    assert outbox[-1]["title"] == "Quyết định số 123 (đính chính)"
    # The dead worker's late answer cannot overwrite what the new one recorded.
    assert ctx.ledger.edited(article.id, "outbox", crashed, 0, event="edited") == "lost"
    assert [h["event"] for h in ctx.ledger.history(article.id, "outbox")] == ["posted", "edited"]


def test_transient_edit_error_retries_and_permanent_one_is_recorded(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.server import Reply

    ctx = make(make_settings, fake)
    article = posted(ctx)
    update(ctx, Recorder(ctx), "Bản sửa 1")
    due_now(ctx, article.id, "hook")
    fake.then(Reply(503, {"error": "receiver busy"}))
    result = corrections.edit(ctx, article.id, "hook")
    assert result.state == "retry" and result.retry_in > 0
    record = ctx.ledger.get(article.id, "hook")
    assert record and record.edit_pending and "HTTP 503" in record.edit_error
    due_now(ctx, article.id, "hook")
    fake.then(Reply(422, {"error": "text refused"}))
    assert corrections.edit(ctx, article.id, "hook").state == "failed"
    record = ctx.ledger.get(article.id, "hook")
    assert record and not record.edit_pending and "text refused" in record.edit_error
    assert ctx.ledger.history(article.id, "hook")[-1]["event"] == "edit failed"
    assert fake.events("article.updated") == []


def test_a_channel_that_cannot_edit_records_why_and_reposts_only_when_asked(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    mail = {"type": "email", "host": "127.0.0.1", "sender": "tin@example.gov.vn", "recipients": ["a@example.org"]}
    ctx = make(
        make_settings,
        fake,
        {"name": "mail", **mail},
        {"name": "copy", "type": "outbox", "path": "", "on_edit": "repost"},
        {"name": "quiet", "type": "outbox", "on_edit": "ignore"},
    )
    article = pipeline.to_article(ctx, draft("Tin gốc"), "test")
    ctx.store.upsert(article)
    ctx.store.publish(article)
    for name in ("mail", "copy", "quiet"):  # as if posted: e-mail cannot be reached here
        ctx.ledger.create(article.id, name)
        ctx.ledger.claim(article.id, name, 300)
        post = ctx.channel(name).render(article)
        ctx.ledger.sent(article.id, name, f"{name}-1", None, post_hash=corrections.post_hash(post))
    dispatch = Recorder(ctx)
    update(ctx, dispatch, "Tin đã sửa")
    assert {c for _, c, _ in dispatch.edits} == {"copy"}
    mail_history = ctx.ledger.history(article.id, "mail")
    assert mail_history[-1]["event"] == "edit skipped"
    assert ctx.channel("mail").cannot_edit in str(mail_history[-1]["note"])
    update(ctx, dispatch, "Tin đã sửa")  # the same render again: recorded once
    assert len(ctx.ledger.history(article.id, "mail")) == 2
    assert ctx.ledger.history(article.id, "quiet") == [ctx.ledger.history(article.id, "quiet")[0]]
    due_now(ctx, article.id, "copy")
    assert corrections.edit(ctx, article.id, "copy").state == "done"
    reposts = [line for line in lines(ctx) if line.get("channel") == "copy"]
    assert [r["title"] for r in reposts] == ["Tin đã sửa"] and reposts[0]["key"] == f"{article.id}:copy:v1"
    record = ctx.ledger.get(article.id, "copy")
    assert record and [p.post_id for p in record.posts] == ["copy-1", f"{article.id}:copy:v1"]
    assert ctx.ledger.history(article.id, "copy")[-1]["event"] == "reposted"


def test_a_repost_is_a_new_post_that_waits_for_the_channels_spacing_and_circuit(
    make_settings, fake: WebhookFake
) -> None:  # type: ignore[no-untyped-def]
    """`on_edit = "repost"` makes a second post: `min_interval` and an open or paused circuit hold it
    as they hold a first post, without spending its attempts."""
    ctx = make(make_settings, fake, {"name": "copy", "type": "outbox", "path": "", "on_edit": "repost",
                                      "min_interval": "1h"})  # fmt: skip
    article = posted(ctx)  # the first post took the channel's slot: the next may go in an hour
    update(ctx, Recorder(ctx), "Quyết định số 124 (đính chính)")
    due_now(ctx, article.id, "copy")
    waited = corrections.edit(ctx, article.id, "copy")
    assert waited.state == "retry" and waited.retry_in > 0 and waited.detail.startswith("spaced: posting at")
    assert ctx.ledger.op_attempts(article.id, "copy") == 0  # waiting is not a failed attempt
    record = ctx.ledger.get(article.id, "copy")
    assert record is not None and len(record.posts) == 1 and record.edit_error.startswith("spaced:")
    assert [line["title"] for line in lines(ctx) if line.get("channel") == "copy"] == ["Quyết định số 123"]

    ctx.admission.now = lambda: time.time() + 3601  # the hour has passed ...
    ctx.admission.pause("copy", "token revoked")  # ... but an operator paused the channel
    due_now(ctx, article.id, "copy")
    paused = corrections.edit(ctx, article.id, "copy")
    assert paused.state == "retry" and "paused" in paused.detail
    ctx.admission.resume("copy")
    due_now(ctx, article.id, "copy")
    assert corrections.edit(ctx, article.id, "copy").state == "done"
    titles = [line["title"] for line in lines(ctx) if line.get("channel") == "copy"]
    assert titles == ["Quyết định số 123", "Quyết định số 124 (đính chính)"]


def test_retraction_deletes_what_it_can_and_reports_the_rest(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    mail = {"type": "email", "host": "127.0.0.1", "sender": "tin@example.gov.vn", "recipients": ["a@example.org"]}
    ctx = make(
        make_settings, fake, {"name": "mail", **mail}, {"name": "later", "type": "outbox", "path": "later.jsonl"}
    )
    article = pipeline.to_article(ctx, draft("Quyết định bị thu hồi"), "test")
    pipeline.ingest(ctx, article, InlineDispatcher(ctx, deliver=False), announce=True)
    for name in ("outbox", "hook"):
        from distributor import delivery

        assert delivery.deliver(ctx, article.id, name).state == "sent"
    ctx.ledger.claim(article.id, "mail", 300)
    ctx.ledger.sent(article.id, "mail", "<m1@example.gov.vn>", None)  # "later" stays pending
    assert ctx.store.feed_articles("all", 10)

    report = corrections.retract(ctx, article.id, InlineDispatcher(ctx), reason="sai số liệu")
    outcomes = {o.channel: (o.outcome, o.detail) for o in report}
    assert outcomes == {
        "outbox": ("deleted", ""),
        "hook": ("deleted", ""),
        "mail": ("not_deleted", ctx.channel("mail").cannot_delete),
        "later": ("cancelled", ""),
    }
    assert [line.get("event", "post") for line in lines(ctx)] == ["post", "delete"]
    [gone] = fake.events("article.retracted")
    assert gone["delivery"] == f"{article.id}:hook"
    states = {d.channel: d.state for d in ctx.ledger.for_article(article.id, ["outbox", "hook", "mail", "later"])}
    assert states == {"outbox": "deleted", "hook": "deleted", "mail": "retracted", "later": "cancelled"}
    assert ctx.ledger.history(article.id, "outbox")[-1]["event"] == "deleted"
    assert ctx.store.feed_articles("all", 10) == [] and ctx.store.get(article.id) is None
    # Retried deletions are harmless; the source listing it again does not bring it back.
    again = corrections.retract(ctx, article.id, InlineDispatcher(ctx))
    assert {o.channel: o.outcome for o in again}["outbox"] == "deleted"
    assert len(lines(ctx)) == 2
    assert pipeline.ingest(ctx, article, InlineDispatcher(ctx), announce=True)[0] == "unchanged"
    assert ctx.store.get(article.id) is None


def test_a_platform_refusing_the_deletion_is_reported_with_its_message(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.server import Reply

    ctx = make(make_settings, fake)
    article = posted(ctx)
    fake.then(Reply(403, {"error": "retractions are handled by the newsroom"}))
    report = corrections.retract(ctx, article.id, InlineDispatcher(ctx), channel="hook")
    [outcome] = report
    assert outcome.outcome == "not_deleted" and "retractions are handled by the newsroom" in outcome.detail
    assert ctx.store.get(article.id) is not None  # one channel only: the feeds keep the article


def test_retract_on_remove_needs_two_polls(make_settings, fake: WebhookFake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "articles"
    folder.mkdir()
    source = {"name": "files", "type": "directory", "path": str(folder), "retract_on_remove": True}
    ctx = make(make_settings, fake, sources=[{**source, "announce_existing": True}])
    page = folder / "quyet-dinh.md"
    page.write_text('---\ntitle: "Quyết định"\nurl: "https://portal.example.gov.vn/qd"\n---\nNội dung.\n', "utf-8")
    dispatch = InlineDispatcher(ctx)
    assert len(pipeline.poll_source(ctx, "files", dispatch).new) == 1
    assert [line.get("event", "post") for line in lines(ctx)] == ["post"]
    page.unlink()
    first = pipeline.poll_source(ctx, "files", dispatch)
    assert len(first.removed) == 1 and first.retracted == []  # gone from the feeds, posts still up
    assert [line.get("event", "post") for line in lines(ctx)] == ["post"]
    second = pipeline.poll_source(ctx, "files", dispatch)
    assert second.retracted == first.removed
    assert [line.get("event", "post") for line in lines(ctx)] == ["post", "delete"]
    assert [e["delivery"] for e in fake.events("article.retracted")] == [f"{first.removed[0]}:hook"]


def test_retract_on_remove_forgets_an_article_that_came_back(make_settings, fake: WebhookFake, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "articles"
    folder.mkdir()
    source = {"name": "files", "type": "directory", "path": str(folder), "retract_on_remove": True}
    ctx = make(make_settings, fake, sources=[{**source, "announce_existing": True}])
    page = folder / "quyet-dinh.md"
    body = '---\ntitle: "Quyết định"\nurl: "https://portal.example.gov.vn/qd"\n---\nNội dung.\n'
    page.write_text(body, "utf-8")
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)
    page.unlink()
    pipeline.poll_source(ctx, "files", dispatch)  # missing once (a file caught mid-save, say)
    page.write_text(body, "utf-8")
    pipeline.poll_source(ctx, "files", dispatch)
    page.unlink()
    assert pipeline.poll_source(ctx, "files", dispatch).retracted == []  # missing once again, not twice
    assert [line.get("event", "post") for line in lines(ctx)] == ["post"]


def test_api_retract_answers_the_report_and_history_shows_for_operators(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    ctx = make(make_settings, fake)
    article = posted(ctx)
    queued: list[tuple[str, list[Any]]] = []
    app = create_app(ctx, enqueue=lambda task, args: queued.append((task, args)))
    with TestClient(app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 50000)) as client:
        shown = client.get(f"/api/articles/{article.id}").json()
        [entry] = shown["deliveries"]["outbox"]["history"]
        assert entry["event"] == "posted" and entry["post_id"] == f"{article.id}:outbox"
        refused = client.post(f"/api/articles/{article.id}/retract", json={"channel": "nope"})
        assert refused.status_code == 404 and "nope" in refused.json()["error"]["message"]
        answer = client.post(f"/api/articles/{article.id}/retract", json={"reason": "nhầm"})
        assert answer.status_code == 200
        body = answer.json()
        assert {c["channel"]: c["outcome"] for c in body["channels"]} == {"outbox": "deleted", "hook": "deleted"}
    assert [task for task, _ in queued] == ["worker.tasks.rebuild_feeds"]  # feeds: the worker's job


def test_retract_on_remove_is_confirmed_by_an_unchanged_listing(make_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A directory source answers 'not modified' when its files did not change since the poll that
    missed the article: that second, unchanged listing confirms the removal too."""
    folder = tmp_path / "files"
    folder.mkdir()
    settings = make_settings(
        sources=[{"name": "files", "type": "directory", "path": str(folder), "retract_on_remove": True}]
    )
    ctx = Context.create(settings)
    dispatch = InlineDispatcher(ctx)
    pipeline.poll_source(ctx, "files", dispatch)  # the first poll: nothing there yet
    (folder / "a.md").write_text('---\ntitle: "Tin A"\n---\nNội dung.\n', encoding="utf-8")
    [article_id] = pipeline.poll_source(ctx, "files", dispatch).new
    assert ctx.ledger.get(article_id, "outbox").state == "sent"
    (folder / "a.md").unlink()
    first = pipeline.poll_source(ctx, "files", dispatch)
    assert first.removed == [article_id] and first.retracted == []
    time.sleep(2.1)  # past the window in which a fresh change is never trusted by its stat
    second = pipeline.poll_source(ctx, "files", dispatch)
    assert second.not_modified and second.retracted == [article_id]
    assert ctx.ledger.get(article_id, "outbox").state == "deleted"


def test_revoked_credentials_hold_a_deletion_until_the_channel_is_resumed(make_settings, fake: WebhookFake) -> None:  # type: ignore[no-untyped-def]
    """An expired or revoked token pauses the channel; its deletion waits, spending no attempt, and
    goes once the operator has fixed the token and resumed the channel."""
    from distributor import operations
    from tests.fakes.facebook import PAGE_ID, PAGE_TOKEN, FakeFacebook

    with FakeFacebook() as graph:
        page = {"name": "fb", "type": "facebook", "page_id": PAGE_ID, "access_token": PAGE_TOKEN, "api_base": graph.url}
        ctx = make(make_settings, fake, page)
        article = posted(ctx)
        [post] = graph.posts
        graph.token = "EAAGanothertoken"  # the Page token was revoked
        dispatch = Recorder(ctx)
        corrections.retract(ctx, article.id, dispatch, channel="fb", reason="sai số liệu")
        held = corrections.delete(ctx, article.id, "fb")
        assert held.state == "retry" and "the channel is paused" in held.detail and "190" in held.detail
        assert ctx.admission.health("fb").breaker == "paused"
        record = ctx.ledger.get(article.id, "fb")
        assert record is not None and record.state == "deleting" and ctx.ledger.op_attempts(article.id, "fb") == 0
        assert not graph.post(post["post_id"]).get("deleted")

        graph.token = PAGE_TOKEN  # the operator put a new token in place and resumed the channel
        operations.resume_channel(ctx, "cli:test", "fb", lambda a, c: None)
        assert corrections.sweep(ctx, dispatch) == 1 and dispatch.deletes[-1] == (article.id, "fb")
        assert corrections.delete(ctx, article.id, "fb").state == "done"
        assert ctx.ledger.get(article.id, "fb").state == "deleted"  # type: ignore[union-attr]
        assert graph.post(post["post_id"]).get("deleted")
