"""Facebook Page posts through the Graph API.

A link post (`/{page-id}/feed` with `message` + `link`) lets Facebook build the card from the
article's Open Graph tags; with `photo = true` an article that has an image goes out as a photo
post (`/{page-id}/photos`) whose caption carries the link, since one post cannot hold both.
Errors are classified by the Graph `error.code`, never by the HTTP status (see platforms.md §1).

A published post's text can be edited (`POST /{post-id}` with `message`, for link and photo posts
alike) and the post deleted (`DELETE /{post-id}`). Facebook lets neither the link of a link post nor
the image of a photo post change: an edit corrects the text and says so in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import requests
from pydantic import Field, SecretStr

from distributor import http
from distributor import text as textlib
from distributor.channels.base import Channel, count_of
from distributor.channels.secret_urls import redact, secrets_masked
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings

log = logging.getLogger(__name__)

RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, 80001})
TRANSIENT_CODES = frozenset({1, 2})
DUPLICATE_CODE = 506
NEVER = float("inf")  # a token that does not expire
RATE_LIMIT_BACKOFF = 300.0  # seconds; Graph sends no Retry-After and its windows roll over an hour
POST_ENGAGEMENT = "shares,reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0)"
# The URL's site-wide counts: our metric name -> Graph's field.
URL_ENGAGEMENT = {
    "url_shares": "share_count",
    "url_reactions": "reaction_count",
    "url_comments": "comment_count",
    "url_plugin_comments": "comment_plugin_count",
}
HINTS = {
    190: "the Page access token is invalid or expired: generate a new long-lived Page token",
    10: "the app lacks a permission (pages_manage_posts, pages_read_engagement)",
    368: "the Page is temporarily blocked from posting: check Meta Business Suite",
    100: "invalid parameter",
}


class FacebookSettings(ChannelSettings):
    page_id: Annotated[str, Field(min_length=1)]
    access_token: SecretStr
    app_secret: SecretStr | None = None  # set when the app requires appsecret_proof
    graph_version: Annotated[str, Field(pattern=r"^v\d+\.\d+$")] = "v21.0"
    photo: bool = False  # photo post (image + link in caption) when the article has an image


class Facebook(Channel):
    kind = "facebook"
    settings_model = FacebookSettings
    default_api_base = "https://graph.facebook.com"
    limit = 63_206
    can_edit = True
    can_delete = True

    @property
    def config(self) -> FacebookSettings:
        assert isinstance(self.settings, FacebookSettings)
        return self.settings

    def length(self, text: str) -> int:
        # The documented limit is in characters; UTF-16 units never undercount them.
        return textlib.utf16_length(text)

    def context(self, article: Article) -> dict[str, Any]:
        # A link post shows the link as a card, so only a photo caption needs it in the text.
        return {**super().context(article), "with_link": self._photo_post(article.image)}

    def _photo_post(self, image: str | None) -> bool:
        return self.config.photo and bool(image)

    def send(self, post: Post, key: str) -> Receipt:
        if self._photo_post(post.image):
            body = self._call(
                "POST",
                f"{self.config.page_id}/photos",
                {"url": post.image or "", "caption": post.text},
            )
        else:
            body = self._call("POST", f"{self.config.page_id}/feed", {"message": post.text, "link": post.url})
        post_id = str(body.get("post_id") or body.get("id") or "")
        if not post_id:
            raise ChannelError("facebook answered without a post id", permanent=True, maybe_sent=True)
        if self._photo_post(post.image):
            data = {"kind": "photo", "image": post.image or "", "photo_id": str(body.get("id") or "")}
        else:
            data = {"kind": "feed", "link": post.url}
        return Receipt(post_id=post_id, url=f"https://www.facebook.com/{post_id}", data=data)

    # --- corrections and retractions -------------------------------------------------------------

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """Replace the post's text (a photo post's text is its caption). Facebook answers success
        for a text that did not change. The link card and the photo cannot be changed."""
        post_id = self._post_id(receipt)
        data = receipt.data
        text = post.text
        if data.get("kind") == "photo":
            if post.url not in text:  # a photo post carries its link in the caption: keep it there
                text = f"{text}\n\n{post.url}"
            if post.image != data.get("image"):
                log.warning("%s: post %s keeps its photo: Facebook cannot replace it", self.name, post_id)
        elif data.get("link") and post.url != data["link"]:
            log.warning("%s: post %s keeps its link card: Facebook cannot change a post's link", self.name, post_id)
        body = self._call("POST", post_id, {"message": text})
        if body.get("success") is False:
            raise ChannelError(f"facebook refused to edit post {post_id} (success: false)", permanent=True)
        return receipt

    def delete(self, receipt: Receipt, key: str) -> None:
        """DELETE the post. Graph's "does not exist" (code 100) also covers a post this token cannot
        see, so a post that can still be read is reported as not deleted rather than as gone."""
        post_id = self._post_id(receipt)
        try:
            self._call("DELETE", post_id, {})
        except ChannelError as exc:
            if exc.code != "100" or "does not exist" not in exc.message:
                raise
            try:
                self._call("GET", post_id, {"fields": "id"})
            except ChannelError as missing:
                if missing.code == "100":
                    return  # already deleted
                raise
            raise ChannelError(
                f"{exc.message}; the post is still online: is it on this Page and made with this app?",
                permanent=True,
                code=exc.code,
                status=exc.status,
            ) from None

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """Our Page post's shares, reactions and comments, plus the article URL's site-wide
        `engagement` (shares, reactions and comments on that URL anywhere on Facebook, readers'
        own shares included; Graph rounds these and allows 10 reads per URL per hour)."""
        post = self._call("GET", self._post_id(receipt), {"fields": POST_ENGAGEMENT})
        counts = {
            "shares": count_of((post.get("shares") or {}).get("count")),  # absent when nobody shared
            "reactions": count_of(((post.get("reactions") or {}).get("summary") or {}).get("total_count")),
            "comments": count_of(((post.get("comments") or {}).get("summary") or {}).get("total_count")),
        }
        url = receipt.data.get("article_url")
        if url:
            found = self._call("GET", "", {"id": url, "fields": "engagement"}).get("engagement") or {}
            counts.update({name: count_of(found.get(field)) for name, field in URL_ENGAGEMENT.items()})
        return counts

    def _post_id(self, receipt: Receipt) -> str:
        if not receipt.post_id:
            raise ChannelError("facebook: no post id was recorded for this post", permanent=True)
        return receipt.post_id

    def check(self) -> str:
        body = self._call("GET", self.config.page_id, {"fields": "id,name"})
        found = f"Facebook Page {body.get('name')!r} (id {body.get('id')})"
        try:
            expires = self.token_expiry()
        except ChannelError as exc:  # the Page answered: the token works, whatever debug_token says
            return f"{found}; its token's expiry could not be read: {exc.message}"
        if expires == NEVER:
            return f"{found}; the token does not expire"
        return f"{found}; the token expires {datetime.fromtimestamp(expires, UTC):%Y-%m-%d %H:%M} UTC"

    def token_expiry(self) -> float:
        """`GET /debug_token?input_token=<the token>` (asked with the token itself, which Graph allows
        for a token of the same app): `expires_at` 0 means never, as for a Page token made from a
        long-lived user token. Kept in the channel's state for the console."""
        token = self.config.access_token.get_secret_value()
        data = self._call("GET", "debug_token", {"input_token": token}).get("data") or {}
        if data.get("is_valid") is False:
            reason = (data.get("error") or {}).get("message") or "the token is not valid"
            raise ChannelError(f"facebook: {self._redact(str(reason))}", permanent=True, code=190)
        expires = float(count_of(data.get("expires_at"))) or NEVER
        self.state.set(expires_at="never" if expires == NEVER else str(expires))
        return expires

    # --- the wire ---------------------------------------------------------------------------------

    def _auth(self) -> dict[str, str]:
        token = self.config.access_token.get_secret_value()
        params = {"access_token": token}
        if self.config.app_secret is not None:
            key = self.config.app_secret.get_secret_value().encode("utf-8")
            params["appsecret_proof"] = hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()
        return params

    def _call(self, method: str, path: str, fields: dict[str, str]) -> dict[str, Any]:
        url = f"{self.api_base}/{self.config.graph_version}/{path}"
        fields = {**fields, **self._auth()}
        # A GET or DELETE carries the token in its query string, which requests' errors and urllib3's
        # DEBUG lines quote: mask it there (a POST keeps it in the form body, out of URLs altogether).
        with secrets_masked(*self._secrets()):
            if method in ("GET", "DELETE"):
                response = http.request(method, url, params=fields)
            else:
                response = http.request(method, url, data=fields)
        body = http.json_or_none(response)
        if response.ok and isinstance(body, dict) and "error" not in body:
            return body
        raise self._error(response, body)

    def _secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.config.access_token, self.config.app_secret) if s is not None]

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets())

    def _error(self, response: requests.Response, body: Any) -> ChannelError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return http.generic_error(response, self._redact((response.text or "")[:300]))
        return graph_error(error, response.status_code, response.headers, self._redact)


def graph_error(
    error: dict[str, Any],
    status: int,
    headers: Mapping[str, str],
    redact: Callable[[str], str] = str,
) -> ChannelError:
    """Classify one Graph `error` object (code, subcode, message, fbtrace_id)."""
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    label = f"{code}/{subcode}" if subcode else str(code)
    detail = str(error.get("message") or "error")
    user_msg = error.get("error_user_msg")
    if user_msg and user_msg not in detail:
        detail += f" ({user_msg})"
    message = redact(f"facebook error {label}: {detail} [fbtrace_id {error.get('fbtrace_id', '-')}]")
    common: dict[str, Any] = {"code": code, "status": status}
    if code == DUPLICATE_CODE:
        return ChannelError(message, permanent=True, duplicate=True, **common)
    if code in RATE_LIMIT_CODES:
        wait = regain_access_seconds(headers) or RATE_LIMIT_BACKOFF
        return ChannelError(f"rate limited: {message}", retry_after=wait, **common)
    if code in TRANSIENT_CODES or (code not in HINTS and not 200 <= code <= 299 and status >= 500):
        return ChannelError(message, **common)
    hint = HINTS.get(code) or (HINTS[10] if 200 <= code <= 299 else None)
    return ChannelError(f"{message}: {hint}" if hint else message, permanent=True, auth=code == 190, **common)


def regain_access_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in X-Business-Use-Case-Usage."""
    try:
        usage = json.loads(headers.get("X-Business-Use-Case-Usage") or "null")
    except ValueError:
        return None
    if not isinstance(usage, dict):
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in usage.values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    values = [float(m) for m in minutes if isinstance(m, int | float) and m > 0]
    return max(values) * 60 if values else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
