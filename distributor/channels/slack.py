"""Slack: one Block Kit message per article through an incoming webhook.

A section carries the linked title and the summary (with the image as a thumbnail), a context
line names the site; `text` repeats the section for notifications. Slack's control characters
`& < >` are escaped in everything taken from the article, so `<!channel>` in a title stays text.
"""

from __future__ import annotations

import re
from typing import Any

import requests

from distributor import text as textlib
from distributor.channels.base import Channel
from distributor.channels.markup import escape_fields, escape_mrkdwn, link_target
from distributor.channels.secret_urls import WebhookSettings, endpoint, request, shown, url_secrets
from distributor.errors import ChannelError
from distributor.http import retry_after
from distributor.models import Article, Post, Receipt

SECTION_LIMIT = 3000  # characters of a section's text
ALT_TEXT_LIMIT = 2000
IMAGE_URL_LIMIT = 3000
_CODE = re.compile(r"^[a-z_]+$")
HINTS = {
    "no_service": "the webhook was removed or its app uninstalled: create a new webhook URL",
    "invalid_token": "the webhook URL is wrong or was revoked: copy it again from the Slack app",
    "channel_not_found": "the channel was deleted or the app removed from it",
    "channel_is_archived": "the channel is archived: unarchive it or create a webhook for another",
    "action_prohibited": "a workspace admin restricted who may post in this channel",
    "team_disabled": "the Slack workspace is disabled",
}
# What Slack answers to an empty message: the webhook exists and nothing was posted.
_EMPTY_REJECTED = {"no_text", "invalid_payload", "missing_text_or_fallback_or_attachments"}


class SlackSettings(WebhookSettings):
    """Only the URL: an app's webhook cannot change its channel, name or icon."""


def slack_length(value: str) -> int:
    """Slack's character limits, counted conservatively in UTF-16 code units."""
    return textlib.utf16_length(value)


class Slack(Channel):
    kind = "slack"
    settings_model = SlackSettings
    limit = SECTION_LIMIT
    # chat.update / chat.delete need a bot token and the message's channel and ts, which an
    # incoming webhook never returns (docs/channels/slack.md, "Corrections and retractions").
    cannot_edit = "a Slack incoming webhook cannot edit what it posted (Slack returns no message id to webhooks)"
    cannot_delete = "a Slack incoming webhook cannot delete what it posted (Slack returns no message id to webhooks)"

    @property
    def config(self) -> SlackSettings:
        assert isinstance(self.settings, SlackSettings)
        return self.settings

    def length(self, text: str) -> int:
        return slack_length(text)

    def context(self, article: Article) -> dict[str, Any]:
        context = escape_fields(super().context(article), escape_mrkdwn)
        return {**context, "url": link_target(context["url"], "|<>")}  # cannot end `<url|label>` early

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {
            "summary": article.summary,
            "footer": f"{context['site']} · {context['published']}",
            "alt_text": textlib.truncate(article.title, ALT_TEXT_LIMIT, slack_length),
        }

    def payload(self, post: Post) -> dict[str, Any]:
        section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": post.text}}
        if post.image and len(post.image) <= IMAGE_URL_LIMIT:
            alt = post.extra.get("alt_text") or post.title[:ALT_TEXT_LIMIT] or "image"
            section["accessory"] = {"type": "image", "image_url": post.image, "alt_text": alt}
        blocks: list[dict[str, Any]] = [section]
        if post.extra.get("footer"):
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": post.extra["footer"]}]})
        # The section already is the card: a second one from unfurling would repeat it.
        return {"text": post.text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        response = self._post(self.payload(post))
        if response.status_code == 200 and response.text.strip() == "ok":
            return Receipt()  # Slack returns no message id to a webhook
        raise self.error(response)

    def _post(self, payload: dict[str, Any]) -> requests.Response:
        secret = self.config.url.get_secret_value()
        target = endpoint(secret, self.config.api_base)
        return request("POST", target, secrets=url_secrets(secret) + url_secrets(target), json=payload)

    def error(self, response: requests.Response) -> ChannelError:
        """Classify Slack's plain-text answer (`invalid_payload`, `no_service`, ...)."""
        status = response.status_code
        body = response.text.strip()
        code = body if _CODE.match(body) else None
        message = f"Slack: {code or body[:200] or response.reason or f'HTTP {status}'}"
        if code in HINTS:
            message += f": {HINTS[code]}"
        wait = retry_after(response.headers.get("Retry-After"))
        if status == 429:
            return ChannelError(message, retry_after=wait, code=code or status, status=status)
        if status >= 500:
            return ChannelError(message, retry_after=wait, code=code or status, status=status)
        if status == 200:
            message = f"Slack: unexpected answer {body[:200]!r} (expected 'ok')"
        auth = code in ("invalid_token", "no_service")  # the webhook was revoked or removed
        return ChannelError(message, permanent=True, code=code or status, status=status, auth=auth)

    def check(self) -> str:
        """Sends an empty message, which Slack refuses without posting: a refusal for emptiness
        proves the webhook exists; a revoked or archived one answers 403/404/410."""
        response = self._post({})
        where = shown(self.config.url.get_secret_value())
        if response.status_code == 400 and response.text.strip() in _EMPTY_REJECTED:
            return f"webhook at {where} is live (an empty test message was refused, nothing posted)"
        raise self.error(response)
