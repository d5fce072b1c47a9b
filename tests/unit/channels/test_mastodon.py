"""Mastodon: config, statuses with idempotency keys and media, every error class, length fitting."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image as PILImage

from distributor import text as textlib
from distributor.channels.mastodon import Mastodon
from distributor.errors import ChannelError, ConfigError
from distributor.models import Receipt
from tests.fakes.mastodon import FakeMastodon, status_length
from tests.fakes.server import Reply
from tests.unit.channels.vi_articles import SEED_TITLE, article, channel_from, hard_articles

TOKEN = "mastodon-test-token-5f2e"


@pytest.fixture(scope="module")
def instance():
    with FakeMastodon(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def fake(instance):
    instance.reset()
    return instance


def make(fake, tmp_path, **keys):
    entry = {"name": "masto", "type": "mastodon", "api_base": fake.url, "access_token": TOKEN}
    entry.update({"allow_private_images": True, **keys})
    channel = channel_from(entry, tmp_path)
    assert isinstance(channel, Mastodon)
    channel.media_poll_delay = 0.01
    return channel


def png(size=(120, 80)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, (10, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def serve_image(fake, path="/og.png", body=None):
    fake.add("GET", path, lambda request: Reply(200, body or png(), {"Content-Type": "image/png"}))
    return fake.url + path


# --- configuration -------------------------------------------------------------------------------


def test_config_defaults_and_env_secret(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    channel = make(fake, tmp_path, access_token="${MASTODON_TOKEN}")
    assert channel.config.access_token.get_secret_value() == TOKEN
    assert channel.config.visibility == "public" and channel.limit == 500
    assert channel.idempotent is True
    assert TOKEN not in repr(channel.settings)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"api_base": None}, "key 'api_base' is required"),
        ({"api_base": "mastodon.social"}, "must be the instance URL"),
        ({"access_token": None}, "key 'access_token' is required"),
        ({"visibility": "direct"}, "key 'visibility'"),
        ({"max_characters": 10}, "key 'max_characters'"),
        ({"tokn": "x"}, "key 'tokn' is not a known key"),
    ],
)
def test_config_rejected(keys, problem):
    entry = {
        "name": "masto",
        "type": "mastodon",
        "api_base": "https://m.example",
        "access_token": TOKEN,
    }
    entry.update(keys)
    entry = {k: v for k, v in entry.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        channel_from(entry)
    assert problem in str(caught.value)
    assert TOKEN not in str(caught.value)


# --- success -------------------------------------------------------------------------------------


def test_posts_the_status_with_bearer_token_and_idempotency_key(fake, tmp_path):
    channel = make(fake, tmp_path, visibility="unlisted")
    post = channel.render(article())
    receipt = channel.send(post, "delivery-key-1")

    [sent] = fake.requests_to("/api/v1/statuses")
    assert sent.header("Authorization") == f"Bearer {TOKEN}"
    assert sent.header("Idempotency-Key") == "delivery-key-1"
    assert sent.json() == {"status": post.text, "visibility": "unlisted", "language": "vi"}
    [status] = fake.statuses
    assert receipt.post_id == status["id"] and receipt.url == status["url"]
    assert post.url in status["text"] and SEED_TITLE in status["text"]


def test_a_retry_with_the_same_key_does_not_post_twice(fake, tmp_path):
    channel = make(fake, tmp_path)
    post = channel.render(article())
    first = channel.send(post, "same-key")
    second = channel.send(post, "same-key")
    assert first == second
    assert len(fake.statuses) == 1
    assert len(fake.requests_to("/api/v1/statuses")) == 2


def test_language_setting_overrides_the_article(fake, tmp_path):
    channel = make(fake, tmp_path, language="en")
    channel.send(channel.render(article()), "k")
    assert fake.requests_to("/api/v1/statuses")[0].json()["language"] == "en"


def test_image_is_uploaded_with_the_title_as_alt_text(fake, tmp_path):
    channel = make(fake, tmp_path)
    post = channel.render(article(image=serve_image(fake)))
    channel.send(post, "k-image")

    [upload] = fake.requests_to("/api/v2/media")
    assert upload.header("Authorization") == f"Bearer {TOKEN}"
    [(media_id, media)] = fake.media.items()
    assert media["description"] == SEED_TITLE and media["format"] == "PNG"
    assert fake.statuses[0]["media_attachments"][0]["id"] == media_id


def test_asynchronous_media_is_polled_until_processed(fake, tmp_path):
    fake.media_processing_polls = 2
    channel = make(fake, tmp_path)
    channel.send(channel.render(article(image=serve_image(fake))), "k-async")
    polls = [r for r in fake.requests if r.path.startswith("/api/v1/media/")]
    assert [r.method for r in polls] == ["GET"] * 3  # 206, 206, then 200 with a url
    assert len(fake.statuses[0]["media_attachments"]) == 1


def test_media_still_processing_after_the_bound_posts_without_it(fake, tmp_path):
    fake.media_processing_polls = 50
    channel = make(fake, tmp_path)
    channel.media_poll_attempts = 3
    channel.send(channel.render(article(image=serve_image(fake))), "k-slow")
    assert len([r for r in fake.requests if r.path.startswith("/api/v1/media/")]) == 3
    assert fake.statuses[0]["media_attachments"] == []


def test_failing_image_falls_back_to_a_text_post(fake, tmp_path, caplog):
    fake.add("GET", "/missing.png", lambda request: Reply(404, "gone"))
    fake.fail_next["media"].append(Reply(422, {"error": "Validation failed: File content type is invalid"}))
    channel = make(fake, tmp_path)
    with caplog.at_level(logging.WARNING):
        channel.send(channel.render(article(image=fake.url + "/missing.png")), "k-404")
        channel.send(channel.render(article(image=serve_image(fake))), "k-422")
    assert [s["media_attachments"] for s in fake.statuses] == [[], []]
    assert "HTTP 404" in caplog.text and "File content type is invalid" in caplog.text


def test_loopback_image_is_refused_by_default(fake, tmp_path, caplog):
    channel = make(fake, tmp_path, allow_private_images=False)
    image = serve_image(fake, "/internal.png")
    with caplog.at_level(logging.WARNING):
        channel.send(channel.render(article(image=image)), "k-private")
    assert fake.requests_to("/internal.png") == [] and fake.requests_to("/api/v2/media") == []
    assert fake.statuses[0]["media_attachments"] == []
    assert "non-public address" in caplog.text


# --- errors --------------------------------------------------------------------------------------


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after", "fragment"),
    [
        (
            Reply(401, {"error": "The access token is invalid"}),
            True,
            None,
            "access token is invalid",
        ),
        (
            Reply(403, {"error": "This action is outside the authorized scopes"}),
            True,
            None,
            "scopes",
        ),
        (
            Reply(422, {"error": "Validation failed: Text can't be blank"}),
            True,
            None,
            "can't be blank",
        ),
        (
            Reply(429, {"error": "Too many requests"}, {"X-RateLimit-Reset": "{in 120 s}"}),
            False,
            120,
            "Too many",
        ),
        (
            Reply(503, "<html>Bad gateway</html>", {"Content-Type": "text/html"}),
            False,
            None,
            "Bad gateway",
        ),
    ],
)
def test_error_classes(fake, tmp_path, reply, permanent, retry_after, fragment):
    # The reset moment is computed now, not when the parameters were collected.
    reply.headers = {k: iso_in(120) if v == "{in 120 s}" else v for k, v in reply.headers.items()}
    fake.fail_next["status"].append(reply)
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k-error")
    error = caught.value
    assert error.permanent is permanent
    assert error.status == reply.status
    assert fragment in error.message
    if retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(retry_after, abs=5)
    assert TOKEN not in str(error) and TOKEN not in repr(error)


def test_real_rate_limit_answer_carries_the_reset(fake, tmp_path):
    fake.remaining = 0
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k-429")
    wait = caught.value.retry_after
    assert not caught.value.permanent and wait is not None and 250 < wait <= 300


def test_wrong_token_is_permanent_and_not_leaked(fake, tmp_path):
    wrong = "wrong-token-value-9d31"
    channel = make(fake, tmp_path, access_token=wrong)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    assert caught.value.permanent and "access token is invalid" in caught.value.message
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    with pytest.raises(ChannelError) as check:
        channel.check()
    assert check.value.permanent and wrong not in str(check.value)


def test_unreadable_success_is_flagged_maybe_sent(fake, tmp_path):
    fake.fail_next["status"].append(Reply(200, "<html>ok</html>"))
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    assert caught.value.maybe_sent and not caught.value.permanent


def test_check_reads_the_account_and_posts_nothing(fake, tmp_path):
    assert "@news" in make(fake, tmp_path).check()
    assert fake.statuses == [] and [r.method for r in fake.requests] == ["GET"]


# --- fitting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(hard_articles()))
def test_every_hard_article_fits_and_is_accepted(fake, tmp_path, name):
    channel = make(fake, tmp_path)
    post = channel.render(hard_articles()[name])
    assert post.length == textlib.mastodon_length(post.text) <= 500
    assert status_length(post.text) <= 500
    assert post.url in post.text
    channel.send(post, f"k-{name}")
    assert fake.statuses[0]["text"] == post.text


def test_max_characters_override(fake, tmp_path):
    channel = make(fake, tmp_path, max_characters=120)
    post = channel.render(article())
    assert post.limit == 120 and textlib.mastodon_length(post.text) <= 120
    assert post.url in post.text


def test_punctuation_after_a_link_in_the_summary_is_counted(fake, tmp_path):
    # Mastodon's linkifier ends a link before `).`, which then counts as text: a summary full of
    # such links must still fit once the instance counts them.
    channel = make(fake, tmp_path)
    post = channel.render(article(summary="Xem https://dichvucong.gov.vn/p/home/dvc-trang-chu.html). " * 40))
    assert status_length(post.text) <= 500
    channel.send(post, "k-links")
    assert fake.statuses[0]["text"] == post.text


# --- corrections and retractions -----------------------------------------------------------------


def corrected(**changes):
    return article(**{"title": "Hội nghị (đã đính chính)", **changes})


def test_edit_puts_the_new_text_and_mastodon_keeps_one_new_version(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    assert receipt.data == {"media_ids": "", "image": ""}
    post = channel.render(corrected())

    edited = channel.edit(post, receipt, "k")

    [status] = fake.statuses
    assert status["text"] == post.text and status["edited_at"] is not None
    assert len(status["history"]) == 2  # the original and the correction, as Mastodon lists them
    assert (edited.post_id, edited.url) == (receipt.post_id, receipt.url)
    [put] = [r for r in fake.requests if r.method == "PUT"]
    assert put.header("Authorization") == f"Bearer {TOKEN}"
    assert put.json() == {"status": post.text, "language": "vi", "media_ids": []}


def test_edit_keeps_the_image_and_corrects_its_alt_text(fake, tmp_path):
    channel = make(fake, tmp_path)
    image = serve_image(fake)
    receipt = channel.send(channel.render(article(image=image)), "k")
    [media_id] = fake.media
    assert receipt.data == {"media_ids": media_id, "image": image}

    edited = channel.edit(channel.render(corrected(image=image)), receipt, "k")

    [status] = fake.statuses
    assert [m["id"] for m in status["media_attachments"]] == [media_id]  # not dropped by the edit
    assert fake.media[media_id]["description"] == "Hội nghị (đã đính chính)"
    assert len(fake.requests_to("/api/v2/media")) == 1  # nothing uploaded again
    assert edited.data == receipt.data


def test_edit_with_a_new_image_replaces_the_media(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article(image=serve_image(fake))), "k")
    new_image = serve_image(fake, "/new.png", png((200, 100)))

    edited = channel.edit(channel.render(corrected(image=new_image)), receipt, "k")

    [status] = fake.statuses
    [attachment] = status["media_attachments"]
    assert attachment["meta"]["original"]["width"] == 200
    assert edited.data == {"media_ids": attachment["id"], "image": new_image}


def test_edit_of_a_status_from_an_older_receipt_keeps_its_media(fake, tmp_path):
    channel = make(fake, tmp_path)
    image = serve_image(fake)
    sent = channel.send(channel.render(article(image=image)), "k")
    legacy = Receipt(post_id=sent.post_id, url=sent.url)  # kept before receipts carried media ids

    channel.edit(channel.render(corrected(image=image)), legacy, "k")

    assert len(fake.statuses[0]["media_attachments"]) == 1


def test_edit_that_changes_nothing_is_a_success_without_a_version(fake, tmp_path):
    channel = make(fake, tmp_path)
    post = channel.render(article(image=serve_image(fake)))
    receipt = channel.send(post, "k")
    assert channel.edit(post, receipt, "k") == receipt
    assert fake.statuses[0]["history"] == [] and fake.statuses[0]["edited_at"] is None


def test_edit_of_a_deleted_status_is_permanent_with_mastodons_message(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    fake.status(receipt.post_id)["deleted"] = True
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(corrected()), receipt, "k")
    assert caught.value.permanent and "Record not found" in caught.value.message


def test_edit_refused_as_too_long_is_permanent(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    fake.max_characters = 100  # the instance lowered its limit since
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(corrected()), receipt, "k")
    assert caught.value.permanent and "character limit of 100" in caught.value.message
    assert fake.statuses[0]["history"] == []


def test_delete_removes_the_status(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    channel.delete(receipt, "k")
    assert fake.statuses[0]["deleted"] is True
    [deleted] = [r for r in fake.requests if r.method == "DELETE"]
    assert deleted.path == f"/api/v1/statuses/{receipt.post_id}"


def test_delete_of_a_status_already_gone_is_a_success(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    channel.delete(receipt, "k")
    channel.delete(receipt, "k")  # 404 Record not found, and the status cannot be read either
    assert [r.method for r in fake.requests][-2:] == ["DELETE", "GET"]


def test_delete_answered_404_for_a_status_still_online_is_reported(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    fake.fail_next["delete"].append(fake.reply(404, {"error": "Record not found"}))  # another account's status
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "k")
    assert caught.value.permanent
    assert "Record not found" in caught.value.message and "still online" in caught.value.message
    assert fake.statuses[0]["deleted"] is False


def test_delete_refused_is_permanent_with_mastodons_message(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    fake.scopes = ("read",)  # the token lost write:statuses
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "k")
    assert caught.value.permanent and "outside the authorized scopes" in caught.value.message
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize("action", ["edit", "delete"])
@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, {"error": "Too many requests"}, {"X-RateLimit-Reset": "{in 120 s}"}), 120),
        (Reply(503, "<html>Bad gateway</html>", {"Content-Type": "text/html"}), None),
        (Reply(500, {"error": "Internal error"}, {"Retry-After": "30"}), 30),
    ],
    ids=["429", "503", "500-retry-after"],
)
def test_edit_and_delete_failures_are_transient(fake, tmp_path, action, reply, retry_after):
    reply.headers = {k: iso_in(120) if v == "{in 120 s}" else v for k, v in reply.headers.items()}
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k")
    fake.fail_next[action].append(reply)
    with pytest.raises(ChannelError) as caught:
        if action == "edit":
            channel.edit(channel.render(corrected()), receipt, "k")
        else:
            channel.delete(receipt, "k")
    assert not caught.value.permanent
    assert caught.value.retry_after == (None if retry_after is None else pytest.approx(retry_after, abs=5))
    assert fake.statuses[0]["history"] == [] and fake.statuses[0]["deleted"] is False
