"""Zalo OA channel against the loopback Zalo fake, with the token pair kept in a real Redis."""

from __future__ import annotations

import threading
import time
import unicodedata
from collections.abc import Iterator

import pytest
import redis
import requests

from distributor.channel_state import RedisChannelState
from distributor.channels.zalo import Zalo, ZaloSettings
from distributor.errors import ChannelError, ConfigError
from distributor.keys import Keys
from distributor.models import Receipt
from distributor.settings import SiteSettings, settings_from_dict
from distributor.text import graphemes, utf16_length
from tests.fakes.server import Reply
from tests.fakes.zalo import (
    ACCESS_TOKEN,
    APP_ID,
    FOLLOWERS,
    LIFETIME,
    REFRESH_TOKEN,
    SECRET_KEY,
    FakeZalo,
    envelope,
)
from tests.unit.channels.secret_url_cases import assert_hidden, build, fake_fixtures
from tests.unit.channels.vi_articles import SITE, article, hard_articles

KEYS = {
    "access_token": ACCESS_TOKEN,
    "refresh_token": REFRESH_TOKEN,
    "app_id": APP_ID,
    "secret_key": SECRET_KEY,
}
IMAGE = "https://tinhuy.example.gov.vn/PublishingImages/2021/07/hoi-nghi-dan-van.jpg"
COVER = "https://tinhuy.example.gov.vn/PublishingImages/logo-zalo.jpg"
LOGO = "https://tinhuy.example.gov.vn/logo.png"
CREATE, VERIFY, BROADCAST, CS, GETOA = (
    "/v2.0/article/create",
    "/v2.0/article/verify",
    "/v2.0/oa/message",
    "/v3.0/oa/message/cs",
    "/v2.0/oa/getoa",
)
OAUTH = "/v4/oa/access_token"


server, fake = fake_fixtures(FakeZalo)


@pytest.fixture
def state(redis_url: str, prefix: str) -> Iterator[RedisChannelState]:
    """The real Redis-backed state (the test Redis) under this test's own key prefix."""
    client = redis.Redis.from_url(redis_url)
    yield RedisChannelState(client, Keys(prefix), "zalo-test")
    client.close()


def zalo(fake: FakeZalo, state: RedisChannelState | None = None, **keys: object) -> Zalo:
    settings = {
        **KEYS,
        "cover": COVER,
        "api_base": fake.url,
        "oauth_base": fake.url,
        "verify_interval": "10ms",
        **keys,
    }
    channel = build("zalo", **settings)
    assert isinstance(channel, Zalo)
    if state is not None:
        channel.state = state
    return channel


def failure(channel: Zalo, key: str = "key-1", image: str | None = IMAGE) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article(image=image)), key)
    return caught.value


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_config_names_the_missing_key(missing: str) -> None:
    keys = {k: v for k, v in KEYS.items() if k != missing}
    with pytest.raises(ConfigError, match=f"key '{missing}' is required") as caught:
        build("zalo", cover=COVER, **keys)
    for secret in keys.values():
        assert secret == APP_ID or secret not in str(caught.value)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"mode": "cs"}, "mode 'cs' needs user_ids"),
        ({"mode": "group"}, "key 'mode'"),
        ({"verify_attempts": 0}, "key 'verify_attempts'"),
    ],
)
def test_config_rejects_bad_modes(keys: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        build("zalo", **KEYS, cover=COVER, **keys)


def test_config_defaults() -> None:
    channel = build("zalo", **KEYS, cover=COVER)
    assert isinstance(channel, Zalo)
    assert channel.config.mode == "broadcast"
    assert channel.api_base == "https://openapi.zalo.me"
    assert channel.config.oauth_base == "https://oauth.zaloapp.com"
    for name in ("access_token", "refresh_token", "secret_key"):
        assert KEYS[name] not in repr(channel.settings)


# --- broadcast (the news path) --------------------------------------------------------------------


def test_broadcast_creates_verifies_and_broadcasts_the_article(fake: FakeZalo) -> None:
    channel = zalo(fake, target={"gender": "0"})
    post = channel.render(article(image=IMAGE))
    receipt = channel.send(post, "key-1")

    assert [r.path for r in fake.requests] == [CREATE, VERIFY, VERIFY, BROADCAST]  # -214 once
    for request in fake.requests:
        assert request.header("access_token") == ACCESS_TOKEN
        assert request.header("authorization") is None and request.query == {}
    created = fake.calls(CREATE)[0].json()
    assert created["type"] == "normal" and created["status"] == "show"
    assert created["title"] == article().title
    assert created["author"] == "Cổng thông tin điện tử tỉnh"  # the site, when the article has none
    assert created["cover"] == {"cover_type": "photo", "photo_url": IMAGE, "status": "show"}
    assert created["body"][0] == {"type": "text", "content": post.text}
    assert post.text.endswith(f"Xem chi tiết tại: {post.url}") and "utm_source=zalo" in post.url
    assert created["description"].endswith("…") and utf16_length(created["description"]) <= 300

    broadcast = fake.broadcasts[-1]
    article_id = next(iter(fake.articles.values()))["id"]
    assert broadcast["elements"] == [{"media_type": "article", "attachment_id": article_id}]
    assert broadcast["target"] == {"gender": "0"}
    assert receipt.post_id == broadcast["message_id"]
    assert receipt.url is not None and receipt.url.endswith(f"getdetail?id={article_id}")


# --- the cover Zalo requires ----------------------------------------------------------------------


def site_zalo(fake: FakeZalo, site: dict[str, object], **keys: object) -> Zalo:
    """A Zalo channel under a site of our own (with or without a logo), through the loader."""
    entry = {"name": "zalo", "type": "zalo", **KEYS, "api_base": fake.url, "oauth_base": fake.url, **keys}
    settings = settings_from_dict({"site": {**SITE, **site}, "channels": [{**entry, "verify_interval": "10ms"}]})
    channel = Zalo(settings.channels[0], settings.site)
    return channel


@pytest.mark.parametrize(
    ("image", "cover", "logo", "expected"),
    [
        (IMAGE, COVER, LOGO, IMAGE),  # the article's own image first
        (None, COVER, LOGO, COVER),  # then the channel's cover
        (None, None, LOGO, LOGO),  # then the site logo
    ],
)
def test_the_cover_falls_back_to_the_channel_cover_then_the_site_logo(
    fake: FakeZalo, image: str | None, cover: str | None, logo: str, expected: str
) -> None:
    channel = site_zalo(fake, {"logo": logo}, **({"cover": cover} if cover else {}))
    channel.send(channel.render(article(image=image)), "key-1")
    assert fake.calls(CREATE)[0].json()["cover"] == {"cover_type": "photo", "photo_url": expected, "status": "show"}
    assert len(fake.broadcasts) == 1


def test_the_fake_refuses_an_article_without_a_cover_as_zalo_does(fake: FakeZalo) -> None:
    body = {
        "type": "normal",
        "title": "Tin",
        "author": "A",
        "description": "D",
        "body": [{"type": "text", "content": "x"}],
    }
    answer = requests.post(f"{fake.url}{CREATE}", json=body, headers={"access_token": ACCESS_TOKEN}, timeout=5).json()
    assert answer["error"] == -201 and "cover" in answer["message"]
    assert fake.articles == {}


def test_an_article_without_any_cover_is_never_sent(fake: FakeZalo) -> None:
    # `distributor check` refuses this configuration; should the adapter ever get one anyway (a
    # settings model built by hand), it refuses the delivery itself instead of sending it.
    settings = ZaloSettings.model_validate(
        {"name": "zalo", "type": "zalo", **KEYS, "api_base": fake.url, "oauth_base": fake.url}
    )
    channel = Zalo(settings, SiteSettings.model_validate(SITE))
    error = failure(channel, image=None)
    assert error.permanent and not error.maybe_sent
    assert error.message == (
        "zalo needs a cover photo for an article without an image: set the channel's cover "
        "or [site] logo to an image URL"
    )
    assert fake.calls(CREATE) == [] and fake.broadcasts == []


def test_cs_mode_needs_no_cover(fake: FakeZalo) -> None:
    channel = site_zalo(fake, {}, mode="cs", user_ids=[FOLLOWERS[0]])
    channel.send(channel.render(article()), "key-1")
    assert [m["user_id"] for m in fake.messages] == [FOLLOWERS[0]]


@pytest.mark.parametrize("case", sorted(hard_articles()))
def test_hard_articles_fit_every_article_limit(fake: FakeZalo, case: str) -> None:
    source = hard_articles()[case]
    channel = zalo(fake)
    post = channel.render(source)
    assert 0 < post.length <= post.limit and post.text.count(post.url) == 1
    channel.send(post, case)  # the fake refuses a title > 150, description > 300, author > 50

    created = fake.calls(CREATE)[0].json()
    assert utf16_length(created["title"]) <= 150 and utf16_length(created["description"]) <= 300
    kept = created["title"].removesuffix("…")
    assert unicodedata.is_normalized("NFC", kept)
    assert set(graphemes(kept)) <= set(graphemes(unicodedata.normalize("NFC", source.title)))  # none split


def test_the_author_is_fitted_too(fake: FakeZalo) -> None:
    channel = zalo(fake)
    channel.send(
        channel.render(article(author="Ban Tuyên giáo Tỉnh ủy và Trung tâm Truyền thông tỉnh Tây Ninh")),
        "k",
    )
    author = fake.calls(CREATE)[0].json()["author"]
    assert utf16_length(author) <= 50 and author.endswith("…") and " Tỉnh ủy" in author


def test_an_article_still_processing_is_retried_without_creating_it_again(fake: FakeZalo) -> None:
    fake.processing_polls = 10
    channel = zalo(fake, verify_attempts=3)
    error = failure(channel)
    assert not error.permanent and error.code == "-214" and error.retry_after
    assert len(fake.calls(VERIFY)) == 3 and fake.broadcasts == []

    next(iter(fake.articles.values()))["polls"] = 0  # Zalo has finished processing
    receipt = channel.send(channel.render(article(image=IMAGE)), "key-1")
    assert len(fake.calls(CREATE)) == 1  # the pending token was kept for this delivery
    assert receipt.post_id == fake.broadcasts[0]["message_id"]


def test_a_lost_verify_answer_is_plainly_retried(fake: FakeZalo) -> None:
    # `article/verify` only reads: its lost answer leaves nothing half-done for an operator to check,
    # unlike a lost broadcast answer.
    fake.failures[VERIFY].append(Reply(drop=True))
    channel = zalo(fake)
    error = failure(channel)
    assert "connection failed" in error.message
    assert not error.permanent and not error.maybe_sent and fake.broadcasts == []

    receipt = channel.send(channel.render(article(image=IMAGE)), "key-1")
    assert len(fake.calls(CREATE)) == 1 and receipt.post_id == fake.broadcasts[0]["message_id"]


def test_a_lost_broadcast_answer_may_have_been_sent(fake: FakeZalo) -> None:
    fake.failures[BROADCAST].append(Reply(drop=True))
    error = failure(zalo(fake))
    assert not error.permanent and error.maybe_sent


def test_a_failed_broadcast_is_retried_with_the_same_article(fake: FakeZalo) -> None:
    channel = zalo(fake)
    fake.fail_next(BROADCAST, -32, "Request exceeds the limit")
    error = failure(channel)
    assert not error.permanent and error.retry_after == 60.0
    channel.send(channel.render(article(image=IMAGE)), "key-1")
    assert len(fake.calls(CREATE)) == 1 and len(fake.calls(BROADCAST)) == 2
    assert not [f for f in channel.state.values if f.endswith("key-1")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "code", "message", "hint"),
    [
        (BROADCAST, -224, "OA has not permission to use this feature", "package does not include"),
        (CREATE, -201, "Parameters are invalid", ""),
        (CREATE, -999, "Something new went wrong", ""),
        (
            CREATE,
            404,
            "You are accessing an empty or invalid API. Please check again your url.",
            "",
        ),
    ],
)
def test_permanent_errors_carry_code_and_message(fake: FakeZalo, path: str, code: int, message: str, hint: str) -> None:
    fake.fail_next(path, code, message)
    error = failure(zalo(fake))
    assert error.permanent and error.code == str(code) and error.status == 200
    assert message in error.message and hint in error.message and str(code) in error.message


def test_server_errors_without_an_envelope_are_transient(fake: FakeZalo) -> None:
    fake.then(Reply(503, "<html>Service Unavailable</html>"))
    error = failure(zalo(fake))
    assert not error.permanent and error.status == 503


# --- consultation messages ------------------------------------------------------------------------


def test_cs_messages_every_listed_follower(fake: FakeZalo) -> None:
    channel = zalo(fake, mode="cs", user_ids=list(FOLLOWERS))
    post = channel.render(article())
    receipt = channel.send(post, "key-1")
    assert [m["user_id"] for m in fake.messages] == list(FOLLOWERS)
    assert fake.calls(CS)[0].json() == {
        "recipient": {"user_id": FOLLOWERS[0]},
        "message": {"text": post.text},
    }
    assert post.text.startswith(article().title) and post.text.count(post.url) == 1
    assert receipt.post_id == ",".join(m["message_id"] for m in fake.messages)


def test_cs_skips_a_user_it_cannot_reach_and_fails_when_it_reaches_nobody(fake: FakeZalo) -> None:
    stranger = "8454321000000000999"
    channel = zalo(fake, mode="cs", user_ids=[stranger, FOLLOWERS[0]])
    receipt = channel.send(channel.render(article()), "k")
    assert receipt.post_id == fake.messages[0]["message_id"]

    error = failure(zalo(fake, mode="cs", user_ids=[stranger]), "k2")
    assert error.permanent and error.code == "-213" and "not followed" in error.message


def test_cs_retry_does_not_message_the_same_follower_twice(fake: FakeZalo) -> None:
    channel = zalo(fake, mode="cs", user_ids=list(FOLLOWERS))
    fake.then(
        Reply(200, envelope(data={"message_id": "cs-first", "user_id": FOLLOWERS[0]})),
        Reply(502, "oops"),
    )
    failure(channel)
    receipt = channel.send(channel.render(article(image=IMAGE)), "key-1")
    assert [r.json()["recipient"]["user_id"] for r in fake.calls(CS)] == [
        FOLLOWERS[0],
        FOLLOWERS[1],
        FOLLOWERS[1],
    ]
    assert receipt.post_id == f"cs-first,{fake.messages[-1]['message_id']}"
    assert not [f for f in channel.state.values if ":key-1:" in f]  # type: ignore[attr-defined]


def test_check_reads_the_oa_and_posts_nothing(fake: FakeZalo) -> None:
    assert zalo(fake).check() == "Zalo OA 'Tây Ninh Online' (id 579745863508352884)"
    assert [(r.method, r.path) for r in fake.requests] == [("GET", GETOA)]


# --- the single-use token pair --------------------------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_new_pair_is_stored(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    receipt = zalo(fake, state).send(zalo(fake).render(article(image=IMAGE)), "key-1")

    assert fake.refreshes == 1 and receipt.post_id == fake.broadcasts[0]["message_id"]
    refresh = fake.calls(OAUTH)[0]
    assert refresh.header("secret_key") == SECRET_KEY
    assert refresh.form() == {
        "refresh_token": REFRESH_TOKEN,
        "app_id": APP_ID,
        "grant_type": "refresh_token",
    }
    new_access, new_refresh = state.get("access_token"), state.get("refresh_token")
    assert new_access and new_access != ACCESS_TOKEN and new_access in fake.access
    assert new_refresh and new_refresh in fake.refresh_tokens
    assert abs(float(state.get("expires_at") or 0) - (time.time() + LIFETIME)) < 60
    creates = fake.calls(CREATE)
    assert [r.header("access_token") for r in creates] == [
        ACCESS_TOKEN,
        new_access,
    ]  # -216, then retried


def test_the_stored_pair_beats_the_configured_one(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    zalo(fake, state).check()
    stored = state.get("access_token")
    zalo(fake, state).check()  # another worker, same configuration, same Redis
    assert fake.refreshes == 1
    assert fake.requests[-1].header("access_token") == stored


def test_reusing_the_old_refresh_token_fails_permanently(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    zalo(fake, state).check()
    fake.expire()
    with pytest.raises(ChannelError) as caught:
        zalo(fake).check()  # a worker without the stored pair still holds the spent refresh token
    error = caught.value
    assert error.permanent and error.code == "-14020"
    assert "refresh token already used/expired: re-authorise the OA" in error.message


def test_a_token_about_to_expire_is_refreshed_before_use(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    zalo(fake, state).check()
    state.set(expires_at=str(time.time() + 10))  # inside the safety margin
    fake.requests.clear()
    zalo(fake, state).check()
    assert [r.path for r in fake.requests] == [OAUTH, GETOA] and fake.refreshes == 2


def test_a_newly_configured_pair_wins_over_the_stored_one(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    zalo(fake, state).check()
    fake.access["zat-reauthorised"] = time.time() + LIFETIME  # the operator re-authorised the OA
    fake.refresh_tokens.add("zrt-reauthorised")
    zalo(fake, state, access_token="zat-reauthorised", refresh_token="zrt-reauthorised").check()
    assert fake.requests[-1].header("access_token") == "zat-reauthorised"


def test_concurrent_workers_refresh_only_once(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.expire()
    workers = [zalo(fake, state) for _ in range(4)]
    results: list[str | BaseException] = []

    def run(channel: Zalo) -> None:
        try:
            results.append(channel.check())
        except ChannelError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert fake.refreshes == 1
    assert all(isinstance(r, str) for r in results) and len(results) == 4


def test_a_token_refused_after_refresh_is_permanent(fake: FakeZalo) -> None:
    fake.fail_next(GETOA, -216, "Access token is invalid")
    fake.fail_next(GETOA, -216, "Access token is invalid")
    with pytest.raises(ChannelError) as caught:
        zalo(fake).check()
    assert caught.value.permanent and caught.value.code == "-216" and fake.refreshes == 1


def test_token_errors_with_http_401_refresh_too(fake: FakeZalo) -> None:
    fake.token_error_status = 401
    fake.expire()
    assert zalo(fake).check().startswith("Zalo OA")
    assert fake.refreshes == 1


def test_secrets_never_reach_the_error(fake: FakeZalo, state: RedisChannelState) -> None:
    fake.fail_next(CREATE, -201, f"bad request with {ACCESS_TOKEN} and {SECRET_KEY} and {REFRESH_TOKEN}")
    error = failure(zalo(fake, state))
    for secret in (ACCESS_TOKEN, SECRET_KEY, REFRESH_TOKEN):
        assert_hidden(error, secret)

    fake.reset()
    fake.then(
        Reply(200, envelope(-216, "expired")),
        Reply(200, {"error": -1, "error_description": f"no {REFRESH_TOKEN}"}),
    )
    with pytest.raises(ChannelError) as caught:
        zalo(fake).check()
    assert_hidden(caught.value, REFRESH_TOKEN)


# --- editing and deleting (broadcast articles) ----------------------------------------------------

UPDATE, REMOVE, DETAIL = "/v2.0/article/update", "/v2.0/article/remove", "/v2.0/article/getdetail"


def broadcast(channel: Zalo) -> tuple[Receipt, str]:
    receipt = channel.send(channel.render(article(image=IMAGE)), "key-1")
    return receipt, receipt.data["article_id"]


def test_edit_rewrites_the_broadcast_article(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)
    corrected = channel.render(article(title="Đính chính: hội nghị dân vận", summary="Số liệu đã sửa", image=None))

    edited = channel.edit(corrected, receipt, "key-1")

    assert edited.post_id == receipt.post_id and edited.data["article_id"] == article_id
    shown = fake.published(article_id)
    assert shown is not None
    assert shown["title"] == "Đính chính: hội nghị dân vận" and shown["description"] == "Số liệu đã sửa"
    assert shown["cover"]["photo_url"] == COVER  # no image any more: the channel's cover
    assert shown["body"] == [{"type": "text", "content": corrected.text}]
    assert fake.calls(UPDATE)[0].header("access_token") == ACCESS_TOKEN
    assert len(fake.broadcasts) == 1  # nothing re-broadcast


def test_an_older_receipt_finds_the_article_in_its_url(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)
    channel.delete(Receipt(post_id=receipt.post_id, url=receipt.url), "key-1")
    assert fake.published(article_id) is None


def test_delete_removes_the_article_and_a_second_delete_succeeds(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)

    channel.delete(receipt, "key-1")
    assert fake.published(article_id) is None
    channel.delete(receipt, "key-1")  # refused, and getdetail no longer shows it: already deleted

    assert [r.path for r in fake.requests[-3:]] == [REMOVE, REMOVE, DETAIL]


def test_a_refused_remove_of_an_article_still_shown_keeps_zalos_message(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)
    fake.fail_next(REMOVE, -201, "Parameters are invalid: article is in use")

    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "key-1")

    assert caught.value.permanent and caught.value.code == "-201"
    assert "Parameters are invalid: article is in use" in caught.value.message
    assert fake.published(article_id) is not None


def test_editing_a_removed_article_is_refused_with_zalos_message(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, _ = broadcast(channel)
    channel.delete(receipt, "key-1")
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(article(image=IMAGE)), receipt, "key-1")
    assert caught.value.permanent and "article does not exist" in caught.value.message


@pytest.mark.parametrize("operation", ["edit", "delete"])
def test_rate_limits_and_server_errors_are_retried(fake: FakeZalo, operation: str) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)
    path = UPDATE if operation == "edit" else REMOVE
    fake.fail_next(path, -32, "Request exceeded limit")
    fake.then(Reply(502, "<html>Bad Gateway</html>"))

    def run() -> None:
        if operation == "edit":
            channel.edit(channel.render(article(title="Đính chính", image=IMAGE)), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")

    for _ in range(2):
        with pytest.raises(ChannelError) as caught:
            run()
        assert not caught.value.permanent
    run()
    shown = fake.published(article_id)
    assert (shown is not None and shown["title"] == "Đính chính") if operation == "edit" else shown is None


def test_an_expired_token_is_refreshed_for_an_edit(fake: FakeZalo) -> None:
    channel = zalo(fake)
    receipt, article_id = broadcast(channel)
    fake.expire()
    channel.edit(channel.render(article(title="Đính chính", image=IMAGE)), receipt, "key-1")
    shown = fake.published(article_id)
    assert fake.refreshes == 1 and shown is not None and shown["title"] == "Đính chính"


@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("edit", "a Zalo consultation message cannot be edited once sent (mode 'cs')"),
        ("delete", "a Zalo consultation message cannot be unsent (mode 'cs')"),
    ],
)
def test_consultation_messages_cannot_be_edited_or_deleted(fake: FakeZalo, operation: str, reason: str) -> None:
    channel = zalo(fake, mode="cs", user_ids=list(FOLLOWERS))
    receipt = channel.send(channel.render(article()), "key-1")
    calls = len(fake.requests)
    with pytest.raises(ChannelError) as caught:
        if operation == "edit":
            channel.edit(channel.render(article(title="Đính chính")), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.message == reason
    assert len(fake.requests) == calls
