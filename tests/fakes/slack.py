"""A loopback Slack: an incoming webhook (platforms.md section 9) and the Web API methods a bot
token uses (auth.test, chat.postMessage, chat.update, chat.delete, chat.getPermalink).

Webhook: checks the `/services/T/B/X` path, the JSON body (text or blocks, at most 50 blocks,
section text 3000, image accessories with `image_url` and `alt_text`), and answers like Slack: 200
`ok`, or a plain-text error code with its status (400 invalid_payload / no_text / invalid_blocks,
403 invalid_token, 404 no_service, 410 channel_is_archived, 429 with Retry-After).

Web API: `/api/METHOD` with `Authorization: Bearer xoxb-…`; answers HTTP 200 with `{"ok": true, …}`
or `{"ok": false, "error": CODE}` as Slack does (not_authed, invalid_auth, token_revoked,
channel_not_found, not_in_channel, message_not_found, cant_update_message, cant_delete_message,
edit_window_closed, invalid_blocks), and 429 + Retry-After with `ratelimited`. Messages are kept
in `messages` by (channel, ts), so a test sees one version after an edit and none after a delete.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

TEAM, BOT = "T024BE7LD", "B0F1RS7TQ"
SECRET = "xFakeSlackWebhookSecret0123456789"
BOT_TOKEN = "xoxb-2024-7392-FakeSlackBotToken9f8e7d"
BOT_USER, BOT_APP = "U07BOTUSER1", "A07DISTRIB1"
CHANNEL = "C0123456789"  # the bot is a member
OTHER_CHANNEL = "C0999999999"  # exists; the bot was never invited
WORKSPACE = "https://tinhuy-example.slack.com/"


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def rate_limited(seconds: int) -> Reply:
    return Reply(429, "rate_limited", {"Retry-After": str(seconds)})


def api_rate_limited(seconds: int) -> Reply:
    """What the Web API answers past a method's tier."""
    return Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(seconds)})


def api_error(code: str, **extra: Any) -> Reply:
    """A Web API refusal: HTTP 200 with ok false."""
    return Reply(200, {"ok": False, "error": code, **extra})


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
        self.serve("*", r"/api/(?P<method>[A-Za-z.]+)", self._api)

    def reset(self) -> None:
        super().reset()
        self.hooks = {(TEAM, BOT): SECRET}
        self.archived = False
        self.problems: list[str] = []  # why the last invalid_blocks was answered
        # Web API state
        self.tokens: dict[str, str] = {BOT_TOKEN: "ok"}  # token -> "ok" | "token_revoked" | "account_inactive"
        self.channels: dict[str, bool] = {CHANNEL: True, OTHER_CHANNEL: False}  # id -> bot is a member
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> the message as it stands
        self.edit_window_closed = False  # the workspace's editing time limit has passed
        self._next_ts = 1_700_000_000_000100

    def human_message(self, text: str = "posted by a person", channel: str = CHANNEL) -> str:
        """A message the bot did not post (the bot can neither edit nor delete it); returns its ts."""
        ts = self._ts()
        self.messages[(channel, ts)] = {"type": "message", "user": "U0HUMAN0001", "text": text, "ts": ts}
        return ts

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

    # --- Web API ---------------------------------------------------------------------------------

    def _ts(self) -> str:
        self._next_ts += 100
        return f"{self._next_ts // 1_000_000}.{self._next_ts % 1_000_000:06d}"

    def _api(self, request: Request) -> Reply:
        assert request.match is not None
        method = request.match["method"]
        handlers = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.getPermalink": self._permalink,
        }
        if method not in handlers:
            return Reply(404, {"ok": False, "error": "unknown_method", "req_method": method})
        auth = request.header("Authorization") or ""
        if not auth.startswith("Bearer "):
            return api_error("not_authed")
        state = self.tokens.get(auth.removeprefix("Bearer "))
        if state is None:
            return api_error("invalid_auth")
        if state != "ok":
            return api_error(state)
        args: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        if request.body:
            if "application/json" in (request.header("Content-Type") or ""):
                try:
                    body = request.json()
                except ValueError:
                    return api_error("invalid_json")
                if not isinstance(body, dict):
                    return api_error("invalid_json")
                args.update(body)
            else:
                args.update(request.form())
        return handlers[method](args)

    def _auth_test(self, args: dict[str, Any]) -> Reply:
        return Reply(
            200,
            {
                "ok": True,
                "url": WORKSPACE,
                "team": "Tỉnh ủy (thử nghiệm)",
                "user": "distributor",
                "team_id": TEAM,
                "user_id": BOT_USER,
                "bot_id": BOT,
                "is_enterprise_install": False,
            },
        )

    def _content_problem(self, args: dict[str, Any]) -> str | None:
        blocks = args.get("blocks")
        if not args.get("text") and not blocks:
            return "no_text"
        if blocks is not None:
            found = [p for p in map(_block_problem, blocks) if p] if isinstance(blocks, list) else ["not a list"]
            if isinstance(blocks, list) and len(blocks) > 50:
                found.append("more than 50 blocks")
            if found:
                self.problems = found
                return "invalid_blocks"
        return None

    def _channel_problem(self, channel: Any, posting: bool) -> str | None:
        if not channel:
            return "channel_not_found"
        member = self.channels.get(str(channel))
        if member is None:
            return "channel_not_found"
        if posting and not member:
            return "not_in_channel"
        return None

    def _post_message(self, args: dict[str, Any]) -> Reply:
        channel = args.get("channel")
        problem = self._channel_problem(channel, posting=True) or self._content_problem(args)
        if problem:
            return api_error(problem)
        ts = self._ts()
        message = {
            "type": "message",
            "user": BOT_USER,
            "bot_id": BOT,
            "app_id": BOT_APP,
            "team": TEAM,
            "text": str(args.get("text") or "")[:40_000],  # Slack cuts, not refuses
            "blocks": args.get("blocks") or [],
            "ts": ts,
        }
        self.messages[(str(channel), ts)] = message
        self.accept({**args, "ts": ts})
        return Reply(200, {"ok": True, "channel": channel, "ts": ts, "message": message})

    def _found(self, args: dict[str, Any], ts_key: str = "ts") -> tuple[tuple[str, str], dict[str, Any]] | str:
        channel, ts = str(args.get("channel") or ""), str(args.get(ts_key) or "")
        problem = self._channel_problem(channel, posting=False)
        if problem:
            return problem
        message = self.messages.get((channel, ts))
        if message is None:
            return "message_not_found"
        return (channel, ts), message

    def _update(self, args: dict[str, Any]) -> Reply:
        found = self._found(args)
        if isinstance(found, str):
            return api_error(found)
        key, message = found
        if message.get("bot_id") != BOT:
            return api_error("cant_update_message")
        if self.edit_window_closed:
            return api_error("edit_window_closed")
        problem = self._content_problem(args)
        if problem:
            return api_error(problem)
        updated = {
            **message,
            "text": str(args.get("text") or "")[:40_000],
            "edited": {"user": BOT_USER, "ts": self._ts()},
        }
        if "blocks" in args:  # without blocks Slack keeps the old ones
            updated["blocks"] = args["blocks"]
        self.messages[key] = updated
        return Reply(200, {"ok": True, "channel": key[0], "ts": key[1], "text": updated["text"], "message": updated})

    def _delete(self, args: dict[str, Any]) -> Reply:
        found = self._found(args)
        if isinstance(found, str):
            return api_error(found)
        key, message = found
        if message.get("bot_id") != BOT:
            return api_error("cant_delete_message")
        del self.messages[key]
        return Reply(200, {"ok": True, "channel": key[0], "ts": key[1]})

    def _permalink(self, args: dict[str, Any]) -> Reply:
        found = self._found(args, "message_ts")
        if isinstance(found, str):
            return api_error(found)
        (channel, ts), _ = found
        return Reply(200, {"ok": True, "channel": channel, "permalink": self.permalink(channel, ts)})

    @staticmethod
    def permalink(channel: str, ts: str) -> str:
        return f"{WORKSPACE}archives/{channel}/p{ts.replace('.', '')}"
