"""Zalo Official Account: the news path (article create -> verify -> broadcast to followers) or
consultation ("cs") messages to listed followers.

Zalo's refresh token is single-use: every refresh returns a new pair that replaces the old one for
good. The pair therefore lives in `self.state` (Redis), is refreshed under a lock by one worker at a
time, and is saved in one write; the stored pair always beats the configured one unless the operator
configures a new refresh token (re-authorisation). Success is `error == 0` inside an HTTP 200; most
failures also come back as HTTP 200 (see platforms.md §2).

In broadcast mode what followers open is the OA article, which Zalo lets its owner change
(`article/update`) and take down (`article/remove`); the broadcast message itself cannot be
recalled. Consultation messages can be neither edited nor unsent.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Annotated, Any, Literal

import requests
from pydantic import Field, SecretStr, model_validator

from distributor import http
from distributor import text as textlib
from distributor.channels.base import Channel, count_of
from distributor.channels.secret_urls import redact
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, Duration, HttpUrlStr, SiteSettings, _

log = logging.getLogger(__name__)

TITLE_LIMIT, DESCRIPTION_LIMIT, AUTHOR_LIMIT = 150, 300, 50
TOKEN_INVALID = -216  # access token invalid or expired
PROCESSING = -214  # article still being processed: verify again shortly
REFRESH_USED = -14020  # refresh token already used or expired
RATE_LIMITED = -32  # reported as a rate limit, unconfirmed [?]
SLICE_SIZE = 10  # article/getslice answers -201 "maximum limit is 10" above this
SLICE_PAGES = 5  # engagement: how far back the article list is searched (the 50 newest articles)
EXPIRY_MARGIN = 300.0  # refresh this many seconds before the stored token expires
HINTS = {
    -213: "the user has not followed or recently interacted with the OA",
    -224: "the OA's package does not include this feature",
}
NO_COVER = (
    "zalo needs a cover photo for an article without an image: set the channel's cover or [site] logo to an image URL"
)
CS_CANNOT_EDIT = "a Zalo consultation message cannot be edited once sent (mode 'cs')"
CS_CANNOT_DELETE = "a Zalo consultation message cannot be unsent (mode 'cs')"
ACCOUNT_CODES = {TOKEN_INVALID, -224}  # refusals about the OA or token, not about one article
REAUTHORISE = (
    "refresh token already used/expired: re-authorise the OA and configure the new token pair (docs/channels/zalo.md)"
)


class ZaloSettings(ChannelSettings):
    access_token: SecretStr
    refresh_token: SecretStr  # single-use; after the first refresh the pair in Redis is used
    app_id: Annotated[str, Field(min_length=1)]
    secret_key: SecretStr  # the app's secret, sent to the OAuth server only
    mode: Literal["broadcast", "cs"] = "broadcast"
    user_ids: list[str] = []  # "cs" mode: the followers to message
    oauth_base: HttpUrlStr = "https://oauth.zaloapp.com"
    target: dict[str, str] = {}  # broadcast audience (ages, gender, locations, cities, platform)
    cover: HttpUrlStr | None = None  # cover photo URL for articles without an image (else the site logo)
    verify_attempts: int = Field(default=5, ge=1)
    verify_interval: Duration = 3.0

    @model_validator(mode="after")
    def _cs_needs_users(self) -> ZaloSettings:
        if self.mode == "cs" and not self.user_ids:
            raise ValueError(_("mode 'cs' needs user_ids (the follower ids to message)"))
        return self

    def cross_check(self, site: SiteSettings) -> list[tuple[str, str]]:
        """(key, problem) pairs `distributor check` reports: Zalo refuses an article without a cover,
        so an article without an image needs the channel's cover or the site logo."""
        if self.mode == "broadcast" and not self.cover and not site.logo:
            return [
                (
                    "cover",
                    "is needed in mode 'broadcast': Zalo refuses an article without a cover photo, and neither "
                    "this channel's cover nor [site] logo is set for articles without an image "
                    "(set one of them to an image URL)",
                )
            ]
        return []


class Zalo(Channel):
    kind = "zalo"
    settings_model = ZaloSettings
    default_api_base = "https://openapi.zalo.me"
    limit = 2000  # consultation text and article body text [?]; title/description fit apart
    can_edit = True  # broadcast mode (the default): the article; mode "cs" refuses with the reason
    can_delete = True
    cannot_edit = CS_CANNOT_EDIT
    cannot_delete = CS_CANNOT_DELETE

    @property
    def config(self) -> ZaloSettings:
        assert isinstance(self.settings, ZaloSettings)
        return self.settings

    def length(self, text: str) -> int:
        # Zalo's servers count Java string length: UTF-16 units, which never undercount.
        return textlib.utf16_length(text)

    # --- rendering --------------------------------------------------------------------------------

    def context(self, article: Article) -> dict[str, Any]:
        context = super().context(article)
        context.update(title=textlib.nfc(article.title), summary=textlib.nfc(article.summary))
        return {**context, "mode": self.config.mode}

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        """The article's title, description, author and cover, each fitted to Zalo's limit."""
        summary = context["summary"]
        return {
            "summary": summary,
            "title": _fit(context["title"], TITLE_LIMIT),
            "description": _fit(summary or context["title"], DESCRIPTION_LIMIT),
            "author": _fit(article.author or self.site.title, AUTHOR_LIMIT),
            "cover": article.image or self.config.cover or self.site.logo,
        }

    # --- delivery ---------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        if self.config.mode == "cs":
            return self._consult(post, key)
        return self._broadcast(post, key)

    def check(self) -> str:
        data = self._api("GET", "/v2.0/oa/getoa")
        return f"Zalo OA {data.get('name')!r} (id {data.get('oa_id')})"

    def _broadcast(self, post: Post, key: str) -> Receipt:
        # The article id is kept per delivery so a retry broadcasts it instead of writing it again.
        article_id = self.state.get(f"article:{key}") or self._publish_article(post, key)
        message = {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "media",
                    "elements": [{"media_type": "article", "attachment_id": article_id}],
                },
            }
        }
        data = self._api(
            "POST",
            "/v2.0/oa/message",
            {"recipient": {"target": self.config.target}, "message": message},
        )
        self.state.forget(f"pending:{key}", f"article:{key}")  # done: the ledger keeps the outcome
        return Receipt(
            post_id=_required(data, "message_id"),
            url=f"{self.api_base}/v2.0/article/getdetail?id={article_id}",
            data={"article_id": article_id},
        )

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """Rewrite the broadcast article (title, description, cover, body) with `article/update`."""
        if self.config.mode == "cs":
            raise ChannelError(CS_CANNOT_EDIT, permanent=True)
        article_id = _article_id(receipt)
        self._api("POST", "/v2.0/article/update", {"id": article_id, **self._article(post)})
        return Receipt(post_id=receipt.post_id, url=receipt.url, data={**receipt.data, "article_id": article_id})

    def delete(self, receipt: Receipt, key: str) -> None:
        """Take the broadcast article down with `article/remove`. Zalo's answer for an article that
        is already gone is not documented, so a refusal is checked against `article/getdetail`: an
        article Zalo no longer shows counts as deleted, one it still shows keeps the refusal."""
        if self.config.mode == "cs":
            raise ChannelError(CS_CANNOT_DELETE, permanent=True)
        article_id = _article_id(receipt)
        try:
            self._api("POST", "/v2.0/article/remove", {"id": article_id})
        except ChannelError as refused:
            if not refused.permanent or _int(refused.code) in ACCOUNT_CODES:
                raise
            try:
                self._api("GET", f"/v2.0/article/getdetail?id={article_id}")
            except ChannelError as gone:
                if gone.permanent and _int(gone.code) not in ACCOUNT_CODES:
                    return
            raise

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """The broadcast article's views and shares (`total_view`, `total_share`), which Zalo gives
        in its article list (`article/getslice`, newest first, at most 10 a page), looked up among the
        OA's newest articles. Consultation messages have no counts (None)."""
        if self.config.mode == "cs":
            return None
        article_id = _article_id(receipt)
        for page in range(SLICE_PAGES):
            data = self._api("GET", f"/v2.0/article/getslice?offset={page * SLICE_SIZE}&limit={SLICE_SIZE}&type=normal")
            medias = data.get("medias")
            medias = [m for m in medias if isinstance(m, dict)] if isinstance(medias, list) else []
            for media in medias:
                if str(media.get("id")) == article_id:
                    return {"views": count_of(media.get("total_view")), "shares": count_of(media.get("total_share"))}
            if len(medias) < SLICE_SIZE:
                break
        raise ChannelError(
            f"zalo: article {article_id} is not among the OA's {SLICE_PAGES * SLICE_SIZE} newest articles",
            permanent=True,
        )

    def _publish_article(self, post: Post, key: str) -> str:
        token = self.state.get(f"pending:{key}")
        if not token:
            token = _required(self._api("POST", "/v2.0/article/create", self._article(post)), "token")
            self.state.set(**{f"pending:{key}": token})
        article_id = self._verify(token)
        self.state.set(**{f"article:{key}": article_id})
        return article_id

    def _article(self, post: Post) -> dict[str, Any]:
        extra = post.extra
        if not extra.get("cover"):
            raise ChannelError(NO_COVER, permanent=True)  # Zalo would refuse it (-201)
        body: list[dict[str, str]] = [{"type": "text", "content": post.text}]
        if post.image:
            body.append({"type": "image", "url": post.image, "caption": extra["title"]})
        article: dict[str, Any] = {
            "type": "normal",
            "title": extra["title"],
            "author": extra["author"],
            "description": extra["description"],
            "body": body,
            "status": "show",
            "comment": "show",
            "cover": {"cover_type": "photo", "photo_url": extra["cover"], "status": "show"},
        }
        return article

    def _verify(self, token: str) -> str:
        """Creation is asynchronous: poll `article/verify` while Zalo answers -214 (processing)."""
        for attempt in range(self.config.verify_attempts):
            if attempt:
                time.sleep(self.config.verify_interval)
            try:
                data = self._api("POST", "/v2.0/article/verify", {"token": token})
            except ChannelError as exc:
                if exc.maybe_sent:  # verify only reads: a lost answer left nothing half-done
                    raise ChannelError(exc.message, retry_after=exc.retry_after) from exc
                if exc.code != str(PROCESSING):
                    raise
                continue
            return _required(data, "id", "article_id")
        raise ChannelError(
            f"zalo still processes the article after {self.config.verify_attempts} checks (-214)",
            retry_after=30.0,
            code=PROCESSING,
        )

    def _consult(self, post: Post, key: str) -> Receipt:
        """One text message per listed follower; those already reached are skipped on a retry."""
        sent: list[str] = []
        refused: list[ChannelError] = []
        for user_id in self.config.user_ids:
            field = f"cs:{key}:{user_id}"
            message_id = self.state.get(field)
            if not message_id:
                payload = {"recipient": {"user_id": user_id}, "message": {"text": post.text}}
                try:
                    message_id = _required(self._api("POST", "/v3.0/oa/message/cs", payload), "message_id")
                except ChannelError as exc:
                    if not exc.permanent:
                        raise
                    log.warning("zalo %s: user %s not reached: %s", self.name, user_id, exc.message)
                    refused.append(exc)
                    continue
                self.state.set(**{field: message_id})
            sent.append(message_id)
        if not sent:
            raise refused[0]
        self.state.forget(*(f"cs:{key}:{user_id}" for user_id in self.config.user_ids))
        return Receipt(post_id=",".join(sent))

    # --- the wire and the token pair --------------------------------------------------------------

    def _api(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One OpenAPI call; on -216 the token is refreshed once and the call made again."""
        token = self._access_token()
        response = self._call(method, path, token, payload)
        if _error_code(response) == TOKEN_INVALID:
            response = self._call(method, path, self._refresh(stale=token), payload)
        body = http.json_or_none(response)
        if response.status_code == 200 and _error_code(response) == 0:
            data = body.get("data") if isinstance(body, dict) else None
            return data if isinstance(data, dict) else {}
        raise self._error(response, path)

    def _call(self, method: str, path: str, token: str, payload: dict[str, Any] | None) -> requests.Response:
        headers = {"access_token": token}
        return http.request(method, f"{self.api_base}{path}", headers=headers, json=payload)

    def _seed(self) -> str:
        """Fingerprint of the configured refresh token: a new one means the OA was re-authorised."""
        configured = self.config.refresh_token.get_secret_value().encode("utf-8")
        return hashlib.sha256(configured).hexdigest()[:16]

    def _pair(self) -> tuple[str, str]:
        """The token pair to use: the stored one unless the configured refresh token is newer."""
        access, refresh = self.state.get("access_token"), self.state.get("refresh_token")
        if access and refresh and self.state.get("seed") == self._seed():
            return access, refresh
        return (
            self.config.access_token.get_secret_value(),
            self.config.refresh_token.get_secret_value(),
        )

    def _expired(self) -> bool:
        if self.state.get("seed") != self._seed():
            return False  # the configured token's lifetime is unknown: Zalo will tell (-216)
        expires_at = float(self.state.get("expires_at") or 0)
        return bool(expires_at) and time.time() >= expires_at - EXPIRY_MARGIN

    def _access_token(self) -> str:
        access, _ = self._pair()
        return self._refresh(stale=access) if self._expired() else access

    def _refresh(self, stale: str) -> str:
        """Trade the refresh token for a new pair, once, under a lock shared by every worker."""
        with self.state.lock("refresh"):
            access, refresh = self._pair()
            if access != stale and not self._expired():
                return access  # another worker refreshed while we waited
            response = self._oauth(refresh)
            body = http.json_or_none(response)
            if not isinstance(body, dict) or not body.get("access_token") or not body.get("refresh_token"):
                raise self._refresh_error(response, body)
            expires_in = float(body.get("expires_in") or 0)  # a string of seconds, e.g. "90000"
            self.state.set(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=str(time.time() + expires_in) if expires_in else "",
                seed=self._seed(),
            )
            return str(body["access_token"])

    def _oauth(self, refresh_token: str) -> requests.Response:
        form = {
            "refresh_token": refresh_token,
            "app_id": self.config.app_id,
            "grant_type": "refresh_token",
        }
        headers = {"secret_key": self.config.secret_key.get_secret_value()}
        try:
            return http.request(
                "POST",
                f"{self.config.oauth_base.rstrip('/')}/v4/oa/access_token",
                headers=headers,
                data=form,
            )
        except ChannelError as exc:
            # Not "maybe sent": the post was not made. If the answer was lost the refresh token may
            # be spent; the next attempt then reports -14020 and the operator re-authorises.
            raise ChannelError(f"zalo token refresh failed: {exc.message}") from exc

    def _refresh_error(self, response: requests.Response, body: Any) -> ChannelError:
        code = _int(body.get("error")) if isinstance(body, dict) else 0
        if code == REFRESH_USED:
            status = response.status_code
            return ChannelError(f"zalo {REAUTHORISE}", permanent=True, code=code, status=status, auth=True)
        if response.status_code >= 500:
            return ChannelError(
                f"zalo token refresh: server error {response.status_code}",
                status=response.status_code,
            )
        detail = ""
        if isinstance(body, dict):
            detail = str(body.get("error_description") or body.get("error_name") or body.get("message") or "")
        detail = self._redact(detail or (response.text or "")[:300])
        message = f"zalo token refresh failed ({code}): {detail}"
        return ChannelError(message, permanent=True, code=code or None, auth=True)

    def _redact(self, text: str) -> str:
        secrets = [self.config.access_token, self.config.refresh_token, self.config.secret_key]
        return redact(text, [s.get_secret_value() for s in secrets] + list(self._pair()))

    def _error(self, response: requests.Response, path: str) -> ChannelError:
        body = http.json_or_none(response)
        if not isinstance(body, dict) or "error" not in body:
            return http.generic_error(response, self._redact((response.text or "")[:300]))
        code = _int(body.get("error"))
        message = self._redact(f"zalo error {code} on {path}: {body.get('message') or 'no message'}")
        common: dict[str, Any] = {"code": code, "status": response.status_code}
        if code == TOKEN_INVALID:
            return ChannelError(
                f"{message}: the access token was refused even after a refresh",
                permanent=True,
                auth=True,
                **common,
            )
        if code == PROCESSING:
            return ChannelError(message, retry_after=30.0, **common)
        if code == RATE_LIMITED or response.status_code == 429:
            return ChannelError(f"rate limited: {message}", retry_after=60.0, **common)
        if response.status_code >= 500:
            return ChannelError(message, **common)
        hint = HINTS.get(code)
        return ChannelError(f"{message}: {hint}" if hint else message, permanent=True, **common)


def _article_id(receipt: Receipt) -> str:
    """The broadcast article's id: kept in the receipt's data (older receipts: in its URL)."""
    article_id = receipt.data.get("article_id") or (receipt.url or "").partition("getdetail?id=")[2]
    if not article_id:
        raise ChannelError(
            "zalo: the article id of this post is unknown, so the article cannot be changed", permanent=True
        )
    return article_id


def _fit(text: str, limit: int) -> str:
    """Word-safe and grapheme-safe, counted in UTF-16 units like Zalo's servers."""
    return textlib.truncate(textlib.clean_text(text), limit, textlib.utf16_length)


def _error_code(response: requests.Response) -> int | None:
    body = http.json_or_none(response)
    return _int(body.get("error")) if isinstance(body, dict) and "error" in body else None


def _required(data: dict[str, Any], *names: str) -> str:
    for name in names:
        if data.get(name):
            return str(data[name])
    raise ChannelError(f"zalo answered without {names[0]}", permanent=True, maybe_sent=True)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
