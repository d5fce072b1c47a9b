"""A loopback receiver of Distributor's generic webhook, written the way docs/channels/webhook.md
tells receivers to: verify the signature over the raw body, refuse stale timestamps, dedupe on
`X-Distributor-Delivery`, and answer `{"id": ...}`. Corrections: `article.updated` and
`article.retracted` name the original delivery in `delivery`; an update of a retracted delivery is
answered 410 Gone, as a receiver that took the article down would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

PATH_TOKEN = "hk_7f3e9a1b2c4d5e6f8091a2b3c4d5e6f7"
SIGNING_SECRET = "whsec_FakeSigningSecretForTests_0123456789"
TOLERANCE = 300  # seconds a signed request stays valid


def verify(secret: str, headers: dict[str, str], body: bytes, now: float | None = None) -> bool:
    """The receiver's check, as documented: HMAC-SHA256 over "<timestamp>." + raw body."""
    lowered = {key.lower(): value for key, value in headers.items()}
    timestamp = lowered.get("x-distributor-timestamp", "")
    sent = lowered.get("x-distributor-signature", "")
    if not timestamp.isdigit() or abs((now or time.time()) - int(timestamp)) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(sent, f"sha256={expected}")


class WebhookFake(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.serve("POST", r"/hooks/(?P<token>[^/]+)", self._receive)

    def reset(self) -> None:
        super().reset()
        self.token = PATH_TOKEN
        self.secret: str | None = SIGNING_SECRET
        self.seen: dict[str, str] = {}  # delivery key -> id given
        self.retracted: set[str] = set()  # original delivery keys taken down

    def events(self, event: str) -> list[dict[str, Any]]:
        """The bodies of accepted events of one kind, in order."""
        return [p["body"] for p in self.posts if p["body"].get("event") == event]

    @property
    def hook_path(self) -> str:
        return f"/hooks/{PATH_TOKEN}"

    def _receive(self, request: Request) -> Reply:
        assert request.match is not None
        if request.match["token"] != self.token:
            return Reply(404, {"error": "no such hook"})
        if self.secret is not None and not verify(self.secret, request.headers, request.body):
            return Reply(401, {"error": "invalid signature"})
        delivery = request.header("X-Distributor-Delivery") or ""
        if not delivery:
            return Reply(400, {"error": "missing X-Distributor-Delivery"})
        if delivery in self.seen:  # a redelivery: answer as before, show nothing new
            return Reply(200, {"id": self.seen[delivery], "duplicate": True})
        try:
            body: Any = json.loads(request.body)
        except ValueError:
            return Reply(400, {"error": "body is not JSON"})
        missing = [k for k in ("event", "article", "text", "channel") if not isinstance(body, dict) or k not in body]
        if missing:
            return Reply(422, {"error": f"missing fields: {', '.join(missing)}"})
        event = body.get("event")
        if event in ("article.updated", "article.retracted"):
            original = body.get("delivery")
            if original not in self.seen:
                return Reply(404, {"error": f"unknown delivery {original!r}"})
            if original in self.retracted:
                return Reply(410, {"error": "this article was retracted"})
            if event == "article.retracted":
                self.retracted.add(original)
        elif event != "article.published":
            return Reply(422, {"error": f"unknown event {event!r}"})
        self.seen[delivery] = f"evt_{len(self.seen) + 1}"
        self.accept({"body": body, "headers": request.headers, "raw": request.body})
        return Reply(201, {"id": self.seen[delivery], "url": f"https://receiver.example/events/{self.seen[delivery]}"})
