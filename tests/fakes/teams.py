"""A loopback Microsoft Teams: a Workflows trigger and a legacy Office 365 connector
(platforms.md section 10).

Workflows: `/workflows/<id>/triggers/manual/paths/invoke?...&sig=<sig>` checks the signature and
that the body is an Adaptive Card message, answers 202 with an empty body, and Logic Apps'
`{"error": {"code", "message"}}` on failure. Connector: `/webhookb2/.../IncomingWebhook/<id>/...`
needs a MessageCard with `summary` or `text` and answers 200 with the body `1`. Both refuse more
than 28 KB with 413.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

WORKFLOW_ID = "4f1d2c3b5a6e47f8a9b0c1d2e3f4a5b6"
SIG = "FakeSasSignatureForTests_0123456789abcdefXYZ"
CONNECTOR_ID = "9d8c7b6a5f4e4d3c2b1a0f9e8d7c6b5a"
CONNECTOR_PREFIX = "/webhookb2/11111111-2222-3333-4444-555555555555@66666666-7777-8888-9999-000000000000"
MAX_BYTES = 28 * 1024


def rate_limited(seconds: int) -> Reply:
    return Reply(
        429, {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded."}}, {"Retry-After": str(seconds)}
    )


def _logic_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message}})


def _is_adaptive_message(body: Any) -> bool:
    if not isinstance(body, dict) or body.get("type") != "message":
        return False
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return False
    first = attachments[0]
    content = first.get("content") if isinstance(first, dict) else None
    return (
        first.get("contentType") == "application/vnd.microsoft.card.adaptive"
        and isinstance(content, dict)
        and content.get("type") == "AdaptiveCard"
        and isinstance(content.get("body"), list)
    )


class TeamsFake(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.serve("POST", r"/workflows/(?P<id>[^/]+)/triggers/manual/paths/invoke", self._workflow)
        self.serve("POST", r"/webhookb2/[^/]+/IncomingWebhook/(?P<id>[^/]+)/[^/]+", self._connector)

    def reset(self) -> None:
        super().reset()
        self.workflows = {WORKFLOW_ID: SIG}
        self.connectors = {CONNECTOR_ID}

    @property
    def workflow_path(self) -> str:
        query = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
        return f"/workflows/{WORKFLOW_ID}/triggers/manual/paths/invoke?{query}"

    @property
    def connector_path(self) -> str:
        return f"{CONNECTOR_PREFIX}/IncomingWebhook/{CONNECTOR_ID}/aaaabbbbccccdddd"

    def _workflow(self, request: Request) -> Reply:
        assert request.match is not None
        sig = self.workflows.get(request.match["id"])
        if sig is None:
            return _logic_error(404, "WorkflowNotFound", f"The workflow '{request.match['id']}' could not be found.")
        if request.query.get("sig") != [sig]:
            return _logic_error(401, "DirectApiInvalidAuthorizationSignature", "The provided signature is not valid.")
        if len(request.body) > MAX_BYTES:
            return _logic_error(413, "RequestEntityTooLarge", "The request content is too large.")
        body = _json(request.body)
        if not _is_adaptive_message(body):
            message = "The input body for trigger 'manual' of type 'Request' did not match its schema definition."
            return _logic_error(400, "TriggerInputSchemaMismatch", message)
        self.accept({"flavour": "workflows", **body})
        return Reply(202, b"")

    def _connector(self, request: Request) -> Reply:
        assert request.match is not None
        if request.match["id"] not in self.connectors:
            return Reply(404, "Webhook not found")
        if len(request.body) > MAX_BYTES:
            return Reply(413, "Request Entity Too Large")
        body = _json(request.body)
        if not isinstance(body, dict):
            return Reply(400, "Bad payload received by generic incoming webhook.")
        if body.get("@type") == "MessageCard" and not (body.get("summary") or body.get("text")):
            return Reply(400, "Summary or Text is required.")
        if body.get("@type") != "MessageCard" and not _is_adaptive_message(body):
            return Reply(400, "Bad payload received by generic incoming webhook.")
        self.accept({"flavour": "connector", **body})
        return Reply(200, "1")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None
