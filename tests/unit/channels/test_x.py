"""X channel against the loopback X API v2 fake (which verifies the OAuth 1.0a signature)."""

from __future__ import annotations

import time

import pytest

from distributor.channels.x import X
from distributor.errors import ChannelError, ConfigError
from distributor.models import Receipt
from distributor.text import x_length
from tests.fakes.server import Reply
from tests.fakes.x import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    API_KEY,
    API_SECRET,
    DUPLICATE,
    READ_ONLY,
    TOO_LONG,
    TOO_MANY,
    UNAUTHORIZED,
    FakeX,
    tweet_length,
)
from tests.unit.channels.secret_url_cases import assert_hidden, build, fake_fixtures
from tests.unit.channels.vi_articles import article, hard_articles

KEYS = {
    "api_key": API_KEY,
    "api_secret": API_SECRET,
    "access_token": ACCESS_TOKEN,
    "access_token_secret": ACCESS_TOKEN_SECRET,
}


server, fake = fake_fixtures(FakeX)


def x(fake: FakeX, **keys: object) -> X:
    channel = build("x", **{**KEYS, "api_base": fake.url, **keys})
    assert isinstance(channel, X)
    return channel


def failure(channel: X, post_title: str = "") -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article(title=post_title) if post_title else article()), "key-1")
    return caught.value


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_config_names_the_missing_key(missing: str) -> None:
    keys = {k: v for k, v in KEYS.items() if k != missing}
    with pytest.raises(ConfigError, match=f"key '{missing}' is required") as caught:
        build("x", **keys)
    for secret in keys.values():
        assert secret not in str(caught.value)


def test_config_takes_the_four_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in KEYS.items():
        monkeypatch.setenv(f"X_{name.upper()}", value)
    channel = build("x", **{name: f"${{X_{name.upper()}}}" for name in KEYS})
    assert isinstance(channel, X)
    assert channel.config.access_token_secret.get_secret_value() == ACCESS_TOKEN_SECRET
    assert channel.api_base == "https://api.x.com"
    for secret in KEYS.values():
        assert secret not in repr(channel.settings)


# --- posting --------------------------------------------------------------------------------------


def test_post_is_signed_and_returns_the_post_id(fake: FakeX) -> None:
    channel = x(fake)
    post = channel.render(article())
    receipt = channel.send(post, "key-1")

    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", "/2/tweets")
    assert request.json() == {"text": post.text}
    assert fake.authorisation_problem(request) is None  # HMAC-SHA1 signature checked by oauthlib
    header = request.header("authorization") or ""
    assert f'oauth_consumer_key="{API_KEY}"' in header and f'oauth_token="{ACCESS_TOKEN}"' in header
    assert API_SECRET not in header and ACCESS_TOKEN_SECRET not in header
    assert receipt.post_id == fake.posts[-1]["id"]
    assert receipt.url == f"https://x.com/i/web/status/{receipt.post_id}"


def test_a_wrong_secret_fails_the_signature(fake: FakeX) -> None:
    error = failure(x(fake, access_token_secret="not-the-secret"))
    assert error.permanent and error.status == 401
    assert fake.posts == []


def test_text_is_counted_with_x_weights(fake: FakeX) -> None:
    channel = x(fake)
    post = channel.render(article())
    assert post.length == x_length(post.text) <= 280
    assert post.length > len(post.text) - len(post.url) + 23  # tone letters weigh 2
    assert post.text.startswith("Ban Dân vận Trung ương") and post.text.count(post.url) == 1


@pytest.mark.parametrize("case", sorted(hard_articles()))
def test_hard_articles_fit_and_keep_their_link(fake: FakeX, case: str) -> None:
    channel = x(fake)
    post = channel.render(hard_articles()[case])
    assert 0 < post.length <= post.limit == 280
    assert post.text.count(post.url) == 1
    channel.send(post, case)  # the fake refuses anything over 280 weighted
    assert fake.posts[-1]["text"] == post.text


def test_bare_domains_and_punctuation_after_links_are_counted_as_x_does(fake: FakeX) -> None:
    # X makes a 23-character link of `dichvucong.gov.vn` and `Booking.com` (not of `tuoitre.vn` or
    # `TP.HCM`), and ends a link before `).`: a summary with them must still fit as X counts.
    summary = (
        "Người dân TP.HCM tra cứu hồ sơ trên dichvucong.gov.vn, đặt phòng qua Booking.com, đọc "
        "VnExpress.net hay tuoitre.vn (xem https://dichvucong.gov.vn/p/home/dvc-trang-chu.html). "
    )
    channel = x(fake)
    post = channel.render(article(summary=summary * 3))
    assert "dichvucong.gov.vn, đặt phòng qua Booking.com" in post.text  # the summary was cut later
    assert post.length == tweet_length(post.text) <= 280
    channel.send(post, "key-domains")
    assert fake.posts[-1]["text"] == post.text


def test_check_reads_the_account_and_posts_nothing(fake: FakeX) -> None:
    assert x(fake).check() == "X account @baotayninh (id 2244994945)"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/2/users/me")]


# --- errors ---------------------------------------------------------------------------------------


def test_rate_limit_waits_until_the_window_resets(fake: FakeX) -> None:
    reset = int(time.time()) + 120
    fake.fail_next(429, TOO_MANY, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)})
    error = failure(x(fake))
    assert not error.permanent and error.status == 429
    assert error.retry_after is not None and 115 <= error.retry_after <= 120


def test_a_spent_daily_cap_waits_for_the_day_reset(fake: FakeX) -> None:
    reset = int(time.time()) + 3600
    headers = {"x-user-limit-24hour-remaining": "0", "x-user-limit-24hour-reset": str(reset)}
    fake.fail_next(429, {**TOO_MANY, "type": "https://api.twitter.com/2/problems/usage-capped"}, headers)
    error = failure(x(fake))
    assert not error.permanent and error.code == "usage-capped"
    assert error.retry_after is not None and 3595 <= error.retry_after <= 3600


def test_the_fake_window_runs_out(fake: FakeX) -> None:
    fake.reset(per_window=1)
    channel = x(fake)
    channel.send(channel.render(article()), "key-1")
    error = failure(channel, "Bài thứ hai")
    assert error.status == 429 and error.retry_after is not None and 880 <= error.retry_after <= 900


@pytest.mark.parametrize(
    ("status", "body", "expected", "text"),
    [
        (401, UNAUTHORIZED, "permanent", "Unauthorized"),
        (403, READ_ONLY, "permanent", "Read and write"),
        (403, DUPLICATE, "duplicate", "duplicate content"),
        (400, TOO_LONG, "permanent", "Your Tweet text is too long."),
        (
            500,
            {"title": "Internal Server Error", "status": 500},
            "transient",
            "Internal Server Error",
        ),
        (
            503,
            {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503},
            "transient",
            "",
        ),
    ],
    ids=["unauthorized", "read-only-app", "duplicate", "too-long", "500", "503"],
)
def test_error_classes(fake: FakeX, status: int, body: dict[str, object], expected: str, text: str) -> None:
    fake.fail_next(status, body)
    error = failure(x(fake))
    assert error.status == status
    assert error.permanent is (expected != "transient")
    assert error.duplicate is (expected == "duplicate")
    assert text in error.message


def test_posting_the_same_text_twice_is_a_duplicate(fake: FakeX) -> None:
    channel = x(fake)
    post = channel.render(article())
    channel.send(post, "key-1")
    with pytest.raises(ChannelError) as caught:
        channel.send(post, "key-1")
    assert caught.value.duplicate and caught.value.status == 403


def test_a_non_json_gateway_error_is_transient(fake: FakeX) -> None:
    fake.then(Reply(502, "<html>Bad Gateway</html>"))
    error = failure(x(fake))
    assert not error.permanent and error.status == 502


def test_secrets_never_reach_the_error(fake: FakeX) -> None:
    echo = " ".join(KEYS.values())
    fake.fail_next(401, {**UNAUTHORIZED, "detail": f"Unauthorized: {echo}"})
    error = failure(x(fake))
    for secret in KEYS.values():
        assert_hidden(error, secret)


# --- editing and deleting -------------------------------------------------------------------------


def test_delete_removes_the_post_and_a_second_delete_succeeds(fake: FakeX) -> None:
    channel = x(fake)
    receipt = channel.send(channel.render(article()), "key-1")

    channel.delete(receipt, "key-1")
    assert fake.posts == []
    channel.delete(receipt, "key-1")  # 404 resource-not-found: already deleted

    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert [r.path for r in deletes] == [f"/2/tweets/{receipt.post_id}"] * 2
    assert fake.authorisation_problem(deletes[0]) is None  # signed like a post


def test_deleting_another_accounts_post_is_refused_with_xs_words(fake: FakeX) -> None:
    with pytest.raises(ChannelError) as caught:
        x(fake).delete(Receipt(post_id="1445880548472320000"), "key-1")
    assert caught.value.permanent and caught.value.status == 403
    assert "You are not allowed to delete a Tweet that is not yours." in caught.value.message


def test_an_unconfirmed_deletion_is_not_reported_as_done(fake: FakeX) -> None:
    receipt = x(fake).send(x(fake).render(article()), "key-1")
    fake.fail_next(200, {"data": {"deleted": False}})
    with pytest.raises(ChannelError, match="did not confirm the deletion"):
        x(fake).delete(receipt, "key-1")


def test_a_rate_limited_or_failing_delete_is_retried(fake: FakeX) -> None:
    channel = x(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    fake.fail_next(429, TOO_MANY, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(time.time()) + 60)})
    fake.fail_next(503, {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503})
    waits = []
    for status in (429, 503):
        with pytest.raises(ChannelError) as caught:
            channel.delete(receipt, "key-1")
        assert not caught.value.permanent and caught.value.status == status
        waits.append(caught.value.retry_after)
    assert waits[0] is not None and 55 <= waits[0] <= 61  # until x-rate-limit-reset
    assert waits[1] is None
    channel.delete(receipt, "key-1")
    assert fake.posts == []


def test_edit_is_refused_with_the_reason_and_nothing_is_sent(fake: FakeX) -> None:
    channel = x(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    assert not channel.can_edit and channel.can_delete
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(article(title="Đính chính")), receipt, "key-1")
    assert caught.value.permanent
    assert caught.value.message == "X's API does not let an app edit a published post; only deleting it is possible"
    assert len(fake.requests) == 1  # only the post
