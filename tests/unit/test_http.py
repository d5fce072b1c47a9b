"""Outbound HTTP: the proxy environment is honoured although it is read once per host when it names
no proxy (see `distributor.http`)."""

from __future__ import annotations

import pytest

from distributor import http
from tests.fakes.server import FakeServer, Reply


@pytest.fixture
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(http._local, "session", raising=False)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def test_a_configured_proxy_carries_the_requests(fresh_session: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer() as direct, FakeServer() as proxy:
        direct.add("GET", "/hello", lambda request: Reply(200, "direct"))
        proxy.add("GET", "/hello", lambda request: Reply(200, "proxied"))
        assert http.request("GET", f"{direct.url}/hello").text == "direct"
        assert http.request("GET", f"{direct.url}/hello").text == "direct"  # the environment remembered
        monkeypatch.setenv("http_proxy", proxy.url)
        assert http.request("GET", "http://portal.example.invalid/hello").text == "proxied"
        assert proxy.requests[-1].header("Host") == "portal.example.invalid"
