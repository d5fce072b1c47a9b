"""Bluesky posts through any AT Protocol PDS (`api_base`, default the bsky.social entryway).

A post must hold 300 graphemes and 3,000 UTF-8 bytes; links and hashtags are only clickable
through facets whose offsets are UTF-8 byte positions. Links are shown shortened, as the Bluesky
app writes them, with the facet pointing at the full URL: a news URL with UTM tags would otherwise
eat most of the 300 graphemes and push the summary out. The link card (`embed.external`) is
built here, thumbnail included, because Bluesky does not fetch it. There is no idempotency header:
the record key is derived from the delivery key instead, so a retried create meets the record the
first attempt wrote and `com.atproto.repo.getRecord` on that key tells whether a post exists.
Sessions are cached in the channel state (createSession is limited to 30 per 5 minutes).

A retraction deletes the record (`com.atproto.repo.deleteRecord`, named by the post's at:// URI).
There is no edit: rewriting a post record is not something the Bluesky app offers or shows, and the
likes, reposts and replies point at the version people saw.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr, field_validator

from distributor import http, images
from distributor import text as textlib
from distributor.channels.base import Channel, count_of
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, _

log = logging.getLogger(__name__)

POST = "app.bsky.feed.post"
MAX_GRAPHEMES = 300
MAX_BYTES = 3000
THUMB_BYTES = 1_000_000
THUMB_SIDE = 2000
THUMB_FORMATS = ("JPEG", "PNG", "WEBP")
CARD_DESCRIPTION = 300  # graphemes of summary on the card
_S32 = "234567abcdefghijklmnopqrstuvwxyz"
_TID_BASE = 1_420_070_400_000_000  # 2015-01-01 in microseconds
_TAG = re.compile(r"(?:^|(?<=\s))#([^\s#]+)")
_TRAILING = ".,;:!?)]}…"
_RELOGIN = {"AuthenticationRequired", "InvalidToken"}
_AT_URI = re.compile(r"^at://(?P<repo>[^/]+)/(?P<collection>[^/]+)/(?P<rkey>[^/]+)$")


class BlueskySettings(ChannelSettings):
    handle: str  # e.g. "tintuc.bsky.social" (an email works too for login)
    app_password: SecretStr  # Settings -> Privacy and security -> App passwords
    card: bool = True  # attach a link card (title, description, thumbnail)
    link_display: Literal["short", "full"] = "short"  # how links read in the text (as the app does)
    language: str | None = None  # empty: the article's language

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        value = value.strip().removeprefix("@")
        if not value or any(c.isspace() for c in value):
            raise ValueError(_("must be a handle like 'news.bsky.social'"))
        return value


@dataclass(frozen=True)
class Session:
    access: str = field(repr=False)  # bearer tokens: never in a log line or traceback
    refresh: str = field(repr=False)
    did: str
    handle: str


class Bluesky(Channel):
    kind = "bluesky"
    settings_model = BlueskySettings
    default_api_base = "https://bsky.social"
    limit = MAX_GRAPHEMES
    supports_readback = True
    can_delete = True
    cannot_edit = (
        "Bluesky posts cannot be edited (the app has no edit, and likes, reposts and replies point at the "
        "version people saw); only deleting it is possible"
    )

    @property
    def config(self) -> BlueskySettings:
        assert isinstance(self.settings, BlueskySettings)
        return self.settings

    def length(self, text: str) -> int:
        """Of the text as posted (links shortened for display): graphemes, or a tenth of the
        UTF-8 bytes when that is more, so `<= 300` means both platform limits hold (300
        graphemes and 3,000 bytes)."""
        posted, _ = rich_text(text, self.config.link_display == "short")
        return max(textlib.grapheme_length(posted), -(-textlib.utf8_length(posted) // 10))

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {**super().extra(article, context), "language": article.language}

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        session = self._session()
        rkey = record_key(key)
        text, found = rich_text(post.text, self.config.link_display == "short")
        record: dict[str, Any] = {
            "$type": POST,
            "text": text,
            "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        language = self.config.language or post.extra.get("language")
        if language:
            record["langs"] = [language]
        if found:
            record["facets"] = found
        if self.config.card:
            record["embed"] = self._card(post)
        body = {"repo": session.did, "collection": POST, "rkey": rkey, "record": record}
        response = self._call("POST", "com.atproto.repo.createRecord", json=body)
        if response.status_code == 200:
            data = http.json_or_none(response) or {}
            return self._receipt(str(data.get("uri") or ""), rkey)
        error = _error(response)
        # A create whose record key is taken means an earlier attempt got through; a PDS answers
        # that with a 5xx (MST "already a value at key") or a 400: read back before giving up.
        if response.status_code >= 500 or "already" in error.message.lower():
            try:
                existing = self.find_existing(post, key)
            except ChannelError:
                existing = None
            if existing is not None:
                return existing
        raise error

    def find_existing(self, post: Post, key: str) -> Receipt | None:
        rkey = record_key(key)
        params = {
            "repo": self.state.get("did") or self.config.handle,
            "collection": POST,
            "rkey": rkey,
        }
        response = http.request("GET", self._xrpc("com.atproto.repo.getRecord"), params=params)
        if response.status_code == 200:
            return self._receipt(str((http.json_or_none(response) or {}).get("uri") or ""), rkey)
        if _error_name(response) == "RecordNotFound" or response.status_code == 404:
            return None
        raise _error(response)

    def delete(self, receipt: Receipt, key: str) -> None:
        """`deleteRecord` on the post's repo, collection and rkey; the PDS answers 200 whether the
        record existed or not ("delete, or ensure it doesn't exist")."""
        repo, collection, rkey = self._record_of(receipt, key)
        body = {"repo": repo, "collection": collection, "rkey": rkey}
        response = self._call("POST", "com.atproto.repo.deleteRecord", json=body)
        if response.status_code != 200:
            raise _error(response, "delete")

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """The post's counts from `app.bsky.feed.getPosts` (through the PDS, which asks the App View):
        reposts, likes, replies, quotes. A post the App View no longer has is left out of its answer."""
        uri = receipt.post_id or ""
        if not _AT_URI.match(uri):
            raise ChannelError("bluesky: no post URI was recorded for this post", permanent=True)
        response = self._call("GET", "app.bsky.feed.getPosts", params={"uris": uri})
        if response.status_code != 200:
            raise _error(response, "read")
        posts = (http.json_or_none(response) or {}).get("posts")
        found = [p for p in posts if isinstance(p, dict) and p.get("uri") == uri] if isinstance(posts, list) else []
        if not found:
            raise ChannelError(f"bluesky: post {uri} is not found (deleted?)", permanent=True, status=200)
        view = found[0]
        fields = {"reposts": "repostCount", "likes": "likeCount", "replies": "replyCount", "quotes": "quoteCount"}
        return {name: count_of(view.get(field)) for name, field in fields.items()}

    def _record_of(self, receipt: Receipt, key: str) -> tuple[str, str, str]:
        """(repo, collection, rkey) from the at:// URI `send` returned, else from the delivery key
        (the record key is derived from it) and the account's did."""
        match = _AT_URI.match(receipt.post_id or "")
        if match:
            return match["repo"], match["collection"], match["rkey"]
        return self._session().did, POST, record_key(key)

    def check(self) -> str:
        session = self._login()
        response = self._call("GET", "com.atproto.server.getSession")
        if response.status_code != 200:
            raise _error(response)
        data = http.json_or_none(response) or {}
        handle, did = data.get("handle", session.handle), data.get("did", session.did)
        return f"Bluesky account @{handle} ({did})"

    def _receipt(self, uri: str, rkey: str) -> Receipt:
        handle = self.state.get("handle") or self.config.handle
        return Receipt(post_id=uri or None, url=f"https://bsky.app/profile/{handle}/post/{rkey}")

    def _card(self, post: Post) -> dict[str, Any]:
        summary = str(post.extra.get("summary") or "")
        external: dict[str, Any] = {
            "uri": post.url,
            "title": post.title,
            "description": textlib.truncate(summary, CARD_DESCRIPTION),
        }
        thumb = self._thumb(post)
        if thumb:
            external["thumb"] = thumb
        return {"$type": "app.bsky.embed.external", "external": external}

    def _thumb(self, post: Post) -> dict[str, Any] | None:
        """Upload the article image as the card thumbnail; None (logged) when it cannot be."""
        image = images.usable(post.image, self, max_bytes=THUMB_BYTES, max_side=THUMB_SIDE, formats=THUMB_FORMATS)
        if image is None:
            return None
        try:
            response = self._call("POST", "com.atproto.repo.uploadBlob", data=image.data, content_type=image.mime)
            if response.status_code != 200:
                raise _error(response)
        except ChannelError as exc:
            log.warning("%s: card without thumbnail: upload failed: %s", self.name, exc.message)
            return None
        blob = (http.json_or_none(response) or {}).get("blob")
        return blob if isinstance(blob, dict) else None

    # --- sessions --------------------------------------------------------------------------------

    def _xrpc(self, nsid: str) -> str:
        return f"{self.api_base}/xrpc/{nsid}"

    def _call(
        self,
        method: str,
        nsid: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        """An authenticated XRPC call; an expired token is refreshed and a rejected one renewed by
        logging in again, once, before the answer is returned as it is."""
        session = self._session()
        for attempt in range(2):
            headers = {"Authorization": f"Bearer {session.access}"}
            if content_type:
                headers["Content-Type"] = content_type
            response = http.request(method, self._xrpc(nsid), json=json, data=data, headers=headers, params=params)
            name = _error_name(response)
            if attempt or response.status_code not in (400, 401):
                return response
            if name == "ExpiredToken":
                session = self._renew(session, refresh=True)
            elif name in _RELOGIN or response.status_code == 401:
                session = self._renew(session, refresh=False)
            else:
                return response
        return response

    def _session(self) -> Session:
        state = self.state
        access, refresh, did = state.get("access_jwt"), state.get("refresh_jwt"), state.get("did")
        if access and refresh and did:
            return Session(access, refresh, did, state.get("handle") or self.config.handle)
        with state.lock("session"):
            access, refresh, did = (
                state.get("access_jwt"),
                state.get("refresh_jwt"),
                state.get("did"),
            )
            if access and refresh and did:
                return Session(access, refresh, did, state.get("handle") or self.config.handle)
            return self._login()

    def _renew(self, stale: Session, *, refresh: bool) -> Session:
        """A fresh session, unless another worker already renewed the stale one."""
        with self.state.lock("session"):
            current = self.state.get("access_jwt")
            if current and current != stale.access:
                return self._session()
            if refresh:
                url = self._xrpc("com.atproto.server.refreshSession")
                headers = {"Authorization": f"Bearer {stale.refresh}"}
                response = http.request("POST", url, headers=headers)
                if response.status_code == 200:
                    return self._store(http.json_or_none(response) or {})
            return self._login()

    def _login(self) -> Session:
        credentials = {
            "identifier": self.config.handle,
            "password": self.config.app_password.get_secret_value(),
        }
        response = http.request("POST", self._xrpc("com.atproto.server.createSession"), json=credentials)
        if response.status_code != 200:
            raise _error(response, "login failed")
        return self._store(http.json_or_none(response) or {})

    def _store(self, data: dict[str, Any]) -> Session:
        session = Session(
            access=str(data.get("accessJwt") or ""),
            refresh=str(data.get("refreshJwt") or ""),
            did=str(data.get("did") or ""),
            handle=str(data.get("handle") or self.config.handle),
        )
        if not (session.access and session.refresh and session.did):
            raise ChannelError("bluesky: session answer without tokens or did", permanent=True)
        self.state.set(
            access_jwt=session.access,
            refresh_jwt=session.refresh,
            did=session.did,
            handle=session.handle,
        )
        return session


# --- record pieces -------------------------------------------------------------------------------


def record_key(key: str) -> str:
    """A TID-syntax record key derived from the delivery key (same key, same record).

    Like a TID: 53 bits of microseconds (here always between 2015 and 2024, never in the future)
    and 10 bits of clock id, written in base32-sortable; all of it comes from a hash of `key`.
    """
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    micros = _TID_BASE + (digest >> 10) % (1 << 48)
    value = (micros << 10) | (digest & 0x3FF)
    return "".join(_S32[(value >> (5 * (12 - i))) & 31] for i in range(13))


def display_url(url: str) -> str:
    """How the Bluesky app shows a link: no scheme, the path cut after 13 characters."""
    parts = urlsplit(url)
    rest = url.split("://", 1)[-1][len(parts.netloc) :]
    rest = "" if rest == "/" else rest
    return parts.netloc + (rest[:13] + "..." if len(rest) > 15 else rest)


def _span(text: str, start: int, end: int) -> dict[str, int]:
    """Character positions -> UTF-8 byte positions, as facets count them."""
    byte_start = textlib.utf8_length(text[:start])
    return {"byteStart": byte_start, "byteEnd": byte_start + textlib.utf8_length(text[start:end])}


def rich_text(text: str, short_links: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """The record text and its facets: a link facet for every URL (shown shortened when
    `short_links`, always pointing at the full URL) and a tag facet for every #hashtag, with
    UTF-8 byte offsets into the returned text."""
    pieces: list[str] = []
    links: list[tuple[int, int, str]] = []  # character span in the output text, uri
    position = written = 0
    for match in textlib.URL_RE.finditer(text):
        uri = match.group().rstrip(_TRAILING)
        shown = display_url(uri) if short_links else uri
        pieces.append(text[position : match.start()])
        written += match.start() - position
        links.append((written, written + len(shown), uri))
        pieces.append(shown)
        written += len(shown)
        position = match.start() + len(uri)
    pieces.append(text[position:])
    output = "".join(pieces)
    found = [
        {
            "index": _span(output, start, end),
            "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}],
        }
        for start, end, uri in links
    ]
    for match in _TAG.finditer(output):
        tag = match.group(1).rstrip(_TRAILING)
        if not tag or tag.isdigit() or textlib.grapheme_length(tag) > 64:
            continue
        found.append(
            {
                "index": _span(output, match.start(), match.start(1) + len(tag)),
                "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}],
            }
        )
    return output, sorted(found, key=lambda facet: int(facet["index"]["byteStart"]))


# --- errors --------------------------------------------------------------------------------------


def _error_name(response: requests.Response) -> str:
    body = http.json_or_none(response)
    return str(body.get("error") or "") if isinstance(body, dict) else ""


def _error(response: requests.Response, doing: str = "") -> ChannelError:
    """Classify an XRPC error (`{"error": Name, "message": ...}`, RateLimit-* headers)."""
    status = response.status_code
    body = http.json_or_none(response)
    name = _error_name(response)
    detail = str(body.get("message") or "") if isinstance(body, dict) else ""
    detail = detail or (response.text or response.reason or "error")[:300].strip()
    prefix = f"bluesky: {doing}: " if doing else "bluesky: "
    message = f"{prefix}{name + ': ' if name else ''}{detail}"
    code = name or status
    if status == 429:
        wait = http.retry_after(response.headers.get("Retry-After"))
        if wait is None:
            wait = http.retry_after(response.headers.get("RateLimit-Reset"))
        return ChannelError(message, retry_after=wait, status=status, code=code)
    if status >= 500:
        wait = http.retry_after(response.headers.get("Retry-After"))
        return ChannelError(message, retry_after=wait, status=status, code=code)
    auth = status == 401 or name in _RELOGIN or name == "ExpiredToken"
    return ChannelError(message, permanent=True, status=status, code=code, auth=auth)
