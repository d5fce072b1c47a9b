"""A loopback Slack incoming webhook (platforms.md section 9).

Checks the `/services/T/B/X` path, the JSON body (text or blocks, at most 50 blocks, section text
3000, image accessories with `image_url` and `alt_text`), and answers like Slack: 200 `ok`, or a
plain-text error code with its status (400 invalid_payload / no_text / invalid_blocks, 403
invalid_token, 404 no_service, 410 channel_is_archived, 429 with Retry-After).
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

TEAM, BOT = "T024BE7LD", "B0F1RS7TQ"
SECRET = "xFakeSlackWebhookSecret0123456789"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def rate_limited(seconds: int) -> Reply:
    return Reply(429, "rate_limited", {"Retry-After": str(seconds)})


def _block_problem(block: Any) -> str | None:
    if not isinstance(block, dict) or "type" not in block:
        return "a block without a type"
    if block["type"] == "section":
        text = block.get("text") or {}
        if text.get("type") not in ("mrkdwn", "plain_text") or not text.get("text"):
            return "section text missing"
        if utf16(text["text"]) > 3000:
            return "section text longer than 3000"
        accessory = block.get("accessory")
        if accessory is not None and (not accessory.get("image_url") or not accessory.get("alt_text")):
            return "image accessory without image_url or alt_text"
    elif block["type"] == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            return "context needs 1 to 10 elements"
    elif block["type"] not in ("image", "divider", "header", "actions"):
        return f"unknown block type {block['type']}"
    return None


class SlackFake(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.serve("POST", r"/services/(?P<team>[^/]+)/(?P<bot>[^/]+)/(?P<secret>[^/]+)", self._hook)

    def reset(self) -> None:
        super().reset()
        self.hooks = {(TEAM, BOT): SECRET}
        self.archived = False
        self.problems: list[str] = []  # why the last invalid_blocks was answered

    @property
    def webhook_path(self) -> str:
        return f"/services/{TEAM}/{BOT}/{SECRET}"

    def _hook(self, request: Request) -> Reply:
        assert request.match is not None
        secret = self.hooks.get((request.match["team"], request.match["bot"]))
        if secret is None:
            return Reply(404, "no_service")
        if request.match["secret"] != secret:
            return Reply(403, "invalid_token")
        if self.archived:
            return Reply(410, "channel_is_archived")
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return Reply(400, "invalid_payload")
        if not isinstance(body, dict):
            return Reply(400, "invalid_payload")
        return self._message(body)

    def _message(self, body: dict[str, Any]) -> Reply:
        blocks = body.get("blocks")
        if not body.get("text") and not blocks:
            return Reply(400, "no_text")
        if blocks is not None:
            found = [p for p in map(_block_problem, blocks) if p] if isinstance(blocks, list) else ["not a list"]
            if isinstance(blocks, list) and len(blocks) > 50:
                found.append("more than 50 blocks")
            if found:
                self.problems = found
                return Reply(400, "invalid_blocks")
        self.accept({**body, "text": str(body.get("text") or "")[:40_000]})  # Slack cuts, not refuses
        return Reply(200, "ok", {"Content-Type": "text/html"})
