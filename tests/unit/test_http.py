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


def test_the_lean_path_sends_what_requests_would(fresh_session: None) -> None:
    """Headers merged with the session's (None removes one), JSON, form and query encoded as requests
    does, the answer readable after the call."""
    with FakeServer() as server:
        server.add("POST", "/api", lambda request: Reply(201, {"id": "42"}))
        answer = http.request("POST", f"{server.url}/api", json={"tin": "Ủy ban"}, params={"q": "a b"},
                              headers={"X-Key": "k1"})  # fmt: skip
        assert answer.status_code == 201 and answer.json() == {"id": "42"}
        sent = server.requests[-1]
        assert sent.query == {"q": ["a b"]}
        assert sent.json() == {"tin": "Ủy ban"}
        assert sent.header("X-Key") == "k1" and sent.header("User-Agent") == http.USER_AGENT
        http.request("POST", f"{server.url}/api", data={"a": "1"}, headers={"User-Agent": None})
        assert server.requests[-1].body == b"a=1"
        assert server.requests[-1].header("User-Agent") != http.USER_AGENT  # the session's, removed


def test_redirects_are_followed_only_when_asked(fresh_session: None) -> None:
    with FakeServer() as server:
        server.add("GET", "/old", lambda request: Reply(301, "", headers={"Location": f"{server.url}/new"}))
        server.add("GET", "/new", lambda request: Reply(200, "moved here"))
        kept = http.request("GET", f"{server.url}/old", allow_redirects=False)
        assert kept.status_code == 301 and kept.headers["Location"].endswith("/new")
        followed = http.request("GET", f"{server.url}/old")
        assert followed.text == "moved here" and [r.status_code for r in followed.history] == [301]


def test_no_cookie_is_carried_from_one_call_to_the_next(fresh_session: None) -> None:
    """One session serves every channel and source of a thread: a cookie one platform sets is not
    sent to the next call (nor to another platform on the same host)."""
    with FakeServer() as server:
        server.add("GET", "/set", lambda request: Reply(200, "ok", headers={"Set-Cookie": "sid=secret; Path=/"}))
        server.add("GET", "/next", lambda request: Reply(200, "ok"))
        assert http.request("GET", f"{server.url}/set").cookies.get("sid") == "secret"  # the answer shows it
        http.request("GET", f"{server.url}/next")
        assert server.requests[-1].header("Cookie") is None
