"""Shared by the tests of the channels whose secret sits in the URL (Telegram, Discord, Slack,
Teams, webhook): the hard articles with an image, a builder, a runner for error tables, and the
checks that the secret stays out of errors and logs."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from distributor.channels.base import Channel
from distributor.errors import ChannelError, ConfigError
from distributor.models import Article, Post
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


def assert_rejected(kind: str, keys: dict[str, Any], expected: str, secret: str) -> None:
    """The entry is refused with a message containing `expected` and never quoting `secret`."""
    with pytest.raises(ConfigError) as caught:
        build(kind, **keys)
    assert expected in str(caught.value)
    assert secret not in str(caught.value)


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


def text_post(kind: str, text: str, **extra: Any) -> Post:
    """A post as the pipeline would hand it over, bypassing rendering (to reach platform limits)."""
    return Post(
        channel=f"{kind}-test",
        kind=kind,
        article_id="a",
        text=text,
        url="https://example.org/a",
        extra=extra,
    )


# --- error tables --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    """One platform answer and how the channel must classify it."""

    name: str
    setup: Callable[[Any], None]  # arranges the fake (queue a reply, revoke a token...)
    post: Post
    permanent: bool
    retry_after: float | None
    fragment: str  # must appear in the ChannelError message
    code: str | None = None

    def param(self) -> Any:
        return pytest.param(self, id=self.name)


def assert_classified(channel: Channel, fake: ScriptedFake, case: ErrorCase, secret: str) -> ChannelError:
    case.setup(fake)
    with pytest.raises(ChannelError) as caught:
        channel.send(case.post, "key-1")
    error = caught.value
    assert error.permanent is case.permanent
    assert error.retry_after == case.retry_after
    assert case.fragment in error.message
    if case.code is not None:
        assert error.code == case.code
    assert fake.posts == []
    assert_hidden(error, secret)
    return error


# --- secrets -------------------------------------------------------------------------------------


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


def assert_unreachable_hides(channel: Channel, secret: str) -> None:
    """A refused connection is transient, and `requests`' text (with the URL) does not leak."""
    with pytest.raises(ChannelError) as caught:
        channel.send(text_post(channel.kind, "x"), "key-1")
    assert not caught.value.permanent
    assert "connection failed: 127.0.0.1" in caught.value.message
    assert_hidden(caught.value, secret)


def assert_logs_hide(channel: Channel, caplog: pytest.LogCaptureFixture, secret: str) -> None:
    """urllib3 logs every request line at DEBUG; the secret in the URL is masked there."""
    with caplog.at_level(logging.DEBUG):
        channel.send(text_post(channel.kind, "x"), "key-1")
    assert '"POST ' in caplog.text  # the request line was logged...
    assert secret not in caplog.text  # ...without the secret
