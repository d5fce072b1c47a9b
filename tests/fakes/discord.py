"""A loopback Discord webhook endpoint (platforms.md section 8).

Checks the webhook id and token in the path, the body (something to send, content 2000, at most
10 embeds, title 256, description 4096, footer 2048, 6000 in all) and answers like Discord: the
Message with `?wait=true`, 204 without, `{"code", "message", "errors"}` on failure.

The messages a webhook posted are kept in `messages` (id -> Message): `PATCH` on
`.../messages/{id}` edits one (same checks as posting, answered with the Message, "edited_timestamp"
set), `DELETE` removes it (204), and an id it does not hold answers 404 `Unknown Message` (10008),
as Discord does for a message deleted or never posted by this webhook.
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


UNKNOWN_MESSAGE = {"message": "Unknown Message", "code": 10008}


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
        self.serve(
            "*", r"/api(?:/v\d+)?/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)/messages/(?P<message>[^/]+)", self._message
        )

    def reset(self) -> None:
        super().reset()
        self.hooks = {WEBHOOK_ID: TOKEN}
        self.guild_id: str | None = None  # executed-webhook messages usually carry no guild_id
        self.next_id = 1180000000000001000
        self.messages: dict[str, dict[str, Any]] = {}  # what the channel shows now

    @property
    def webhook_path(self) -> str:
        return f"/api/webhooks/{WEBHOOK_ID}/{TOKEN}"

    def _webhook(self, request: Request) -> Reply:
        assert request.match is not None
        refused = self._webhook_refusal(request)
        if refused is not None:
            return refused
        token = self.hooks[request.match["id"]]
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

    def _message(self, request: Request) -> Reply:
        assert request.match is not None
        refused = self._webhook_refusal(request)
        if refused is not None:
            return refused
        message = self.messages.get(request.match["message"])
        if message is None:
            return Reply(404, UNKNOWN_MESSAGE)
        if request.method == "GET":
            return Reply(200, message)
        if request.method == "DELETE":
            del self.messages[request.match["message"]]
            return Reply(204, b"")
        if request.method != "PATCH":
            return Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        body, refusal = self._checked_body(request)
        if refusal is not None:
            return refusal
        assert body is not None
        # PATCH replaces only the fields sent; the result must still not be empty.
        content = str(body["content"]) if "content" in body else message["content"]
        embeds = body["embeds"] if "embeds" in body else message["embeds"]
        if not content and not embeds:
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        message.update(content=content, embeds=embeds, edited_timestamp="2021-07-13T15:00:00.000000+00:00")
        return Reply(200, message)

    def _webhook_refusal(self, request: Request) -> Reply | None:
        assert request.match is not None
        token = self.hooks.get(request.match["id"])
        if token is None:
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if request.match["token"] != token:
            return Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        return None

    def _checked_body(self, request: Request) -> tuple[dict[str, Any] | None, Reply | None]:
        """The JSON body, or Discord's refusal of it (bad JSON, content or embeds over a limit)."""
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return None, Reply(400, {"message": "The request body contains invalid JSON.", "code": 50109})
        errors: dict[str, Any] = {}
        if utf16(str(body.get("content") or "")) > 2000:
            errors["content"] = _too_long(2000)
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            errors["embeds"] = {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 10 or fewer"}]}
        else:
            for index, embed in enumerate(embeds):
                found = _embed_errors(embed)
                if found:
                    errors.setdefault("embeds", {})[str(index)] = found
        return (None, invalid_form(errors)) if errors else (body, None)

    def _execute(self, request: Request) -> Reply:
        body, refusal = self._checked_body(request)
        if refusal is not None:
            return refusal
        assert body is not None
        content = str(body.get("content") or "")
        embeds = body.get("embeds") or []
        if not content and not embeds:
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
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
        self.messages[message["id"]] = message
        if request.query.get("wait") == ["true"]:
            return Reply(200, message)
        return Reply(204, b"")
