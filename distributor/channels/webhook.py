"""Generic webhook: a signed JSON POST of each published article to any URL.

For receivers we do not know (a CMS, a chat bridge, a partner's system). The body names the event,
the article and the rendered text. With a `secret`, `X-Distributor-Signature` is the HMAC-SHA256
of `"{timestamp}.{body}"`, so a receiver can prove who sent it and refuse replays; the delivery key
travels as `X-Distributor-Delivery` and `Idempotency-Key`, so a receiver that dedupes on it (the
contract in docs/channels/webhook.md) never shows an article twice: that is what makes this channel
`idempotent`.

Corrections travel as events of their own, signed the same way: `article.updated` (the new text,
for a receiver to change what it shows) and `article.retracted` (for it to take the article down).
Each names the original delivery in its body (`delivery`) and carries its own delivery key
(`<key>:updated:<digest of the text>`, `<key>:retracted`), so a retried event dedupes at the
receiver while a later correction gets through.
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
UPDATED = "article.updated"
RETRACTED = "article.retracted"


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
    can_edit = True  # by an article.updated event
    can_delete = True  # by an article.retracted event

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

    def body(self, post: Post, event: str = EVENT, **more: Any) -> bytes:
        article = post.extra.get("article") or {
            "id": post.article_id,
            "url": post.url,
            "title": post.title,
            "summary": post.extra.get("summary", ""),
            "image": post.image,
        }
        payload = {"event": event, "article": article, "text": post.text, "channel": post.channel, **more}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def headers(self, body: bytes, key: str, timestamp: int, event: str = EVENT) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Distributor-Event": event,
            "X-Distributor-Delivery": key,
            "Idempotency-Key": key,
            "X-Distributor-Timestamp": str(timestamp),
        }
        if self.config.secret is not None:
            headers["X-Distributor-Signature"] = signature(self.config.secret.get_secret_value(), timestamp, body)
        return headers

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        response = self._post(self.body(post), key, EVENT)
        if not 200 <= response.status_code < 300:
            raise self.error(response)
        answer = json_or_none(response)
        data = answer if isinstance(answer, dict) else {}
        post_id, url = data.get("id"), data.get("url")
        return Receipt(
            post_id=str(post_id) if post_id is not None else None,
            url=url if isinstance(url, str) else None,
        )

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """A signed `article.updated` event; its own delivery key follows the text, so the same
        correction sent twice is one at the receiver."""
        digest = hashlib.sha256(self.body(post)).hexdigest()[:16]
        body = self.body(post, UPDATED, delivery=key, post_id=receipt.post_id)
        response = self._post(body, f"{key}:updated:{digest}", UPDATED)
        if not 200 <= response.status_code < 300 and response.status_code != 409:
            raise self.error(response)
        return receipt

    def delete(self, receipt: Receipt, key: str) -> None:
        """A signed `article.retracted` event; a receiver that no longer has it (410 Gone) is done."""
        article_id = key.partition(":")[0]
        payload = {
            "event": RETRACTED,
            "article": {"id": article_id},
            "text": "",
            "channel": self.name,
            "delivery": key,
            "post_id": receipt.post_id,
        }
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        response = self._post(body, f"{key}:retracted", RETRACTED)
        if not 200 <= response.status_code < 300 and response.status_code not in (409, 410):
            raise self.error(response)

    def _post(self, body: bytes, key: str, event: str) -> requests.Response:
        headers = self.headers(body, key, int(time.time()), event)
        target = endpoint(self.config.url.get_secret_value(), self.config.api_base)
        return request("POST", target, secrets=self._secrets(), data=body, headers=headers)

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
