"""A Mastodon instance on loopback, answering as platforms.md section 5 describes.

It checks what a real instance checks (Bearer token and scopes, status length counted as
graphemes with links as 23, visibility, processed media, real image bytes) and answers with the
real bodies and `X-RateLimit-*` headers. An `Idempotency-Key` seen before returns the status it
created, as Mastodon does for an hour. Failures are queued per route in `fail_next`.

Edits (`PUT /api/v1/statuses/:id`) behave as Mastodon's UpdateStatusService: media not listed in
`media_ids` are removed, `media_attributes` change alt texts, an edit that changes nothing answers
200 without a new version, and otherwise `edited_at` is set and `history` gains the original (on
the first edit) and the new version, as `GET /api/v1/statuses/:id/history` shows. A deletion
answers the deleted status with its source `text` and marks it `deleted`; later calls get 404.
"""

from __future__ import annotations

import io
import itertools
import re
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

import regex
from PIL import Image as PILImage

from tests.fakes.server import FakeServer, Reply, Request

URL = re.compile(r"https?://[^\s<>\"']+")
LINK_END = re.compile(r"[^\w/=#+&-]+$")  # Mastodon's linkifier leaves trailing `.,)"` out of a link
VISIBILITIES = {"public", "unlisted", "private", "direct"}


def status_length(text: str) -> int:
    """Counted independently of the adapter: graphemes, each link 23 (its trailing punctuation apart)."""

    def placeholder(match: re.Match[str]) -> str:
        kept = LINK_END.sub("", match.group())
        return "x" * 23 + match.group()[len(kept) :]

    return len(regex.findall(r"\X", URL.sub(placeholder, text)))


def multipart_files(request: Request) -> dict[str, tuple[bytes, str, str | None]]:
    """name -> (bytes, content type, filename) for every part of a multipart body."""
    content_type = request.header("content-type") or ""
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    parts: dict[str, tuple[bytes, str, str | None]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            parts[str(name)] = (data, part.get_content_type(), part.get_filename())
    return parts


class FakeMastodon(FakeServer):
    def __init__(
        self,
        token: str = "mastodon-test-token-5f2e",
        scopes: tuple[str, ...] = ("read", "write:statuses", "write:media"),
        max_characters: int = 500,
    ) -> None:
        self.token = token
        self.scopes = scopes
        self.max_characters = max_characters
        self._defaults = (scopes, max_characters)  # restored by `reset`, which tests may change
        super().__init__()
        self.statuses: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        self.fail_next: dict[str, list[Reply]] = {
            "status": [],
            "media": [],
            "verify": [],
            "edit": [],
            "delete": [],
            "read": [],
        }
        self.media_processing_polls: int | None = None  # None: upload answers 200 at once
        self.rate_limit = 300
        self.remaining = 300
        self._ids = itertools.count(109_000_000_000_000_001)
        self.add("POST", "/api/v1/statuses", self._status)
        self.add("POST", "/api/v2/media", self._upload)
        self.add("GET", r"/api/v1/media/(?P<id>\d+)", self._media_get)
        self.add("GET", "/api/v1/accounts/verify_credentials", self._verify)
        self.add("PUT", r"/api/v1/statuses/(?P<id>\d+)", self._edit)
        self.add("DELETE", r"/api/v1/statuses/(?P<id>\d+)", self._delete)
        self.add("GET", r"/api/v1/statuses/(?P<id>\d+)", self._read)
        self.add("GET", r"/api/v1/statuses/(?P<id>\d+)/history", self._history)

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        self.requests.clear()
        self.statuses.clear()
        self.media.clear()
        self.by_key.clear()
        for queue in self.fail_next.values():
            queue.clear()
        self.media_processing_polls = None
        self.remaining = self.rate_limit
        self.scopes, self.max_characters = self._defaults

    def status(self, status_id: str | None) -> dict[str, Any]:
        """The stored status with this id (deleted ones included), as it now stands."""
        [status] = [s for s in self.statuses if s["id"] == status_id]
        return status

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # --- shared checks ---------------------------------------------------------------------------

    def rate_headers(self) -> dict[str, str]:
        reset = datetime.now(UTC) + timedelta(minutes=5)
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }

    def reply(self, status: int, body: Any) -> Reply:
        return Reply(status, body, self.rate_headers())

    def _gate(self, request: Request, route: str, scope: str | None = None) -> Reply | None:
        """Auth, scope, rate limit and queued failures, in the order Mastodon applies them."""
        if request.header("Authorization") != f"Bearer {self.token}":
            return self.reply(401, {"error": "The access token is invalid"})
        if scope and scope not in self.scopes and "write" not in self.scopes:
            return self.reply(403, {"error": "This action is outside the authorized scopes"})
        self.remaining -= 1
        if self.remaining < 0:
            return self.reply(429, {"error": "Too many requests"})
        if self.fail_next[route]:
            return self.fail_next[route].pop(0)
        return None

    # --- routes ----------------------------------------------------------------------------------

    def _status(self, request: Request) -> Reply:
        refused = self._gate(request, "status", "write:statuses")
        if refused:
            return refused
        key = request.header("Idempotency-Key")
        if key and key in self.by_key:
            return self.reply(200, _public_status(self.status(self.by_key[key]["id"])))
        form = _fields(request)
        text = str(form.get("status") or "")
        media_ids = [str(m) for m in form.get("media_ids") or []]
        problem = self._invalid(text, form.get("visibility", "public"), media_ids)
        if problem:
            return self.reply(422, {"error": problem})
        status_id = str(next(self._ids))
        status = {
            "id": status_id,
            "created_at": datetime.now(UTC).isoformat(),
            "url": f"{self.url}/@news/{status_id}",
            "uri": f"{self.url}/users/news/statuses/{status_id}",
            "content": f"<p>{text}</p>",
            "visibility": form.get("visibility", "public"),
            "language": form.get("language"),
            "media_attachments": [self.media[m] for m in media_ids],
            "edited_at": None,
            "card": None,
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
        }
        self.statuses.append({**status, "text": text, "idempotency_key": key, "history": [], "deleted": False})
        if key:
            self.by_key[key] = status
        return self.reply(200, status)

    def _invalid(self, text: str, visibility: str, media_ids: list[str]) -> str | None:
        if not text.strip() and not media_ids:
            return "Validation failed: Text can't be blank"
        if status_length(text) > self.max_characters:
            return f"Validation failed: Text character limit of {self.max_characters} exceeded"
        if visibility not in VISIBILITIES:
            return f"Validation failed: Visibility is not included in the list ({visibility})"
        for media_id in media_ids:
            if media_id not in self.media:
                return "Validation failed: Media attachment not found"
            if self.media[media_id]["url"] is None:
                return "Cannot attach files that have not finished processing. Try again in a moment!"
        return None

    def _upload(self, request: Request) -> Reply:
        refused = self._gate(request, "media", "write:media")
        if refused:
            return refused
        parts = multipart_files(request)
        data, content_type, _ = parts.get("file", (b"", "", None))
        try:
            with PILImage.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                kind = picture.format
        except Exception:
            return self.reply(422, {"error": "Validation failed: File content type is invalid, File is invalid"})
        media_id = str(next(self._ids))
        processing = self.media_processing_polls is not None
        attachment = {
            "id": media_id,
            "type": "image",
            "url": None if processing else f"{self.url}/media/{media_id}.jpg",
            "description": parts.get("description", (b"",))[0].decode("utf-8"),
            "meta": {"original": {"width": width, "height": height}},
            "bytes": len(data),
            "content_type": content_type,
            "format": kind,
            "polls_left": self.media_processing_polls or 0,
        }
        self.media[media_id] = attachment
        return self.reply(202 if processing else 200, _public(attachment))

    def _media_get(self, request: Request) -> Reply:
        refused = self._gate(request, "media")
        if refused:
            return refused
        attachment = self.media.get(request.match["id"] if request.match else "")
        if attachment is None:
            return self.reply(404, {"error": "Record not found"})
        if attachment["polls_left"] > 0:
            attachment["polls_left"] -= 1
            return self.reply(206, _public(attachment))
        attachment["url"] = f"{self.url}/media/{attachment['id']}.jpg"
        return self.reply(200, _public(attachment))

    def _verify(self, request: Request) -> Reply:
        refused = self._gate(request, "verify")
        return refused or self.reply(200, {"id": "1", "username": "news", "acct": "news"})

    # --- edits and deletions ---------------------------------------------------------------------

    def _own(self, request: Request) -> dict[str, Any] | Reply:
        """The account's live status (Mastodon: `Status.where(account: current_account).find`)."""
        status_id = request.match["id"] if request.match else ""
        for status in self.statuses:
            if status["id"] == status_id and not status["deleted"]:
                return status
        return self.reply(404, {"error": "Record not found"})

    def _edit(self, request: Request) -> Reply:
        refused = self._gate(request, "edit", "write:statuses")
        if refused:
            return refused
        status = self._own(request)
        if isinstance(status, Reply):
            return status
        form = _fields(request)
        text = str(form.get("status") or "")
        media_ids = [str(m) for m in form.get("media_ids") or []]  # absent: every attachment is removed
        problem = self._invalid(text, status["visibility"], media_ids)
        if problem:
            return self.reply(422, {"error": problem})
        described = False
        for attributes in form.get("media_attributes") or []:
            media = self.media.get(str(attributes.get("id")))
            if media is not None and str(media["id"]) in media_ids and "description" in attributes:
                described |= media["description"] != attributes["description"]
                media["description"] = attributes["description"]
        language = form.get("language") or status["language"]
        current = [m["id"] for m in status["media_attachments"]]
        if text == status["text"] and media_ids == current and language == status["language"] and not described:
            return self.reply(200, _public_status(status))  # no changes submitted: no new version
        if not status["history"]:
            status["history"].append(_version(status, status["created_at"]))
        status.update(
            text=text,
            content=f"<p>{text}</p>",
            language=language,
            media_attachments=[self.media[m] for m in media_ids],
            edited_at=datetime.now(UTC).isoformat(),
        )
        status["history"].append(_version(status, status["edited_at"]))
        return self.reply(200, _public_status(status))

    def _delete(self, request: Request) -> Reply:
        refused = self._gate(request, "delete", "write:statuses")
        if refused:
            return refused
        status = self._own(request)
        if isinstance(status, Reply):
            return status
        status["deleted"] = True
        return self.reply(200, {**_public_status(status), "text": status["text"]})

    def _read(self, request: Request) -> Reply:
        refused = self._gate(request, "read")
        if refused:
            return refused
        status = self._own(request)
        return status if isinstance(status, Reply) else self.reply(200, _public_status(status))

    def _history(self, request: Request) -> Reply:
        refused = self._gate(request, "read")
        if refused:
            return refused
        status = self._own(request)
        if isinstance(status, Reply):
            return status
        return self.reply(200, status["history"] or [_version(status, status["created_at"])])


def _version(status: dict[str, Any], at: str) -> dict[str, Any]:
    """One StatusEdit, as the history endpoint lists them."""
    return {
        "content": status["content"],
        "created_at": at,
        "media_attachments": [_public(m) for m in status["media_attachments"]],
    }


def _public_status(status: dict[str, Any]) -> dict[str, Any]:
    hidden = ("text", "idempotency_key", "history", "deleted")
    shown = {k: v for k, v in status.items() if k not in hidden}
    shown["media_attachments"] = [_public(m) for m in status["media_attachments"]]
    return shown


def _fields(request: Request) -> dict[str, Any]:
    """The status parameters, sent as JSON or as a form (`media_ids[]` repeated)."""
    if "json" in (request.header("content-type") or ""):
        return dict(request.json() or {})
    fields: dict[str, Any] = dict(request.form())
    fields["media_ids"] = parse_qs(request.body.decode("utf-8")).get("media_ids[]", [])
    return fields


def _public(attachment: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attachment.items() if k in ("id", "type", "url", "description", "meta")}
