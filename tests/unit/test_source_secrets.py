"""A source URL's password and token stay out of poll reports, logs and `distributor sources test`
whatever goes wrong, while the host still tells the operator where the problem is."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distributor import pipeline
from distributor.cli import app
from distributor.context import Context, reset_context
from distributor.inline import InlineDispatcher
from distributor.sources.feed import FeedSource
from tests.fakes.server import Reply
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file

SECRETS = ("s3cret", "abc123")


def secret_url(base: str) -> str:
    host_port = base.removeprefix("http://")
    return f"http://reader:s3cret@{host_port}/feed?token=abc123"


def closed_port_base() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def poll(make_settings, url: str) -> pipeline.PollReport:  # type: ignore[no-untyped-def]
    table = {"name": "portal", "type": "feed", "url": url, "politeness": 0, "retries": 0}
    ctx = Context.create(make_settings(sources=[table]))
    return pipeline.poll_source(ctx, "portal", InlineDispatcher(ctx))


def assert_masked(text: str) -> None:
    assert "127.0.0.1" in text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("failure", ["404", "refused", "redirect loop"])
def test_a_failing_source_keeps_its_secrets(make_settings, server, caplog, failure) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)  # urllib3's request lines too
    if failure == "refused":
        url = secret_url(closed_port_base())
    else:
        url = secret_url(server.url)
        if failure == "redirect loop":
            server.add("GET", "/feed", lambda r: Reply(302, b"", {"Location": "/feed2?token=abc123"}))
            server.add("GET", "/feed2", lambda r: Reply(302, b"", {"Location": "/feed?token=abc123"}))

    report = poll(make_settings, url)

    [error] = report.errors
    assert_masked(error)
    assert "http://reader:***@127.0.0.1:" in error and "token=***" in error
    assert_masked(caplog.text)
    if failure == "404":
        assert "HTTP 404" in error
        assert server.requests[0].query == {"token": ["abc123"]}  # the real URL was used
        assert server.requests[0].header("Authorization", "").startswith("Basic ")


def test_an_unexpected_error_quoting_the_url_keeps_its_secrets(make_settings, server, caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = secret_url(server.url)

    def broken(self, state):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"a bug met while reading {url}")

    monkeypatch.setattr(FeedSource, "poll", broken)
    report = poll(make_settings, url)

    [error] = report.errors
    assert_masked(error)
    assert "RuntimeError" in error
    assert_masked(caplog.text)
    assert "Traceback" in caplog.text  # the traceback is still there for the developer


def test_sources_test_keeps_its_secrets(tmp_path: Path, redis_url: str, prefix: str, server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DISTRIBUTOR_CONFIG", "unused")
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", redis_url)
    monkeypatch.setenv("COLUMNS", "250")
    source = f'\n[[sources]]\nname = "portal"\ntype = "feed"\nurl = "{secret_url(server.url)}"\nretries = 0\n'
    config = config_file(tmp_path, redis_url, prefix, ALL_FEEDS_AND_OUTBOX + source)
    try:
        result = CliRunner().invoke(app, ["sources", "test", "portal", "--config", str(config)])
    finally:
        reset_context()
    assert result.exit_code == 1
    assert "HTTP 404" in result.output
    assert_masked(result.output)
