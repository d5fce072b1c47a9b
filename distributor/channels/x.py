"""X (Twitter) posts through API v2 `POST /2/tweets`, signed with OAuth 1.0a user context.

Length is X's weighted count (links 23, Vietnamese tone letters and emoji 2), so a Vietnamese
summary is fitted by `distributor.text.x_length`, not `len()`. X has no idempotency key; an exact
repeat is refused as "duplicate content", which the pipeline reads as "already posted".

A retraction deletes the post (`DELETE /2/tweets/:id`). A correction cannot reach it: X's API
offers apps no way to edit a published post, so the ledger records why and nothing is re-posted
unless the channel asks for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from pydantic import SecretStr
from requests_oauthlib import OAuth1

from distributor import http
from distributor import text as textlib
from distributor.channels.base import Channel, EngagementUnavailable, count_of
from distributor.channels.secret_urls import redact
from distributor.errors import ChannelError
from distributor.models import Post, Receipt
from distributor.settings import ChannelSettings

WINDOW = 900.0  # seconds: X's rate windows are 15 minutes when no reset header comes back
LIMIT_FAMILIES = ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")


class XSettings(ChannelSettings):
    api_key: SecretStr  # "consumer key" of the developer app
    api_secret: SecretStr
    access_token: SecretStr  # user token of the posting account, read + write
    access_token_secret: SecretStr


class X(Channel):
    kind = "x"
    settings_model = XSettings
    default_api_base = "https://api.x.com"
    limit = 280
    can_delete = True
    cannot_edit = "X's API does not let an app edit a published post; only deleting it is possible"

    @property
    def config(self) -> XSettings:
        assert isinstance(self.settings, XSettings)
        return self.settings

    def length(self, text: str) -> int:
        return textlib.x_length(text)

    def send(self, post: Post, key: str) -> Receipt:
        response = http.request("POST", f"{self.api_base}/2/tweets", json={"text": post.text}, auth=self._auth())
        tweet_id = _data(response).get("id") if response.status_code in (200, 201) else None
        if not tweet_id:
            if response.ok:
                raise ChannelError("x answered without a post id", permanent=True, maybe_sent=True)
            raise self._error(response)
        return Receipt(post_id=str(tweet_id), url=f"https://x.com/i/web/status/{tweet_id}")

    def delete(self, receipt: Receipt, key: str) -> None:
        """`DELETE /2/tweets/:id` -> `{"data": {"deleted": true}}`; a post already gone counts as deleted."""
        if not receipt.post_id:
            raise ChannelError("x: the post id is unknown, so the post cannot be deleted", permanent=True)
        response = http.request("DELETE", f"{self.api_base}/2/tweets/{receipt.post_id}", auth=self._auth())
        if response.ok and _data(response).get("deleted") is True:
            return
        if response.status_code == 404 or _problem_type(http.json_or_none(response)) == "resource-not-found":
            return  # already gone (deleted in the app, or by an earlier attempt whose answer was lost)
        if response.ok:  # e.g. `deleted: false`: never report a post as deleted that may still be up
            answer = self._redact(response.text[:200])
            raise ChannelError(f"x did not confirm the deletion: {answer}", permanent=True, status=response.status_code)
        raise self._error(response)

    def engagement(self, receipt: Receipt) -> dict[str, int] | None:
        """`public_metrics` of our post (`GET /2/tweets/:id`). X's Free tier may post but not read:
        its 403 is `EngagementUnavailable`, recorded once rather than asked again at every pull."""
        if not receipt.post_id:
            raise ChannelError("x: the post id is unknown, so its metrics cannot be read", permanent=True)
        url = f"{self.api_base}/2/tweets/{receipt.post_id}"
        response = http.request("GET", url, params={"tweet.fields": "public_metrics"}, auth=self._auth())
        if response.status_code == 403:
            refusal = self._error(response).message
            raise EngagementUnavailable(f"x does not let this app read posts (API access tier): {refusal}")
        if not response.ok:
            raise self._error(response)
        metrics = _data(response).get("public_metrics")
        if not isinstance(metrics, dict):
            problem = self._redact(_problem((http.json_or_none(response) or {}).get("errors", [{}])[0]))
            raise ChannelError(f"x has no metrics for post {receipt.post_id}: {problem or 'no answer'}", permanent=True)
        return {name.removesuffix("_count"): count_of(value) for name, value in metrics.items()}

    def check(self) -> str:
        response = http.request("GET", f"{self.api_base}/2/users/me", auth=self._auth())
        if not response.ok:
            raise self._error(response)
        user = _data(response)
        return f"X account @{user.get('username')} (id {user.get('id')})"

    def _auth(self) -> OAuth1:
        # A JSON body is not part of the OAuth 1.0a signature; OAuth1 leaves it out by itself.
        return OAuth1(
            self.config.api_key.get_secret_value(),
            client_secret=self.config.api_secret.get_secret_value(),
            resource_owner_key=self.config.access_token.get_secret_value(),
            resource_owner_secret=self.config.access_token_secret.get_secret_value(),
            signature_method="HMAC-SHA1",
            signature_type="AUTH_HEADER",
        )

    def _redact(self, text: str) -> str:
        config = self.config
        secrets = (config.api_key, config.api_secret, config.access_token, config.access_token_secret)
        return redact(text, [secret.get_secret_value() for secret in secrets])

    def _error(self, response: requests.Response) -> ChannelError:
        body = http.json_or_none(response)
        status = response.status_code
        text = self._redact(_problem(body) or (response.text or "")[:300].strip() or response.reason or "error")
        code = _problem_type(body)
        common: dict[str, Any] = {"status": status, "code": code or status}
        if status == 429:
            return ChannelError(f"x rate limited: {text}", retry_after=reset_after(response.headers), **common)
        if status == 401:
            return ChannelError(f"x rejected the credentials: {text}", permanent=True, auth=True, **common)
        if status == 403 and "duplicate" in text.lower():
            return ChannelError(f"x says already posted: {text}", permanent=True, duplicate=True, **common)
        if status == 403 and code == "oauth1-permissions":
            hint = "give the app Read and write permission, then regenerate the access token"
            return ChannelError(f"x refused: {text}: {hint}", permanent=True, **common)
        if status >= 500:
            return ChannelError(f"x server error {status}: {text}", **common)
        return ChannelError(f"x refused ({status}): {text}", permanent=True, **common)


def reset_after(headers: Mapping[str, str]) -> float:
    """Seconds until the exhausted rate window resets (the latest one when several are spent)."""
    spent = [family for family in LIMIT_FAMILIES if headers.get(f"{family}-remaining") == "0"]
    waits = [http.retry_after(headers.get(f"{family}-reset")) for family in spent or ["x-rate-limit"]]
    known = [wait for wait in waits if wait is not None]
    return max(known) if known else WINDOW


def _data(response: requests.Response) -> dict[str, Any]:
    body = http.json_or_none(response)
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _problem_type(body: Any) -> str | None:
    """'https://api.twitter.com/2/problems/usage-capped' -> 'usage-capped' (else None)."""
    kind = body.get("type") if isinstance(body, dict) else None
    if not isinstance(kind, str) or "/problems/" not in kind:
        return None
    return kind.rsplit("/", 1)[-1]


def _problem(body: Any) -> str:
    """The readable part of an RFC 7807 problem body: detail (or title) plus errors[].message."""
    if not isinstance(body, dict):
        return ""
    parts = [str(body.get("detail") or body.get("title") or "")]
    for error in body.get("errors") or []:
        if isinstance(error, dict) and error.get("message") and error["message"] not in parts:
            parts.append(str(error["message"]))
    return "; ".join(p for p in parts if p)
