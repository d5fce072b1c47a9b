from __future__ import annotations

from collections.abc import Callable

import pytest

from distributor.channels.telegram import Telegram, TelegramSettings, telegram_length
from distributor.errors import ChannelError
from distributor.models import Post, Receipt
from tests.fakes.server import Reply
from tests.fakes.telegram import CHANNEL, TOKEN, TelegramFake, error, parse_html, rate_limited
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

server, fake = fake_fixtures(TelegramFake)


def telegram(fake: TelegramFake, **keys: object) -> Telegram:
    settings = {"token": TOKEN, "chat_id": "@tintuc_tayninh", "api_base": fake.url, **keys}
    channel = build("telegram", **settings)
    assert isinstance(channel, Telegram)
    return channel


# --- configuration -------------------------------------------------------------------------------


def test_config_is_built_with_its_keys() -> None:
    channel = build("telegram", token=TOKEN, chat_id=-1001234567890, photo=True)
    assert isinstance(channel.settings, TelegramSettings)
    assert channel.settings.chat_id == "-1001234567890"  # a TOML integer is kept as text
    assert channel.settings.photo is True
    assert channel.api_base == "https://api.telegram.org"
    assert TOKEN not in repr(channel.settings)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"chat_id": "@tintuc_tayninh"}, "key 'token' is required but missing"),
        ({"token": TOKEN}, "key 'chat_id' is required but missing"),
        ({"token": TOKEN, "chat_id": "tintuc"}, "key 'chat_id' must be @channelname"),
        ({"token": "bot" + TOKEN, "chat_id": "@tintuc_tayninh"}, "key 'token' must look like"),
        (
            {"token": "${TELEGRAM_TOKEN_UNSET}", "chat_id": "@tintuc_tayninh"},
            "environment variable TELEGRAM_TOKEN_UNSET",
        ),
        (
            {"token": TOKEN, "chat_id": "@tintuc_tayninh", "chat": "x"},
            "key 'chat' is not a known key",
        ),
    ],
    ids=["no-token", "no-chat", "bad-chat", "bad-token", "env-unset", "typo"],
)
def test_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str) -> None:
    assert_rejected("telegram", keys, expected, TOKEN)


# --- rendering and sending -----------------------------------------------------------------------


def test_message_is_html_escaped_and_sent_with_its_link(fake: TelegramFake) -> None:
    channel = telegram(fake)
    item = article(title='Giá <vàng> & "USD" tăng', summary="Tỷ giá <b>không</b> đổi & ổn định", image=None)
    post = channel.render(item)

    receipt = channel.send(post, "key-1")

    assert "&lt;vàng&gt; &amp; &#34;USD&#34;" in post.text
    [sent] = fake.posts
    assert sent["method"] == "sendMessage"
    assert sent["chat_id"] == "@tintuc_tayninh" and sent["parse_mode"] == "HTML"
    assert sent["plain"].startswith('Giá <vàng> & "USD" tăng')  # Telegram shows the title as written
    assert "Tỷ giá <b>không</b> đổi & ổn định" in sent["plain"]
    assert sent["links"] == [post.url]
    assert "utm_source=telegram" in post.url
    assert "#TinTucSuKien" in sent["plain"]
    assert f'"url": "{post.url}"' in sent["link_preview_options"]
    assert receipt.post_id == str(sent["message_id"])
    assert receipt.url == f"https://t.me/tintuc_tayninh/{sent['message_id']}"


def test_private_channel_receipt_links_to_the_c_form(fake: TelegramFake) -> None:
    channel = telegram(fake, chat_id=str(CHANNEL["id"]))
    fake.chats[str(CHANNEL["id"])] = {**CHANNEL, "username": None}
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.url == f"https://t.me/c/1234567890/{receipt.post_id}"


def test_disable_preview_is_sent(fake: TelegramFake) -> None:
    channel = telegram(fake, disable_preview=True)
    channel.send(channel.render(SEED), "key-1")
    assert fake.posts[0]["link_preview_options"] == '{"is_disabled": true}'


def test_photo_mode_sends_a_captioned_photo_within_1024(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    post = channel.render(HARD["long summary"])
    assert post.limit == 1024
    assert post.length <= 1024

    channel.send(post, "key-1")

    [sent] = fake.posts
    assert sent["method"] == "sendPhoto"
    assert sent["photo"] == SEED.image
    assert sent["links"] == [post.url]


def test_photo_mode_without_an_image_sends_a_message(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    post = channel.render(article(image=None, summary=HARD["long summary"].summary))
    assert post.limit == 4096
    assert post.length > 1024  # the whole message limit is used
    channel.send(post, "key-1")
    assert fake.posts[0]["method"] == "sendMessage"


def test_a_photo_telegram_cannot_fetch_falls_back_to_the_text(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    fake.broken_photos.add(SEED.image or "")
    receipt = channel.send(channel.render(SEED), "key-1")
    [sent] = fake.posts
    assert sent["method"] == "sendMessage"
    assert receipt.post_id == str(sent["message_id"])


@pytest.mark.parametrize("photo", [False, True], ids=["message", "caption"])
@pytest.mark.parametrize("name", list(HARD))
def test_hard_articles_fit_and_keep_the_link(fake: TelegramFake, name: str, photo: bool) -> None:
    channel = telegram(fake, photo=photo)
    post = channel.render(HARD[name])

    assert post.length == telegram_length(post.text)
    assert post.length <= post.limit == (1024 if photo else 4096)
    _, links = parse_html(post.text)
    assert links == [post.url]
    channel.send(post, "key-1")  # the fake enforces the limit on its own count
    assert fake.posts[0]["links"] == [post.url]


# --- errors --------------------------------------------------------------------------------------


def _post(text: str) -> Post:
    return text_post("telegram", text)


TELEGRAM_429 = {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3"}
ERRORS = [
    ErrorCase(
        "rate-limit-body",
        lambda f: f.then(rate_limited(7)),
        _post("x"),
        False,
        7.0,
        "Too Many",
        "429",
    ),
    ErrorCase(
        "rate-limit-header",
        lambda f: f.then(Reply(429, TELEGRAM_429, {"Retry-After": "3"})),
        _post("x"),
        False,
        3.0,
        "Too Many Requests",
        "429",
    ),
    ErrorCase(
        "server-error",
        lambda f: f.then(error(500, "Internal Server Error")),
        _post("x"),
        False,
        None,
        "Internal",
    ),
    ErrorCase(
        "bad-gateway",
        lambda f: f.then(Reply(502, "<html>Bad Gateway</html>")),
        _post("x"),
        False,
        None,
        "Bad Gateway",
    ),
    ErrorCase(
        "bad-token",
        lambda f: setattr(f, "token", "42:other"),
        _post("x"),
        True,
        None,
        "Unauthorized",
        "401",
    ),
    ErrorCase(
        "not-admin",
        lambda f: setattr(f, "admin", False),
        _post("x"),
        True,
        None,
        "bot is not a member",
        "403",
    ),
    ErrorCase("chat-not-found", lambda f: f.chats.clear(), _post("x"), True, None, "chat not found", "400"),
    ErrorCase("too-long", lambda f: None, _post("x" * 4097), True, None, "message is too long", "400"),
    ErrorCase(
        "bad-entities",
        lambda f: None,
        _post("<blink>x</blink>"),
        True,
        None,
        "can't parse entities",
        "400",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in ERRORS])
def test_errors_are_classified(fake: TelegramFake, case: ErrorCase) -> None:
    error = assert_classified(telegram(fake), fake, case, TOKEN)
    assert error.status == int(error.code or 0) or error.status == 502


def test_migrated_group_tells_the_new_chat_id(fake: TelegramFake) -> None:
    fake.migrated["@tintuc_tayninh"] = -1009876543210
    with pytest.raises(ChannelError) as caught:
        telegram(fake).send(_post("x"), "key-1")
    assert caught.value.permanent
    assert 'set chat_id = "-1009876543210"' in caught.value.message


# --- secrets -------------------------------------------------------------------------------------


def test_token_is_hidden_when_the_connection_fails() -> None:
    assert_unreachable_hides(
        build("telegram", token=TOKEN, chat_id="@tintuc_tayninh", api_base=closed_port_url()), TOKEN
    )


def test_token_is_hidden_in_debug_logs(fake: TelegramFake, caplog: pytest.LogCaptureFixture) -> None:
    assert_logs_hide(telegram(fake), caplog, TOKEN)
    assert "/sendMessage" in caplog.text


# --- check ---------------------------------------------------------------------------------------


def test_check_reports_the_bot_and_chat_and_posts_nothing(fake: TelegramFake) -> None:
    found = telegram(fake).check()
    assert found == "bot @tintuc_bot can post to channel 'Tin tức Tây Ninh' (@tintuc_tayninh)"
    assert fake.posts == []
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == [
        "getMe",
        "getChat",
        "getChatMember",
    ]


def test_check_fails_when_the_bot_is_not_an_admin(fake: TelegramFake) -> None:
    fake.admin = False
    with pytest.raises(ChannelError, match="not an administrator") as caught:
        telegram(fake).check()
    assert caught.value.permanent


# --- corrections and retractions -----------------------------------------------------------------


def test_edit_changes_the_message_in_place_with_the_send_options(fake: TelegramFake) -> None:
    channel = telegram(fake, disable_preview=True)
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.data == {"chat_id": str(CHANNEL["id"]), "type": "text"}

    corrected = channel.render(SEED.model_copy(update={"title": "Hội nghị (đã đính chính)"}))
    edited = channel.edit(corrected, receipt, "key-1")

    [message] = fake.posts
    assert message["plain"].startswith("Hội nghị (đã đính chính)")
    assert message["link_preview_options"] == '{"is_disabled": true}'  # as `send` had it
    assert len(message["edits"]) == 1  # one version replaced, nothing re-posted
    assert (edited.post_id, edited.url) == (receipt.post_id, receipt.url)
    assert fake.requests[-1].path.endswith("/editMessageText")


def test_edit_of_a_photo_edits_its_caption(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.data["type"] == "photo" and receipt.data["image"] == SEED.image

    channel.edit(channel.render(SEED.model_copy(update={"title": "Tiêu đề mới"})), receipt, "key-1")

    [message] = fake.posts
    assert message["plain"].startswith("Tiêu đề mới")
    assert message["photo"] == SEED.image and len(message["edits"]) == 1
    assert fake.requests[-1].path.endswith("/editMessageCaption")


def test_edit_with_a_new_image_replaces_photo_and_caption_in_one_call(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    receipt = channel.send(channel.render(SEED), "key-1")
    new_image = "https://tinhuy.example.gov.vn/PublishingImages/2021/07/anh-moi.jpg"

    edited = channel.edit(channel.render(SEED.model_copy(update={"image": new_image})), receipt, "key-1")

    [message] = fake.posts
    assert message["photo"] == new_image and len(message["edits"]) == 1
    assert edited.data["image"] == new_image  # the next edit compares with the image now shown
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests] == ["sendPhoto", "editMessageMedia"]


def test_a_new_image_telegram_cannot_fetch_keeps_the_old_photo_and_edits_the_caption(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    receipt = channel.send(channel.render(SEED), "key-1")
    broken = "https://tinhuy.example.gov.vn/missing.jpg"
    fake.broken_photos.add(broken)

    edited = channel.edit(channel.render(SEED.model_copy(update={"image": broken, "title": "Mới"})), receipt, "key-1")

    [message] = fake.posts
    assert message["photo"] == SEED.image and message["plain"].startswith("Mới")
    assert edited.data["image"] == SEED.image


def test_a_photo_sent_as_text_after_a_refused_image_is_edited_as_text(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    fake.broken_photos.add(SEED.image or "")
    receipt = channel.send(channel.render(SEED), "key-1")
    assert receipt.data["type"] == "text"
    channel.edit(channel.render(SEED.model_copy(update={"title": "Mới"})), receipt, "key-1")
    assert fake.posts[0]["plain"].startswith("Mới")


def test_a_receipt_without_data_is_edited_as_text_then_as_caption(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    sent = channel.send(channel.render(SEED), "key-1")
    legacy = Receipt(post_id=sent.post_id, url=sent.url)  # kept before receipts carried data

    edited = channel.edit(channel.render(SEED.model_copy(update={"title": "Mới"})), legacy, "key-1")

    assert fake.posts[0]["plain"].startswith("Mới")
    assert edited.data["type"] == "photo"
    assert [r.path.rsplit("/", 1)[1] for r in fake.requests][1:] == ["editMessageText", "editMessageCaption"]


def test_edit_that_changes_nothing_is_a_success(fake: TelegramFake) -> None:
    channel = telegram(fake)
    post = channel.render(SEED)
    receipt = channel.send(post, "key-1")

    assert channel.edit(post, receipt, "key-1") == receipt

    assert "edits" not in fake.posts[0]
    assert fake.requests[-1].path.endswith("/editMessageText")  # Telegram said "message is not modified"


def test_a_caption_edit_longer_than_1024_is_refused_before_calling(fake: TelegramFake) -> None:
    channel = telegram(fake, photo=True)
    receipt = channel.send(channel.render(SEED), "key-1")
    longer = channel.render(HARD["long summary"].model_copy(update={"image": None}))  # fitted to 4096
    assert longer.length > 1024
    with pytest.raises(ChannelError, match="caption holds 1024 characters") as caught:
        channel.edit(longer, receipt, "key-1")
    assert caught.value.permanent
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("arrange", "expected"),
    [
        (lambda f, r: f.uneditable.add(int(r.post_id)), "Bad Request: message can't be edited"),
        (lambda f, r: f.message(r.post_id).update(deleted=True), "Bad Request: message to edit not found"),
    ],
    ids=["refused", "deleted-meanwhile"],
)
def test_edit_refusals_are_permanent_with_telegrams_message(
    fake: TelegramFake, arrange: Callable[[TelegramFake, Receipt], object], expected: str
) -> None:
    channel = telegram(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    arrange(fake, receipt)
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(SEED.model_copy(update={"title": "Mới"})), receipt, "key-1")
    assert caught.value.permanent and expected in caught.value.message
    assert_hidden(caught.value, TOKEN)


def test_delete_removes_the_message(fake: TelegramFake) -> None:
    channel = telegram(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    channel.delete(receipt, "key-1")
    assert fake.posts[0]["deleted"] is True
    assert fake.requests[-1].json() == {"chat_id": str(CHANNEL["id"]), "message_id": int(receipt.post_id or 0)}


def test_delete_of_a_message_already_gone_is_a_success(fake: TelegramFake) -> None:
    channel = telegram(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    channel.delete(receipt, "key-1")
    channel.delete(receipt, "key-1")  # "message to delete not found"
    assert fake.requests[-1].path.endswith("/deleteMessage")


@pytest.mark.parametrize(
    "arrange",
    [lambda f, r: f.undeletable.add(int(r.post_id)), lambda f, r: setattr(f, "can_delete", False)],
    ids=["past-48-hours", "no-right"],
)
def test_delete_refused_is_permanent_with_telegrams_message(
    fake: TelegramFake, arrange: Callable[[TelegramFake, Receipt], object]
) -> None:
    channel = telegram(fake)
    receipt = channel.send(channel.render(SEED), "key-1")
    arrange(fake, receipt)
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "key-1")
    assert caught.value.permanent
    assert "Telegram: Bad Request: message can't be deleted" in caught.value.message
    assert "delete it by hand" in caught.value.message
    assert not fake.posts[0].get("deleted")
    assert_hidden(caught.value, TOKEN)


@pytest.mark.parametrize(
    ("reply", "retry"),
    [
        (rate_limited(7), 7.0),
        (error(500, "Internal Server Error"), None),
        (Reply(502, "<html>Bad Gateway</html>"), None),
    ],
    ids=["429", "500", "502"],
)
@pytest.mark.parametrize("action", ["edit", "delete"])
def test_edit_and_delete_failures_are_transient(
    fake: TelegramFake, reply: Reply, retry: float | None, action: str
) -> None:
    channel = telegram(fake)
    post = channel.render(SEED)
    receipt = channel.send(post, "key-1")
    fake.then(reply)
    with pytest.raises(ChannelError) as caught:
        if action == "edit":
            channel.edit(post.model_copy(update={"text": "<b>Mới</b>"}), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert not caught.value.permanent
    assert caught.value.retry_after == retry
    assert_hidden(caught.value, TOKEN)
    assert "edits" not in fake.posts[0] and not fake.posts[0].get("deleted")


def test_a_receipt_without_a_message_id_cannot_be_edited_or_deleted(fake: TelegramFake) -> None:
    channel = telegram(fake)
    with pytest.raises(ChannelError, match="no message id") as caught:
        channel.delete(Receipt(), "key-1")
    assert caught.value.permanent and fake.requests == []
