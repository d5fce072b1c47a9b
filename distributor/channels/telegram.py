"""Telegram: posts to a channel (or group) through the Bot API, as HTML, optionally as a photo.

The bot token is part of every URL (`/bot<token>/method`), so all calls go through
`secret_urls.request`, which keeps it out of errors and logs.
"""

from __future__ import annotations

import html
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
from distributor.settings import ChannelSettings

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
            raise ValueError("must look like 123456789:AA... (the token @BotFather gave you)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("chat_id")
    @classmethod
    def _chat_shape(cls, value: str) -> str:
        if not _CHAT.match(value.strip()):
            raise ValueError("must be @channelname or a numeric chat id like -1001234567890")
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
        return Receipt(post_id=str(message_id), url=self._permalink(result, message_id))

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
