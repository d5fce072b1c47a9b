"""Mastodon statuses on any instance (`api_base` is the instance URL).

Mastodon is the one platform with a real idempotency key: the same `Idempotency-Key` within an
hour returns the status first created, so a retry after a lost answer cannot double post. Length
is graphemes with every link counted as 23 (`distributor.text.mastodon_length`). The article
image is uploaded as media with the title as alt text; when that fails the status goes out as
text and link, and Mastodon builds its own link card from the page's OpenGraph tags.

A status can be edited (`PUT /api/v1/statuses/:id`, Mastodon keeps the edit history and shows
"edited") and deleted. An edit must list the media to keep, or Mastodon drops them, so the receipt
keeps the media ids and the image they show.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import requests
from pydantic import Field, SecretStr, field_validator

from distributor import http, images
from distributor import text as textlib
from distributor.channels.base import Channel, count_of
from distributor.errors import ChannelError
from distributor.models import Article, Post, Receipt
from distributor.settings import ChannelSettings, _, http_url

log = logging.getLogger(__name__)

MEDIA_BYTES = 8_000_000  # below every instance's default image_size_limit (16 MB)
MEDIA_PIXELS = 8_294_400  # 3840x2160: Mastodon downsizes anything larger anyway


class MastodonSettings(ChannelSettings):
    api_base: str  # the instance, e.g. "https://mastodon.social": required, there is no default
    access_token: SecretStr  # scopes write:statuses and write:media
    visibility: Literal["public", "unlisted", "private"] = "public"
    language: str | None = None  # ISO 639-1; empty: the article's language
    max_characters: int = Field(default=500, ge=50)  # the instance's configuration.statuses
    media: bool = True  # upload the article image

    @field_validator("api_base")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        try:
            return http_url(value)
        except ValueError:
            raise ValueError(_("must be the instance URL, like 'https://mastodon.social'")) from None


class Mastodon(Channel):
    kind = "mastodon"
    settings_model = MastodonSettings
    limit = 500
    idempotent = True
    can_edit = True
    can_delete = True
    media_poll_attempts = 10  # a 202 upload is polled this often...
    media_poll_delay = 1.0  # ...this many seconds apart before posting without the image

    @property
    def config(self) -> MastodonSettings:
        assert isinstance(self.settings, MastodonSettings)
        return self.settings

    def length(self, text: str) -> int:
        return textlib.mastodon_length(text)

    def text_limit(self, article: Article) -> int:
        return self.config.max_characters

    def extra(self, article: Article, context: dict[str, Any]) -> dict[str, Any]:
        return {**super().extra(article, context), "language": article.language}

    # --- delivery --------------------------------------------------------------------------------

    def send(self, post: Post, key: str) -> Receipt:
        body: dict[str, Any] = {"status": post.text, "visibility": self.config.visibility}
        body.update(self._language(post))
        media_id = self._media(post) if self.config.media else None
        if media_id:
            body["media_ids"] = [media_id]
        headers = {**self._auth(), "Idempotency-Key": key}
        response = http.request("POST", f"{self.api_base}/api/v1/statuses", json=body, headers=headers)
        if response.status_code != 200:
            raise _error(response)
        status = http.json_or_none(response)
        if not isinstance(status, dict) or not status.get("id"):
            # Created, but the answer is unreadable: the idempotency key makes a retry safe.
            raise ChannelError("mastodon answered 200 without a status id", maybe_sent=True)
        data = _media_data([media_id] if media_id else [], post.image if media_id else None)
        return Receipt(post_id=str(status["id"]), url=status.get("url") or status.get("uri"), data=data)

    def _language(self, post: Post) -> dict[str, str]:
        language = self.config.language or post.extra.get("language")
        return {"language": str(language)} if language else {}

    # --- corrections and retractions -------------------------------------------------------------

    def edit(self, post: Post, receipt: Receipt, key: str) -> Receipt:
        """PUT the new text. The media are listed again (Mastodon removes any not listed): the same
        ones with the corrected alt text, or the article's new image uploaded. An edit that changes
        nothing is answered 200 by Mastodon, without a new version."""
        url = f"{self.api_base}/api/v1/statuses/{self._status_id(receipt)}"
        body: dict[str, Any] = {"status": post.text, **self._language(post)}
        media_ids, image = self._media_for_edit(post, receipt, url)
        body["media_ids"] = media_ids
        if media_ids and image == post.image:  # kept: its alt text is the title, which may be the correction
            description = textlib.truncate(post.title, 1500)
            body["media_attributes"] = [{"id": m, "description": description} for m in media_ids]
        response = http.request("PUT", url, json=body, headers=self._auth())
        if response.status_code != 200:
            raise _error(response)
        status = http.json_or_none(response)
        shown = (status.get("url") if isinstance(status, dict) else None) or receipt.url
        return Receipt(post_id=receipt.post_id, url=shown, data=_media_data(media_ids, image))

    def delete(self, receipt: Receipt, key: str) -> None:
        """DELETE the status. Mastodon answers 404 for a status already deleted, but also for one of
        another account: a status still readable is reported as not deleted."""
        url = f"{self.api_base}/api/v1/statuses/{self._status_id(receipt)}"
        response = http.request("DELETE", url, headers=self._auth())
        if response.status_code == 200:
            return
        if response.status_code != 404:
            raise _error(response)
        still = http.request("GET", url, headers=self._auth())
        if still.status_code == 200:
            raise ChannelError(
                f"mastodon: {_error(response).message}: the status is still online but this account cannot "
                "delete it (was it posted with another account's token?)",
                permanent=True,
                status=404,
                code=404,
            )
        if still.status_code != 404:
            raise _error(still)

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """The status's counts (`GET /api/v1/statuses/:id`): reblogs, favourites, replies (and quotes
        where the instance counts them)."""
        url = f"{self.api_base}/api/v1/statuses/{self._status_id(receipt)}"
        response = http.request("GET", url, headers=self._auth())
        if response.status_code != 200:
            raise _error(response)
        status = http.json_or_none(response)
        if not isinstance(status, dict):
            raise ChannelError("mastodon answered 200 without a status", status=200)
        fields = {"reblogs": "reblogs_count", "favourites": "favourites_count", "replies": "replies_count"}
        if "quotes_count" in status:
            fields["quotes"] = "quotes_count"
        return {name: count_of(status.get(field)) for name, field in fields.items()}

    def _status_id(self, receipt: Receipt) -> str:
        if not receipt.post_id or not receipt.post_id.isdigit():
            raise ChannelError("mastodon: no status id was recorded for this post", permanent=True)
        return receipt.post_id

    def _media_for_edit(self, post: Post, receipt: Receipt, url: str) -> tuple[list[str], str | None]:
        """The media ids the edited status keeps, and the image they show."""
        if "media_ids" not in receipt.data:  # a receipt from before receipts kept media: keep what is there
            response = http.request("GET", url, headers=self._auth())
            if response.status_code != 200:
                raise _error(response)
            status = http.json_or_none(response) or {}
            kept = [str(m.get("id")) for m in status.get("media_attachments") or [] if isinstance(m, dict)]
            return kept, post.image if kept else None
        kept = [m for m in receipt.data["media_ids"].split(",") if m]
        image = receipt.data.get("image") or None
        if image == post.image or not self.config.media:
            return kept, image
        media_id = self._media(post)  # the article's image changed (or came back): show the new one
        return ([media_id], post.image) if media_id else ([], None)

    def check(self) -> str:
        url = f"{self.api_base}/api/v1/accounts/verify_credentials"
        response = http.request("GET", url, headers=self._auth())
        if response.status_code != 200:
            raise _error(response)
        account = http.json_or_none(response) or {}
        return f"Mastodon account @{account.get('acct')} on {self.api_base}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.access_token.get_secret_value()}"}

    # --- media -----------------------------------------------------------------------------------

    def _media(self, post: Post) -> str | None:
        """Upload the article image; None (logged) whenever it cannot be attached."""
        image = images.usable(post.image, self, max_bytes=MEDIA_BYTES, max_pixels=MEDIA_PIXELS)
        if image is None:
            return None
        try:
            return self._upload(image, post.title)
        except ChannelError as exc:
            log.warning("%s: posting without the image: media upload failed: %s", self.name, exc.message)
            return None

    def _upload(self, image: images.Image, alt: str) -> str | None:
        response = http.request(
            "POST",
            f"{self.api_base}/api/v2/media",
            headers=self._auth(),
            files={"file": (f"image.{image.extension}", image.data, image.mime)},
            data={"description": textlib.truncate(alt, 1500)},
        )
        if response.status_code not in (200, 202):
            raise _error(response)
        attachment = http.json_or_none(response) or {}
        media_id = str(attachment.get("id") or "")
        if not media_id:
            raise ChannelError("media upload answered without an id")
        if response.status_code == 202 and not attachment.get("url"):
            return self._wait_processed(media_id)
        return media_id

    def _wait_processed(self, media_id: str) -> str | None:
        """Poll `GET /api/v1/media/:id` (206 while processing, 200 with a url when done)."""
        for _attempt in range(self.media_poll_attempts):
            time.sleep(self.media_poll_delay)
            response = http.request("GET", f"{self.api_base}/api/v1/media/{media_id}", headers=self._auth())
            if response.status_code == 200 and (http.json_or_none(response) or {}).get("url"):
                return media_id
            if response.status_code not in (200, 206):
                raise _error(response)
        log.warning("%s: media %s still processing; posting without it", self.name, media_id)
        return None


def _media_data(media_ids: list[str], image: str | None) -> dict[str, str]:
    return {"media_ids": ",".join(media_ids), "image": image or ""}


def _error(response: requests.Response) -> ChannelError:
    """Classify a Mastodon error answer (`{"error": "..."}` and X-RateLimit-* headers)."""
    status = response.status_code
    body = http.json_or_none(response)
    text = str(body.get("error")) if isinstance(body, dict) and body.get("error") else None
    message = f"mastodon: {text or (response.text or response.reason or 'error')[:300].strip()}"
    if status in (401, 403, 404, 410, 422):
        return ChannelError(message, permanent=True, status=status, code=status, auth=status == 401)
    if status == 429:
        wait = http.retry_after(response.headers.get("Retry-After")) or http.retry_after(
            response.headers.get("X-RateLimit-Reset")
        )
        return ChannelError(message, retry_after=wait, status=status, code=status)
    if status >= 500:
        wait = http.retry_after(response.headers.get("Retry-After"))
        return ChannelError(message, retry_after=wait, status=status, code=status)
    return ChannelError(f"{message} (HTTP {status})", permanent=True, status=status, code=status)
