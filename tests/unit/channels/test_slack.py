from __future__ import annotations

from collections.abc import Callable

import pytest

from distributor.channels.slack import Slack, slack_length
from distributor.errors import ChannelError
from distributor.models import Post
from tests.fakes.server import Reply
from tests.fakes.slack import BOT, SECRET, TEAM, SlackFake, rate_limited
from tests.unit.channels.secret_url_cases import (
    HARD,
    SEED,
    ErrorCase,
    assert_classified,
    assert_logs_hide,
    assert_rejected,
    assert_unreachable_hides,
    build,
    closed_port_url,
    fake_fixtures,
    text_post,
)
from tests.unit.channels.vi_articles import article

server, fake = fake_fixtures(SlackFake)
REAL_URL = f"https://hooks.slack.com/services/{TEAM}/{BOT}/{SECRET}"


def slack(fake: SlackFake, **keys: object) -> Slack:
    channel = build("slack", **{"url": fake.url + fake.webhook_path, **keys})
    assert isinstance(channel, Slack)
    return channel


# --- configuration -------------------------------------------------------------------------------


def test_config_is_built_and_hides_the_url() -> None:
    channel = build("slack", url=REAL_URL)
    assert isinstance(channel, Slack)
    assert channel.config.url.get_secret_value() == REAL_URL
    assert SECRET not in repr(channel.settings)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, "key 'url' is required but missing"),
        (
            {"url": f"hooks.slack.com/services/{TEAM}/{BOT}/{SECRET}"},
            "key 'url' must be an http(s) URL",
        ),
        ({"url": "${SLACK_WEBHOOK_UNSET}"}, "environment variable SLACK_WEBHOOK_UNSET"),
        ({"url": REAL_URL, "channel": "#tin-tuc"}, "key 'channel' is not a known key"),
    ],
    ids=["no-url", "not-http", "env-unset", "channel-cannot-be-chosen"],
)
def test_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str) -> None:
    assert_rejected("slack", keys, expected, SECRET)


# --- rendering and sending -----------------------------------------------------------------------


def test_blocks_carry_the_linked_title_summary_image_and_site(fake: SlackFake) -> None:
    channel = slack(fake)
    item = article(title="Giá <vàng> & USD", summary="<!channel> tỷ giá ổn định", image=SEED.image)
    post = channel.render(item)

    assert channel.send(post, "key-1").post_id is None  # Slack gives webhooks no message id

    [sent] = fake.posts
    section, context = sent["blocks"]
    assert section["text"] == {"type": "mrkdwn", "text": post.text}
    assert section["text"]["text"].startswith(f"*<{post.url}|Giá &lt;vàng&gt; &amp; USD>*\n")
    assert "&lt;!channel&gt; tỷ giá ổn định" in post.text  # no @channel ping from the portal's text
    assert "#TinTucSuKien" in post.text
    assert section["accessory"] == {
        "type": "image",
        "image_url": SEED.image,
        "alt_text": "Giá <vàng> & USD",
    }
    assert context["elements"][0]["text"].startswith("Cổng thông tin điện tử tỉnh · 13/07/2021")
    assert sent["text"] == post.text
    assert sent["unfurl_links"] is False
    assert "utm_source=slack" in post.url


def test_a_pipe_in_the_url_cannot_cut_the_link(fake: SlackFake) -> None:
    post = slack(fake).render(article(url="https://example.gov.vn/tin?id=1|2"))
    assert post.text.startswith("*<https://example.gov.vn/tin?id=1%7C2&utm_source=slack")
    assert post.text.split("|", 1)[1].startswith("Ban Dân vận")


def test_without_an_image_there_is_no_accessory(fake: SlackFake) -> None:
    channel = slack(fake)
    channel.send(channel.render(article(image=None)), "key-1")
    assert "accessory" not in fake.posts[0]["blocks"][0]


def test_api_base_redirects_a_real_webhook_url(fake: SlackFake) -> None:
    channel = build("slack", url=REAL_URL, api_base=fake.url)
    channel.send(channel.render(SEED), "key-1")
    assert fake.requests[0].path == fake.webhook_path


@pytest.mark.parametrize("name", list(HARD))
def test_hard_articles_fit_the_section_limit(fake: SlackFake, name: str) -> None:
    channel = slack(fake)
    post = channel.render(HARD[name])
    assert post.length == slack_length(post.text) <= post.limit == 3000
    assert post.text.startswith(f"*<{post.url}|")
    channel.send(post, "key-1")  # the fake refuses a section over 3000
    assert len(fake.posts) == 1


# --- errors --------------------------------------------------------------------------------------


def _post(text: str) -> Post:
    return text_post("slack", text)


ERRORS = [
    ErrorCase(
        "rate-limit",
        lambda f: f.then(rate_limited(30)),
        _post("x"),
        False,
        30.0,
        "Slack: rate_limited",
        "rate_limited",
    ),
    ErrorCase(
        "rollup-error",
        lambda f: f.then(Reply(500, "rollup_error")),
        _post("x"),
        False,
        None,
        "Slack: rollup_error",
    ),
    ErrorCase(
        "unavailable",
        lambda f: f.then(Reply(503, "<html>down</html>")),
        _post("x"),
        False,
        None,
        "<html>down",
        "503",
    ),
    ErrorCase(
        "no-service",
        lambda f: f.hooks.clear(),
        _post("x"),
        True,
        None,
        "no_service: the webhook was removed",
    ),
    ErrorCase(
        "bad-token",
        lambda f: f.hooks.update({(TEAM, BOT): "other"}),
        _post("x"),
        True,
        None,
        "invalid_token: the",
    ),
    ErrorCase(
        "archived",
        lambda f: setattr(f, "archived", True),
        _post("x"),
        True,
        None,
        "channel_is_archived: the channel is archived",
        "channel_is_archived",
    ),
    ErrorCase(
        "invalid-blocks",
        lambda f: None,
        _post("x" * 3001),
        True,
        None,
        "Slack: invalid_blocks",
        "invalid_blocks",
    ),
    ErrorCase(
        "odd-200",
        lambda f: f.then(Reply(200, "<html>maintenance</html>")),
        _post("x"),
        True,
        None,
        "unexpected answer '<html>maintenance</html>'",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in ERRORS])
def test_errors_are_classified(fake: SlackFake, case: ErrorCase) -> None:
    assert_classified(slack(fake), fake, case, SECRET)


# --- secrets -------------------------------------------------------------------------------------


def test_url_is_hidden_when_the_connection_fails() -> None:
    assert_unreachable_hides(build("slack", url=f"{closed_port_url()}/services/{TEAM}/{BOT}/{SECRET}"), SECRET)


def test_url_is_hidden_in_debug_logs(fake: SlackFake, caplog: pytest.LogCaptureFixture) -> None:
    assert_logs_hide(slack(fake), caplog, SECRET)


# --- check ---------------------------------------------------------------------------------------


def test_check_proves_the_webhook_without_posting(fake: SlackFake) -> None:
    found = slack(fake).check()
    assert found.startswith("webhook at http://127.0.0.1/*** is live")
    assert "nothing posted" in found
    assert fake.posts == []


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda f: f.hooks.clear(), "no_service"),
        (lambda f: setattr(f, "archived", True), "channel_is_archived"),
    ],
    ids=["revoked", "archived"],
)
def test_check_fails_for_a_dead_webhook(fake: SlackFake, setup: Callable[[SlackFake], None], fragment: str) -> None:
    setup(fake)
    with pytest.raises(ChannelError, match=fragment) as caught:
        slack(fake).check()
    assert caught.value.permanent


# --- corrections and retractions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("edit", "a Slack incoming webhook cannot edit what it posted (Slack returns no message id to webhooks)"),
        ("delete", "a Slack incoming webhook cannot delete what it posted (Slack returns no message id to webhooks)"),
    ],
)
def test_a_webhook_message_cannot_be_edited_or_deleted_and_nothing_is_sent(
    fake: SlackFake, operation: str, reason: str
) -> None:
    channel = slack(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.post_id is None and not channel.can_edit and not channel.can_delete
    with pytest.raises(ChannelError) as caught:
        if operation == "edit":
            channel.edit(channel.render(SEED), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.message == reason
    assert len(fake.requests) == 1
    assert SECRET not in caught.value.message
