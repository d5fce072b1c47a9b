"""Fixtures shared by unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.server import FakeServer


@pytest.fixture(scope="module")
def shared_server() -> Iterator[FakeServer]:
    with FakeServer() as fake:  # one server per module: stopping one takes half a second
        yield fake


@pytest.fixture
def server(shared_server: FakeServer) -> FakeServer:
    """A loopback FakeServer with no routes and no recorded requests."""
    shared_server.routes.clear()
    shared_server.requests.clear()
    return shared_server
