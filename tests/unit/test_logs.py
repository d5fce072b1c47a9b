"""Structured logs: one event per line with the article id, channel and state; JSON when asked,
readable text by default; secrets (URL passwords, tokens of the configuration) never in a line."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime

import pytest

from distributor import delivery, logs, pipeline
from distributor.context import Context
from distributor.errors import ConfigError
from distributor.inline import InlineDispatcher
from distributor.normalize import Draft

TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
TELEGRAM = {"name": "telegram", "type": "telegram", "token": TOKEN, "chat_id": "@tintuc_tayninh", "enabled": False}


@pytest.fixture
def stream() -> io.StringIO:
    """The root handler `logs.configure` installs writes here (tests/conftest.py puts the root
    logger back after each test)."""
    return io.StringIO()


def configured(make_settings, stream: io.StringIO, **logging_table: str) -> Context:  # type: ignore[no-untyped-def]
    settings = make_settings(
        sources=[], channels=[{"name": "outbox", "type": "outbox"}, TELEGRAM], logging=logging_table
    )
    logs.configure(settings, stream=stream)
    return Context.create(settings)


def deliver_one(ctx: Context) -> str:
    draft = Draft(url="https://portal.example.gov.vn/a", title="Tin", published=datetime.now(UTC).isoformat())
    article = pipeline.to_article(ctx, draft, "test")
    ctx.store.upsert(article)
    ctx.ledger.create(article.id, "outbox")
    assert delivery.deliver(ctx, article.id, "outbox").state == "sent"
    return article.id


def test_json_delivery_event_has_article_channel_and_state(make_settings, stream) -> None:  # type: ignore[no-untyped-def]
    ctx = configured(make_settings, stream, format="json")
    article_id = deliver_one(ctx)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # every line is one JSON object
    [event] = [line for line in lines if line.get("event") == "delivery"]
    assert (event["article_id"], event["channel"], event["state"]) == (article_id, "outbox", "sent")
    assert event["level"] == "INFO" and event["logger"] == "distributor.delivery"
    assert event["time"].endswith("+00:00") and article_id in event["message"]


def test_text_is_readable_with_the_fields_appended(make_settings, stream) -> None:  # type: ignore[no-untyped-def]
    ctx = configured(make_settings, stream)
    article_id = deliver_one(ctx)
    [line] = [line for line in stream.getvalue().splitlines() if "distributor.delivery" in line]
    pattern = (
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} INFO distributor.delivery: delivery {article_id} to outbox: "
        rf"sent: \S+ \| article_id={article_id} channel=outbox state=sent"
    )
    assert re.fullmatch(pattern, line), line


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_masked_in_every_format(make_settings, stream, fmt: str) -> None:  # type: ignore[no-untyped-def]
    configured(make_settings, stream, format=fmt)
    log = logging.getLogger("distributor.test")
    log.warning("Redis at %s is unavailable", "redis://:s3cret-pass@10.0.0.5:6379/0")
    log.info("calling https://api.telegram.org/bot%s/sendMessage", TOKEN)
    try:
        raise RuntimeError(f"platform said no to token {TOKEN}")
    except RuntimeError:
        log.exception(
            "delivery failed", extra=logs.event("delivery", channel="telegram", url=f"https://x/?token={TOKEN}")
        )
    out = stream.getvalue()
    assert "s3cret-pass" not in out and TOKEN not in out
    assert "redis://:***@10.0.0.5:6379/0" in out and "/bot***/sendMessage" in out
    assert "Traceback" in out  # the traceback is kept, masked
    if fmt == "json":
        assert all(json.loads(line) for line in out.splitlines() if line.startswith("{"))


def test_level_setting_drops_lower_levels(make_settings, stream) -> None:  # type: ignore[no-untyped-def]
    configured(make_settings, stream, level="warning")
    logging.getLogger("distributor.test").info("routine")
    logging.getLogger("distributor.test").warning("needs a look")
    assert "routine" not in stream.getvalue() and "needs a look" in stream.getvalue()


def test_a_second_configure_replaces_the_handler(make_settings, stream) -> None:  # type: ignore[no-untyped-def]
    configured(make_settings, stream)
    configured(make_settings, stream, format="json")
    logging.getLogger("distributor.test").warning("once")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == ["once"]


def test_unknown_format_is_a_config_error_naming_the_key(make_settings) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        make_settings(logging={"format": "xml"})
    assert any("[logging] key 'format'" in problem and "'xml'" in problem for problem in caught.value.problems)


def test_a_poll_that_finds_an_article_is_one_event(make_settings, stream, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "articles"
    folder.mkdir()
    files = {"name": "files", "type": "directory", "path": str(folder)}
    settings = make_settings(sources=[files], logging={"format": "json"})
    logs.configure(settings, stream=stream)
    ctx = Context.create(settings)
    (folder / "a.md").write_text('---\ntitle: "Tin"\n---\nNội dung.\n', encoding="utf-8")
    pipeline.poll_source(ctx, "files", InlineDispatcher(ctx, deliver=False))
    [poll] = [e for e in map(json.loads, stream.getvalue().splitlines()) if e.get("event") == "poll"]
    assert (poll["source"], poll["state"], poll["new"], poll["errors"]) == ("files", "new", 1, 0)
