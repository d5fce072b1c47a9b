"""Telegram: posts to a channel (or group) through the Bot API, as HTML, optionally as a photo.

The bot token is part of every URL (`/bot<token>/method`), so all calls go through
`secret_urls.request`, which keeps it out of errors and logs.

A published message can be edited (`editMessageText`, `editMessageCaption`, `editMessageMedia`
for a new image) and deleted (`deleteMessage`); the receipt keeps the chat and whether the message
is a text or a captioned photo, since each needs its own method.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Annotated, Any

import requests
from pydantic import BeforeValidator, SecretStr, field_validator

from distributor import text as textlib
from distributor.channels.base import Channel
from distributor.channels.secret_urls import request
from distributor.errors import ChannelError
from distributor.http import json_or_none, retry_after
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, _

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_CHAT = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{3,31}|-?\d+)$")
_TAG = re.compile(r"<[^>]*>")
# 400 answers to sendPhoto meaning "Telegram could not use the image": the text alone can still go.
_PHOTO_REJECTED = (
    "wrong file identifier",
    "failed to get http url content",
    "wrong type of the web page content",
    "image_process_failed",
    "photo_invalid_dimensions",
    "photo_save_file_invalid",
)
_NOT_MODIFIED = "message is not modified"  # an edit that changes nothing: a success
_ALREADY_DELETED = "message to delete not found"
_NO_TEXT = "there is no text in the message to edit"  # editMessageText on a photo


def _as_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class TelegramSettings(ChannelSettings):
    token: SecretStr
    chat_id: Annotated[str, BeforeValidator(_as_text)]
    photo: bool = False  # sendPhoto with the text as caption (1024 limit) when there is an image
    disable_preview: bool = False

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _TOKEN.match(value.get_secret_value().strip()):
            raise ValueError(_("must look like 123456789:AA... (the token @BotFather gave you)"))
        return SecretStr(value.get_secret_value().strip())

    @field_validator("chat_id")
    @classmethod
    def _chat_shape(cls, value: str) -> str:
        if not _CHAT.match(value.strip()):
            raise ValueError(_("must be @channelname or a numeric chat id like -1001234567890"))
        return value.strip()


def visible_text(markup: str) -> str:
    """What Telegram counts after parsing HTML entities: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", markup))


def telegram_length(markup: str) -> int:
    """Telegram's limit unit, counted conservatively as UTF-16 code units of the visible text."""
    return textlib.utf16_length(visible_text(markup))


class Telegram(Channel):
    kind = "telegram"
    settings_model = TelegramSettings
    default_api_base = "https://api.telegram.org"
    limit = MESSAGE_LIMIT
    markup = "html"
    can_edit = True
    can_delete = True

    @property
    def config(self) -> TelegramSettings:
        assert isinstance(self.settings, TelegramSettings)
        return self.settings

    def length(self, text: str) -> int:
        return telegram_length(text)

    def text_limit(self, article: Article) -> int:
        return CAPTION_LIMIT if self.config.photo and article.image else MESSAGE_LIMIT

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        if self.config.photo and post.image:
            try:
                result = self.call("sendPhoto", self._photo(post))
            except ChannelError as exc:
                if not _photo_rejected(exc):
                    raise
                # Telegram refused the image itself; nothing was posted, so the text goes alone.
                result = self.call("sendMessage", self._message(post))
        else:
            result = self.call("sendMessage", self._message(post))
        message_id = result.get("message_id")
        if message_id is None:
            return Receipt()
        return Receipt(
            post_id=str(message_id), url=self._permalink(result, message_id), data=self._data(result, post.image)
        )

    def _data(self, message: dict[str, Any], image: str | None) -> dict[str, str]:
        """What edit and delete need: the chat's numeric id (stable when a channel's @name changes)
        and whether the message is a captioned photo, and of which image, as Telegram answered."""
        chat = message.get("chat")
        chat_id = chat.get("id") if isinstance(chat, dict) else None
        data = {"chat_id": self.config.chat_id if chat_id is None else str(chat_id)}
        if message.get("photo"):
            return {**data, "type": "photo", "image": image or ""}
        return {**data, "type": "text"}

    # --- corrections and retractions -------------------------------------------------------------

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """Edit the message in place: its text, or a photo's caption (and the photo itself when the
        article's image changed). Telegram's "message is not modified" is a success."""
        target = self._target(receipt)
        data = dict(receipt.data)
        kind = data.get("type")
        if kind == "photo":
            if post.image and post.image != data.get("image"):
                if self._edit_media(post, target):
                    data["image"] = post.image
                    return receipt.model_copy(update={"data": data})
            elif not post.image:
                log.warning(
                    "%s: message %s keeps its photo: Telegram cannot turn it into text", self.name, receipt.post_id
                )
            self._edit_caption(post, target)
        elif kind == "text":
            self._edit(("editMessageText", {**self._message(post), **target}))
        else:  # a receipt from before receipts kept the type: try text, then caption
            try:
                self._edit(("editMessageText", {**self._message(post), **target}))
            except ChannelError as exc:
                if _NO_TEXT not in exc.message.lower():
                    raise
                self._edit_caption(post, target)
                data["type"] = "photo"
        return receipt.model_copy(update={"data": data})

    def delete(self, receipt: Receipt, key: str) -> None:
        """deleteMessage; a message already gone is a success. Telegram refuses ("message can't be
        deleted") when the bot lacks the right or, in groups, after 48 hours."""
        try:
            self.call("deleteMessage", self._target(receipt))
        except ChannelError as exc:
            if exc.status == 400 and _ALREADY_DELETED in exc.message.lower():
                return
            if exc.status == 400 and "can't be deleted" in exc.message.lower():
                exc.message = (
                    f"{exc.message}: the bot needs the 'Delete messages' right in the channel, and in groups "
                    "Telegram allows deleting only during 48 hours; delete it by hand in the Telegram app"
                )
                exc.args = (exc.message,)
            raise

    def _target(self, receipt: Receipt) -> dict[str, Any]:
        if not receipt.post_id or not receipt.post_id.isdigit():
            raise ChannelError("Telegram: no message id was recorded for this post", permanent=True)
        chat_id = receipt.data.get("chat_id") or self.config.chat_id
        return {"chat_id": chat_id, "message_id": int(receipt.post_id)}

    def _edit_caption(self, post: Post, target: dict[str, Any]) -> None:
        length = telegram_length(post.text)
        if length > CAPTION_LIMIT:
            raise ChannelError(
                f"Telegram: the post is a photo whose caption holds {CAPTION_LIMIT} characters; "
                f"the corrected text has {length}",
                permanent=True,
            )
        self._edit(("editMessageCaption", {**target, "caption": post.text, "parse_mode": "HTML"}))

    def _edit_media(self, post: Post, target: dict[str, Any]) -> bool:
        """Replace the photo and its caption in one call; False when Telegram cannot use the new
        image (the caption is then edited alone, under the old photo)."""
        media = {"type": "photo", "media": post.image, "caption": post.text, "parse_mode": "HTML"}
        try:
            self._edit(("editMessageMedia", {**target, "media": media}))
        except ChannelError as exc:
            if not _photo_rejected(exc):
                raise
            log.warning("%s: keeping the old photo: Telegram refused the new one: %s", self.name, exc.message)
            return False
        return True

    def _edit(self, call: tuple[str, dict[str, Any]]) -> None:
        method, payload = call
        try:
            self.call(method, payload)
        except ChannelError as exc:
            if exc.status == 400 and _NOT_MODIFIED in exc.message.lower():
                return  # the message already reads so: nothing to change
            raise

    def _message(self, post: Post) -> dict[str, Any]:
        preview: dict[str, Any] = {"is_disabled": True} if self.config.disable_preview else {"url": post.url}
        return {
            "chat_id": self.config.chat_id,
            "text": post.text,
            "parse_mode": "HTML",
            "link_preview_options": preview,
        }

    def _photo(self, post: Post) -> dict[str, Any]:
        return {
            "chat_id": self.config.chat_id,
            "photo": post.image,
            "caption": post.text,
            "parse_mode": "HTML",
        }

    def _permalink(self, result: dict[str, Any], message_id: object) -> str | None:
        chat = result.get("chat") or {}
        chat_id = self.config.chat_id
        username = chat.get("username") or (chat_id[1:] if chat_id.startswith("@") else None)
        if username:
            return f"https://t.me/{username}/{message_id}"
        if chat_id.startswith("-100"):  # a private channel: the link works for its members
            return f"https://t.me/c/{chat_id[4:]}/{message_id}"
        return None

    def call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One Bot API call; returns `result` or raises a classified ChannelError."""
        token = self.config.token.get_secret_value()
        url = f"{self.api_base}/bot{token}/{method}"
        response = request("POST", url, secrets=[token], json=payload)
        body = json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("ok") is True:
            result = body.get("result")
            return result if isinstance(result, dict) else {"value": result}
        raise self.error(response, body)

    def error(self, response: requests.Response, body: Any) -> ChannelError:
        """Classify a Bot API failure from its `{"ok": false, "error_code", "description"}` body."""
        status = response.status_code
        data = body if isinstance(body, dict) else {}
        code = data.get("error_code", status)
        description = str(data.get("description") or response.reason or f"HTTP {status}")
        parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
        assert isinstance(parameters, dict)
        if "migrate_to_chat_id" in parameters:
            new_id = parameters["migrate_to_chat_id"]
            message = (
                f"Telegram: {description}: the group became a supergroup; "
                f'set chat_id = "{new_id}" for channel {self.name!r}'
            )
            return ChannelError(message, permanent=True, code=code, status=status)
        if status == 429:
            wait = parameters.get("retry_after")
            seconds = float(wait) if isinstance(wait, int | float) else retry_after(response.headers.get("Retry-After"))
            return ChannelError(f"Telegram: {description}", retry_after=seconds, code=code, status=status)
        if status >= 500:
            wait = retry_after(response.headers.get("Retry-After"))
            return ChannelError(f"Telegram: {description}", retry_after=wait, code=code, status=status)
        return ChannelError(f"Telegram: {description}", permanent=True, code=code, status=status, auth=status == 401)

    # --- credentials -----------------------------------------------------------------------------

    def check(self) -> str:
        """getMe, getChat and getChatMember: proves the token, the chat and the bot's rights."""
        me = self.call("getMe", {})
        chat = self.call("getChat", {"chat_id": self.config.chat_id})
        member = self.call("getChatMember", {"chat_id": self.config.chat_id, "user_id": me.get("id")})
        bot = f"@{me.get('username')}"
        title = chat.get("title") or chat.get("username") or self.config.chat_id
        status = member.get("status")
        can_post = status == "creator" or (status == "administrator" and member.get("can_post_messages", True))
        if chat.get("type") == "channel" and not can_post:
            raise ChannelError(
                f"Telegram: bot {bot} is not an administrator allowed to post in {title!r}; "
                "add it in the channel's Administrators with 'Post messages'",
                permanent=True,
            )
        return f"bot {bot} can post to {chat.get('type', 'chat')} {title!r} ({self.config.chat_id})"


def _photo_rejected(error: ChannelError) -> bool:
    text = error.message.lower()
    return error.status == 400 and any(reason in text for reason in _PHOTO_REJECTED)
