"""A loopback Graph API for Page posts (platforms.md §1).

It checks what Facebook checks: a Page token as `access_token` parameter or Bearer header, the
`appsecret_proof` when the app requires one, the page id, the required fields of each edge, and an
exact repeat of the last message (code 506). It answers with Graph's bodies (the error object with
code, subcode and fbtrace_id, HTTP 400 or 500) and its usage headers. `fail_next` queues any error;
accepted posts are in `posts`.

`POST /{post-id}` with `message` edits a post (`{"success": true}`; the previous text is appended to
the post's `edits`, and an unchanged text adds no version); `DELETE /{post-id}` marks it `deleted`.
A post that does not exist (or was deleted) gets Graph's code 100 subcode 33 "Unsupported <verb>
request. Object with ID ... does not exist"; ids in `protected` get "(#200) Permissions error".
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any

from distributor.text import utf16_length
from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

PAGE_ID = "104857600123456"
PAGE_TOKEN = "EAAGpagetokenXYZ0123456789"
PAGE_NAME = "Cổng Thông tin điện tử tỉnh Tây Ninh"
APP_ID = "468213009871234"
MESSAGE_LIMIT = 63_206


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
    user_msg: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": kind,
        "code": code,
        "fbtrace_id": "AbCdEf123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_msg is not None:
        error.update(error_user_title="Lỗi", error_user_msg=user_msg)
    return {"error": error}


def usage_headers(regain_minutes: int = 0, call_count: int = 1) -> dict[str, str]:
    """The usage headers a Page token call carries (percentages; minutes until access returns)."""
    business = {
        PAGE_ID: [
            {
                "type": "pages",
                "call_count": call_count,
                "total_cputime": 1,
                "total_time": 1,
                "estimated_time_to_regain_access": regain_minutes,
            }
        ]
    }
    return {
        "X-App-Usage": json.dumps({"call_count": call_count, "total_cputime": 1, "total_time": 1}),
        "X-Business-Use-Case-Usage": json.dumps(business),
    }


class FakeFacebook(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.add("POST", r"/v\d+\.\d+/(?P<page>[^/]+)/(?P<edge>feed|photos)", self._publish)
        self.add("GET", r"/v\d+\.\d+/?(?P<page>)$", self._url_engagement)
        self.add("GET", r"/v\d+\.\d+/(?P<page>debug_token)$", self._debug_token)
        self.add("GET", r"/v\d+\.\d+/(?P<page>[^/]+)", self._read)
        self.add("POST", r"/v\d+\.\d+/(?P<page>[^/]+)", self._edit)
        self.add("DELETE", r"/v\d+\.\d+/(?P<page>[^/]+)", self._delete)

    def reset(self) -> None:
        super().reset()
        self.page_id = PAGE_ID
        self.token = PAGE_TOKEN
        self.app_secret: str | None = None  # set: every call must carry a matching appsecret_proof
        self._ids = itertools.count(9_000_000_001)
        self.protected: set[str] = set()  # post ids this app may not edit or delete
        # Engagement the platform would report: post id -> {"shares", "reactions", "comments"}, and
        # article URL -> Graph's `engagement` object; each URL answers 10 reads an hour (then code 4).
        self.engagement: dict[str, dict[str, int]] = {}
        self.url_engagement: dict[str, dict[str, int]] = {}
        self.url_reads: dict[str, int] = {}
        # What debug_token says of the Page token: 0 = never expires (a Page token made from a
        # long-lived user token); data access lapses 90 days after the user last used the app.
        self.token_expires_at = 0
        self.data_access_expires_at = int(time.time()) + 90 * 86400

    def post(self, post_id: str | None) -> dict[str, Any]:
        """The accepted post with this id (deleted ones included), as it now stands."""
        [post] = [p for p in self.posts if p["post_id"] == post_id]
        return post

    def fail_next(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int = 400,
        headers: dict[str, str] | None = None,
        user_msg: str | None = None,
    ) -> None:
        """Answer the next call with this Graph error (the usage headers are added)."""
        body = graph_error(code, message, subcode=subcode, user_msg=user_msg)
        self.then(Reply(status, body, {**usage_headers(), **(headers or {})}))

    # --- handlers ---------------------------------------------------------------------------------

    def _refusal(self, request: Request, page: bool = True) -> Reply | None:
        """The authentication, proof and (for the Page's edges) page checks every call goes through."""
        scripted = self.queued()
        if scripted is not None:
            return scripted
        fields = request.form()
        token = fields.get("access_token")
        bearer = request.header("authorization") or ""
        if token is None and bearer.startswith("Bearer "):
            token = bearer.removeprefix("Bearer ")
        if not token:
            return _error(
                400,
                2500,
                "An active access token must be used to query information about the current user.",
            )
        if token != self.token:
            return _error(400, 190, "Invalid OAuth access token - Cannot parse access token", subcode=None)
        if self.app_secret is not None:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(fields.get("appsecret_proof", ""), proof):
                return _error(
                    400,
                    100,
                    "Invalid appsecret_proof provided in the API argument",
                    kind="GraphMethodException",
                )
        target = request.match.group("page") if request.match else ""
        if page and target != self.page_id:
            return _missing(target, "post")
        return None

    def _live(self, request: Request, verb: str) -> dict[str, Any] | Reply:
        target = request.match.group("page") if request.match else ""
        for post in self.posts:
            if post["post_id"] == target and not post.get("deleted"):
                if post["post_id"] in self.protected:
                    return _error(400, 200, "(#200) Permissions error", kind="OAuthException")
                return post
        return _missing(target, verb)

    def _read(self, request: Request) -> Reply:
        target = request.match.group("page") if request.match else ""
        if target == self.page_id:
            return self._page(request)
        refusal = self._refusal(request, page=False)
        if refusal is not None:
            return refusal
        post = self._live(request, "get")
        if isinstance(post, Reply):
            return post
        wanted = request.form().get("fields", "")
        if "reactions" in wanted or "shares" in wanted or "comments" in wanted:
            return Reply(
                200, _post_engagement(post["post_id"], self.engagement.get(post["post_id"], {})), usage_headers()
            )
        return Reply(200, {"id": post["post_id"], "message": post["text"]}, usage_headers())

    def _url_engagement(self, request: Request) -> Reply:
        """`GET /?id=<url>&fields=engagement`: the URL's counts anywhere on Facebook (Graph's shape)."""
        refusal = self._refusal(request, page=False)
        if refusal is not None:
            return refusal
        fields = request.form()
        url = fields.get("id", "")
        if not url:
            return _error(400, 100, "(#100) Missing required parameter: id")
        self.url_reads[url] = self.url_reads.get(url, 0) + 1
        if self.url_reads[url] > 10:
            return _error(400, 4, "(#4) Application request limit reached")
        counts = {"reaction_count": 0, "comment_count": 0, "share_count": 0, "comment_plugin_count": 0}
        counts.update(self.url_engagement.get(url, {}))
        return Reply(200, {"engagement": counts, "id": url}, usage_headers())

    def _edit(self, request: Request) -> Reply:
        refusal = self._refusal(request, page=False)
        if refusal is not None:
            return refusal
        post = self._live(request, "post")
        if isinstance(post, Reply):
            return post
        message = request.form().get("message")
        if message is None:
            return _error(400, 100, "(#100) No fields to update", kind="OAuthException")
        if utf16_length(message) > MESSAGE_LIMIT:
            return _error(400, 100, "(#100) Message is too long")
        if message != post["text"]:
            post.setdefault("edits", []).append(post["text"])
            post["text"] = message
        return Reply(200, {"success": True}, usage_headers())

    def _delete(self, request: Request) -> Reply:
        refusal = self._refusal(request, page=False)
        if refusal is not None:
            return refusal
        post = self._live(request, "delete")
        if isinstance(post, Reply):
            return post
        post["deleted"] = True
        return Reply(200, {"success": True}, usage_headers())

    def _publish(self, request: Request) -> Reply:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        fields = request.form()
        edge = request.match.group("edge") if request.match else ""
        text = fields.get("caption" if edge == "photos" else "message", "")
        if edge == "photos" and not fields.get("url", "").startswith(("http://", "https://")):
            return _error(400, 324, "(#324) Requires upload file", kind="OAuthException")
        if edge == "feed" and not (text or fields.get("link")):
            return _error(400, 100, "(#100) Missing message or attachment")
        if fields.get("link") and not fields["link"].startswith(("http://", "https://")):
            return _error(400, 100, "(#100) The link field is invalid")
        if utf16_length(text) > MESSAGE_LIMIT:
            return _error(400, 100, "(#100) Message is too long")
        if self.posts and self.posts[-1].get("text") == text and text:
            return _error(400, 506, "(#506) Duplicate status message")
        number = next(self._ids)
        post_id = f"{self.page_id}_{number}"
        self.accept({"edge": edge, "text": text, "post_id": post_id, **fields})
        if edge == "photos":
            return Reply(200, {"id": str(number + 7), "post_id": post_id}, usage_headers())
        return Reply(200, {"id": post_id}, usage_headers())

    def _debug_token(self, request: Request) -> Reply:
        """`GET /debug_token?input_token=...`: the token's metadata in Graph's shape; a token that is
        not this app's comes back with `is_valid: false` and the reason, as Graph answers it."""
        refusal = self._refusal(request, page=False)
        if refusal is not None:
            return refusal
        data: dict[str, Any] = {
            "app_id": APP_ID,
            "type": "PAGE",
            "application": "Distributor",
            "data_access_expires_at": self.data_access_expires_at,
            "expires_at": self.token_expires_at,
            "is_valid": True,
            "issued_at": int(time.time()) - 3600,
            "profile_id": self.page_id,
            "scopes": ["pages_manage_posts", "pages_read_engagement", "pages_show_list"],
            "user_id": "100012345678901",
        }
        if request.form().get("input_token") != self.token:
            data = {
                "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"},
                "is_valid": False,
                "scopes": [],
            }
        return Reply(200, {"data": data}, usage_headers())

    def _page(self, request: Request) -> Reply:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        wanted = request.form().get("fields", "id").split(",")
        page = {"id": self.page_id, "name": PAGE_NAME}
        return Reply(200, {k: v for k, v in page.items() if k in wanted}, usage_headers())


def _missing(target: str, verb: str) -> Reply:
    message = (
        f"Unsupported {verb} request. Object with ID '{target}' does not exist, cannot be loaded due to "
        "missing permissions, or does not support this operation. Please read the Graph API documentation "
        "at https://developers.facebook.com/docs/graph-api"
    )
    return _error(400, 100, message, subcode=33, kind="GraphMethodException")


def _error(
    status: int,
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    kind: str = "OAuthException",
) -> Reply:
    return Reply(status, graph_error(code, message, subcode=subcode, kind=kind), usage_headers())


def _post_engagement(post_id: str, counts: dict[str, int]) -> dict[str, Any]:
    """Graph's answer to `fields=shares,reactions.summary(total_count).limit(0),comments.summary(...)`:
    `shares` is left out while nobody shared the post, the edges' `data` is empty (limit 0)."""
    body: dict[str, Any] = {
        "reactions": {"data": [], "summary": {"total_count": counts.get("reactions", 0), "viewer_reaction": "NONE"}},
        "comments": {
            "data": [],
            "summary": {"order": "ranked", "total_count": counts.get("comments", 0), "can_comment": True},
        },
        "id": post_id,
    }
    if counts.get("shares"):
        body = {"shares": {"count": counts["shares"]}, **body}
    return body
