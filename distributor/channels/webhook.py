"""Generic webhook: a signed JSON POST of each published article to any URL.

For receivers we do not know (a CMS, a chat bridge, a partner's system). The body names the event,
the article and the rendered text. With a `secret`, `X-Distributor-Signature` is the HMAC-SHA256
of `"{timestamp}.{body}"`, so a receiver can prove who sent it and refuse replays; the delivery key
travels as `X-Distributor-Delivery` and `Idempotency-Key`, so a receiver that dedupes on it (the
contract in docs/channels/webhook.md) never shows an article twice: that is what makes this channel
`idempotent`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from pydantic import SecretStr

from distributor.channels.base import Channel
from distributor.channels.secret_urls import WebhookSettings, endpoint, redact, request, shown, url_secrets
from distributor.errors import ChannelError
from distributor.http import json_or_none, retry_after
from distributor.models import Article, Post, Receipt

EVENT = "article.published"


class SignedWebhookSettings(WebhookSettings):
    secret: SecretStr | None = None  # signs each request; share it with the receiver


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 keyed with `secret` over `"{timestamp}." + body`."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class Webhook(Channel):
    kind = "webhook"
    settings_model = SignedWebhookSettings
    limit = 10_000
    idempotent = True  # receivers get the delivery key and dedupe on it (documented contract)

    @property
    def config(self) -> SignedWebhookSettings:
        assert isinstance(self.settings, SignedWebhookSettings)
        return self.settings

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {
            "summary": article.summary,
            "article": {
                "id": article.id,
                "url": article.url,  # the article's own URL; `text` carries the tagged link
                "title": article.title,
                "summary": article.summary,
                "image": article.image,
                "published": article.published.isoformat(),
                "categories": list(article.categories),
                "tags": list(article.tags),
            },
        }

    def body(self, post: Post) -> bytes:
        article = post.extra.get("article") or {
            "id": post.article_id,
            "url": post.url,
            "title": post.title,
            "summary": post.extra.get("summary", ""),
            "image": post.image,
        }
        payload = {"event": EVENT, "article": article, "text": post.text, "channel": post.channel}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def headers(self, body: bytes, key: str, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Distributor-Event": EVENT,
            "X-Distributor-Delivery": key,
            "Idempotency-Key": key,
            "X-Distributor-Timestamp": str(timestamp),
        }
        if self.config.secret is not None:
            headers["X-Distributor-Signature"] = signature(self.config.secret.get_secret_value(), timestamp, body)
        return headers

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        body = self.body(post)
        headers = self.headers(body, key, int(time.time()))
        target = endpoint(self.config.url.get_secret_value(), self.config.api_base)
        response = request("POST", target, secrets=self._secrets(), data=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise self.error(response)
        answer = json_or_none(response)
        data = answer if isinstance(answer, dict) else {}
        post_id, url = data.get("id"), data.get("url")
        return Receipt(
            post_id=str(post_id) if post_id is not None else None,
            url=url if isinstance(url, str) else None,
        )

    def _secrets(self) -> list[str]:
        url = self.config.url.get_secret_value()
        secrets = url_secrets(url) + url_secrets(endpoint(url, self.config.api_base))
        if self.config.secret is not None:
            secrets.append(self.config.secret.get_secret_value())
        return secrets

    def error(self, response: requests.Response) -> ChannelError:
        status = response.status_code
        answer = json_or_none(response)
        data = answer if isinstance(answer, dict) else {}
        # A receiver's 404 or redirect page often quotes the URL ("Cannot POST /hooks/<token>"):
        # masked before the text is cut, so no part of a secret is left either.
        secrets = self._secrets()
        text = redact(response.text.strip(), secrets)[:200]
        detail = data.get("error") or data.get("message") or text or response.reason
        message = redact(f"webhook: HTTP {status}: {detail}", secrets)
        wait = retry_after(response.headers.get("Retry-After"))
        if status in (408, 429) or status >= 500:
            return ChannelError(message, retry_after=wait, code=status, status=status)
        if status == 409:  # the receiver already has this delivery key: it was delivered before
            return ChannelError(message, permanent=True, duplicate=True, code=status, status=status)
        if 300 <= status < 400:
            message += ": redirects are not followed; set url to the final address"
        return ChannelError(message, permanent=True, code=status, status=status)

    def check(self) -> str:
        """A receiver has no read-only call we could know; report the configuration instead."""
        signed = "signed with HMAC-SHA256" if self.config.secret is not None else "unsigned (no secret set)"
        return f"posts {EVENT} to {shown(self.config.url.get_secret_value())}, {signed}; nothing was sent"
