"""A Bluesky PDS on loopback, answering as platforms.md section 6 describes.

It keeps sessions (access tokens expire on demand, refresh tokens are single-use), checks posts the
way the lexicon does (300 graphemes and 3,000 UTF-8 bytes, TID record keys, blob references that
exist and fit the 1,000,000-byte thumbnail cap) and, stricter than a real PDS, that every facet's
byte range covers exactly its hashtag, or its link (in full or in the short form the
Bluesky app writes). A create on a record key already taken fails with
`duplicate_reply` (the reference PDS throws a 500 from its MST). Failures are queued per NSID in
`fail_next`; every answer carries `RateLimit-*` headers.

`deleteRecord` removes a post of the account and answers `{"commit": {...}}`, or `{}` when there
is no such record (the reference PDS: "No-op if record already doesn't exist"); another repo
answers 401 AuthenticationRequired, as the PDS does for a did that is not the session's.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import time
from datetime import datetime
from typing import Any

import regex
from PIL import Image as PILImage

from tests.fakes.server import FakeServer, Reply, Request

POST = "app.bsky.feed.post"
TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")
THUMB_BYTES = 1_000_000


def invalid(message: str) -> tuple[int, dict[str, str]]:
    return 400, {"error": "InvalidRequest", "message": message}


class FakeBluesky(FakeServer):
    def __init__(
        self,
        handle: str = "tintuc.bsky.social",
        password: str = "abcd-efgh-ijkl-mnop",
        did: str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    ) -> None:
        self.user_handle = handle
        self.password = password
        self.did = did
        super().__init__()
        self.records: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, dict[str, Any]] = {}
        self.access: set[str] = set()
        self.expired: set[str] = set()
        self.refresh: set[str] = set()
        self.logins = 0
        self.login_limit = 30
        self.fail_next: dict[str, list[Reply]] = {}
        self.duplicate_reply = Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"})
        self.counts: dict[str, dict[str, int]] = {}  # post URI -> likeCount, repostCount... set by a test
        self._serial = itertools.count(1)
        routes = {
            ("POST", "com.atproto.server.createSession"): self._create_session,
            ("POST", "com.atproto.server.refreshSession"): self._refresh_session,
            ("GET", "com.atproto.server.getSession"): self._get_session,
            ("POST", "com.atproto.repo.createRecord"): self._create_record,
            ("POST", "com.atproto.repo.uploadBlob"): self._upload_blob,
            ("GET", "com.atproto.repo.getRecord"): self._get_record,
            ("POST", "com.atproto.repo.deleteRecord"): self._delete_record,
            ("GET", "app.bsky.feed.getPosts"): self._get_posts,
        }
        for (method, nsid), handler in routes.items():
            self.add(method, f"/xrpc/{re.escape(nsid)}", self._wrap(nsid, handler))

    # --- lifecycle and test controls -------------------------------------------------------------

    def reset(self) -> None:
        for collection in (self.records, self.blobs, self.fail_next, self.counts):
            collection.clear()
        for tokens in (self.access, self.expired, self.refresh):
            tokens.clear()
        self.requests.clear()
        self.logins = 0
        self.login_limit = 30
        self.duplicate_reply = Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"})

    def expire_access(self) -> None:
        """Every access token issued so far now answers ExpiredToken."""
        self.expired |= self.access
        self.access.clear()

    def revoke_all(self) -> None:
        """Every token is forgotten (a password change): only a new login works."""
        for tokens in (self.access, self.expired, self.refresh):
            tokens.clear()

    def calls(self, nsid: str) -> list[Request]:
        return [r for r in self.requests if r.path == f"/xrpc/{nsid}"]

    # --- plumbing --------------------------------------------------------------------------------

    def _wrap(self, nsid: str, handler: Any) -> Any:
        def serve(request: Request) -> Reply:
            queued = self.fail_next.get(nsid)
            if queued:
                return queued.pop(0)
            status, body = handler(request)
            return Reply(status, body, self._rate_headers())

        return serve

    def _rate_headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "2999",
            "RateLimit-Reset": str(int(time.time()) + 300),
            "RateLimit-Policy": "3000;w=300",
        }

    def _tokens(self) -> dict[str, str]:
        serial = next(self._serial)
        access, refresh = f"eyJ.access.{serial}", f"eyJ.refresh.{serial}"
        self.access.add(access)
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "handle": self.user_handle, "did": self.did}

    def _auth(self, request: Request) -> tuple[int, dict[str, str]] | None:
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        if token in self.access:
            return None
        if token in self.expired:
            return 400, {"error": "ExpiredToken", "message": "Token has expired"}
        if not token:
            return 401, {"error": "AuthenticationRequired", "message": "Authentication Required"}
        return 400, {"error": "InvalidToken", "message": "Token could not be verified"}

    # --- sessions --------------------------------------------------------------------------------

    def _create_session(self, request: Request) -> tuple[int, Any]:
        self.logins += 1
        if self.logins > self.login_limit:
            return 429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}
        data = request.json() or {}
        if data.get("identifier") not in (self.user_handle, self.did) or data.get("password") != self.password:
            return 401, {
                "error": "AuthenticationRequired",
                "message": "Invalid identifier or password",
            }
        return 200, {**self._tokens(), "active": True}

    def _refresh_session(self, request: Request) -> tuple[int, Any]:
        token = (request.header("Authorization") or "").removeprefix("Bearer ")
        if token not in self.refresh:
            return 400, {"error": "ExpiredToken", "message": "Token has been revoked"}
        self.refresh.discard(token)  # single use
        return 200, {**self._tokens(), "active": True}

    def _get_session(self, request: Request) -> tuple[int, Any]:
        return self._auth(request) or (
            200,
            {"handle": self.user_handle, "did": self.did, "active": True},
        )

    # --- repo ------------------------------------------------------------------------------------

    def _upload_blob(self, request: Request) -> tuple[int, Any]:
        refused = self._auth(request)
        if refused:
            return refused
        mime = request.header("Content-Type") or ""
        if not request.body or not mime.startswith("image/"):
            return invalid(f"Blob is empty or not an image ({mime or 'no content type'})")
        link = "bafkrei" + hashlib.sha256(request.body).hexdigest()[:52]
        blob = {
            "$type": "blob",
            "ref": {"$link": link},
            "mimeType": mime,
            "size": len(request.body),
        }
        self.blobs[link] = {**blob, "data": request.body}
        return 200, {"blob": blob}

    def _get_posts(self, request: Request) -> tuple[int, Any]:
        """`app.bsky.feed.getPosts?uris=...` as the PDS proxies it to the App View: a PostView per
        post that exists, posts that do not are simply left out."""
        refused = self._auth(request)
        if refused:
            return refused
        uris = request.query.get("uris") or []
        if not uris or len(uris) > 25:
            return invalid("uris must list 1 to 25 post URIs")
        views = []
        for uri in uris:
            found = [r for r in self.records.values() if r["uri"] == uri]
            if not found:
                continue
            record = found[0]
            counts = {"replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0}
            counts.update(self.counts.get(uri, {}))
            views.append(
                {
                    "uri": uri,
                    "cid": record["cid"],
                    "author": {"did": self.did, "handle": self.user_handle, "labels": []},
                    "record": record["value"],
                    **counts,
                    "indexedAt": record["value"].get("createdAt"),
                    "labels": [],
                }
            )
        return 200, {"posts": views}

    def _create_record(self, request: Request) -> tuple[int, Any]:
        refused = self._auth(request)
        if refused:
            return refused
        body = request.json() or {}
        if body.get("repo") != self.did:
            return 401, {"error": "AuthenticationRequired", "message": "Authentication Required"}
        if body.get("collection") != POST:
            return invalid(f"Unsupported collection {body.get('collection')!r}")
        rkey = body.get("rkey")
        if not isinstance(rkey, str) or not TID.match(rkey):
            return invalid(f"Invalid record key: {rkey!r}")
        record = body.get("record") or {}
        problem = self._check_post(record)
        if problem:
            return invalid(f"Invalid app.bsky.feed.post record: {problem}")
        if rkey in self.records:
            return self.duplicate_reply.status, self.duplicate_reply.body
        uri = f"at://{self.did}/{POST}/{rkey}"
        cid = "bafyrei" + hashlib.sha256(repr(record).encode()).hexdigest()[:52]
        self.records[rkey] = {"uri": uri, "cid": cid, "value": record}
        return 200, {
            "uri": uri,
            "cid": cid,
            "commit": {"cid": cid, "rev": rkey},
            "validationStatus": "valid",
        }

    def _check_post(self, record: dict[str, Any]) -> str | None:
        text = record.get("text")
        if record.get("$type") != POST or not isinstance(text, str):
            return "Record/$type and Record/text are required"
        if len(regex.findall(r"\X", text)) > 300:
            return "Record/text must not be longer than 300 graphemes"
        if len(text.encode("utf-8")) > 3000:
            return "Record/text must not be longer than 3000 characters"
        try:
            datetime.fromisoformat(str(record.get("createdAt")).replace("Z", "+00:00"))
        except ValueError:
            return "Record/createdAt must be an valid atproto datetime"
        langs = record.get("langs", [])
        if not isinstance(langs, list) or len(langs) > 3 or not all(isinstance(x, str) for x in langs):
            return "Record/langs must be a list of at most 3 language codes"
        for facet in record.get("facets", []):
            problem = _check_facet(text.encode("utf-8"), facet)
            if problem:
                return problem
        embed = record.get("embed")
        return self._check_embed(embed) if embed is not None else None

    def _check_embed(self, embed: dict[str, Any]) -> str | None:
        external = embed.get("external") or {}
        if embed.get("$type") != "app.bsky.embed.external":
            return f"Record/embed has an unexpected type {embed.get('$type')!r}"
        if not all(isinstance(external.get(k), str) for k in ("uri", "title", "description")):
            return "Record/embed/external must have uri, title and description"
        thumb = external.get("thumb")
        if thumb is None:
            return None
        stored = self.blobs.get(str((thumb.get("ref") or {}).get("$link")))
        if thumb.get("$type") != "blob" or stored is None:
            return "Record/embed/external/thumb refers to a blob that was not uploaded"
        if stored["size"] > THUMB_BYTES or thumb.get("size") != stored["size"]:
            return "Record/embed/external/thumb file too large"
        try:
            with PILImage.open(io.BytesIO(stored["data"])) as picture:
                width, height = picture.size
        except Exception:
            return "Record/embed/external/thumb is not an image"
        if max(width, height) > 2000:
            return "Record/embed/external/thumb is larger than 2000x2000"
        return None

    def _get_record(self, request: Request) -> tuple[int, Any]:
        query = {k: v[-1] for k, v in request.query.items()}
        stored = self.records.get(query.get("rkey", ""))
        if query.get("repo") not in (self.did, self.user_handle) or query.get("collection") != POST or not stored:
            uri = f"at://{query.get('repo')}/{query.get('collection')}/{query.get('rkey')}"
            return 400, {"error": "RecordNotFound", "message": f"Could not locate record: {uri}"}
        return 200, stored

    def _delete_record(self, request: Request) -> tuple[int, Any]:
        refused = self._auth(request)
        if refused:
            return refused
        body = request.json() or {}
        if body.get("repo") not in (self.did, self.user_handle):
            return 401, {"error": "AuthenticationRequired", "message": "Authentication Required"}
        if not isinstance(body.get("collection"), str) or not isinstance(body.get("rkey"), str):
            return invalid('Input must have the properties "collection" and "rkey"')
        if body["collection"] != POST or body["rkey"] not in self.records:
            return 200, {}
        del self.records[body["rkey"]]
        rev = "3l" + hashlib.sha256(body["rkey"].encode()).hexdigest()[:11]
        return 200, {"commit": {"cid": "bafyrei" + rev, "rev": rev}}


def _check_facet(data: bytes, facet: dict[str, Any]) -> str | None:
    index = facet.get("index") or {}
    start, end = index.get("byteStart"), index.get("byteEnd")
    if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data)):
        return f"Record/facets has an out-of-range index {index}"
    try:
        covered = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        return f"Record/facets index {index} splits a character"
    for feature in facet.get("features", []):
        kind = feature.get("$type")
        if kind == "app.bsky.richtext.facet#link" and not _shows(covered, str(feature.get("uri"))):
            return f"link facet covers {covered!r}, not its uri {feature.get('uri')!r}"
        if kind == "app.bsky.richtext.facet#tag" and covered != f"#{feature.get('tag')}":
            return f"tag facet covers {covered!r}, not #{feature.get('tag')}"
    return None


def _shows(covered: str, uri: str) -> bool:
    """The facet text is the URI itself or the app's short form of it (no scheme, maybe '...')."""
    bare = uri.split("://", 1)[-1]
    if covered in (uri, bare):
        return True
    return covered.endswith("...") and len(covered) > 3 and bare.startswith(covered[:-3])
