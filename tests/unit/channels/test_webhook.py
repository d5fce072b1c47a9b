from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from distributor.channels.webhook import Webhook, signature
from distributor.errors import ChannelError
from distributor.models import Post
from tests.fakes.server import Reply
from tests.fakes.webhook import PATH_TOKEN, SIGNING_SECRET, WebhookFake, verify
from tests.unit.channels.secret_url_cases import (
    HARD,
    SEED,
    ErrorCase,
    assert_classified,
    assert_hidden,
    assert_logs_hide,
    assert_rejected,
    assert_unreachable_hides,
    build,
    closed_port_url,
    fake_fixtures,
    text_post,
)

server, fake = fake_fixtures(WebhookFake)
DOC = Path(__file__).parents[3] / "docs" / "channels" / "webhook.md"


def webhook(fake: WebhookFake, **keys: object) -> Webhook:
    channel = build("webhook", **{"url": fake.url + fake.hook_path, "secret": SIGNING_SECRET, **keys})
    assert isinstance(channel, Webhook)
    return channel


# --- configuration -------------------------------------------------------------------------------


def test_config_is_built_with_an_optional_secret() -> None:
    signed = build("webhook", url=f"https://cms.example.vn/hooks/{PATH_TOKEN}", secret=SIGNING_SECRET)
    unsigned = build("webhook", url="https://cms.example.vn/hooks/news")
    assert isinstance(signed, Webhook) and isinstance(unsigned, Webhook)
    assert signed.config.secret is not None and unsigned.config.secret is None
    assert SIGNING_SECRET not in repr(signed.settings) and PATH_TOKEN not in repr(signed.settings)
    assert Webhook.idempotent  # receivers get the key to dedupe on


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"secret": SIGNING_SECRET}, "key 'url' is required but missing"),
        ({"url": "ftp://cms.example.vn/in"}, "key 'url' must be an http(s) URL"),
        ({"url": "https://cms.example.vn/in", "secret": "${WEBHOOK_SECRET_UNSET}"}, "WEBHOOK_SECRET_UNSET"),
        ({"url": "https://cms.example.vn/in", "signing_secret": SIGNING_SECRET}, "key 'signing_secret' is not a known"),
    ],
    ids=["no-url", "not-http", "env-unset", "typo"],
)
def test_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str) -> None:
    assert_rejected("webhook", keys, expected, SIGNING_SECRET)


# --- sending -------------------------------------------------------------------------------------


def test_signed_json_is_delivered_with_its_key(fake: WebhookFake) -> None:
    channel = webhook(fake)
    post = channel.render(SEED)
    before = int(time.time())

    receipt = channel.send(post, "b5040debc31ac462:webhook-test")

    [sent] = fake.posts  # the fake verified the signature before accepting
    body, headers = sent["body"], {k.lower(): v for k, v in sent["headers"].items()}
    assert body == {
        "event": "article.published",
        "article": {
            "id": SEED.id,
            "url": SEED.url,
            "title": SEED.title,
            "summary": SEED.summary,
            "image": SEED.image,
            "published": "2021-07-13T14:00:00+00:00",
            "categories": ["Tin Tức Sự Kiện"],
            "tags": ["Dân vận"],
        },
        "text": post.text,
        "channel": "webhook-test",
    }
    assert "Tức" in sent["raw"].decode("utf-8")  # UTF-8, not \\u escapes
    assert post.url in post.text and "utm_source=webhook" in post.url
    assert headers["x-distributor-delivery"] == headers["idempotency-key"] == "b5040debc31ac462:webhook-test"
    assert before <= int(headers["x-distributor-timestamp"]) <= int(time.time())
    assert headers["x-distributor-signature"] == signature(
        SIGNING_SECRET, headers["x-distributor-timestamp"], sent["raw"]
    )
    assert receipt.post_id == "evt_1" and receipt.url == "https://receiver.example/events/evt_1"


def test_signature_covers_timestamp_and_body() -> None:
    body = b'{"event":"article.published"}'
    headers = {
        "X-Distributor-Timestamp": "1700000000",
        "X-Distributor-Signature": signature("s3cret", 1700000000, body),
    }
    assert verify("s3cret", headers, body, now=1700000000)
    assert not verify("s3cret", headers, body + b" ", now=1700000000)  # body changed
    assert not verify("other", headers, body, now=1700000000)  # wrong secret
    assert not verify("s3cret", headers, body, now=1700000000 + 301)  # replayed later


def test_documented_receiver_snippet_verifies_a_real_delivery(fake: WebhookFake) -> None:
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert code, "docs/channels/webhook.md must show the receiver's Python check"
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)
    webhook(fake).send(webhook(fake).render(SEED), "key-1")
    [sent] = fake.posts
    assert namespace["verify"](SIGNING_SECRET.encode(), sent["headers"], sent["raw"])
    assert not namespace["verify"](b"wrong", sent["headers"], sent["raw"])


def test_unsigned_when_no_secret(fake: WebhookFake) -> None:
    fake.secret = None
    build("webhook", url=fake.url + fake.hook_path).send(text_post("webhook", "x"), "key-1")
    assert "X-Distributor-Signature" not in fake.posts[0]["headers"]


def test_a_redelivery_with_the_same_key_is_shown_once(fake: WebhookFake) -> None:
    channel = webhook(fake)
    post = channel.render(SEED)
    first = channel.send(post, "key-1")
    again = channel.send(post, "key-1")  # e.g. after a read timeout left the first one's fate unknown
    assert first.post_id == again.post_id
    assert len(fake.posts) == 1


def test_a_2xx_without_a_body_is_a_success(fake: WebhookFake) -> None:
    fake.then(Reply(204, b""))
    assert webhook(fake).send(text_post("webhook", "x"), "key-1").post_id is None


@pytest.mark.parametrize("name", list(HARD))
def test_hard_articles_fit_with_the_link(fake: WebhookFake, name: str) -> None:
    channel = webhook(fake)
    post = channel.render(HARD[name])
    assert post.length <= post.limit == 10_000
    assert post.url in post.text
    channel.send(post, f"key-{name}")
    assert fake.posts[0]["body"]["article"]["title"] == HARD[name].title


# --- errors --------------------------------------------------------------------------------------


def _post(text: str = "x") -> Post:
    return text_post("webhook", text)


ERRORS = [
    ErrorCase(
        "rate-limit", lambda f: f.then(Reply(429, "slow down", {"Retry-After": "12"})), _post(), False, 12.0, "429"
    ),
    ErrorCase(
        "unavailable", lambda f: f.then(Reply(503, {"error": "maintenance"})), _post(), False, None, "maintenance"
    ),
    ErrorCase("timeout", lambda f: f.then(Reply(408, "")), _post(), False, None, "HTTP 408", "408"),
    ErrorCase(
        "bad-signature", lambda f: setattr(f, "secret", "other"), _post(), True, None, "invalid signature", "401"
    ),
    ErrorCase("no-such-hook", lambda f: setattr(f, "token", "other"), _post(), True, None, "no such hook", "404"),
    ErrorCase("rejected", lambda f: f.then(Reply(422, {"message": "bad article"})), _post(), True, None, "bad article"),
    ErrorCase(
        "redirect",
        lambda f: f.then(Reply(301, "", {"Location": "https://elsewhere.example/in"})),
        _post(),
        True,
        None,
        "redirects are not followed",
        "301",
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in ERRORS])
def test_errors_are_classified(fake: WebhookFake, case: ErrorCase) -> None:
    error = assert_classified(webhook(fake), fake, case, PATH_TOKEN)
    assert SIGNING_SECRET not in error.message


def test_a_409_means_the_receiver_already_has_it(fake: WebhookFake) -> None:
    fake.then(Reply(409, {"error": "duplicate delivery"}))
    with pytest.raises(ChannelError) as caught:
        webhook(fake).send(_post(), "key-1")
    assert caught.value.duplicate
    assert "duplicate delivery" in caught.value.message


def test_a_redirect_is_not_followed(fake: WebhookFake) -> None:
    fake.then(Reply(302, "", {"Location": fake.url + fake.hook_path}))
    with pytest.raises(ChannelError):
        webhook(fake).send(_post(), "key-1")
    assert len(fake.requests) == 1 and fake.posts == []


# --- secrets -------------------------------------------------------------------------------------


def test_url_and_secret_are_hidden_when_the_connection_fails() -> None:
    channel = build("webhook", url=f"{closed_port_url()}/hooks/{PATH_TOKEN}", secret=SIGNING_SECRET)
    assert_unreachable_hides(channel, PATH_TOKEN)
    with pytest.raises(ChannelError) as caught:
        channel.send(_post(), "key-1")
    assert_hidden(caught.value, SIGNING_SECRET)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, f"<pre>Cannot POST /hooks/{PATH_TOKEN}</pre>"),  # Express's default 404 page
        (301, f"Moved Permanently. Redirecting to https://cms.example.vn/hooks/{PATH_TOKEN}"),
        (400, "x" * 180 + f" path=/hooks/{PATH_TOKEN}"),  # the text is cut at 200: not inside the token
    ],
)
def test_a_receiver_quoting_the_url_in_its_answer_does_not_leak_it(fake: WebhookFake, status: int, body: str) -> None:
    fake.then(Reply(status, body, {"Content-Type": "text/html; charset=utf-8"}))
    with pytest.raises(ChannelError) as caught:
        webhook(fake).send(_post(), "key-1")
    assert caught.value.permanent and caught.value.status == status
    assert "***" in caught.value.message and PATH_TOKEN[:10] not in caught.value.message
    assert_hidden(caught.value, PATH_TOKEN)


def test_url_is_hidden_in_debug_logs(fake: WebhookFake, caplog: pytest.LogCaptureFixture) -> None:
    assert_logs_hide(webhook(fake), caplog, PATH_TOKEN)
    assert SIGNING_SECRET not in caplog.text


def test_check_posts_nothing(fake: WebhookFake) -> None:
    found = webhook(fake).check()
    assert found == "posts article.published to http://127.0.0.1/***, signed with HMAC-SHA256; nothing was sent"
    assert fake.requests == []
