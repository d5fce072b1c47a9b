"""Slack: one Block Kit message per article, through an incoming webhook or the Web API.

A section carries the linked title and the summary (with the image as a thumbnail), a context
line names the site; `text` repeats the section for notifications. Slack's control characters
`& < >` are escaped in everything taken from the article, so `<!channel>` in a title stays text.

Two modes, chosen by the keys given. `url`: an incoming webhook, which answers `ok` and nothing
else, so its messages can be neither edited nor deleted. `token` + `channel`: the Web API with a
bot token (`chat.postMessage`), whose answer carries the message's channel and `ts`, all that
`chat.update` (corrections) and `chat.delete` (retractions) need later.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr, field_validator, model_validator

from distributor import http
from distributor import text as textlib
from distributor.channels.base import Channel
from distributor.channels.markup import escape_fields, escape_mrkdwn, link_target
from distributor.channels.secret_urls import endpoint, request, secrets_masked, shown, url_secrets, webhook_url
from distributor.errors import ChannelError
from distributor.http import json_or_none, retry_after
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, SiteSettings, _

log = logging.getLogger(__name__)

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


WEB_API = "https://slack.com"  # methods live under /api/; `api_base` replaces scheme and host
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")  # public C…, private G… (older), direct D…
_BOT_TOKEN = re.compile(r"^(xoxe\.)?xox[bp]-[A-Za-z0-9-]+$")  # xoxe.: a rotating token
# Web API answers (HTTP 200 with {"ok": false, "error": CODE}) and what the operator can do.
WEB_HINTS = {
    "invalid_auth": "the bot token is wrong: copy the Bot User OAuth Token again (OAuth & Permissions)",
    "not_authed": "no bot token reached Slack: set token",
    "token_revoked": "the bot token was revoked (app removed or token reset): reinstall the app, copy its token",
    "token_expired": "the bot token expired (token rotation is on): turn rotation off for this app",
    "account_inactive": "the bot or the workspace was deactivated: reinstall the app",
    "no_permission": "the token may not do this in this workspace",
    "missing_scope": "add the scope under OAuth & Permissions (Bot Token Scopes) and reinstall the app",
    "not_in_channel": "the bot is not in the channel: invite it (/invite @app) or add the chat:write.public scope",
    "channel_not_found": "no channel with this id that the bot can see (a private one needs the bot invited): "
    "check channel",
    "is_archived": "the channel is archived: unarchive it or choose another channel",
    "restricted_action": "a workspace admin restricted who may post in this channel",
    "cant_update_message": "Slack lets a bot edit only the messages it posted itself",
    "cant_delete_message": "Slack lets a bot delete only the messages it posted itself",
    "edit_window_closed": "the workspace allows editing messages only for a while after posting, and that time "
    "has passed; the message stays as it was",
    "compliance_exports_prevent_deletion": "the workspace's compliance exports forbid deleting messages",
    "message_not_found": "the message is no longer in the channel (it was deleted in Slack)",
    "invalid_blocks": "a custom template produced blocks Slack refuses",
    "msg_too_long": "the message is longer than Slack accepts",
}
_TOKEN_CODES = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
_RATE_CODES = {"ratelimited", "rate_limited"}
_TRANSIENT_CODES = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
# Slack documents these as "some aspect of the operation may have succeeded": a post may exist.
_MAYBE_DONE = {"internal_error", "fatal_error", "request_timeout"}
_POST_METHOD = "chat.postMessage"


class SlackSettings(ChannelSettings):
    """`url` (an incoming webhook: it cannot change its channel, name or icon, nor edit or delete), or
    `token` + `channel` (the Web API with a bot token: posts, edits and deletes)."""

    url: SecretStr | None = None
    token: SecretStr | None = None  # the Bot User OAuth Token, xoxb-…
    channel: str | None = None  # the channel's id, C…: chat.update/chat.delete refuse a name

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else webhook_url(value)

    @field_validator("token")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if not _BOT_TOKEN.match(token):  # the message must not quote the value: it is the secret
            raise ValueError(
                _(
                    "must be a Slack bot token (it starts with xoxb-): copy the Bot User OAuth Token from the "
                    "app's OAuth & Permissions page"
                )
            )
        return SecretStr(token)

    @field_validator("channel")
    @classmethod
    def _channel_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _CHANNEL_ID.match(value.strip()):
            raise ValueError(
                _(
                    "must be the channel's id, like C0123456789, not its name (in Slack: the channel's name → "
                    "About, the id is at the bottom)"
                )
            )
        return value.strip()

    @model_validator(mode="after")
    def _one_mode(self) -> SlackSettings:
        web = self.token is not None or self.channel is not None
        if self.url is not None and web:
            raise ValueError(
                _(
                    "sets both 'url' (an incoming webhook) and 'token'/'channel' (the Web API): keep one. A webhook "
                    "always posts to the channel it was made for and cannot edit or delete; 'token' and 'channel' can"
                )
            )
        if self.url is not None or (self.token is not None and self.channel is not None):
            return self
        if self.token is not None:
            raise ValueError(
                _("key 'channel' is required with 'token': the id of the channel to post to, like C0123456789")
            )
        if self.channel is not None:
            raise ValueError(_("key 'token' is required with 'channel': the app's bot token (xoxb-…)"))
        raise ValueError(
            _(
                "needs key 'url' (an incoming webhook URL: posts only) or keys 'token' and 'channel' (a bot token "
                "and a channel id: posts, corrections and retractions)"
            )
        )


def slack_length(value: str) -> int:
    """Slack's character limits, counted conservatively in UTF-16 code units."""
    return textlib.utf16_length(value)


class Slack(Channel):
    kind = "slack"
    settings_model = SlackSettings
    limit = SECTION_LIMIT
    # Webhook mode only: chat.update / chat.delete need a bot token and the message's channel and ts,
    # which an incoming webhook never returns (docs/channels/slack.md, "Corrections and retractions").
    cannot_edit = "a Slack incoming webhook cannot edit what it posted (Slack returns no message id to webhooks)"
    cannot_delete = "a Slack incoming webhook cannot delete what it posted (Slack returns no message id to webhooks)"

    def __init__(self, settings: ChannelSettings, site: SiteSettings, data_dir: Path = Path("data")) -> None:
        super().__init__(settings, site, data_dir)
        self.can_edit = self.can_delete = self.web_api  # the mode decides, per configured channel

    @property
    def config(self) -> SlackSettings:
        assert isinstance(self.settings, SlackSettings)
        return self.settings

    @property
    def web_api(self) -> bool:
        """Web API mode (bot token and channel id) rather than an incoming webhook."""
        return self.config.token is not None

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
        if self.web_api:
            return self._post_message(post)
        response = self._post(self.payload(post))
        if response.status_code == 200 and response.text.strip() == "ok":
            return Receipt()  # Slack returns no message id to a webhook
        raise self.error(response)

    def _post(self, payload: dict[str, Any]) -> requests.Response:
        assert self.config.url is not None
        secret = self.config.url.get_secret_value()
        target = endpoint(secret, self.config.api_base)
        return request("POST", target, secrets=url_secrets(secret) + url_secrets(target), json=payload)

    # --- Web API mode ----------------------------------------------------------------------------

    def _post_message(self, post: Post) -> Receipt:
        """`chat.postMessage`; the receipt keeps channel and `ts`, which identify the message."""
        assert self.config.channel is not None
        data = self._api(_POST_METHOD, {"channel": self.config.channel, **self.payload(post)})
        ts, channel = data.get("ts"), data.get("channel") or self.config.channel
        if not isinstance(ts, str) or not ts:
            return Receipt()  # posted, but without a ts it can never be edited or deleted
        return Receipt(post_id=ts, url=self._permalink(channel, ts), data={"channel": channel, "ts": ts})

    def _permalink(self, channel: str, ts: str) -> str | None:
        """The message's link, for the ledger and the API. The post already exists: a failure here
        leaves the receipt without a link and never fails the delivery."""
        try:
            data = self._api("chat.getPermalink", params={"channel": channel, "message_ts": ts}, verb="GET")
        except ChannelError as exc:
            log.info("Slack posted %s in %s, but its permalink is unknown: %s", ts, channel, exc.message)
            return None
        link = data.get("permalink")
        return link if isinstance(link, str) and link else None

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """`chat.update`: text and blocks replaced in place (Slack shows "(edited)")."""
        if not self.web_api:
            raise ChannelError(self.cannot_edit, permanent=True)
        channel, ts = self._message(receipt, "edited")
        payload = self.payload(post)
        self._api("chat.update", {"channel": channel, "ts": ts, "text": payload["text"], "blocks": payload["blocks"]})
        return Receipt(post_id=ts, url=receipt.url, data={**receipt.data, "channel": channel, "ts": ts})

    def delete(self, receipt: Receipt, key: str) -> None:
        """`chat.delete`; a message already gone (`message_not_found`) counts as deleted."""
        if not self.web_api:
            raise ChannelError(self.cannot_delete, permanent=True)
        channel, ts = self._message(receipt, "deleted")
        try:
            self._api("chat.delete", {"channel": channel, "ts": ts})
        except ChannelError as exc:
            if exc.code != "message_not_found":
                raise

    def _message(self, receipt: Receipt, done: str) -> tuple[str, str]:
        """The channel and `ts` a post was given; a message posted through the webhook has none."""
        ts = receipt.data.get("ts") or receipt.post_id
        channel = receipt.data.get("channel")
        if not ts or not channel:
            raise ChannelError(
                f"Slack: this message's channel and ts are unknown (it was posted through an incoming webhook, "
                f"which returns neither), so it cannot be {done}",
                permanent=True,
            )
        return channel, ts

    def _api(
        self,
        method: str,
        body: dict[str, Any] | None = None,
        *,
        params: dict[str, str] | None = None,
        verb: str = "POST",
    ) -> dict[str, Any]:
        """One Web API call with the bot token in the Authorization header; returns the `ok` body."""
        assert self.config.token is not None
        token = self.config.token.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"  # without charset Slack warns
            kwargs["data"] = json.dumps(body).encode("utf-8")
        target = endpoint(f"{WEB_API}/api/{method}", self.config.api_base)
        with secrets_masked(token):
            response = http.request(verb, target, headers=headers, allow_redirects=False, **kwargs)
            data = json_or_none(response)
            if response.status_code == 200 and isinstance(data, dict) and data.get("ok") is True:
                return data
            raise self.api_error(response, method)

    def api_error(self, response: requests.Response, method: str) -> ChannelError:
        """Classify a Web API answer: most errors come as HTTP 200 with `{"ok": false, "error": CODE}`."""
        status = response.status_code
        body = json_or_none(response)
        data = body if isinstance(body, dict) else {}
        error = data.get("error")
        code = error if isinstance(error, str) and _CODE.match(error) else None
        text = "" if isinstance(body, dict) else response.text.strip()[:200]
        message = f"Slack {method}: {code or text or response.reason or f'HTTP {status}'}"
        if code == "missing_scope" and isinstance(data.get("needed"), str):
            message += f" (needs {data['needed']})"
        if code in WEB_HINTS:
            message += f": {WEB_HINTS[code]}"
        elif code in _TOKEN_CODES:
            message += ": the bot token does not work"
        wait = retry_after(response.headers.get("Retry-After"))
        if status == 429 or code in _RATE_CODES:
            return ChannelError(message, retry_after=wait, code=code or status, status=status)
        if status >= 500 or code in _TRANSIENT_CODES:
            maybe = method == _POST_METHOD and code in _MAYBE_DONE
            return ChannelError(message, retry_after=wait, code=code or status, status=status, maybe_sent=maybe)
        if status == 200 and code is None:
            message = f"Slack {method}: unexpected answer {response.text.strip()[:200]!r} (expected JSON with ok)"
        return ChannelError(message, permanent=True, code=code or status, status=status)

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
        """Web API: `auth.test` (read-only) proves the token. Webhook: sends an empty message, which
        Slack refuses without posting: a refusal for emptiness proves the webhook exists; a revoked or
        archived one answers 403/404/410."""
        if self.web_api:
            data = self._api("auth.test")
            return (
                f"bot {data.get('user')!r} in workspace {data.get('team')!r} ({data.get('url')}) "
                f"posts to channel {self.config.channel}"
            )
        assert self.config.url is not None
        response = self._post({})
        where = shown(self.config.url.get_secret_value())
        if response.status_code == 400 and response.text.strip() in _EMPTY_REJECTED:
            return f"webhook at {where} is live (an empty test message was refused, nothing posted)"
        raise self.error(response)
