"""Microsoft Teams: one card per article through a channel webhook.

Two incompatible webhook kinds exist (platforms.md section 10): the Workflows app ("Post to a
channel when a webhook request is received", an Adaptive Card, 202 on success) and the retiring
Office 365 connector (`*.webhook.office.com`, a MessageCard, success only when the body is `1`).
The kind is read from the URL, or set with `flavour` when the URL does not tell (a proxy, a test
server). Teams refuses messages over 28 KB, so the text is measured as the JSON bytes it adds.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import model_validator

from distributor import text as textlib
from distributor.channels.base import Channel
from distributor.channels.markup import escape_fields, escape_markdown, link_target
from distributor.channels.secret_urls import WebhookSettings, endpoint, request, shown, url_secrets
from distributor.errors import ChannelError
from distributor.http import json_or_none, retry_after
from distributor.models import Article, Post, Receipt
from distributor.settings import _

PAYLOAD_LIMIT = 28_000  # bytes; Teams documents "28 KB"
TEXT_LIMIT = 24_000  # bytes of JSON for the text, leaving room for the card around it
ALT_TEXT_LIMIT = 200
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
Flavour = Literal["workflows", "connector"]


def detect_flavour(url: str) -> Flavour | None:
    """Which kind of Teams webhook `url` is, when its host or path says so."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host.endswith(("webhook.office.com", "outlook.office.com", "outlook.office365.com")):
        return "connector"
    if "/webhookb2/" in parts.path or "/IncomingWebhook/" in parts.path:
        return "connector"
    if host.endswith(("logic.azure.com", "powerplatform.com", "powerautomate.com")):
        return "workflows"
    if "/workflows/" in parts.path:
        return "workflows"
    return None


class TeamsSettings(WebhookSettings):
    flavour: Literal["auto", "workflows", "connector"] = "auto"
    button: str = "Xem chi tiết"  # the label of the card's "open the article" button

    @model_validator(mode="after")
    def _flavour_known(self) -> TeamsSettings:
        if self.flavour == "auto" and detect_flavour(self.url.get_secret_value()) is None:
            raise ValueError(
                _(
                    "key 'flavour': the url is neither a Workflows nor an Office 365 connector URL; "
                    'set flavour = "workflows" or "connector"'
                )
            )
        return self


def teams_length(value: str) -> int:
    """The bytes `value` adds to the JSON payload (UTF-8, with JSON's escapes)."""
    return textlib.utf8_length(json.dumps(value, ensure_ascii=False)) - 2


class Teams(Channel):
    kind = "teams"
    settings_model = TeamsSettings
    limit = TEXT_LIMIT
    # Both webhook flavours answer without a message id; changing a message needs the Graph API.
    cannot_edit = "a Teams webhook cannot change a card once posted (it returns no message id)"
    cannot_delete = "a Teams webhook cannot delete a card once posted (it returns no message id)"

    @property
    def config(self) -> TeamsSettings:
        assert isinstance(self.settings, TeamsSettings)
        return self.settings

    @property
    def flavour(self) -> Flavour:
        if self.config.flavour != "auto":
            return self.config.flavour
        return detect_flavour(self.config.url.get_secret_value()) or "workflows"

    def length(self, text: str) -> int:
        return teams_length(text)

    def context(self, article: Article) -> dict[str, Any]:
        context = escape_fields(super().context(article), escape_markdown)
        return {**context, "url": link_target(context["url"], "()<>")}  # cannot end `[title](url)` early

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {
            "summary": article.summary,
            "site": escape_markdown(self.site.title),
            "alt_text": textlib.truncate(article.title, ALT_TEXT_LIMIT),
        }

    def payload(self, post: Post) -> dict[str, Any]:
        return self._message_card(post) if self.flavour == "connector" else self._adaptive_card(post)

    def _adaptive_card(self, post: Post) -> dict[str, Any]:
        body: list[dict[str, Any]] = []
        if post.image:
            body.append({"type": "Image", "url": post.image, "size": "Stretch", "altText": post.extra.get("alt_text")})
        body.append({"type": "TextBlock", "text": post.text, "wrap": True})
        if post.extra.get("site"):
            body.append({"type": "TextBlock", "text": post.extra["site"], "isSubtle": True, "size": "Small"})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": self.config.button, "url": post.url}],
        }
        return {"type": "message", "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}]}

    def _message_card(self, post: Post) -> dict[str, Any]:
        section: dict[str, Any] = {"activitySubtitle": post.extra.get("site") or ""}
        if post.image:
            section["images"] = [{"image": post.image, "title": post.extra.get("alt_text") or ""}]
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": post.extra.get("alt_text") or post.title[:ALT_TEXT_LIMIT] or post.url,
            "themeColor": "0076D7",
            "text": post.text,
            "sections": [section],
            "potentialAction": [
                {"@type": "OpenUri", "name": self.config.button, "targets": [{"os": "default", "uri": post.url}]}
            ],
        }

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        body = json.dumps(self.payload(post), ensure_ascii=False).encode("utf-8")
        if len(body) > PAYLOAD_LIMIT:  # refused before sending: Teams would answer 413
            raise ChannelError(f"Teams: the card is {len(body)} bytes, over the 28 KB limit", permanent=True)
        secret = self.config.url.get_secret_value()
        target = endpoint(secret, self.config.api_base)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        response = request(
            "POST", target, secrets=url_secrets(secret) + url_secrets(target), data=body, headers=headers
        )
        if self.flavour == "connector":
            if response.status_code == 200 and response.text.strip() == "1":
                return Receipt()
        elif 200 <= response.status_code < 300:  # 202 Accepted; a flow with a Response step may say 200
            return Receipt()
        raise self.error(response)

    def error(self, response: requests.Response) -> ChannelError:
        status = response.status_code
        text = response.text.strip()
        data = json_or_none(response)
        problem = data.get("error") if isinstance(data, dict) else None
        if isinstance(problem, dict):  # Logic Apps / Power Automate: {"error": {"code", "message"}}
            code = problem.get("code") or status
            detail = f"{problem.get('message') or code} ({code})"
        else:
            code = status
            detail = text[:200] or response.reason or f"HTTP {status}"
        message = f"Teams: {detail}"
        wait = retry_after(response.headers.get("Retry-After"))
        # A connector has been seen answering 200 with the text of the error it met (429 included).
        if status == 429 or (status == 200 and "429" in text):
            return ChannelError(message, retry_after=wait, code=code, status=status)
        if status >= 500:
            return ChannelError(message, retry_after=wait, code=code, status=status)
        if status == 200:
            message = f"Teams: the connector answered {text[:200]!r} instead of '1'"
        elif status == 413:
            message += ": the card is over Teams' 28 KB limit"
        elif status in (404, 410):
            message += ": the webhook or workflow was removed; create a new one and update url"
        return ChannelError(message, permanent=True, code=code, status=status)

    def check(self) -> str:
        """Teams has no read-only call for webhooks; report what is configured without posting."""
        where = shown(self.config.url.get_secret_value())
        return f"{self.flavour} webhook at {where} (Teams offers no read-only check: nothing was sent)"
