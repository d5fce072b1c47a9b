"""The operator commands, run through the CLI against a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distributor.cli import app
from distributor.cli_exit import ExitCode
from distributor.context import reset_context
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file

SEED = next((Path(__file__).resolve().parents[2] / "config" / "examples" / "articles").glob("*.md"))
TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    # The CLI exports these for its child processes; keep that from leaking into other tests.
    monkeypatch.setenv("DISTRIBUTOR_CONFIG", "unused")
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: room for whole ids
    monkeypatch.setenv("DISTRIBUTOR_LANG", "en")  # the messages asserted are the English ones
    path = config_file(
        tmp_path,
        redis_url,
        prefix,
        ALL_FEEDS_AND_OUTBOX
        + """
[[channels]]
name = "x"
type = "x"
api_key = "k"
api_secret = "s"
access_token = "t"
access_token_secret = "ts"
enabled = false
""",
    )
    yield path
    reset_context()


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_publish_preview_deliveries_and_feeds(config: Path, tmp_path: Path) -> None:
    output = run("publish", str(SEED), "--config", str(config))
    assert "new" in output and "outbox: sent" in output
    [line] = (tmp_path / "data" / "outbox.jsonl").read_text().splitlines()
    article_id = json.loads(line)["article_id"]

    again = run("publish", str(SEED), "--config", str(config))
    assert "unchanged" in again
    assert len((tmp_path / "data" / "outbox.jsonl").read_text().splitlines()) == 1

    preview = run("preview", article_id, "--config", str(config))
    assert "outbox (outbox)" in preview and "x (x)" in preview and "/280 fits" in preview
    assert TITLE in preview

    listing = run("deliveries", "--config", str(config))
    [record] = json.loads(run("deliveries", "--json", "--config", str(config)))
    assert record["channel"] == "outbox" and record["state"] == "sent" and record["post_id"]
    assert article_id in listing and "sent" in listing
    result = CliRunner().invoke(app, ["deliveries", "cancel", article_id, "outbox", "--config", str(config)])
    assert result.exit_code == 1 and "nothing to cancel" in result.output
    assert json.loads(run("deliveries", "--state", "sent", "--json", "--config", str(config))) == [record]
    assert json.loads(run("deliveries", "--state", "failed", "--json", "--config", str(config))) == []
    typo = CliRunner().invoke(app, ["deliveries", "--state", "fialed", "--config", str(config)])
    assert typo.exit_code == 2 and "--state 'fialed' is not a delivery state" in typo.output and "failed" in typo.output

    out = tmp_path / "public"
    run("feeds", "build", "--out", str(out), "--config", str(config))
    assert {p.name for p in out.iterdir()} >= {"all.rss", "all.atom", "all.json", "tin-tuc-su-kien.rss"}
    assert TITLE in (out / "all.rss").read_text(encoding="utf-8")

    links = run("feeds", "links", "--config", str(config))
    assert '<link rel="alternate" type="application/rss+xml"' in links
    assert 'href="http://127.0.0.1:8000/feeds/tin-tuc-su-kien.atom"' in links

    top = run("shares", "top", "--period", "all", "--config", str(config))
    assert "shares" in top


def test_sources_test_writes_nothing(config: Path, tmp_path: Path) -> None:
    (tmp_path / "articles" / "a.md").write_text("---\ntitle: Thử nguồn\n---\nx\n", encoding="utf-8")
    output = run("sources", "test", "articles", "--config", str(config))
    assert "add" in output and "Thử nguồn" in output
    listing = run("deliveries", "--config", str(config))
    assert "Thử" not in listing
    assert not (tmp_path / "data" / "outbox.jsonl").exists()


def test_channels_test_and_errors(config: Path) -> None:
    assert "ok outbox: writes to" in run("channels", "test", "outbox", "--config", str(config))
    missing = CliRunner().invoke(app, ["channels", "test", "nope", "--config", str(config)])
    assert missing.exit_code == ExitCode.NOT_FOUND and "no channel named 'nope'" in missing.output
    bad = CliRunner().invoke(app, ["publish", "/no/such/file.md", "--config", str(config)])
    assert bad.exit_code == ExitCode.NOT_FOUND and "/no/such/file.md" in bad.output


def test_titles_with_brackets_print_as_written(config: Path, tmp_path: Path) -> None:
    path = tmp_path / "articles" / "video.md"
    path.write_text('---\ntitle: "[Video] Lễ khai mạc [trực tiếp]"\n---\nx\n', encoding="utf-8")
    assert "[Video] Lễ khai mạc [trực tiếp]" in run("publish", str(path), "--config", str(config))


def _params(command, path):  # type: ignore[no-untyped-def]
    for name, sub in getattr(command, "commands", {}).items():
        yield from _params(sub, [*path, name])
    for param in command.params:
        yield " ".join(path), param


def test_every_option_and_argument_explains_itself() -> None:
    import typer.main

    missing = [f"{path} {p.name}" for path, p in _params(typer.main.get_command(app), ["distributor"]) if not p.help]
    assert missing == []


@pytest.mark.parametrize("command", ["run", "serve"])
def test_help_shows_config_sections_literally(command: str) -> None:
    # Rich markup used to eat "[server]", printing "(default from )".
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[server] host" in result.output and "[server] port" in result.output


def test_retract_reports_per_channel_and_lists_the_new_state(config: Path, tmp_path: Path) -> None:
    run("publish", str(SEED), "--config", str(config))
    [line] = (tmp_path / "data" / "outbox.jsonl").read_text().splitlines()
    article_id = json.loads(line)["article_id"]
    unknown = CliRunner().invoke(app, ["retract", "0123456789abcdef", "--config", str(config)])
    assert unknown.exit_code == ExitCode.NOT_FOUND
    assert "0123456789abcdef" in unknown.output and "no such article" in unknown.output

    report = json.loads(run("retract", article_id, "--reason", "sai số liệu", "--json", "--config", str(config)))
    assert report["article_id"] == article_id
    assert {c["channel"]: c["outcome"] for c in report["channels"]} == {"outbox": "deleted", "x": "not_posted"}
    events = [json.loads(x).get("event", "post") for x in (tmp_path / "data" / "outbox.jsonl").read_text().splitlines()]
    assert events == ["post", "delete"]
    assert article_id in run("deliveries", "--state", "deleted", "--config", str(config))
    assert TITLE not in run("feeds", "build", "--out", str(tmp_path / "out"), "--config", str(config))
    assert TITLE not in (tmp_path / "out" / "all.rss").read_text(encoding="utf-8")


def test_shares_top_json_and_export_csv_and_json(config: Path, tmp_path: Path) -> None:
    import csv

    from distributor.context import Context
    from distributor.settings import load_settings
    from tests.unit.test_web import BROWSER, add

    ctx = Context.create(load_settings(config))
    first, second = add(ctx, "tin-tức/một?id=1", "Bài một"), add(ctx, "hai", "Bài hai")
    for n in range(3):
        assert ctx.shares.record(first, "zalo", f"203.0.113.{n}", BROWSER)
    assert ctx.shares.record(second, "facebook", "203.0.113.9", BROWSER)
    top = json.loads(run("shares", "top", "--period", "day", "--json", "--config", str(config)))
    assert [(a["id"], a["shares"]) for a in top["articles"]] == [(first, 3), (second, 1)]
    assert top["articles"][0]["title"] == "Bài một"

    out = tmp_path / "shares.csv"
    assert "2 articles written" in run("shares", "export", "--format", "csv", "--period", "week", "--out", str(out),
                                       "--config", str(config))  # fmt: skip
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["id"], r["title"], r["period_shares"], r["unique"], r["zalo"]) for r in rows] == [
        (first, "Bài một", "3", "3", "3"), (second, "Bài hai", "1", "1", "0")
    ]  # fmt: skip
    exported = json.loads(run("shares", "export", "--format", "json", "--period", "all", "--config", str(config)))
    assert exported["period"] == "all" and exported["articles"][1]["facebook"] == 1
    refused = CliRunner().invoke(app, ["shares", "export", "--period", "year", "--config", str(config)])
    assert refused.exit_code == 2 and "unknown period 'year'" in refused.output


def test_shares_export_has_the_clicks_on_our_posts_and_the_platforms_engagement(config: Path, tmp_path: Path) -> None:
    """The weekly report: beside readers' shares, what our own posts achieved (per channel and in all)."""
    import csv
    from datetime import datetime

    from distributor import clicks, engagement
    from distributor.context import Context
    from distributor.settings import load_settings
    from tests.unit.test_web import BROWSER, add

    ctx = Context.create(load_settings(config))
    article_id = add(ctx, "tin-tức/một?id=1", "Bài một")
    assert ctx.shares.record(article_id, "zalo", "203.0.113.1", BROWSER)
    click = ctx.redis.register_script(clicks.CLICK_SCRIPT)
    for n in range(2):
        keys, args = clicks.script_call(ctx.keys, datetime.now(ctx.tz), 60, article_id, "outbox",
                                        f"198.51.100.{n}", BROWSER, True)  # fmt: skip
        click(keys=keys, args=args)
    engagement.store(ctx, article_id, "x", {"like": 4, "retweet": 1})

    out = tmp_path / "shares.csv"
    run("shares", "export", "--format", "csv", "--period", "week", "--out", str(out), "--config", str(config))
    [row] = list(csv.DictReader(out.open(encoding="utf-8")))
    assert (row["clicks"], row["clicks:outbox"], row["clicks:x"]) == ("2", "2", "0")
    assert (row["engagement"], row["engagement:x"], row["engagement:outbox"]) == ("5", "5", "0")
    [item] = json.loads(run("shares", "export", "--format", "json", "--config", str(config)))["articles"]
    assert (item["clicks"], item["clicks:outbox"], item["engagement"], item["engagement:x"]) == (2, 2, 5, 5)


def test_the_weekly_export_also_lists_the_weeks_articles_nobody_shared(config: Path, tmp_path: Path) -> None:
    """Shared ones first (most shared first), then the week's other articles (published in it, or an
    older one whose post was clicked in it) with 0 shares; an old untouched article only in `all`."""
    import csv
    from datetime import UTC, datetime, timedelta

    from distributor import clicks, pipeline
    from distributor.context import Context
    from distributor.normalize import Draft
    from distributor.settings import load_settings
    from tests.unit.test_web import BROWSER, add

    ctx = Context.create(load_settings(config))

    def old(slug: str) -> str:
        published = (datetime.now(UTC) - timedelta(days=40)).isoformat()
        article = pipeline.to_article(ctx, Draft(url=f"https://portal.example.gov.vn/{slug}", title=slug,
                                                 published=published), "test")  # fmt: skip
        ctx.store.upsert(article)
        ctx.store.publish(article)
        return article.id

    shared, quiet = add(ctx, "duoc-chia-se", "Được chia sẻ"), add(ctx, "khong-ai-chia-se", "Không ai chia sẻ")
    clicked_old, untouched_old = old("cu-duoc-bam"), old("cu-im-lang")
    assert ctx.shares.record(shared, "zalo", "203.0.113.1", BROWSER)
    keys, args = clicks.script_call(ctx.keys, datetime.now(ctx.tz), 60, clicked_old, "outbox", "198.51.100.1",
                                    BROWSER, True)  # fmt: skip
    ctx.redis.register_script(clicks.CLICK_SCRIPT)(keys=keys, args=args)

    out = tmp_path / "week.csv"
    assert "3 articles written" in run("shares", "export", "--period", "week", "--out", str(out), "--config",
                                       str(config))  # fmt: skip
    rows = [(r["id"], r["period_shares"], r["clicks"]) for r in csv.DictReader(out.open(encoding="utf-8"))]
    assert rows == [(shared, "1", "0"), (quiet, "0", "0"), (clicked_old, "0", "1")]
    everything = json.loads(run("shares", "export", "--format", "json", "--period", "all", "--config", str(config)))
    assert everything["articles"][0]["id"] == shared
    assert {a["id"] for a in everything["articles"]} == {shared, quiet, clicked_old, untouched_old}


def test_shares_top_by_clicks_and_engagement(config: Path) -> None:
    """The operator's top lists match the API's: by readers' shares, our posts' clicks, or engagement."""
    from datetime import datetime

    from distributor import clicks, engagement
    from distributor.context import Context
    from distributor.settings import load_settings
    from tests.unit.test_web import BROWSER, add

    ctx = Context.create(load_settings(config))
    first, second = add(ctx, "tin-tức/một?id=1", "Bài một"), add(ctx, "hai", "Bài hai")
    keys, args = clicks.script_call(ctx.keys, datetime.now(ctx.tz), 60, second, "outbox", "198.51.100.1", BROWSER, True)
    ctx.redis.register_script(clicks.CLICK_SCRIPT)(keys=keys, args=args)
    engagement.store(ctx, first, "x", {"like": 4})
    by_clicks = json.loads(run("shares", "top", "--by", "clicks", "--json", "--config", str(config)))
    assert [(a["id"], a["clicks"]) for a in by_clicks["articles"]] == [(second, 1)]
    by_engagement = json.loads(run("shares", "top", "--by", "engagement", "--period", "all", "--json",
                                   "--config", str(config)))  # fmt: skip
    assert [(a["id"], a["engagement"], a["title"]) for a in by_engagement["articles"]] == [(first, 4, "Bài một")]
    refused = CliRunner().invoke(app, ["shares", "top", "--by", "likes", "--config", str(config)])
    assert refused.exit_code == 2 and "'likes'" in refused.output


@pytest.mark.parametrize(
    "command", [["approve", "0123456789abcdef"], ["audit"], ["channels"], ["deliveries"], ["feeds", "links", "--json"]]
)
def test_commands_say_in_one_line_that_redis_is_down(tmp_path: Path, prefix: str, command: list[str]) -> None:
    """An operator's command while Redis is down: one line naming Redis (its password masked) and a
    non-zero status, not screens of traceback with local variables."""
    import os
    import subprocess
    import sys

    from tests.unit.channels.secret_url_cases import closed_port_url

    down = closed_port_url().replace("http://", "redis://:hunter2-secret@") + "/0"
    path = config_file(tmp_path, down, prefix, ALL_FEEDS_AND_OUTBOX)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISTRIBUTOR_")}
    done = subprocess.run(
        [sys.executable, "-m", "distributor.cli", *command, "--config", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == ExitCode.UNAVAILABLE, output
    assert "Traceback" not in output and len(output.strip().splitlines()) <= 2, output
    assert "Redis at redis://:***@127.0.0.1" in output and "unavailable" in output, output
    assert "hunter2-secret" not in output
