"""A loopback Discord webhook endpoint (platforms.md section 8).

Checks the webhook id and token in the path, the body (something to send, content 2000, at most
10 embeds, title 256, description 4096, footer 2048, 6000 in all) and answers like Discord: the
Message with `?wait=true`, 204 without, `{"code", "message", "errors"}` on failure.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

WEBHOOK_ID = "1180000000000000001"
TOKEN = "Zx9fakeWebhookTokenForTests-only_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"
CHANNEL_ID = "1180000000000000002"
GUILD_ID = "1180000000000000003"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def rate_limited(seconds: float, *, is_global: bool = False) -> Reply:
    headers = {
        "Retry-After": str(math.ceil(seconds)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset-After": str(seconds),
        "X-RateLimit-Bucket": "fakebucket",
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    body = {"message": "You are being rate limited.", "retry_after": seconds, "global": is_global}
    return Reply(429, body, headers)


def invalid_form(errors: dict[str, Any]) -> Reply:
    return Reply(400, {"code": 50035, "message": "Invalid Form Body", "errors": errors})


def _too_long(limit: int) -> dict[str, Any]:
    return {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}]}


def _embed_errors(embed: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    texts = {
        "title": (str(embed.get("title") or ""), 256),
        "description": (str(embed.get("description") or ""), 4096),
    }
    footer = embed.get("footer") or {}
    for field, (value, limit) in texts.items():
        if utf16(value) > limit:
            errors[field] = _too_long(limit)
    if utf16(str(footer.get("text") or "")) > 2048:
        errors["footer"] = {"text": _too_long(2048)}
    total = sum(utf16(value) for value, _ in texts.values()) + utf16(str(footer.get("text") or ""))
    if total > 6000 and not errors:
        message = "Embed size exceeds maximum size of 6000"
        errors["_errors"] = [{"code": "MAX_EMBED_SIZE_EXCEEDED", "message": message}]
    return errors


class DiscordFake(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.serve("*", r"/api(?:/v\d+)?/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)", self._webhook)

    def reset(self) -> None:
        super().reset()
        self.hooks = {WEBHOOK_ID: TOKEN}
        self.guild_id: str | None = None  # executed-webhook messages usually carry no guild_id
        self.next_id = 1180000000000001000

    @property
    def webhook_path(self) -> str:
        return f"/api/webhooks/{WEBHOOK_ID}/{TOKEN}"

    def _webhook(self, request: Request) -> Reply:
        assert request.match is not None
        token = self.hooks.get(request.match["id"])
        if token is None:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if request.match["token"] != token:
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        if request.method == "GET":
            return Reply(200, self._hook_object(request.match["id"], token))
        if request.method != "POST":
            return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        return self._execute(request)

    def _hook_object(self, hook_id: str, token: str) -> dict[str, Any]:
        return {
            "id": hook_id,
            "type": 1,
            "name": "Tin tức",
            "channel_id": CHANNEL_ID,
            "guild_id": GUILD_ID,
            "token": token,
            "url": f"https://discord.com/api/webhooks/{hook_id}/{token}",
        }

    def _execute(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return Reply(400, {"message": "The request body contains invalid JSON.", "code": 50109})
        if not isinstance(body, dict):
            return Reply(400, {"message": "The request body contains invalid JSON.", "code": 50109})
        content = str(body.get("content") or "")
        embeds = body.get("embeds") or []
        if not content and not embeds:
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        errors: dict[str, Any] = {}
        if utf16(content) > 2000:
            errors["content"] = _too_long(2000)
        if len(embeds) > 10:
            errors["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer"}]}
        else:
            for index, embed in enumerate(embeds):
                found = _embed_errors(embed)
                if found:
                    errors.setdefault("embeds", {})[str(index)] = found
        if errors:
            return invalid_form(errors)
        self.next_id += 1
        message = {
            "id": str(self.next_id),
            "type": 0,
            "content": content,
            "channel_id": CHANNEL_ID,
            "embeds": embeds,
            "webhook_id": request.match["id"] if request.match else "",
            "author": {
                "id": WEBHOOK_ID,
                "username": body.get("username") or "Tin tức",
                "bot": True,
            },
        }
        if self.guild_id:
            message["guild_id"] = self.guild_id
        self.accept({**body, "id": message["id"], "query": request.query})
        if request.query.get("wait") == ["true"]:
            return Reply(200, message)
        return Reply(204, b"")
