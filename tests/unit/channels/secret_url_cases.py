"""Shared by the tests of the channels whose secret sits in the URL (Telegram, Discord, Slack,
Teams, webhook): the hard articles with an image, a builder, and the "secret stays hidden" check."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from distributor.channels.base import Channel
from distributor.errors import ConfigError
from distributor.models import Article
from tests.fakes.scripted import ScriptedFake
from tests.unit.channels.vi_articles import SEED_SUMMARY, article, channel_from, hard_articles

Fake = TypeVar("Fake", bound=ScriptedFake)

IMAGE = "https://tinhuy.example.gov.vn/PublishingImages/2021/07/hoi-nghi-dan-van.jpg"
SEED = article(image=IMAGE)
HARD: dict[str, Article] = {
    **{name: item.model_copy(update={"image": IMAGE}) for name, item in hard_articles().items()},
    "long summary": article(summary=SEED_SUMMARY * 6, image=IMAGE),
}


def build(kind: str, **keys: Any) -> Channel:
    """A channel of `kind` configured as an operator would, through the settings loader."""
    return channel_from({"name": f"{kind}-test", "type": kind, **keys})


def config_problems(kind: str, **keys: Any) -> str:
    """The ConfigError text for a channel entry (empty when it is valid)."""
    try:
        build(kind, **keys)
    except ConfigError as exc:
        return str(exc)
    return ""


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the connection is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_hidden(error: BaseException, secret: str) -> None:
    """`secret` appears nowhere an operator or a log could see it: message, repr, traceback."""
    for shown in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert secret not in shown
    assert error.__cause__ is None and error.__context__ is None  # a requests error holds the URL


def fake_fixtures(cls: type[Fake]) -> tuple[Callable[[], Iterator[Fake]], Callable[[Fake], Fake]]:
    """`server, fake = fake_fixtures(TelegramFake)`: one server per test module (stopping one takes
    half a second), reset before each test."""

    @pytest.fixture(scope="module")
    def server() -> Iterator[Fake]:
        with cls() as started:
            yield started

    @pytest.fixture
    def fake(server: Fake) -> Fake:
        server.reset()
        return server

    return server, fake
