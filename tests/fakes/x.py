"""A loopback X API v2 for `POST /2/tweets` and `GET /2/users/me` (platforms.md §4).

It verifies the OAuth 1.0a header the way X does: every oauth_* parameter present, HMAC-SHA1,
version 1.0, a fresh timestamp, the app and user keys it knows, and the signature itself
(recomputed with oauthlib from the method, URL and query; a JSON body is not signed). Text is
counted with the twitter-text weights and link rules (280, links 23, bare domains like
`vnexpress.net` too), on its own, not with the adapter's counter; an exact repeat is refused as
duplicate content. Every answer carries the x-rate-limit-* and x-user-limit-24hour-* headers, and a spent
window answers 429. `fail_next` queues any reply; accepted posts are in `posts`.

`DELETE /2/tweets/:id` removes a post of the account (`{"data": {"deleted": true}}`), refuses
another account's post with 403, and answers an id it does not hold with 404 and a
`resource-not-found` problem (the shape X uses for missing posts; for DELETE it is [?]).
"""

from __future__ import annotations

import hmac
import itertools
import re
import time
import unicodedata
from typing import Any

import regex
from oauthlib.oauth1.rfc5849 import signature, utils

from distributor.tlds import TLDS
from tests.fakes.scripted import ScriptedFake
from tests.fakes.server import Reply, Request

API_KEY = "xapikey0123"
API_SECRET = "xapisecret0123456789"
ACCESS_TOKEN = "1234567890-xaccesstoken"
ACCESS_TOKEN_SECRET = "xaccesstokensecret0123"
OAUTH_PARAMS = (
    "oauth_consumer_key",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
    "oauth_timestamp",
    "oauth_token",
    "oauth_version",
)

UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}
DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}
READ_ONLY = {
    "title": "Forbidden",
    "status": 403,
    "detail": "Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.",
    "type": "https://api.twitter.com/2/problems/oauth1-permissions",
}
TOO_MANY = {
    "title": "Too Many Requests",
    "detail": "Too Many Requests",
    "type": "about:blank",
    "status": 429,
}
NOT_YOURS = {
    "title": "Forbidden",
    "status": 403,
    "detail": "You are not allowed to delete a Tweet that is not yours.",
    "type": "about:blank",
}
TOO_LONG = {
    "errors": [{"message": "Your Tweet text is too long."}],
    "title": "Invalid Request",
    "detail": "One or more parameters to your request was invalid.",
    "type": "https://api.twitter.com/2/problems/invalid-request",
}

# twitter-text v3, as far as news text meets it: a link with a scheme ends before trailing
# punctuation; a bare domain with a known TLD is a link too (`vnexpress.net`, `dichvucong.gov.vn`),
# unless it is one label plus a country code with no path (`tuoitre.vn`); an address after `@`
# or inside a longer token is not. Every link weighs 23.
SCHEME_LINK = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
LINK_END = re.compile(r"[^\w/=#+&-]+$")
LABEL = r"[-a-z0-9\u00c0-\u024f\u0300-\u036f\u1e00-\u1eff]+"
BARE_LINK = re.compile(
    rf"(?<![a-z0-9@$#._/-])(?P<host>(?:{LABEL}\.)+(?P<tld>[a-z]{{2,}}|xn--[-a-z0-9]+))(?![a-z0-9@+-])"
    r"(?P<path>/[^\s<>\"']*)?",
    re.IGNORECASE,
)


def _weight(cluster: str) -> int:
    if len(cluster) > 1 and unicodedata.category(cluster[0]) == "So":
        return 2  # an emoji sequence
    light = ((0, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
    return sum(1 if any(a <= ord(c) <= b for a, b in light) else 2 for c in cluster)


def tweet_length(text: str) -> int:
    """The weighted length X enforces (280), counted apart from the adapter's own counting."""
    text = unicodedata.normalize("NFC", text)
    links: list[tuple[int, int]] = []
    for match in SCHEME_LINK.finditer(text):
        links.append((match.start(), match.start() + len(LINK_END.sub("", match.group()))))
    for match in BARE_LINK.finditer(text):
        if any(start < match.end() and match.start() < end for start, end in links):
            continue
        host, tld, path = match["host"].lower(), match["tld"].lower(), match["path"]
        if tld not in TLDS and not tld.startswith("xn--"):
            continue
        if not path and host.count(".") == 1 and len(tld) == 2 and host != "t.co":
            continue
        links.append((match.start(), match.start("path") + len(LINK_END.sub("", path)) if path else match.end()))
    total, position = 0, 0
    for start, end in sorted(links):
        total += sum(_weight(g) for g in regex.findall(r"\X", text[position:start])) + 23
        position = end
    return total + sum(_weight(g) for g in regex.findall(r"\X", text[position:]))


# The Free tier's answer to a read (it may post and read /2/users/me only).
TIER_FORBIDDEN = {
    "errors": [
        {
            "message": "You currently have access to a subset of X API V2 endpoints and limited v1.1 endpoints "
            "(e.g. media post, oauth) only. If you need access to this endpoint, you may need a different "
            "access level. You can learn more here: https://developer.x.com/en/portal/product",
            "code": 453,
        }
    ]
}


class FakeX(ScriptedFake):
    def __init__(self) -> None:
        super().__init__()
        self.add("POST", "/2/tweets", self._tweet)
        self.add("GET", "/2/users/me", self._me)
        self.add("DELETE", r"/2/tweets/(?P<id>\d+)", self._delete)
        self.add("GET", r"/2/tweets/(?P<id>\d+)$", self._lookup)

    def reset(self, *, per_window: int = 100, per_day: int = 1000) -> None:
        super().reset()
        self.keys = {"consumer": API_KEY, "token": ACCESS_TOKEN}
        self.secrets = (API_SECRET, ACCESS_TOKEN_SECRET)
        self.per_window, self.per_day = per_window, per_day
        self.remaining, self.remaining_day = per_window, per_day
        self.window_reset = int(time.time()) + 900
        self.day_reset = int(time.time()) + 86_400
        self._ids = itertools.count(1_445_880_548_472_328_192)
        self.others = {"1445880548472320000"}  # posts of other accounts
        self.metrics: dict[str, dict[str, int]] = {}  # post id -> public_metrics counts set by a test
        self.read_access = True  # False: the Free tier, which may post but not read posts (403, code 453)

    def fail_next(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.then(Reply(status, body, {**self.limit_headers(), **(headers or {})}))

    def limit_headers(self) -> dict[str, str]:
        return {
            "x-rate-limit-limit": str(self.per_window),
            "x-rate-limit-remaining": str(self.remaining),
            "x-rate-limit-reset": str(self.window_reset),
            "x-user-limit-24hour-limit": str(self.per_day),
            "x-user-limit-24hour-remaining": str(self.remaining_day),
            "x-user-limit-24hour-reset": str(self.day_reset),
        }

    # --- OAuth 1.0a -------------------------------------------------------------------------------

    def authorisation_problem(self, request: Request) -> str | None:
        """Why X would refuse this request's Authorization header (None: it is valid)."""
        header = request.header("authorization") or ""
        if not header.startswith("OAuth "):
            return "no OAuth Authorization header"
        params = {k: utils.unescape(v) for k, v in utils.parse_authorization_header(header)}
        missing = [name for name in OAUTH_PARAMS if not params.get(name)]
        if missing:
            return f"missing {', '.join(missing)}"
        if params["oauth_signature_method"] != "HMAC-SHA1" or params["oauth_version"] != "1.0":
            return "unsupported signature method or version"
        if abs(time.time() - int(params["oauth_timestamp"])) > 300:
            return "stale timestamp"
        if params["oauth_consumer_key"] != self.keys["consumer"] or params["oauth_token"] != self.keys["token"]:
            return "unknown consumer key or token"
        signed = [(k, v) for k, v in params.items() if k != "oauth_signature"]
        signed += [(k, v) for k, values in request.query.items() for v in values]
        base = signature.signature_base_string(
            request.method,
            signature.base_string_uri(f"http://{request.header('host')}{request.path}"),
            signature.normalize_parameters(signed),
        )
        expected = signature.sign_hmac_sha1(base, *self.secrets)
        if not hmac.compare_digest(expected, params["oauth_signature"]):
            return "signature mismatch"
        return None

    # --- handlers ---------------------------------------------------------------------------------

    def _guard(self, request: Request) -> Reply | None:
        scripted = self.queued()
        if scripted is not None:
            return scripted
        if self.authorisation_problem(request):
            return Reply(401, UNAUTHORIZED, self.limit_headers())
        return None

    def _tweet(self, request: Request) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        if self.remaining <= 0 or self.remaining_day <= 0:
            return Reply(429, TOO_MANY, self.limit_headers())
        self.remaining -= 1
        self.remaining_day -= 1
        body = request.json()
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            return Reply(400, {**TOO_LONG, "errors": [{"message": "text is required"}]}, self.limit_headers())
        if tweet_length(text) > 280:
            return Reply(400, TOO_LONG, self.limit_headers())
        if any(tweet["text"] == text for tweet in self.posts):
            return Reply(403, DUPLICATE, self.limit_headers())
        tweet_id = str(next(self._ids))
        tweet = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        self.accept(tweet)
        return Reply(201, {"data": tweet}, self.limit_headers())

    def _delete(self, request: Request) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        assert request.match is not None
        tweet_id = request.match["id"]
        if tweet_id in self.others:
            return Reply(403, NOT_YOURS, self.limit_headers())
        kept = [tweet for tweet in self.posts if tweet["id"] != tweet_id]
        if len(kept) == len(self.posts):
            missing = {
                "value": tweet_id,
                "detail": f"Could not find tweet with id: [{tweet_id}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "id",
                "resource_id": tweet_id,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
            return Reply(404, {**missing, "errors": [missing]}, self.limit_headers())
        self.posts[:] = kept
        return Reply(200, {"data": {"deleted": True}}, self.limit_headers())

    def _lookup(self, request: Request) -> Reply:
        """`GET /2/tweets/:id?tweet.fields=public_metrics`, or the Free tier's refusal."""
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        if not self.read_access:
            return Reply(403, TIER_FORBIDDEN, self.limit_headers())
        assert request.match is not None
        tweet_id = request.match["id"]
        found = [tweet for tweet in self.posts if tweet["id"] == tweet_id]
        if not found:
            problem = {
                "value": tweet_id,
                "detail": f"Could not find tweet with id: [{tweet_id}].",
                "title": "Not Found Error",
                "resource_type": "tweet",
                "parameter": "id",
                "resource_id": tweet_id,
                "type": "https://api.twitter.com/2/problems/resource-not-found",
            }
            return Reply(200, {"errors": [problem]}, self.limit_headers())  # X answers 200 with errors
        data: dict[str, Any] = {"id": tweet_id, "text": found[0]["text"], "edit_history_tweet_ids": [tweet_id]}
        if "public_metrics" in (request.query.get("tweet.fields") or [""])[-1]:
            counts = {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0, "bookmark_count": 0}
            counts.update(self.metrics.get(tweet_id, {}))
            counts.setdefault("impression_count", 0)
            data["public_metrics"] = counts
        return Reply(200, {"data": data}, self.limit_headers())

    def _me(self, request: Request) -> Reply:
        refusal = self._guard(request)
        if refusal is not None:
            return refusal
        user = {"id": "2244994945", "name": "Báo Tây Ninh", "username": "baotayninh"}
        return Reply(200, {"data": user}, self.limit_headers())
