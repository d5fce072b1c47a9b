"""Bluesky: sessions, records with byte-offset facets and link cards, idempotent record keys,
every error class, and fitting under 300 graphemes and 3,000 bytes."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest
from PIL import Image as PILImage

from distributor import text as textlib
from distributor.channels.bluesky import Bluesky, display_url, record_key, rich_text
from distributor.errors import ChannelError, ConfigError
from distributor.models import Receipt
from tests.fakes.bluesky import TID, FakeBluesky
from tests.fakes.server import Reply
from tests.unit.channels.vi_articles import SEED_TITLE, article, channel_from, hard_articles

HANDLE = "tintuc.bsky.social"
PASSWORD = "abcd-efgh-ijkl-mnop"


@pytest.fixture(scope="module")
def pds():
    with FakeBluesky(handle=HANDLE, password=PASSWORD) as fake:
        yield fake


@pytest.fixture
def fake(pds):
    pds.reset()
    return pds


def make(fake, tmp_path, **keys) -> Bluesky:
    entry = {"name": "bsky", "type": "bluesky", "api_base": fake.url, "handle": HANDLE}
    entry.update({"app_password": PASSWORD, "allow_private_images": True, **keys})
    channel = channel_from(entry, tmp_path)
    assert isinstance(channel, Bluesky)
    return channel


def serve_image(fake, path="/og.png", size=(300, 200), noise=False):
    # Noise does not compress: a big file from a moderate size.
    noisy = PILImage.effect_noise(size, 90).convert("RGB") if noise else None
    picture = noisy or PILImage.new("RGB", size, (200, 40, 40))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    body = buffer.getvalue()
    fake.add("GET", path, lambda request: Reply(200, body, {"Content-Type": "image/png"}))
    return fake.url + path, len(body)


def created(fake):
    return [r.json() for r in fake.calls("com.atproto.repo.createRecord")]


# --- configuration -------------------------------------------------------------------------------


def test_config_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("BSKY_PASSWORD", PASSWORD)
    channel = channel_from(
        {
            "name": "b",
            "type": "bluesky",
            "handle": "@tintuc.bsky.social",
            "app_password": "${BSKY_PASSWORD}",
        }
    )
    assert isinstance(channel, Bluesky) and channel.api_base == "https://bsky.social"
    assert channel.config.handle == "tintuc.bsky.social"  # the @ a user may copy is dropped
    assert channel.supports_readback and not channel.idempotent
    assert PASSWORD not in repr(channel.settings)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"handle": None}, "key 'handle' is required"),
        ({"app_password": None}, "key 'app_password' is required"),
        ({"handle": "tin tuc"}, "must be a handle"),
        ({"password": "x"}, "key 'password' is not a known key"),
    ],
)
def test_config_rejected(keys, problem):
    entry = {"name": "b", "type": "bluesky", "handle": HANDLE, "app_password": PASSWORD, **keys}
    with pytest.raises(ConfigError) as caught:
        channel_from({k: v for k, v in entry.items() if v is not None})
    assert problem in str(caught.value) and PASSWORD not in str(caught.value)


# --- records -------------------------------------------------------------------------------------


def test_record_key_is_a_deterministic_tid():
    keys = [record_key(f"article-{i}:bsky") for i in range(200)]
    assert keys[0] == record_key("article-0:bsky")
    assert len(set(keys)) == 200
    assert all(TID.match(k) for k in keys)
    # The time part (53 bits above a 10-bit clock id) is never in the future.
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    for key in keys:
        value = 0
        for char in key:
            value = value * 32 + alphabet.index(char)
        assert (value >> 10) < time.time() * 1_000_000


def spans(text, found):
    data = text.encode("utf-8")
    return [data[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode() for f in found]


def test_facets_use_utf8_byte_offsets():
    text = "Đà Nẵng 🇻🇳 tin mới https://x.example/bài-viết?a=1, xem #TinTuc và #2021."
    posted, found = rich_text(text, short_links=False)
    assert posted == text
    assert spans(text, found) == ["https://x.example/bài-viết?a=1", "#TinTuc"]  # no comma, no #2021
    assert found[0]["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": "https://x.example/bài-viết?a=1"}]
    assert found[1]["features"] == [{"$type": "app.bsky.richtext.facet#tag", "tag": "TinTuc"}]
    assert found[0]["index"]["byteStart"] > len("Đà Nẵng 🇻🇳 tin mới ")  # bytes, not characters


def test_links_are_shown_short_but_point_at_the_full_url():
    url = "https://tinhuy.example.gov.vn/Tin-Tuc-Su-Kien/bai-viet.aspx?utm_source=bluesky"
    posted, found = rich_text(f"Tin mới: {url} #TinTuc")
    assert posted == "Tin mới: tinhuy.example.gov.vn/Tin-Tuc-Su-K... #TinTuc"
    assert spans(posted, found) == ["tinhuy.example.gov.vn/Tin-Tuc-Su-K...", "#TinTuc"]
    assert found[0]["features"][0]["uri"] == url
    assert display_url("https://a.example/") == "a.example"
    assert display_url("https://a.example/short?q=1") == "a.example/short?q=1"


def test_posts_text_facets_langs_and_link_card_with_thumbnail(fake, tmp_path):
    image, _ = serve_image(fake)
    channel = make(fake, tmp_path)
    post = channel.render(article(image=image))
    receipt = channel.send(post, "delivery-1")

    [body] = created(fake)
    record = body["record"]
    rkey = record_key("delivery-1")
    assert body["repo"] == fake.did and body["collection"] == "app.bsky.feed.post" and body["rkey"] == rkey
    assert record["text"] == post.text.replace(post.url, display_url(post.url))
    assert record["text"].startswith(SEED_TITLE) and "Chiều ngày 13/7/2021" in record["text"]
    assert record["langs"] == ["vi"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", record["createdAt"])
    data = record["text"].encode("utf-8")
    link = next(f for f in record["facets"] if f["features"][0]["$type"].endswith("#link"))
    shown = data[link["index"]["byteStart"] : link["index"]["byteEnd"]].decode("utf-8")
    assert shown == display_url(post.url) and link["features"][0]["uri"] == post.url
    tags = [f["features"][0]["tag"] for f in record["facets"] if f["features"][0]["$type"].endswith("#tag")]
    assert tags == ["TinTucSuKien", "DanVan"]

    external = record["embed"]["external"]
    assert record["embed"]["$type"] == "app.bsky.embed.external"
    assert (external["uri"], external["title"]) == (post.url, SEED_TITLE)
    assert external["description"].startswith("Chiều ngày 13/7/2021")
    [upload] = fake.calls("com.atproto.repo.uploadBlob")
    assert upload.header("Content-Type") == "image/png"
    assert external["thumb"]["ref"]["$link"] in fake.blobs

    assert receipt.post_id == f"at://{fake.did}/app.bsky.feed.post/{rkey}"
    assert receipt.url == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"


def test_full_links_put_the_url_bytes_under_the_facet(fake, tmp_path):
    channel = make(fake, tmp_path, link_display="full")
    post = channel.render(article())
    channel.send(post, "k-full")
    record = created(fake)[0]["record"]
    assert record["text"] == post.text
    data = record["text"].encode("utf-8")
    [link] = [f for f in record["facets"] if f["features"][0]["$type"].endswith("#link")]
    assert data[link["index"]["byteStart"] : link["index"]["byteEnd"]] == post.url.encode("utf-8")
    assert len(record["text"]) < len(post.url) + len(SEED_TITLE) + 40  # the long URL crowds out the summary


def test_large_image_is_shrunk_under_the_thumbnail_cap(fake, tmp_path):
    image, original = serve_image(fake, "/huge.png", size=(2200, 900), noise=True)
    assert original > 1_000_000
    channel = make(fake, tmp_path)
    channel.send(channel.render(article(image=image)), "k-big")
    [upload] = fake.calls("com.atproto.repo.uploadBlob")
    assert upload.header("Content-Type") == "image/jpeg" and len(upload.body) <= 1_000_000
    assert max(PILImage.open(io.BytesIO(upload.body)).size) <= 2000
    assert fake.records  # the fake checked the thumb blob against its caps


def test_failing_or_private_image_still_posts_a_card_without_thumbnail(fake, tmp_path, caplog):
    image, _ = serve_image(fake, "/private.png")
    channel = make(fake, tmp_path, allow_private_images=False)
    with caplog.at_level(logging.WARNING):
        channel.send(channel.render(article(image=image)), "k-private")
    assert fake.calls("com.atproto.repo.uploadBlob") == [] and "non-public address" in caplog.text
    assert "thumb" not in created(fake)[0]["record"]["embed"]["external"]

    fake.fail_next["com.atproto.repo.uploadBlob"] = [Reply(413, {"error": "BlobTooLarge", "message": "too big"})]
    make(fake, tmp_path).send(channel.render(article(image=image)), "k-upload-fails")
    assert "thumb" not in created(fake)[1]["record"]["embed"]["external"]
    assert "BlobTooLarge" in caplog.text


def test_card_can_be_turned_off(fake, tmp_path):
    channel = make(fake, tmp_path, card=False)
    channel.send(channel.render(article()), "k")
    assert "embed" not in created(fake)[0]["record"]


# --- idempotency and read-back -------------------------------------------------------------------


@pytest.mark.parametrize(
    "duplicate",
    [
        Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"}),
        Reply(400, {"error": "InvalidRequest", "message": "Record already exists"}),
    ],
)
def test_a_retried_create_finds_the_first_post_instead_of_posting_twice(fake, tmp_path, duplicate):
    fake.duplicate_reply = duplicate
    channel = make(fake, tmp_path)
    post = channel.render(article())
    first = channel.send(post, "same-key")
    second = channel.send(post, "same-key")
    assert first == second
    assert len(fake.records) == 1 and len(created(fake)) == 2


def test_find_existing_reads_the_record_by_its_key(fake, tmp_path):
    channel = make(fake, tmp_path)
    post = channel.render(article())
    assert channel.find_existing(post, "k-read") is None
    receipt = channel.send(post, "k-read")
    assert channel.find_existing(post, "k-read") == receipt
    assert channel.find_existing(post, "another-key") is None


def test_server_error_without_a_record_stays_transient(fake, tmp_path):
    fake.fail_next["com.atproto.repo.createRecord"] = [
        Reply(502, "<html>bad gateway</html>", {"Content-Type": "text/html", "Retry-After": "7"})
    ]
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k-502")
    assert not caught.value.permanent and caught.value.retry_after == 7
    assert len(fake.calls("com.atproto.repo.getRecord")) == 1  # it looked before giving up


# --- sessions ------------------------------------------------------------------------------------


def test_session_is_cached_between_posts(fake, tmp_path):
    channel = make(fake, tmp_path)
    channel.send(channel.render(article()), "k1")
    channel.send(channel.render(article()), "k2")
    assert fake.logins == 1 and len(fake.records) == 2
    assert channel.state.get("did") == fake.did


def test_a_session_never_shows_its_tokens(fake, tmp_path):
    channel = make(fake, tmp_path)
    session = channel._session()
    assert session.access.startswith("eyJ") and session.did == fake.did
    assert "eyJ" not in repr(session) and "eyJ" not in str(session)


def test_expired_access_token_is_refreshed_not_relogged(fake, tmp_path):
    channel = make(fake, tmp_path)
    channel.send(channel.render(article()), "k1")
    fake.expire_access()
    channel.send(channel.render(article()), "k2")
    assert fake.logins == 1 and len(fake.calls("com.atproto.server.refreshSession")) == 1
    assert len(fake.records) == 2


def test_expired_refresh_token_falls_back_to_login(fake, tmp_path):
    channel = make(fake, tmp_path)
    channel.send(channel.render(article()), "k1")
    fake.expire_access()
    fake.refresh.clear()
    channel.send(channel.render(article()), "k2")
    assert fake.logins == 2 and len(fake.records) == 2


def test_revoked_tokens_lead_to_one_new_login(fake, tmp_path):
    channel = make(fake, tmp_path)
    channel.send(channel.render(article()), "k1")
    fake.revoke_all()
    channel.send(channel.render(article()), "k2")
    assert fake.logins == 2 and len(fake.records) == 2


def test_still_rejected_after_one_new_login_is_permanent(fake, tmp_path):
    rejected = Reply(401, {"error": "AuthenticationRequired", "message": "Authentication Required"})
    fake.fail_next["com.atproto.repo.createRecord"] = [rejected, rejected]
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    assert caught.value.permanent and caught.value.code == "AuthenticationRequired"
    assert fake.logins == 2


def test_wrong_app_password_is_permanent_and_not_leaked(fake, tmp_path):
    wrong = "zzzz-yyyy-xxxx-wwww"
    channel = make(fake, tmp_path, app_password=wrong)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k")
    error = caught.value
    assert error.permanent and "Invalid identifier or password" in error.message
    assert wrong not in str(error) and wrong not in repr(error)
    assert PASSWORD not in str(error)
    with pytest.raises(ChannelError):
        channel.check()


def test_check_logs_in_and_posts_nothing(fake, tmp_path):
    assert f"@{HANDLE}" in make(fake, tmp_path).check()
    assert fake.logins == 1 and len(fake.calls("com.atproto.server.getSession")) == 1
    assert fake.records == {}


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "permanent", "retry_after", "code"),
    [
        (
            Reply(400, {"error": "InvalidRequest", "message": "Invalid app.bsky.feed.post record"}),
            True,
            None,
            "InvalidRequest",
        ),
        (
            Reply(400, {"error": "InvalidRecord", "message": "bad record"}),
            True,
            None,
            "InvalidRecord",
        ),
        (
            Reply(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {"RateLimit-Reset": "{reset}"},
            ),
            False,
            90,
            "RateLimitExceeded",
        ),
        (
            Reply(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                {"Retry-After": "30"},
            ),
            False,
            30,
            "RateLimitExceeded",
        ),
    ],
)
def test_error_classes(fake, tmp_path, reply, permanent, retry_after, code):
    reply.headers = {k: v.format(reset=int(time.time()) + 90) for k, v in reply.headers.items()}
    fake.fail_next["com.atproto.repo.createRecord"] = [reply]
    channel = make(fake, tmp_path)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "k-error")
    error = caught.value
    assert (error.permanent, error.code, error.status) == (permanent, code, reply.status)
    if retry_after is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(retry_after, abs=2)
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)


def test_login_rate_limit_is_transient(fake, tmp_path):
    fake.login_limit = 0
    with pytest.raises(ChannelError) as caught:
        make(fake, tmp_path).send(make(fake, tmp_path).render(article()), "k")
    assert not caught.value.permanent and caught.value.retry_after == pytest.approx(300, abs=5)


# --- fitting -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(hard_articles()))
@pytest.mark.parametrize("links", ["short", "full"])
def test_every_hard_article_fits_both_limits_and_is_accepted(fake, tmp_path, name, links):
    channel = make(fake, tmp_path, link_display=links)
    post = channel.render(hard_articles()[name])
    posted, _ = rich_text(post.text, links == "short")
    assert textlib.grapheme_length(posted) <= 300
    assert textlib.utf8_length(posted) <= 3000
    assert post.url in post.text
    channel.send(post, f"k-{name}")
    assert [r["value"]["text"] for r in fake.records.values()] == [posted]


def test_byte_limit_binds_before_the_grapheme_limit():
    channel = channel_from({"name": "b", "type": "bluesky", "handle": HANDLE, "app_password": PASSWORD})
    family = "👨‍👩‍👧‍👦"  # one grapheme, 25 bytes
    assert channel.length(family * 100) == 250  # 100 graphemes but 2,500 bytes
    assert channel.length(family * 121) > 300
    assert channel.length("a" * 300) == 300


# --- editing and deleting ------------------------------------------------------------------------


def test_delete_removes_the_record_named_by_the_receipt_and_a_second_delete_succeeds(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k-del")
    assert list(fake.records) == [record_key("k-del")]

    channel.delete(receipt, "k-del")
    assert fake.records == {}
    channel.delete(receipt, "k-del")  # the PDS answers {} for a record already gone

    [first, _] = [r.json() for r in fake.calls("com.atproto.repo.deleteRecord")]
    assert first == {"repo": fake.did, "collection": "app.bsky.feed.post", "rkey": record_key("k-del")}


def test_a_receipt_without_uri_is_deleted_by_the_record_key_of_the_delivery(fake, tmp_path):
    channel = make(fake, tmp_path)
    channel.send(channel.render(article()), "k-del")
    channel.delete(Receipt(), "k-del")
    assert fake.records == {}


def test_deleting_another_accounts_post_is_refused_with_the_pds_message(fake, tmp_path):
    channel = make(fake, tmp_path)
    other = Receipt(post_id="at://did:plc:someoneelse000000000000/app.bsky.feed.post/3k4duaz5vfs2b")
    with pytest.raises(ChannelError) as caught:
        channel.delete(other, "k-del")
    error = caught.value
    assert error.permanent and error.code == "AuthenticationRequired"
    assert error.message == "bluesky: delete: AuthenticationRequired: Authentication Required"
    assert PASSWORD not in repr(error)


@pytest.mark.parametrize(
    ("reply", "retry_after"),
    [
        (Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, {"Retry-After": "30"}), 30),
        (Reply(502, {"error": "UpstreamFailure", "message": "Upstream Failure"}), None),
    ],
    ids=["429", "502"],
)
def test_a_rate_limited_or_failing_delete_is_retried(fake, tmp_path, reply, retry_after):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k-del")
    fake.fail_next["com.atproto.repo.deleteRecord"] = [reply]
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "k-del")
    assert not caught.value.permanent and caught.value.retry_after == retry_after
    assert fake.records  # still there...
    channel.delete(receipt, "k-del")
    assert fake.records == {}  # ...until the retry


def test_edit_is_refused_with_the_reason_and_nothing_is_sent(fake, tmp_path):
    channel = make(fake, tmp_path)
    receipt = channel.send(channel.render(article()), "k-edit")
    calls = len(fake.requests)
    assert not channel.can_edit and channel.can_delete
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(article(title="Đính chính")), receipt, "k-edit")
    assert caught.value.permanent and caught.value.message.startswith("Bluesky posts cannot be edited")
    assert len(fake.requests) == calls
