"""The audit log (issue 10): every operator action, from the command line or the API, is recorded
with who (the token's name, `cli:<user>`), when, what and the outcome, kept for `[audit] retention`;
API tokens have names, and the legacy list of strings keeps working."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from distributor import audit
from distributor.cli import app
from distributor.context import Context, reset_context
from distributor.errors import ConfigError
from distributor.settings import settings_from_dict
from distributor.web.app import create_app
from distributor.web.auth import signature
from tests.integration.helpers import config_file
from tests.unit.test_approval import channels, lines, publish, state

AN, LEGACY = "an-token-0123456789", "legacy-token-0123456789"
JSON = {"content-type": "application/json"}
QUEUED: list[tuple[str, list[Any]]] = []


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", **JSON}


@pytest.fixture
def web(make_settings, tmp_path: Path) -> Iterator[tuple[Context, TestClient]]:  # type: ignore[no-untyped-def]
    """Two tokens: one named in a table, one legacy string (second: named `token-2`)."""
    QUEUED.clear()
    settings = make_settings(
        sources=[],
        channels=channels(tmp_path),
        server={"api_tokens": [{"name": "editor-an", "token": AN}, LEGACY], "push_secret": "shh-secret-key"},
    )
    ctx = Context.create(settings)
    app_ = create_app(ctx, enqueue=lambda task, args: QUEUED.append((task, args)))
    with TestClient(app_, client=("203.0.113.5", 40000)) as client:
        yield ctx, client


def entries(ctx: Context) -> list[tuple[str, str, str, str]]:
    """(actor, action, target, outcome), oldest first."""
    return [(e.actor, e.action, e.target, e.outcome) for e in reversed(audit.read(ctx))]


def test_api_approval_and_rejection_are_recorded_with_the_tokens_names(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    first, second = publish(ctx, "mot"), publish(ctx, "hai")
    approved = client.post(f"/api/articles/{first}/approve", content=b"{}", headers=bearer(AN))
    assert approved.status_code == 200
    assert approved.json()["channels"] == [
        {"channel": "social", "done": True, "state": "pending", "message": "approved: queued for posting"}
    ]
    assert [("worker.tasks.deliver", [first, "social"])] == QUEUED  # the worker posts it, under its rules
    body = json.dumps({"channel": "social", "reason": "chưa được phép"}).encode()
    assert client.post(f"/api/articles/{second}/reject", content=body, headers=bearer(LEGACY)).status_code == 200
    assert state(ctx, second) == "rejected"
    late = client.post(f"/api/articles/{second}/approve", headers=bearer(AN))  # no body at all is fine
    assert late.status_code == 409 and "rejected earlier" in late.json()["error"]["message"]
    missing = client.post("/api/articles/nope/approve", content=b"{}", headers=bearer(AN))
    assert missing.status_code == 404 and "no delivery of article 'nope'" in missing.json()["error"]["message"]
    bad = client.post(f"/api/articles/{first}/approve", content=b'{"chanel": "social"}', headers=bearer(AN))
    assert bad.status_code == 400 and '"channel"' in bad.json()["error"]["message"]
    assert len(QUEUED) == 1
    assert entries(ctx) == [
        ("editor-an", "approve", first, "approved"),
        ("token-2", "reject", f"{second} -> social", "rejected"),
        ("editor-an", "approve", second, "refused"),
        ("editor-an", "approve", "nope", "refused"),
        ("editor-an", "approve", first, "refused"),
    ]
    [rejection] = [e for e in audit.read(ctx) if e.action == "reject"]
    assert rejection.detail == "social: rejected: it will never be posted"
    assert AN not in json.dumps([e.as_dict() for e in audit.read(ctx)]) and LEGACY not in str(audit.read(ctx))


def test_get_audit_needs_an_operator_and_filters_by_time(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    audit.record(ctx, "cli:an", "cancel", "a -> social", "cancelled")
    assert client.get("/api/audit").status_code == 401
    assert client.get("/api/audit", auth=("anyone", AN)).status_code == 401  # Basic never opens it
    listed = client.get("/api/audit?since=1h&limit=10", headers=bearer(AN))
    assert listed.status_code == 200
    [entry] = listed.json()["entries"]
    assert {k: entry[k] for k in ("actor", "action", "target", "outcome")} == {
        "actor": "cli:an",
        "action": "cancel",
        "target": "a -> social",
        "outcome": "cancelled",
    }
    assert entry["at"].endswith("+00:00")
    assert client.get("/api/audit?since=2999-01-01", headers=bearer(AN)).json()["entries"] == []
    wrong = client.get("/api/audit?since=yesterday", headers=bearer(AN))
    assert wrong.status_code == 400 and "'yesterday' is neither a duration" in wrong.json()["error"]["message"]


def test_pushes_are_recorded_with_the_token_name_or_hmac(web) -> None:  # type: ignore[no-untyped-def]
    ctx, client = web
    article = {"url": "https://portal.example.gov.vn/day", "title": "Bài đẩy"}
    body = json.dumps(article).encode()
    assert client.post("/api/articles", content=body, headers=bearer(LEGACY)).status_code == 202
    now = str(int(time.time()))
    signed = {"x-distributor-timestamp": now, "x-distributor-signature": signature("shh-secret-key", now, body), **JSON}
    assert client.post("/api/articles", content=body, headers=signed).status_code == 202
    off_site = json.dumps({"url": "https://elsewhere.example/x", "title": "X"}).encode()
    assert client.post("/api/articles", content=off_site, headers=bearer(AN)).status_code == 422
    assert client.post("/api/articles", content=body, headers=bearer("wrong-token")).status_code == 401
    found = entries(ctx)
    assert [(actor, action, outcome) for actor, action, _, outcome in found] == [
        ("token-2", "push", "accepted"),
        ("hmac", "push", "accepted"),
        ("editor-an", "push", "refused"),
    ]
    assert found[2][2] == "https://elsewhere.example/x"


def test_retention_trims_older_actions(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(make_settings(sources=[], audit={"retention": "1d"}))
    two_days_ago = int((time.time() - 2 * 86400) * 1000)
    ctx.redis.xadd(ctx.keys.audit(), {"actor": "cli:old", "action": "retry"}, id=f"{two_days_ago}-0")
    ctx.redis.xadd(ctx.keys.audit(), {"actor": "cli:recent", "action": "retry"}, id=f"{two_days_ago + 36 * 3600_000}-0")
    assert [e.actor for e in audit.read(ctx)] == ["cli:recent"]  # past the retention: never listed
    audit.record(ctx, "cli:now", "cancel", "a -> b", "cancelled")
    assert ctx.redis.xlen(ctx.keys.audit()) == 2  # and gone from Redis
    assert [e.actor for e in audit.read(ctx)] == ["cli:now", "cli:recent"]
    assert [e.actor for e in audit.read(ctx, since=time.time() - 60)] == ["cli:now"]
    with pytest.raises(ConfigError, match=r"\[audit\] key 'retention'"):
        make_settings(sources=[], audit={"retention": "forever"})


def test_since_takes_a_duration_or_an_iso_time() -> None:
    now = 1_800_000_000.0
    assert audit.since_time("7d", now) == now - 7 * 86400
    assert audit.since_time("2027-01-15", now) == datetime(2027, 1, 15, tzinfo=UTC).timestamp()
    assert audit.since_time("2027-01-15T08:00:00+07:00") == audit.since_time("2027-01-15T01:00:00")
    assert audit.since_time(None) is None and audit.since_time("") is None
    with pytest.raises(ValueError, match="'last week' is neither"):
        audit.since_time("last week")


# --- tokens --------------------------------------------------------------------------------------

SITE = {"title": "T", "url": "https://portal.example.gov.vn"}


def test_legacy_token_strings_are_named_by_position_and_tables_by_their_name() -> None:
    tokens = [AN, {"name": "editor-an", "token": LEGACY}]
    settings = settings_from_dict({"site": SITE, "server": {"api_tokens": tokens}})
    assert [(t.name, t.token.get_secret_value()) for t in settings.server.api_tokens] == [
        ("token-1", AN),
        ("editor-an", LEGACY),
    ]


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        ([AN, {"name": "token-1", "token": LEGACY}], "name 'token-1' is used twice"),
        ([{"name": "hmac", "token": AN}], "name 'hmac' is reserved"),
        ([{"name": "biên tập", "token": AN}], "key 'api_tokens.0.name' String should match pattern"),
        ([{"name": "an"}], "key 'api_tokens.0.token' is required"),
        ([{"name": "an", "token": "  "}], "token an must not be empty"),
    ],
)
def test_bad_token_tables_are_refused_without_showing_the_token(tokens: list[Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({"site": SITE, "server": {"api_tokens": tokens}})
    [problem] = caught.value.problems
    assert expected in problem
    assert AN not in problem and LEGACY not in problem


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path, redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DISTRIBUTOR_CONFIG", "unused")
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(audit, "cli_actor", lambda: "cli:editor")
    toml = "\n".join(
        "[[channels]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in c.items()) for c in channels(tmp_path)
    )
    yield config_file(tmp_path, redis_url, prefix, '[[feeds]]\nname = "all"\n' + toml)
    reset_context()


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_cli_actions_print_a_report_and_are_audited_as_the_os_user(config: Path, tmp_path: Path) -> None:
    from distributor.cli import _context

    seed = tmp_path / "articles" / "bai.md"
    seed.write_text('---\ntitle: "Bài chờ duyệt"\npublished: "2026-05-01 08:00"\n---\nNội dung.\n')
    published = cli("publish", str(seed), "--config", str(config))
    assert "open: sent" in published
    ctx = _context(config)
    [article_id] = [line["article_id"] for line in lines(tmp_path, "open")]
    assert state(ctx, article_id) == "awaiting_approval"

    report = json.loads(cli("approve", article_id, "--json", "--config", str(config)))
    assert report["channels"] == [
        {
            "channel": "social",
            "done": True,
            "state": "pending",
            "message": "approved: queued for posting",
            "delivery": "sent",
        }
    ]
    assert len(lines(tmp_path, "social")) == 1
    again = cli("reject", article_id, "--channel", "social", "--config", str(config), code=1)
    assert "social: refused: not awaiting approval (state sent)" in again
    cli("deliveries", "cancel", article_id, "open", "--config", str(config), code=1)
    cli("deliveries", "retry", article_id, "open", "--config", str(config), code=1)

    listed = json.loads(cli("audit", "--since", "1h", "--json", "--config", str(config)))["entries"]
    assert [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(listed)] == [
        ("cli:editor", "publish", article_id, "new"),
        ("cli:editor", "approve", article_id, "approved"),
        ("cli:editor", "reject", f"{article_id} -> social", "refused"),
        ("cli:editor", "cancel", f"{article_id} -> open", "refused"),
        ("cli:editor", "retry", f"{article_id} -> open", "refused"),
    ]
    assert listed[-1]["detail"].startswith(str(seed)) and "open: sent" in listed[-1]["detail"]
    assert listed[0]["detail"] == "state sent"
    table = cli("audit", "--config", str(config))
    assert "cli:editor" in table and "approve" in table
    assert "is neither a duration" in cli("audit", "--since", "soon", "--config", str(config), code=2)


def test_cli_reject_then_retry_and_cancel_are_recorded(config: Path, tmp_path: Path) -> None:
    from distributor.cli import _context

    ctx = _context(config)
    article_id = publish(ctx)
    assert "social: rejected: it will never be posted" in cli("reject", article_id, "--config", str(config))
    late = cli("approve", article_id, "--config", str(config), code=1)
    assert "refused: it was rejected earlier and will never be posted" in late
    assert "no delivery of article 'nope'" in cli("approve", "nope", "--config", str(config), code=5)
    cli("deliveries", "cancel", article_id, "social", "--config", str(config), code=1)
    assert lines(tmp_path, "social") == []
    assert [(a, t, o) for _, a, t, o in entries(ctx)] == [
        ("reject", article_id, "rejected"),
        ("approve", article_id, "refused"),
        ("approve", "nope", "refused"),
        ("cancel", f"{article_id} -> social", "refused"),
    ]


def test_a_secret_in_a_published_url_stays_out_of_the_audit_log_and_its_log_line(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`distributor publish https://reader:PASSWORD@host/page?token=...`: the audit entry (shown by
    `distributor audit` and GET /api/audit) and its log line name the URL with its secrets masked."""
    import logging

    from tests.unit.channels.secret_url_cases import closed_port_url

    url = closed_port_url().replace("http://", "http://reader:pw-hunter2@") + "/tin/bai?token=tok-hunter2&id=7"
    with caplog.at_level(logging.INFO, logger="distributor.audit"):
        printed = cli("publish", url, "--config", str(config), code=1)
    [entry] = json.loads(cli("audit", "--json", "--config", str(config)))["entries"]
    assert (entry["action"], entry["outcome"]) == ("publish", "refused")
    assert "reader:***@127.0.0.1" in entry["target"] and "token=***" in entry["target"] and "id=7" in entry["target"]
    shown = json.dumps(entry) + caplog.text + printed
    assert "hunter2" not in shown
