from __future__ import annotations

from collections.abc import Callable

import pytest

from distributor.channels.slack import Slack, slack_length
from distributor.errors import ChannelError
from distributor.models import Post, Receipt
from tests.fakes.server import Reply
from tests.fakes.slack import (
    BOT,
    BOT_TOKEN,
    CHANNEL,
    SECRET,
    TEAM,
    WORKSPACE,
    SlackFake,
    api_error,
    api_rate_limited,
    rate_limited,
)
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
        ({}, "needs key 'url' (an incoming webhook URL: posts only) or keys 'token' and 'channel'"),
        (
            {"url": f"hooks.slack.com/services/{TEAM}/{BOT}/{SECRET}"},
            "key 'url' must be an http(s) URL",
        ),
        ({"url": "${SLACK_WEBHOOK_UNSET}"}, "environment variable SLACK_WEBHOOK_UNSET"),
        ({"url": REAL_URL, "channel": CHANNEL}, "sets both 'url' (an incoming webhook) and 'token'/'channel'"),
        ({"url": REAL_URL, "username": "Tin tức"}, "key 'username' is not a known key"),
    ],
    ids=["no-url", "not-http", "env-unset", "webhook-cannot-choose-its-channel", "unknown-key"],
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


# --- Web API mode (bot token + channel): posts, corrections and retractions ------------------------


def bot(fake: SlackFake, **keys: object) -> Slack:
    channel = build("slack", **{"token": BOT_TOKEN, "channel": CHANNEL, "api_base": fake.url, **keys})
    assert isinstance(channel, Slack)
    return channel


def test_bot_config_is_built_can_edit_and_delete_and_hides_the_token() -> None:
    channel = build("slack", token=f" {BOT_TOKEN} ", channel=CHANNEL)
    assert isinstance(channel, Slack)
    assert channel.config.token is not None and channel.config.token.get_secret_value() == BOT_TOKEN
    assert channel.can_edit and channel.can_delete
    assert BOT_TOKEN not in repr(channel.settings) and BOT_TOKEN not in str(channel.settings)
    webhook = build("slack", url=REAL_URL)
    assert not webhook.can_edit and not webhook.can_delete  # decided per configured channel, not per type


@pytest.mark.parametrize(
    ("keys", "expected", "secret"),
    [
        ({"token": BOT_TOKEN}, "key 'channel' is required with 'token'", BOT_TOKEN),
        ({"channel": CHANNEL}, "key 'token' is required with 'channel'", BOT_TOKEN),
        ({"token": BOT_TOKEN, "url": REAL_URL}, "sets both 'url' (an incoming webhook) and 'token'", BOT_TOKEN),
        (
            {"token": BOT_TOKEN, "channel": "#tin-tuc"},
            "key 'channel' must be the channel's id, like C0123456789, not its name",
            BOT_TOKEN,
        ),
        (
            {"token": REAL_URL, "channel": CHANNEL},
            "key 'token' must be a Slack bot token (it starts with xoxb-)",
            SECRET,
        ),
        ({"token": "${SLACK_BOT_TOKEN_UNSET}", "channel": CHANNEL}, "environment variable SLACK_BOT_TOKEN_UNSET", ""),
    ],
    ids=["token-without-channel", "channel-without-token", "both-modes", "channel-name", "not-a-token", "env-unset"],
)
def test_bot_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str, secret: str) -> None:
    assert_rejected("slack", keys, expected, secret or BOT_TOKEN)


def test_post_keeps_channel_and_ts_and_the_permalink(fake: SlackFake) -> None:
    channel = bot(fake)
    post = channel.render(SEED)

    receipt = channel.send(post, "key-1")

    [(where, ts)] = fake.messages
    assert where == CHANNEL and receipt.post_id == ts
    assert receipt.data == {"channel": CHANNEL, "ts": ts}
    assert receipt.url == fake.permalink(CHANNEL, ts)
    sent = fake.requests[0]
    assert sent.path == "/api/chat.postMessage"
    assert sent.header("Authorization") == f"Bearer {BOT_TOKEN}"
    body = sent.json()
    assert body["channel"] == CHANNEL and body["text"] == post.text
    assert body["blocks"] == channel.payload(post)["blocks"]
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    assert "token" not in body  # only in the header


def test_an_edit_replaces_text_and_blocks_in_place_once(fake: SlackFake) -> None:
    channel = bot(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    corrected = channel.render(article(title="Hội nghị Dân vận (đã đính chính)", image=None))

    first = channel.edit(corrected, receipt, "key-1")
    again = channel.edit(corrected, first, "key-1")  # a retried edit: still one message

    assert first == again and first.post_id == receipt.post_id and first.url == receipt.url
    assert first.data == receipt.data
    [message] = fake.messages.values()
    assert message["text"] == corrected.text and "đã đính chính" in message["text"]
    assert message["blocks"] == channel.payload(corrected)["blocks"]
    assert "accessory" not in message["blocks"][0]  # the old image went with the old blocks
    assert "edited" in message
    assert [r.path for r in fake.requests].count("/api/chat.postMessage") == 1  # never re-posted


def test_a_delete_removes_the_message_and_a_message_already_gone_counts_as_deleted(fake: SlackFake) -> None:
    channel = bot(fake)
    receipt = channel.send(channel.render(SEED), "key-1")

    channel.delete(receipt, "key-1")
    assert fake.messages == {}
    channel.delete(receipt, "key-1")  # retried, or deleted by hand in Slack: message_not_found is success

    assert fake.requests[-1].json() == {"channel": CHANNEL, "ts": receipt.post_id}


@pytest.mark.parametrize(
    ("operation", "arrange", "expected"),
    [
        (
            "edit",
            lambda f: None,
            "Slack chat.update: cant_update_message: Slack lets a bot edit only the messages it posted itself",
        ),
        (
            "delete",
            lambda f: None,
            "Slack chat.delete: cant_delete_message: Slack lets a bot delete only the messages it posted itself",
        ),
        (
            "edit-late",
            lambda f: setattr(f, "edit_window_closed", True),
            "Slack chat.update: edit_window_closed: the workspace allows editing messages only for a while",
        ),
        (
            "edit-gone",
            lambda f: f.messages.clear(),
            "Slack chat.update: message_not_found: the message is no longer in the channel",
        ),
    ],
    ids=["edit-someone-elses", "delete-someone-elses", "edit-window-closed", "edit-deleted"],
)
def test_refusals_are_permanent_with_slacks_code_and_a_hint(
    fake: SlackFake, operation: str, arrange: Callable[[SlackFake], None], expected: str
) -> None:
    channel = bot(fake)
    if operation in ("edit", "delete"):
        ts = fake.human_message()
        receipt = Receipt(post_id=ts, data={"channel": CHANNEL, "ts": ts})
    else:
        receipt = channel.send(channel.render(SEED), "key-1")
    before = dict(fake.messages)
    arrange(fake)
    with pytest.raises(ChannelError) as caught:
        if operation == "delete":
            channel.delete(receipt, "key-1")
        else:
            channel.edit(channel.render(article(title="Tiêu đề mới")), receipt, "key-1")
    assert caught.value.permanent and expected in caught.value.message
    assert caught.value.code == expected.split(": ")[1]
    assert fake.messages == ({} if operation == "edit-gone" else before)  # nothing changed


def test_a_message_posted_through_the_webhook_cannot_be_edited_after_switching_to_a_token(fake: SlackFake) -> None:
    with pytest.raises(ChannelError, match=r"channel and ts are unknown .* cannot be edited") as caught:
        bot(fake).edit(bot(fake).render(SEED), Receipt(), "key-1")
    assert caught.value.permanent and fake.requests == []


API_ERRORS = [
    ErrorCase(
        "rate-limit", lambda f: f.then(api_rate_limited(30)), _post("x"), False, 30.0, "ratelimited", "ratelimited"
    ),
    ErrorCase("unavailable", lambda f: f.then(Reply(503, "<html>down</html>")), _post("x"), False, None, "<html>down"),
    ErrorCase(
        "revoked",
        lambda f: f.tokens.update({BOT_TOKEN: "token_revoked"}),
        _post("x"),
        True,
        None,
        "token_revoked: the bot token was revoked",
        "token_revoked",
    ),
    ErrorCase(
        "wrong-token",
        lambda f: f.tokens.clear(),
        _post("x"),
        True,
        None,
        "invalid_auth: the bot token is wrong",
        "invalid_auth",
    ),
    ErrorCase(
        "inactive",
        lambda f: f.tokens.update({BOT_TOKEN: "account_inactive"}),
        _post("x"),
        True,
        None,
        "account_inactive: the bot or the workspace was deactivated",
        "account_inactive",
    ),
    ErrorCase(
        "missing-scope",
        lambda f: f.then(api_error("missing_scope", needed="chat:write")),
        _post("x"),
        True,
        None,
        "missing_scope (needs chat:write): add the scope",
        "missing_scope",
    ),
    ErrorCase(
        "not-in-channel",
        lambda f: f.channels.update({CHANNEL: False}),
        _post("x"),
        True,
        None,
        "not_in_channel: the bot is not in the channel: invite it",
        "not_in_channel",
    ),
    ErrorCase("invalid-blocks", lambda f: None, _post("x" * 3001), True, None, "invalid_blocks", "invalid_blocks"),
    ErrorCase(
        "odd-200",
        lambda f: f.then(Reply(200, "<html>maintenance</html>")),
        _post("x"),
        True,
        None,
        "unexpected answer '<html>maintenance</html>'",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in API_ERRORS])
def test_web_api_errors_are_classified_and_never_show_the_token(fake: SlackFake, case: ErrorCase) -> None:
    error = assert_classified(bot(fake), fake, case, BOT_TOKEN)
    assert not error.maybe_sent and fake.messages == {}


def test_an_internal_error_on_posting_may_have_posted(fake: SlackFake) -> None:
    fake.then(api_error("internal_error"))
    with pytest.raises(ChannelError) as caught:
        bot(fake).send(_post("x"), "key-1")
    assert not caught.value.permanent and caught.value.maybe_sent  # Slack: "some aspect may have succeeded"


def test_a_rate_limited_delete_is_retried_later(fake: SlackFake) -> None:
    channel = bot(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    fake.then(api_rate_limited(12))
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "key-1")
    assert not caught.value.permanent and caught.value.retry_after == 12.0
    assert len(fake.messages) == 1


def test_a_permalink_failure_does_not_fail_a_post_that_exists(fake: SlackFake) -> None:
    fake.then(Reply(200, {"ok": True, "channel": CHANNEL, "ts": "1700000000.000999", "message": {}}))
    fake.then(api_error("internal_error"))
    receipt = bot(fake).send(_post("x"), "key-1")
    assert receipt.post_id == "1700000000.000999" and receipt.url is None
    assert receipt.data == {"channel": CHANNEL, "ts": "1700000000.000999"}


def test_token_is_hidden_when_the_connection_fails_and_in_debug_logs(
    fake: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    assert_unreachable_hides(build("slack", token=BOT_TOKEN, channel=CHANNEL, api_base=closed_port_url()), BOT_TOKEN)
    assert_logs_hide(bot(fake), caplog, BOT_TOKEN)


def test_bot_check_calls_auth_test_and_posts_nothing(fake: SlackFake) -> None:
    found = bot(fake).check()
    assert found == (f"bot 'distributor' in workspace 'Tỉnh ủy (thử nghiệm)' ({WORKSPACE}) posts to channel {CHANNEL}")
    assert [r.path for r in fake.requests] == ["/api/auth.test"] and fake.messages == {}


def test_bot_check_fails_for_a_revoked_token(fake: SlackFake) -> None:
    fake.tokens[BOT_TOKEN] = "token_revoked"
    with pytest.raises(ChannelError, match="token_revoked") as caught:
        bot(fake).check()
    assert caught.value.permanent and BOT_TOKEN not in caught.value.message
