"""WebSub publish pings against a loopback hub: the form hubs expect, and bounded failure."""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import parse_qs

from distributor.feeds.websub import ping
from tests.fakes.server import FakeServer, Reply, Request

TOPICS = ["http://127.0.0.1:8000/feeds/all.rss", "http://127.0.0.1:8000/feeds/all.atom"]


def form_lists(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode("utf-8"))


def test_publish_ping_names_every_topic(server: FakeServer) -> None:
    server.add("POST", "/hub", lambda request: Reply(204))
    assert ping([f"{server.url}/hub"], TOPICS) == []
    [request] = server.requests
    assert request.header("content-type") == "application/x-www-form-urlencoded"
    assert form_lists(request) == {"hub.mode": ["publish"], "hub.url": TOPICS}


def test_every_hub_is_pinged(server: FakeServer) -> None:
    server.add("POST", "/hub/(a|b)", lambda request: Reply(202))
    assert ping([f"{server.url}/hub/a", f"{server.url}/hub/b"], TOPICS[:1]) == []
    assert [r.path for r in server.requests] == ["/hub/a", "/hub/b"]


def test_failing_hub_gives_errors_quickly_and_never_raises(server: FakeServer) -> None:
    calls = []
    release = threading.Event()

    def flaky(request: Request) -> Reply:
        calls.append(request)
        if len(calls) == 1:
            return Reply(500, "hub overloaded")
        release.wait(5)  # then hangs: the client's read timeout must cut it short
        return Reply(204)

    server.add("POST", "/hub", flaky)
    server.add("POST", "/ok", lambda request: Reply(204))
    started = time.perf_counter()
    try:
        errors = ping([f"{server.url}/hub", f"{server.url}/ok"], TOPICS, attempts=3, timeout=0.3, backoff=0.05)
    finally:
        release.set()
    elapsed = time.perf_counter() - started
    assert len(calls) == 3  # bounded attempts
    assert elapsed < 2.0
    assert len(errors) == 1
    assert errors[0].startswith(f"WebSub hub {server.url}/hub: ")
    assert "read timeout" in errors[0] and "after 3 attempts" in errors[0]
    assert [r.path for r in server.requests].count("/ok") == 1  # one bad hub does not stop the rest


def test_a_hub_that_refuses_is_not_asked_again(server: FakeServer) -> None:
    server.add("POST", "/hub", lambda request: Reply(400, "hub.url: unknown topic"))
    errors = ping([f"{server.url}/hub"], TOPICS)
    assert errors == [f"WebSub hub {server.url}/hub: HTTP 400 hub.url: unknown topic (after 1 attempt)"]
    assert len(server.requests) == 1


def test_unreachable_hub_and_credentials_kept_out_of_errors() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    hub = f"http://user:s3cret-token@127.0.0.1:{port}/hub?key=s3cret-key"
    started = time.perf_counter()
    errors = ping([hub, "not a url"], TOPICS, attempts=2, backoff=0.01)
    assert time.perf_counter() - started < 2.0
    assert len(errors) == 2
    assert errors[0].startswith(f"WebSub hub http://127.0.0.1:{port}/hub: connection failed")
    assert all("s3cret" not in error for error in errors)


def test_nothing_to_announce(server: FakeServer) -> None:
    assert ping([f"{server.url}/hub"], []) == []
    assert ping([], TOPICS) == []
    assert server.requests == []
