from __future__ import annotations

import pytest

from distributor.channels.discord import Discord, discord_length
from distributor.errors import ChannelError
from distributor.models import Post, Receipt
from tests.fakes.discord import CHANNEL_ID, GUILD_ID, TOKEN, WEBHOOK_ID, DiscordFake, rate_limited
from tests.fakes.server import Reply
from tests.unit.channels.secret_url_cases import (
    HARD,
    SEED,
    ErrorCase,
    assert_classified,
    assert_hidden,
    assert_logs_hide,
    assert_rejected,
    assert_unreachable_hides,
    build,
    closed_port_url,
    fake_fixtures,
    text_post,
)
from tests.unit.channels.vi_articles import article

server, fake = fake_fixtures(DiscordFake)


def discord(fake: DiscordFake, **keys: object) -> Discord:
    channel = build("discord", **{"url": fake.url + fake.webhook_path, **keys})
    assert isinstance(channel, Discord)
    return channel


def embed_total(embed: dict[str, object]) -> int:
    footer = embed.get("footer") or {}
    assert isinstance(footer, dict)
    texts = [embed.get("title") or "", embed.get("description") or "", footer.get("text") or ""]
    return sum(discord_length(str(text)) for text in texts)


# --- configuration -------------------------------------------------------------------------------


def test_config_is_built_and_hides_the_url() -> None:
    url = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}"
    channel = build("discord", url=url, username="Cổng TTĐT")
    assert channel.settings.url.get_secret_value() == url  # type: ignore[attr-defined]
    assert TOKEN not in repr(channel.settings)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, "key 'url' is required but missing"),
        (
            {"url": f"discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}"},
            "key 'url' must be an http(s) URL",
        ),
        ({"url": "${DISCORD_WEBHOOK_UNSET}"}, "environment variable DISCORD_WEBHOOK_UNSET"),
        (
            {"url": f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}", "token": "x"},
            "key 'token' is not a known",
        ),
    ],
    ids=["no-url", "not-http", "env-unset", "typo"],
)
def test_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str) -> None:
    assert_rejected("discord", keys, expected, TOKEN)


# --- rendering and sending -----------------------------------------------------------------------


def test_message_and_embed_are_sent_with_markdown_escaped(fake: DiscordFake) -> None:
    channel = discord(fake)
    item = article(
        title="Giá *vàng* tăng_mạnh @everyone",
        summary="Tỷ giá `USD` [ổn định](x)",
        image=SEED.image,
    )
    post = channel.render(item)

    receipt = channel.send(post, "key-1")

    [sent] = fake.posts
    assert sent["query"] == {"wait": ["true"]}
    assert sent["content"] == post.text
    assert sent["content"].startswith(r"**Giá \*vàng\* tăng\_mạnh @everyone**")
    assert f"<{post.url}>" in sent["content"]  # angle brackets: no second card
    assert "#TinTucSuKien" in sent["content"]
    assert sent["allowed_mentions"] == {"parse": []}
    [embed] = sent["embeds"]
    assert embed["title"] == "Giá *vàng* tăng_mạnh @everyone"
    assert embed["description"] == r"Tỷ giá \`USD\` \[ổn định\](x)"
    assert embed["url"] == post.url and "utm_source=discord" in post.url
    assert embed["image"] == {"url": SEED.image}
    assert embed["footer"] == {"text": "Cổng thông tin điện tử tỉnh"}
    assert embed["timestamp"] == "2021-07-13T14:00:00+00:00"
    assert receipt.post_id == sent["id"]
    assert receipt.url is None  # Discord names no guild in the answer


def test_receipt_links_to_the_message_when_the_guild_is_known(fake: DiscordFake) -> None:
    fake.guild_id = GUILD_ID
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.url == f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{receipt.post_id}"


def test_api_base_redirects_a_real_webhook_url_to_another_host(fake: DiscordFake) -> None:
    real = f"https://discord.com/api/webhooks/{WEBHOOK_ID}/{TOKEN}"
    channel = build("discord", url=real, api_base=fake.url, username="Cổng TTĐT")
    channel.send(channel.render(SEED), "key-1")
    assert fake.requests[0].path == fake.webhook_path
    assert fake.posts[0]["username"] == "Cổng TTĐT"


@pytest.mark.parametrize("name", list(HARD))
def test_hard_articles_fit_every_discord_limit(fake: DiscordFake, name: str) -> None:
    channel = discord(fake)
    post = channel.render(HARD[name])
    embed = post.extra["embed"]

    assert post.length == discord_length(post.text) <= post.limit == 2000
    assert f"<{post.url}>" in post.text
    assert discord_length(embed.get("title", "")) <= 256
    assert discord_length(embed.get("description", "")) <= 4096
    assert embed_total(embed) <= 6000
    channel.send(post, "key-1")  # the fake checks the limits on its own
    assert fake.posts[0]["embeds"][0]["url"] == post.url


def test_embed_total_stays_under_6000_with_a_long_site_name(fake: DiscordFake) -> None:
    channel = discord(fake)
    channel.site = channel.site.model_copy(update={"title": "Cổng thông tin " * 130})
    post = channel.render(HARD["long summary"])
    embed = post.extra["embed"]
    assert embed_total(embed) <= 6000
    assert discord_length(embed["footer"]["text"]) <= 2048
    channel.send(post, "key-1")


# --- errors --------------------------------------------------------------------------------------


def _post(text: str, embed: dict[str, object] | None = None) -> Post:
    return text_post("discord", text, **({"embed": embed} if embed else {}))


RATE_LIMITED_NO_BODY_WAIT = Reply(
    429, {"message": "You are being rate limited.", "global": False}, {"Retry-After": "4"}
)
ERRORS = [
    ErrorCase(
        "rate-limit",
        lambda f: f.then(rate_limited(1.5)),
        _post("x"),
        False,
        1.5,
        "rate limited",
        "429",
    ),
    ErrorCase(
        "global",
        lambda f: f.then(rate_limited(0.25, is_global=True)),
        _post("x"),
        False,
        0.25,
        "[global]",
    ),
    ErrorCase(
        "header-only",
        lambda f: f.then(RATE_LIMITED_NO_BODY_WAIT),
        _post("x"),
        False,
        4.0,
        "rate limited",
    ),
    ErrorCase(
        "server-error",
        lambda f: f.then(Reply(500, {"message": "500: Internal Server Error", "code": 0})),
        _post("x"),
        False,
        None,
        "Internal Server Error",
        "500",
    ),
    ErrorCase(
        "bad-gateway",
        lambda f: f.then(Reply(502, "<html>bad gateway</html>")),
        _post("x"),
        False,
        None,
        "Bad Gateway",
    ),
    ErrorCase(
        "unknown-webhook",
        lambda f: f.hooks.clear(),
        _post("x"),
        True,
        None,
        "Unknown Webhook (10015): the webhook was deleted",
        "10015",
    ),
    ErrorCase(
        "bad-token",
        lambda f: f.hooks.update({WEBHOOK_ID: "other"}),
        _post("x"),
        True,
        None,
        "Invalid Webhook Token (50027)",
        "50027",
    ),
    ErrorCase("empty", lambda f: None, _post(""), True, None, "Cannot send an empty message", "50006"),
    ErrorCase(
        "content-too-long",
        lambda f: None,
        _post("x" * 2001),
        True,
        None,
        "(50035): content: Must be 2000 or fewer in length. (BASE_TYPE_MAX_LENGTH)",
        "50035",
    ),
    ErrorCase(
        "embed-title-too-long",
        lambda f: None,
        _post("x", {"title": "t" * 257}),
        True,
        None,
        "embeds.0.title: Must be 256 or fewer in length.",
        "50035",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in ERRORS])
def test_errors_are_classified(fake: DiscordFake, case: ErrorCase) -> None:
    assert_classified(discord(fake), fake, case, TOKEN)


# --- secrets -------------------------------------------------------------------------------------


def test_url_is_hidden_when_the_connection_fails() -> None:
    assert_unreachable_hides(build("discord", url=f"{closed_port_url()}/api/webhooks/{WEBHOOK_ID}/{TOKEN}"), TOKEN)


def test_url_is_hidden_in_debug_logs(fake: DiscordFake, caplog: pytest.LogCaptureFixture) -> None:
    assert_logs_hide(discord(fake), caplog, TOKEN)


# --- check ---------------------------------------------------------------------------------------


def test_check_reads_the_webhook_and_posts_nothing(fake: DiscordFake) -> None:
    found = discord(fake).check()
    assert found.startswith("webhook 'Tin tức' at http://127.0.0.1/*** posts to channel 1180000000000000002")
    assert TOKEN not in found
    assert [r.method for r in fake.requests] == ["GET"]
    assert fake.posts == []


def test_check_fails_for_a_deleted_webhook(fake: DiscordFake) -> None:
    fake.hooks.clear()
    with pytest.raises(ChannelError, match="Unknown Webhook") as caught:
        discord(fake).check()
    assert caught.value.permanent


# --- editing and deleting ------------------------------------------------------------------------


def test_edit_replaces_the_text_and_the_card_of_the_posted_message(fake: DiscordFake) -> None:
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    corrected = channel.render(article(title="Hội nghị đính chính", summary="Số liệu đã sửa", image=None))

    edited = channel.edit(corrected, receipt, "key-1")

    assert edited.post_id == receipt.post_id
    message = fake.messages[str(receipt.post_id)]
    assert message["content"] == corrected.text and "Hội nghị đính chính" in message["content"]
    assert [embed["title"] for embed in message["embeds"]] == ["Hội nghị đính chính"]
    assert "image" not in message["embeds"][0]  # the new card replaced the old one
    patch = fake.requests[-1]
    assert patch.method == "PATCH" and patch.path == f"{fake.webhook_path}/messages/{receipt.post_id}"
    assert patch.json()["allowed_mentions"] == {"parse": []}


def test_delete_removes_the_message_and_a_second_delete_succeeds(fake: DiscordFake) -> None:
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")

    channel.delete(receipt, "key-1")
    assert fake.messages == {}
    channel.delete(receipt, "key-1")  # already gone (10008): deleted is deleted

    assert [r.method for r in fake.requests] == ["POST", "DELETE", "DELETE"]


def test_editing_a_message_deleted_in_discord_is_refused_with_discords_words(fake: DiscordFake) -> None:
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    fake.messages.clear()

    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(SEED), receipt, "key-1")

    assert caught.value.permanent
    assert "Discord: Unknown Message (10008): the message was deleted in Discord" in caught.value.message
    assert TOKEN not in str(caught.value)


def test_deleting_through_a_removed_webhook_is_refused(fake: DiscordFake) -> None:
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    fake.hooks.clear()

    with pytest.raises(ChannelError, match="Unknown Webhook") as caught:
        channel.delete(receipt, "key-1")
    assert caught.value.permanent
    assert_hidden(caught.value, TOKEN)


@pytest.mark.parametrize("operation", ["edit", "delete"])
def test_edit_and_delete_are_retried_on_rate_limits_and_server_errors(fake: DiscordFake, operation: str) -> None:
    channel = discord(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    fake.then(rate_limited(2.5), Reply(502, "<html>bad gateway</html>"))

    def run() -> None:
        if operation == "edit":
            channel.edit(channel.render(SEED), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")

    for retry_after in (2.5, None):
        with pytest.raises(ChannelError) as caught:
            run()
        assert not caught.value.permanent and caught.value.retry_after == retry_after
        assert_hidden(caught.value, TOKEN)
    run()  # the platform answers again: done
    assert (str(receipt.post_id) in fake.messages) is (operation == "edit")


def test_a_receipt_without_a_message_id_cannot_be_deleted(fake: DiscordFake) -> None:
    with pytest.raises(ChannelError, match="message id is unknown") as caught:
        discord(fake).delete(Receipt(), "key-1")
    assert caught.value.permanent
    assert fake.requests == []
