"""Apprise: URLs validated at startup, real delivery over json:// and form:// to a loopback
server, failures as transient errors naming targets without their secrets, no repeat to the
targets that already got a message."""

from __future__ import annotations

import logging

import pytest

from distributor.channels.apprise import Apprise, redact
from distributor.errors import ChannelError, ConfigError
from tests.fakes.server import FakeServer, Reply
from tests.unit.channels.vi_articles import SEED_TITLE, article, channel_from, hard_articles

TOKEN = "hookTOKEN7c1e"
PASSWORD = "s3cretPW9"


@pytest.fixture(scope="module")
def shared_server():
    with FakeServer() as server:
        yield server


@pytest.fixture
def server(shared_server):
    shared_server.routes.clear()
    shared_server.requests.clear()
    shared_server.add("POST", r"/ok/.*", lambda request: Reply(200, {"ok": True}))
    shared_server.add("POST", r"/down/.*", lambda request: Reply(500, "Internal Server Error"))
    return shared_server


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name} {record.getMessage()}")


@pytest.fixture
def service_logs():
    """What the service's own log handlers (on the root logger) receive, at every level.

    (pytest's caplog also hooks non-propagating loggers, so it cannot show this.)"""
    root = logging.getLogger()
    handler, level = Collect(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def json_url(server, route="ok", secret=TOKEN) -> str:
    host = server.url.removeprefix("http://")
    return f"json://user:{PASSWORD}@{host}/{route}/{secret}"


def form_url(server, route="ok") -> str:
    return f"form://{server.url.removeprefix('http://')}/{route}/{TOKEN}-form"


def make(urls, **keys) -> Apprise:
    channel = channel_from({"name": "longtail", "type": "apprise", "urls": urls, **keys})
    assert isinstance(channel, Apprise)
    return channel


# --- configuration -------------------------------------------------------------------------------


def test_config_with_env_secret(server, monkeypatch):
    monkeypatch.setenv("NOTIFY_URL", json_url(server))
    channel = make(["${NOTIFY_URL}"])
    assert channel.config.urls[0].get_secret_value() == json_url(server)
    assert channel.config.title is True
    assert TOKEN not in repr(channel.settings) and PASSWORD not in repr(channel.settings)


@pytest.mark.parametrize(
    ("urls", "problem"),
    [
        ([], "key 'urls'"),
        ([f"foobar://{TOKEN}@host/x"], "urls[0] (foobar://...) is not a URL apprise recognises"),
        ([f"json://127.0.0.1/{TOKEN}", f"no scheme {TOKEN}"], "urls[1] (?://...) is not a URL apprise"),
    ],
)
def test_config_rejected_without_showing_the_url(urls, problem, service_logs):
    with pytest.raises(ConfigError) as caught:
        make(urls)
    assert problem in str(caught.value)
    assert TOKEN not in str(caught.value) and not [line for line in service_logs if TOKEN in line]


# --- delivery ------------------------------------------------------------------------------------


def test_json_target_gets_title_and_body(server):
    channel = make([json_url(server)])
    post = channel.render(article())
    receipt = channel.send(post, "k")
    [request] = server.requests
    assert request.path == f"/ok/{TOKEN}"
    assert request.header("Authorization", "").startswith("Basic ")
    payload = request.json()
    assert payload["title"] == SEED_TITLE and payload["message"] == post.text
    assert not post.text.startswith(SEED_TITLE)  # the title travels on its own
    assert post.url in payload["message"] and "#TinTucSuKien" in payload["message"]
    assert receipt.post_id == "1 apprise target(s)"


def test_title_in_body_when_asked(server):
    channel = make([form_url(server)], title=False)
    post = channel.render(article())
    channel.send(post, "k")
    fields = server.requests[0].form()
    assert fields["message"].startswith(SEED_TITLE) and fields["title"] == ""


def test_every_target_is_notified(server):
    channel = make([json_url(server), form_url(server)])
    channel.send(channel.render(article()), "k")
    assert sorted(r.path for r in server.requests) == [f"/ok/{TOKEN}", f"/ok/{TOKEN}-form"]


def test_failure_is_transient_and_secrets_stay_hidden(server, service_logs):
    channel = make([json_url(server, "down")])
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    error = caught.value
    assert not error.permanent and "1 of 1 targets failed: target #1 (json)" in error.message
    for secret in (TOKEN, PASSWORD):
        assert secret not in str(error) and secret not in repr(error)
        leaks = [line for line in service_logs if secret in line]
        # Only urllib3's DEBUG request line shows the path (as for every HTTP call); nothing else.
        assert all(line.startswith("DEBUG urllib3.") for line in leaks), leaks


def test_unreachable_target_is_transient(server):
    with FakeServer() as gone:
        url = f"json://{gone.url.removeprefix('http://')}/{TOKEN}"
    with pytest.raises(ChannelError) as caught:
        make([url]).send(make([url]).render(article()), "k")
    assert not caught.value.permanent and TOKEN not in str(caught.value)


def test_a_retry_skips_targets_that_already_got_the_message(server):
    channel = make([json_url(server), json_url(server, "down", "second")])
    post = channel.render(article())
    with pytest.raises(ChannelError, match="1 of 2 targets failed: target #2"):
        channel.send(post, "k-partial")
    server.add("POST", "/down/second", lambda request: Reply(200, {"ok": True}))
    server.routes.insert(0, server.routes.pop())  # the repaired route answers first
    channel.send(post, "k-partial")
    assert [r.path for r in server.requests] == [f"/ok/{TOKEN}", "/down/second", "/down/second"]
    channel.send(post, "k-next")  # a new article goes to every target again
    assert [r.path for r in server.requests][-2:] == [f"/ok/{TOKEN}", "/down/second"]


def test_check_contacts_nothing(server):
    assert make([json_url(server), form_url(server)]).check().startswith("2 apprise target(s): json, form")
    assert server.requests == []


def test_redact_hides_every_piece_of_the_url():
    url = f"tgram://123456789:{TOKEN}/-100987654321"
    assert redact(f"Failed to send to {url} with bot {TOKEN}", url) == "Failed to send to *** with bot ***"


@pytest.mark.parametrize("name", list(hard_articles()))
def test_hard_articles_fit(server, name):
    channel = make([json_url(server)], max_characters=500)
    post = channel.render(hard_articles()[name])
    assert post.length <= 500 and post.url in post.text
    channel.send(post, f"k-{name}")
    assert server.requests[-1].json()["message"] == post.text


# --- corrections and retractions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("edit", "Apprise only sends notifications; it cannot change one once sent"),
        ("delete", "Apprise only sends notifications; it cannot withdraw one once sent"),
    ],
)
def test_a_notification_cannot_be_edited_or_withdrawn_and_nothing_is_sent(server, operation, reason):
    channel = make([json_url(server)])
    receipt = channel.send(channel.render(article()), "key-1")
    assert not channel.can_edit and not channel.can_delete
    with pytest.raises(ChannelError) as caught:
        if operation == "edit":
            channel.edit(channel.render(article(title="Đính chính")), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.message == reason
    assert len(server.requests) == 1
