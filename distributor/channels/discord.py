"""Discord: one message per article through a channel webhook, with one embed as the card.

The content (title, link, hashtags) is what notifications show; the embed carries the summary,
image, site and time. The link in the content is wrapped in `<>` so Discord does not add a second
card. `allowed_mentions` is empty: text from the portal never pings anyone.

A webhook can edit and delete the messages it posted (`PATCH`/`DELETE .../messages/{id}`), which is
why `send` asks for the message with `?wait=true`: its id is all a later correction or retraction
needs, with the webhook URL from the configuration.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from distributor import text as textlib
from distributor.channels.base import Channel
from distributor.channels.markup import escape_fields, escape_markdown
from distributor.channels.secret_urls import WebhookSettings, endpoint, request, shown, url_secrets
from distributor.errors import ChannelError
from distributor.http import json_or_none, retry_after
from distributor.models import Article, Post, Receipt
from distributor.settings import HttpUrlStr
from distributor.urls import with_params

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
UNKNOWN_MESSAGE = 10008
WEBHOOK_GONE = (10015, 50027)  # unknown webhook, invalid webhook token
HINTS = {
    UNKNOWN_MESSAGE: "the message was deleted in Discord (or posted by another webhook)",
    10015: "the webhook was deleted: create a new one and update url",
    50027: "the webhook token is wrong: copy the webhook URL again",
}


class DiscordSettings(WebhookSettings):
    username: str | None = None  # overrides the webhook's name for these posts
    avatar_url: HttpUrlStr | None = None


def discord_length(value: str) -> int:
    """Discord's character limits, counted conservatively in UTF-16 code units."""
    return textlib.utf16_length(value)


class Discord(Channel):
    kind = "discord"
    settings_model = DiscordSettings
    limit = CONTENT_LIMIT
    can_edit = True
    can_delete = True

    @property
    def config(self) -> DiscordSettings:
        assert isinstance(self.settings, DiscordSettings)
        return self.settings

    def length(self, text: str) -> int:
        return discord_length(text)

    def context(self, article: Article) -> dict[str, Any]:
        # Markdown is on in content and embed descriptions: a title is shown as written.
        return escape_fields(super().context(article), escape_markdown)

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {"summary": article.summary, "embed": self.embed(article, context["url"])}

    def embed(self, article: Article, url: str) -> dict[str, Any]:
        """The card, every field inside its own limit and all of them inside 6000 together."""
        title = textlib.truncate(article.title, TITLE_LIMIT, discord_length)
        footer = textlib.truncate(self.site.title, FOOTER_LIMIT, discord_length)
        room = EMBED_TOTAL_LIMIT - discord_length(title) - discord_length(footer)
        summary = escape_markdown(article.summary)
        description = textlib.truncate(summary, min(DESCRIPTION_LIMIT, room), discord_length)
        embed: dict[str, Any] = {"url": url, "timestamp": article.published.isoformat()}
        if title:
            embed["title"] = title
        if description:
            embed["description"] = description
        if footer:
            embed["footer"] = {"text": footer}
        if article.image:
            embed["image"] = {"url": article.image}
        return embed

    # --- delivery --------------------------------------------------------------------------------

    def payload(self, post: Post) -> dict[str, Any]:
        """The message body (text and card); `send` adds the webhook's name and avatar."""
        payload: dict[str, Any] = {"content": post.text, "allowed_mentions": {"parse": []}}
        # An edit without a card must remove the old one, so `embeds` is always sent.
        payload["embeds"] = [post.extra["embed"]] if post.extra.get("embed") else []
        return payload

    def send(self, post: Post, key: str) -> Receipt:
        payload = self.payload(post)
        if not payload["embeds"]:
            del payload["embeds"]
        if self.config.username:
            payload["username"] = self.config.username
        if self.config.avatar_url:
            payload["avatar_url"] = self.config.avatar_url
        response = self._request("POST", {"wait": "true"}, json=payload)
        if response.status_code == 204:  # a proxy that dropped ?wait=true: posted, id unknown
            return Receipt()
        if response.status_code != 200:
            raise self.error(response)
        message = json_or_none(response)
        data = message if isinstance(message, dict) else {}
        message_id = data.get("id")
        url = None
        if message_id and data.get("guild_id"):
            url = f"https://discord.com/channels/{data['guild_id']}/{data.get('channel_id')}/{message_id}"
        return Receipt(post_id=str(message_id) if message_id else None, url=url)

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """`PATCH .../messages/{id}`: text and card replaced in place (Discord marks it "edited")."""
        message_id = self._message_id(receipt, "edited")
        response = self._request("PATCH", {}, json=self.payload(post), path=f"/messages/{message_id}")
        if response.status_code != 200:
            raise self.error(response)
        return Receipt(post_id=message_id, url=receipt.url, data=receipt.data)

    def delete(self, receipt: Receipt, key: str) -> None:
        """`DELETE .../messages/{id}` (204); a message already gone (10008) counts as deleted."""
        message_id = self._message_id(receipt, "deleted")
        response = self._request("DELETE", {}, path=f"/messages/{message_id}")
        if response.status_code in (200, 204):
            return
        error = self.error(response)
        if error.code == str(UNKNOWN_MESSAGE):
            return
        raise error

    def _message_id(self, receipt: Receipt, done: str) -> str:
        if not receipt.post_id:
            raise ChannelError(
                f"Discord: the message id is unknown (the post was answered without it), so it cannot be {done}",
                permanent=True,
            )
        return receipt.post_id

    def _request(self, method: str, params: dict[str, str], path: str = "", **kwargs: Any) -> requests.Response:
        secret = self.config.url.get_secret_value()
        target = endpoint(secret, self.config.api_base)
        secrets = url_secrets(secret) + url_secrets(target)
        parts = urlsplit(target)  # `path` goes after the webhook's path, before any query (thread_id)
        target = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") + path, parts.query, ""))
        return request(method, with_params(target, params), secrets=secrets, **kwargs)

    def error(self, response: requests.Response) -> ChannelError:
        """Classify Discord's `{"code", "message", "errors"?}` or rate-limit body."""
        status = response.status_code
        body = json_or_none(response)
        data = body if isinstance(body, dict) else {}
        code = data.get("code") or None
        message = f"Discord: {data.get('message') or response.reason or f'HTTP {status}'}"
        if code:
            message += f" ({code})"
        if status == 429:
            wait = data.get("retry_after")
            seconds = float(wait) if isinstance(wait, int | float) else retry_after(response.headers.get("Retry-After"))
            scope = "global" if data.get("global") else response.headers.get("X-RateLimit-Scope", "route")
            return ChannelError(f"{message} [{scope}]", retry_after=seconds, code=code or status, status=status)
        if status >= 500:
            wait = retry_after(response.headers.get("Retry-After"))
            return ChannelError(message, retry_after=wait, code=code or status, status=status)
        details = field_errors(data.get("errors"))
        if details:
            message += ": " + "; ".join(details)
        if code in HINTS:
            message += f": {HINTS[code]}"
        auth = status == 401 or code in WEBHOOK_GONE  # a deleted webhook or a wrong token in its URL
        return ChannelError(message, permanent=True, code=code or status, status=status, auth=auth)

    def check(self) -> str:
        """GET on the webhook URL: proves it exists and shows where it posts (posts nothing)."""
        response = self._request("GET", {})
        if response.status_code != 200:
            raise self.error(response)
        body = json_or_none(response)
        hook = body if isinstance(body, dict) else {}
        where = shown(self.config.url.get_secret_value())
        return f"webhook {hook.get('name')!r} at {where} posts to channel {hook.get('channel_id')}"


def field_errors(tree: Any, path: str = "") -> list[str]:
    """Discord's nested `errors` tree as lines like "embeds.0.title: Must be 256 or fewer..."."""
    if not isinstance(tree, dict):
        return []
    found: list[str] = []
    for key, value in tree.items():
        if key == "_errors" and isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    found.append(f"{path or 'body'}: {item.get('message')} ({item.get('code')})")
        else:
            found.extend(field_errors(value, f"{path}.{key}" if path else str(key)))
    return found
