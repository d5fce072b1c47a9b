"""`distributor channels` (health), `channels resume`, and the worker's queues (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from distributor import queues
from distributor.cli import _worker_argv, app
from distributor.context import get_context
from distributor.errors import ChannelError
from distributor.settings import load_settings
from tests.unit.test_cli import SEED, config, run  # noqa: F401  (the CLI's config fixture)


def health(path: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    data = json.loads(run("channels", "--json", "--config", str(path)))
    return {entry["name"]: entry for entry in data["channels"]}


def test_channels_lists_each_channels_health_and_resume_closes_a_paused_one(config: Path) -> None:  # noqa: F811
    run("publish", str(SEED), "--config", str(config))
    ctx = get_context(load_settings(config))
    ctx.admission.enter(ctx.settings.channel("x"), "a:x")
    ctx.admission.leave("x", "a:x", ChannelError("x rejected the credentials: Unauthorized", status=401, auth=True))

    channels = health(config)
    assert channels["outbox"]["breaker"] == "closed" and channels["outbox"]["posts_today"] == 1
    assert channels["outbox"]["last_sent"] and channels["outbox"]["in_flight"] == 0
    assert channels["x"]["breaker"] == "paused" and "Unauthorized" in channels["x"]["reason"]
    assert channels["x"]["enabled"] is False and channels["x"]["max_in_flight"] == 2
    table = run("channels", "--config", str(config))
    assert "paused: x rejected the credentials" in table and "outbox" in table

    assert "circuit closed" in run("channels", "resume", "x", "--config", str(config))
    assert health(config)["x"]["breaker"] == "closed"
    assert "already closed" in run("channels", "resume", "x", "--config", str(config))
    missing = CliRunner().invoke(app, ["channels", "resume", "nope", "--config", str(config)])
    assert missing.exit_code == 5 and "no channel named 'nope'" in missing.output
    # An operator action: on record with who did it and what came of it.
    entries = json.loads(run("audit", "--json", "--config", str(config)))["entries"]
    resumes = [(e["target"], e["outcome"]) for e in entries if e["action"] == "resume"]
    assert sorted(resumes) == [("nope", "refused"), ("x", "resumed"), ("x", "unchanged")]
    assert all(e["actor"].startswith("cli:") for e in entries if e["action"] == "resume")


def test_each_channel_has_its_own_queue_and_workers_can_be_dedicated(config: Path) -> None:  # noqa: F811
    settings = load_settings(config)
    assert queues.all_queues(settings) == ["distributor", "engagement", "deliver.outbox", "deliver.x"]
    assert queues.for_delivery(settings, "outbox") == "deliver.outbox"
    assert queues.for_delivery(settings, "removed") == "distributor"  # still consumed: it gets cancelled
    assert "-Q" not in _worker_argv(settings, beat=False)  # every queue by default
    argv = _worker_argv(settings, beat=False, queues=["deliver.x"])
    assert argv[argv.index("-Q") + 1] == "deliver.x"
    bad = CliRunner().invoke(app, ["worker", "--queues", "deliver.nope", "--config", str(config)])
    assert bad.exit_code == 2 and "unknown queue 'deliver.nope'" in bad.output


def test_metrics_show_each_channels_breaker(make_settings) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from distributor.context import Context
    from distributor.web.app import create_app

    token = "tok-en-1234567890"
    ctx = Context.create(make_settings(sources=[], server={"api_tokens": [token]}))
    ctx.admission.enter(ctx.settings.channel("outbox"), "a:outbox")
    ctx.admission.leave("outbox", "a:outbox", ChannelError("revoked", auth=True))
    with TestClient(create_app(ctx, enqueue=lambda task, args: None)) as client:
        text = client.get("/metrics", headers={"authorization": f"Bearer {token}"}).text
    assert 'distributor_channel_breaker{channel="outbox"} 3.0' in text
    assert 'distributor_channel_in_flight{channel="outbox"} 0.0' in text


def test_channels_pause_holds_deliveries_until_resume(config: Path) -> None:  # noqa: F811
    run("publish", str(SEED), "--config", str(config))
    ctx = get_context(load_settings(config))
    assert "outbox: paused" in run("channels", "pause", "outbox", "--config", str(config))
    assert health(config)["outbox"]["breaker"] == "paused"
    gate = ctx.admission.enter(ctx.settings.channel("outbox"), "b:outbox")
    assert gate.wait > 0 and "paused by cli:" in gate.reason  # a delivery waits; nothing is dropped
    assert "already paused" in run("channels", "pause", "outbox", "--config", str(config))
    missing = CliRunner().invoke(app, ["channels", "pause", "nope", "--config", str(config)])
    assert missing.exit_code == 5 and "no channel named 'nope'" in missing.output  # ExitCode.NOT_FOUND
    assert "circuit closed" in run("channels", "resume", "outbox", "--config", str(config))
    entries = json.loads(run("audit", "--json", "--config", str(config)))["entries"]
    pauses = sorted((e["target"], e["outcome"]) for e in entries if e["action"] == "pause")
    assert pauses == [("nope", "refused"), ("outbox", "paused"), ("outbox", "unchanged")]


def test_channels_backfill_posts_the_past_once_in_publish_order(config: Path) -> None:  # noqa: F811
    published = json.loads(run("publish", str(SEED), "--no-announce", "--json", "--config", str(config)))
    ctx = get_context(load_settings(config))
    assert ctx.ledger.get(published["id"], "outbox") is None  # feeds only: the no-backfill rule

    # The seed page is from 2021: a week back finds nothing, ten years back finds it.
    assert json.loads(run("channels", "backfill", "outbox", "--dry-run", "--json", "--config", str(config))) == []
    listed = json.loads(run("channels", "backfill", "outbox", "--since", "3650d", "--dry-run", "--json",
                            "--config", str(config)))  # fmt: skip
    assert [a["id"] for a in listed] == [published["id"]] and ctx.ledger.get(published["id"], "outbox") is None

    done = json.loads(run("channels", "backfill", "outbox", "--since", "3650d", "--json", "--config", str(config)))
    assert done == {"channel": "outbox", "articles": [{"id": published["id"], "title": published["title"],
                                                       "result": "queued"}]}  # fmt: skip
    delivery = ctx.ledger.get(published["id"], "outbox")
    assert delivery is not None and delivery.state == "pending"
    again = run("channels", "backfill", "outbox", "--since", "3650d", "--config", str(config))
    assert "0 queued, 0 awaiting approval, 1 already delivered or under way" in again  # never twice

    runner = CliRunner()
    disabled = runner.invoke(app, ["channels", "backfill", "x", "--config", str(config)])
    assert disabled.exit_code == 2 and "x is disabled" in disabled.output
    missing = runner.invoke(app, ["channels", "backfill", "nope", "--config", str(config)])
    assert missing.exit_code == 5 and "no channel named 'nope'" in missing.output
    bad = runner.invoke(app, ["channels", "backfill", "outbox", "--since", "soon", "--config", str(config)])
    assert bad.exit_code == 2 and "--since 'soon'" in bad.output
    entries = json.loads(run("audit", "--json", "--config", str(config)))["entries"]
    assert [e["detail"] for e in entries if e["action"] == "backfill"] == [
        "0 queued, 0 awaiting approval, 1 already known",
        "1 queued, 0 awaiting approval, 0 already known",
    ]


def test_a_backfill_takes_the_channels_categories_oldest_first_and_waits_for_approval(make_settings) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    from distributor import operations, pipeline
    from distributor.context import Context
    from distributor.ledger import AWAITING
    from distributor.normalize import Draft

    channels = [{"name": "zalo-oa", "type": "outbox", "categories": ["Thời sự"], "approval": True}]
    ctx = Context.create(make_settings(sources=[], channels=channels))
    now = datetime.now(UTC)
    ids = {}
    for hours, slug, category in [(30, "cu", "Thời sự"), (5, "moi", "Thời sự"), (3, "the-thao", "Thể thao"),
                                  (1, "moi-nhat", "Thời sự"), (24 * 40, "qua-cu", "Thời sự")]:  # fmt: skip
        draft = Draft(url=f"https://portal.example.gov.vn/{slug}", title=slug, categories=[category],
                      published=(now - timedelta(hours=hours)).isoformat())  # fmt: skip
        article = pipeline.to_article(ctx, draft, "test")
        ctx.store.upsert(article)
        ctx.store.publish(article)
        ids[slug] = article.id
    candidates = operations.backfill_candidates(ctx, "zalo-oa", since=7 * 86400, limit=100)
    assert [a.title for a in candidates] == ["cu", "moi", "moi-nhat"]  # its category, the week, oldest first
    assert [a.title for a in operations.backfill_candidates(ctx, "zalo-oa", 7 * 86400, limit=2)] == ["moi", "moi-nhat"]

    queued: list[tuple[str, str]] = []
    report = operations.backfill_channel(ctx, "cli:test", "zalo-oa", candidates, lambda a, c: queued.append((a, c)))
    assert [result for _, result in report.results] == ["awaiting approval"] * 3 and queued == []
    assert {ctx.ledger.get(ids[s], "zalo-oa").state for s in ("cu", "moi", "moi-nhat")} == {AWAITING}  # type: ignore[union-attr]
