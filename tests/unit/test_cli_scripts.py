"""The CLI for scripts and people: JSON on stdout, documented exit codes, examples, the shell's language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from click.testing import Result
from typer.testing import CliRunner

from distributor.cli import app
from distributor.cli_exit import ExitCode
from tests.unit.test_cli import SEED, config, run  # noqa: F401  (the CLI's config fixture)

UNKNOWN_ID = "0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_leaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI exports DISTRIBUTOR_CONFIG for its children: restore it after each test."""
    monkeypatch.setenv("DISTRIBUTOR_CONFIG", "unused")


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def published(config: Path) -> str:  # noqa: F811
    return str(json.loads(run("publish", str(SEED), "--json", "--config", str(config)))["id"])


def _commands(command, path):  # type: ignore[no-untyped-def]
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, [*path, name])


COMMANDS = dict(_commands(typer.main.get_command(app), []))
# Commands that neither list nor report: they run a service, act, or write files.
NO_JSON = {"", "init", "run", "serve", "worker", "beat", "feeds", "deliveries retry", "deliveries cancel",
           "shares", "shares export", "sources", "channels pause", "channels resume", "recovery",
           "recovery ack"}  # fmt: skip


def test_every_command_and_group_help_ends_with_an_example() -> None:
    missing = []
    for path in COMMANDS:
        shown = invoke(*path.split(), "--help", env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        if "Example:\n" not in shown.output or f"distributor {path}".strip() not in shown.output.split("Example:")[1]:
            missing.append(path or "distributor")
    assert missing == []


def test_every_listing_or_reporting_command_takes_json() -> None:
    without = sorted(path for path, c in COMMANDS.items() if "--json" not in {o for p in c.params for o in p.opts})
    assert without == sorted(NO_JSON)  # shares export has --format json


def test_json_output_is_one_document_on_stdout(config: Path, tmp_path: Path) -> None:  # noqa: F811
    article_id = published(config)
    (tmp_path / "articles" / "a.md").write_text("---\ntitle: Thử nguồn\n---\nx\n", encoding="utf-8")
    cases: list[tuple[list[str], int]] = [
        (["check"], 0),
        (["preview", article_id], 0),
        (["deliveries"], 0),
        (["audit"], 0),
        (["channels"], 0),
        (["channels", "test", "outbox"], 0),
        (["sources", "test", "articles"], 0),
        (["shares", "top"], 0),
        (["feeds", "links"], 0),
        (["feeds", "build", "--out", str(tmp_path / "public")], 0),
        (["recovery", "status"], 0),
        (["health"], ExitCode.FAILED),  # no worker runs here
        (["approve", article_id], ExitCode.FAILED),  # refused: nothing awaits approval
    ]
    documents = {}
    for args, code in cases:
        result = invoke(*args, "--json", "--config", str(config))
        assert result.exit_code == code, (args, result.output)
        documents[args[0] if len(args) == 1 else " ".join(args[:2])] = json.loads(result.stdout)
    [post] = [p for p in documents["preview " + article_id]["posts"] if p["channel"] == "outbox"]
    assert post["fits"] is True and post["length"] <= post["limit"]
    assert documents["check"]["ok"] is True and documents["check"]["channels"] == 2
    assert documents["channels test"]["ok"] is True and "writes to" in documents["channels test"]["detail"]
    assert {f["feed"] for f in documents["feeds build"]["files"]} >= {"all", "tin-tuc-su-kien"}
    assert (tmp_path / "public" / "all.rss").is_file()
    assert any(link["href"].endswith("/feeds/all.atom") for link in documents["feeds links"]["links"])
    assert documents["sources test"]["ok"] is True and documents["sources test"]["articles"][0]["would"] == "add"
    assert documents["recovery status"] == {"state_lost": None}
    assert documents["health"]["ok"] is False
    assert documents["approve " + article_id]["channels"][0]["done"] is False


def test_publish_json_reports_each_channel(config: Path) -> None:  # noqa: F811
    first = json.loads(run("publish", str(SEED), "--json", "--config", str(config)))
    assert first["change"] == "new" and first["title"]
    assert {c["channel"]: c["state"] for c in first["channels"]} == {"outbox": "sent"}
    again = json.loads(run("publish", str(SEED), "--json", "--config", str(config)))
    assert again["change"] == "unchanged" and again["channels"] == []


def test_check_json_lists_the_problems_with_the_config_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\ntitle = "T"\nurl = "not a url"\n', encoding="utf-8")
    result = invoke("check", "--json", "--config", str(bad))
    assert result.exit_code == ExitCode.CONFIG
    report = json.loads(result.stdout)
    assert report["ok"] is False and any("'url' must be an absolute http(s) URL" in p for p in report["problems"])


def test_no_progress_bar_when_output_goes_to_a_script(config: Path, tmp_path: Path) -> None:  # noqa: F811
    result = invoke("feeds", "build", "--out", str(tmp_path / "public"), "--config", str(config))
    assert result.exit_code == 0
    assert "building" not in result.output and "\x1b[" not in result.output
    assert all(line.startswith("wrote ") for line in result.stdout.splitlines())


@pytest.mark.parametrize(
    "args",
    [["check"], ["deliveries"], ["channels"], ["feeds", "links"], ["preview", UNKNOWN_ID], ["audit", "--json"]],
)
def test_a_missing_config_file_is_the_config_exit_code(args: list[str], tmp_path: Path) -> None:
    result = invoke(*args, "--config", str(tmp_path / "nope.toml"), env={"DISTRIBUTOR_LANG": "en"})
    assert result.exit_code == ExitCode.CONFIG
    assert f"{tmp_path / 'nope.toml'}: config file not found" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["preview", UNKNOWN_ID], "no stored article"),
        (["preview", "/no/such/article.md"], "not a file"),
        (["preview", str(SEED), "--channel", "nope"], "no channel named 'nope'"),
        (["approve", UNKNOWN_ID], f"no delivery of article '{UNKNOWN_ID}'"),
        (["reject", UNKNOWN_ID, "--channel", "nope"], "no channel named 'nope'"),
        (["retract", UNKNOWN_ID], "no such article"),
        (["deliveries", "retry", UNKNOWN_ID, "outbox"], "no such delivery"),
        (["deliveries", "cancel", UNKNOWN_ID, "outbox"], "no such delivery"),
        (["sources", "test", "nope"], "no source named 'nope'"),
        (["channels", "test", "nope"], "no channel named 'nope'"),
        (["publish", "/no/such/article.md"], "not a file"),
    ],
)
def test_unknown_things_are_the_not_found_exit_code(config: Path, args: list[str], says: str) -> None:  # noqa: F811
    result = invoke(*args, "--config", str(config))
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert says in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["health", "nobody"], "component must be worker, beat or all"),
        (["shares", "top", "--period", "year"], "'year'"),
        (["shares", "export", "--format", "xml"], "--format must be csv or json"),
        (["deliveries", "--limit", "many"], "--limit"),
        (["audit", "--since", "soon"], "--since"),
        (["worker", "--queues", "deliver.nope"], "unknown queue"),
    ],
)
def test_bad_option_values_are_the_usage_exit_code(config: Path, args: list[str], says: str) -> None:  # noqa: F811
    result = invoke(*args, "--config", str(config))
    assert result.exit_code == ExitCode.USAGE, result.output
    assert says in result.output


def test_a_failed_operation_is_exit_code_1(config: Path) -> None:  # noqa: F811
    article_id = published(config)
    result = invoke("deliveries", "cancel", article_id, "outbox", "--config", str(config))
    assert result.exit_code == ExitCode.FAILED and "(state sent)" in result.output


def test_messages_follow_the_shells_language(config: Path) -> None:  # noqa: F811
    vietnamese = invoke("channels", "test", "nope", "--config", str(config), env={"DISTRIBUTOR_LANG": "vi"})
    assert vietnamese.exit_code == ExitCode.NOT_FOUND
    assert "lỗi: không có kênh nào tên 'nope'" in vietnamese.output
    unset: dict[str, str | None] = {"DISTRIBUTOR_LANG": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}
    from_lang = invoke("channels", "test", "nope", "--config", str(config), env={**unset, "LANG": "vi_VN.UTF-8"})
    assert "không có kênh nào tên 'nope'" in from_lang.output
    english = invoke("channels", "test", "nope", "--config", str(config), env=unset)
    assert "error: no channel named 'nope'" in english.output
    listing = invoke("deliveries", "--config", str(config), env={"DISTRIBUTOR_LANG": "vi", "COLUMNS": "250"})
    assert "trạng" in listing.output and "kênh" in listing.output  # table headings too


def test_docs_cli_md_has_every_command_and_every_exit_code() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("### ")]
    groups = {"", "feeds", "shares", "sources", "recovery"}  # only their subcommands do something
    undocumented = [p for p in COMMANDS if p not in groups and not any(f"`distributor {p}`" in h for h in headings)]
    assert undocumented == []
    for code in ExitCode:
        assert f"| {code.value} | `{code.name}` |" in text


def test_help_texts_follow_the_shells_language() -> None:
    """Help is built when the command starts, so it is asked of a fresh process."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DISTRIBUTOR_LANG": "vi", "COLUMNS": "200"}
    shown = subprocess.run([sys.executable, "-m", "distributor.cli", "shares", "top", "--help"],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Ví dụ:" in shown.stdout and "In JSON." in shown.stdout and "Tệp cấu hình" in shown.stdout
