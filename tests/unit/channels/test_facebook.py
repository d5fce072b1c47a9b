"""Facebook Page channel against the loopback Graph API fake."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from distributor.channels.facebook import Facebook
from distributor.errors import ChannelError, ConfigError
from distributor.models import Article
from tests.fakes.facebook import PAGE_ID, PAGE_NAME, PAGE_TOKEN, FakeFacebook, usage_headers
from tests.fakes.server import Reply
from tests.unit.channels.secret_url_cases import assert_hidden, build, closed_port_url, fake_fixtures
from tests.unit.channels.vi_articles import article, hard_articles

APP_SECRET = "fbappsecret-0123456789"


IMAGE = "https://tinhuy.example.gov.vn/PublishingImages/2021/07/hoi-nghi-dan-van.jpg"
HARD = hard_articles()


server, fake = fake_fixtures(FakeFacebook)


def facebook(fake: FakeFacebook, **keys: object) -> Facebook:
    channel = build("facebook", page_id=PAGE_ID, access_token=PAGE_TOKEN, api_base=fake.url, **keys)
    assert isinstance(channel, Facebook)
    return channel


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["page_id", "access_token"])
def test_config_names_the_missing_key(missing: str) -> None:
    keys = {"page_id": PAGE_ID, "access_token": PAGE_TOKEN}
    del keys[missing]
    with pytest.raises(ConfigError, match=f"key '{missing}' is required"):
        build("facebook", **keys)


def test_config_rejects_a_malformed_graph_version() -> None:
    with pytest.raises(ConfigError, match="key 'graph_version'"):
        build("facebook", page_id=PAGE_ID, access_token=PAGE_TOKEN, graph_version="21")


def test_config_reads_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FB_PAGE_TOKEN", PAGE_TOKEN)
    channel = build("facebook", page_id=PAGE_ID, access_token="${FB_PAGE_TOKEN}")
    assert isinstance(channel, Facebook)
    assert channel.config.access_token.get_secret_value() == PAGE_TOKEN
    assert PAGE_TOKEN not in repr(channel.settings)
    assert channel.config.graph_version == "v21.0"
    assert channel.api_base == "https://graph.facebook.com"


# --- publishing -----------------------------------------------------------------------------------


def test_link_post_sends_message_and_link_with_the_token_in_the_body(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    post = channel.render(article())
    receipt = channel.send(post, "key-1")

    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", f"/v21.0/{PAGE_ID}/feed")
    assert request.query == {}  # the token never travels in the URL
    sent = request.form()
    assert sent["message"] == post.text
    assert sent["link"] == post.url and "utm_source=facebook" in post.url
    assert sent["access_token"] == PAGE_TOKEN
    assert "appsecret_proof" not in sent
    assert post.text.startswith("Ban Dân vận Trung ương") and "#TinTucSuKien" in post.text
    assert post.url not in post.text  # a link post shows the link as a card, not in the text
    assert receipt.post_id == fake.posts[-1]["post_id"]
    assert str(receipt.post_id).startswith(f"{PAGE_ID}_")
    assert receipt.url == f"https://www.facebook.com/{receipt.post_id}"


def test_photo_post_puts_the_link_in_the_caption(fake: FakeFacebook) -> None:
    channel = facebook(fake, photo=True)
    post = channel.render(article(image=IMAGE))
    receipt = channel.send(post, "key-1")

    request = fake.requests[-1]
    assert request.path == f"/v21.0/{PAGE_ID}/photos"
    sent = request.form()
    assert sent["url"] == IMAGE
    assert sent["caption"] == post.text and post.url in post.text
    assert receipt.post_id == fake.posts[-1]["post_id"]  # the post id, not the photo id


def test_photo_mode_falls_back_to_a_link_post_without_an_image(fake: FakeFacebook) -> None:
    channel = facebook(fake, photo=True)
    channel.send(channel.render(article()), "key-1")
    assert fake.requests[-1].path == f"/v21.0/{PAGE_ID}/feed"


def test_app_secret_adds_a_valid_appsecret_proof(fake: FakeFacebook) -> None:
    fake.app_secret = APP_SECRET
    facebook(fake, app_secret=APP_SECRET).send(facebook(fake).render(article()), "key-1")
    assert len(fake.posts) == 1

    with pytest.raises(ChannelError) as caught:
        facebook(fake, app_secret="not-the-app-secret").send(facebook(fake).render(article(title="Khác")), "k")
    assert caught.value.permanent and caught.value.code == "100"
    assert "appsecret_proof" in caught.value.message


def test_check_reads_the_page_and_the_tokens_expiry_and_posts_nothing(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    assert channel.check() == f"Facebook Page {PAGE_NAME!r} (id {PAGE_ID}); the token does not expire"
    assert [r.method for r in fake.requests] == ["GET", "GET"]
    assert fake.requests[0].query["fields"] == ["id,name"]
    assert fake.requests[1].path.endswith("/debug_token") and fake.requests[1].query["input_token"] == [PAGE_TOKEN]
    assert channel.state.get("expires_at") == "never"  # the console shows "does not expire"

    fake.token_expires_at = 1_798_761_600  # a token made from a short-lived user token
    assert channel.check().endswith("; the token expires 2027-01-01 00:00 UTC")
    assert channel.state.get("expires_at") == "1798761600.0"
    assert fake.posts == []


def test_an_invalid_token_in_debug_token_is_an_authentication_error(fake: FakeFacebook) -> None:
    """Graph answers 200 with `is_valid: false` when the inspected token is not usable."""
    expired = {"is_valid": False, "scopes": [], "error": {"code": 190, "message": "Session has expired"}}
    fake.then(Reply(200, {"data": expired}))
    with pytest.raises(ChannelError) as caught:
        facebook(fake).token_expiry()
    assert caught.value.permanent and caught.value.code == "190" and "Session has expired" in caught.value.message


@pytest.mark.parametrize("case", sorted(HARD))
@pytest.mark.parametrize("photo", [False, True])
def test_hard_articles_fit_and_keep_their_link(fake: FakeFacebook, case: str, photo: bool) -> None:
    channel = facebook(fake, photo=photo)
    post = channel.render(HARD[case].model_copy(update={"image": IMAGE}))
    assert 0 < post.length <= post.limit == 63_206
    channel.send(post, case)
    sent = fake.posts[-1]
    assert sent["caption" if photo else "link"].count(post.url) == 1


# --- errors ---------------------------------------------------------------------------------------

PERMANENT = [
    (
        190,
        460,
        "Error validating access token: The session has been invalidated",
        "Page access token",
    ),
    (10, None, "(#10) Application does not have permission for this action", "permission"),
    (200, None, "(#200) Requires pages_manage_posts permission", "permission"),
    (100, None, "(#100) Invalid parameter", "invalid parameter"),
    (368, 1390008, "You can't use this feature at the moment", "blocked"),
    (1609005, None, "Error posting link", "Error posting link"),
]


@pytest.mark.parametrize(("code", "subcode", "message", "hint"), PERMANENT)
def test_permanent_errors_carry_the_platform_message(
    fake: FakeFacebook, code: int, subcode: int | None, message: str, hint: str
) -> None:
    fake.fail_next(code, message, subcode=subcode)
    channel = facebook(fake)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "key-1")
    error = caught.value
    assert error.permanent and not error.duplicate
    assert error.code == str(code) and error.status == 400
    assert message in error.message and hint in error.message and "AbCdEf123" in error.message
    if subcode:
        assert f"{code}/{subcode}" in error.message


@pytest.mark.parametrize(
    ("code", "status", "headers", "wait"),
    [
        (4, 400, {}, 300.0),
        (17, 400, {}, 300.0),
        (32, 400, {}, 300.0),
        (613, 400, {}, 300.0),
        (341, 400, {}, 300.0),
        (80001, 400, usage_headers(regain_minutes=7, call_count=100), 420.0),
        (1, 500, {}, None),
        (2, 500, {}, None),
    ],
)
def test_rate_limits_and_transient_codes_are_retried(
    fake: FakeFacebook, code: int, status: int, headers: dict[str, str], wait: float | None
) -> None:
    fake.fail_next(code, "Please retry your request later.", status=status, headers=headers)
    channel = facebook(fake)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "key-1")
    assert not caught.value.permanent
    assert caught.value.retry_after == wait
    assert caught.value.code == str(code)


def test_a_repeated_post_is_reported_as_duplicate(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    post = channel.render(article())
    channel.send(post, "key-1")
    with pytest.raises(ChannelError) as caught:
        channel.send(post, "key-1")
    assert caught.value.duplicate and caught.value.code == "506"


def test_a_bodyless_server_error_is_transient(fake: FakeFacebook) -> None:
    fake.then(Reply(502, "<html>Bad Gateway</html>"))
    channel = facebook(fake)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "key-1")
    assert not caught.value.permanent and caught.value.status == 502


def test_secrets_never_reach_the_error(fake: FakeFacebook) -> None:
    fake.app_secret = APP_SECRET
    fake.fail_next(190, f"Invalid OAuth access token {PAGE_TOKEN} (proof for {APP_SECRET})")
    channel = facebook(fake, app_secret=APP_SECRET)
    with pytest.raises(ChannelError) as caught:
        channel.send(channel.render(article()), "key-1")
    for secret in (PAGE_TOKEN, APP_SECRET):
        assert_hidden(caught.value, secret)
    assert "Invalid OAuth access token ***" in caught.value.message


def test_check_keeps_the_token_out_of_errors_and_logs(fake: FakeFacebook, caplog: pytest.LogCaptureFixture) -> None:
    # The read-only check is a GET, so the token travels in the query string: requests' error text
    # and urllib3's DEBUG request line both quote that URL.
    with caplog.at_level(logging.DEBUG):
        facebook(fake).check()
    assert "GET /v21.0/" in caplog.text
    assert PAGE_TOKEN not in caplog.text

    channel = build("facebook", page_id=PAGE_ID, access_token=PAGE_TOKEN, api_base=closed_port_url())
    with pytest.raises(ChannelError) as caught:
        channel.check()
    assert not caught.value.permanent
    assert_hidden(caught.value, PAGE_TOKEN)


# --- corrections and retractions ------------------------------------------------------------------


def corrected(**changes: object) -> Article:
    return article(**{"title": "Hội nghị (đã đính chính)", **changes})


def test_edit_replaces_the_message_of_a_link_post(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    assert receipt.data["kind"] == "feed"
    post = channel.render(corrected())

    assert channel.edit(post, receipt, "key-1") == receipt

    request = fake.requests[-1]
    assert (request.method, request.path) == ("POST", f"/v21.0/{receipt.post_id}")
    assert request.query == {}  # the token travels in the body
    [stored] = fake.posts
    assert stored["text"] == post.text and len(stored["edits"]) == 1


def test_edit_of_a_photo_post_keeps_the_link_in_its_caption(
    fake: FakeFacebook, caplog: pytest.LogCaptureFixture
) -> None:
    channel = facebook(fake, photo=True)
    receipt = channel.send(channel.render(article(image=IMAGE)), "key-1")
    assert receipt.data["kind"] == "photo" and receipt.data["image"] == IMAGE

    with caplog.at_level(logging.WARNING):
        channel.edit(channel.render(corrected(image=None)), receipt, "key-1")  # the image was removed

    [stored] = fake.posts
    assert stored["text"].startswith("Hội nghị (đã đính chính)") and len(stored["edits"]) == 1
    assert channel.link(article()) in stored["text"]
    assert "keeps its photo" in caplog.text


def test_edit_with_a_changed_link_warns_that_the_card_stays(
    fake: FakeFacebook, caplog: pytest.LogCaptureFixture
) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    with caplog.at_level(logging.WARNING):
        channel.edit(channel.render(corrected(url="https://tinhuy.example.gov.vn/bai-moi.html")), receipt, "key-1")
    assert "keeps its link card" in caplog.text
    assert len(fake.posts[0]["edits"]) == 1


def test_edit_that_changes_nothing_is_a_success_without_a_version(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    post = channel.render(article())
    receipt = channel.send(post, "key-1")
    assert channel.edit(post, receipt, "key-1") == receipt
    assert "edits" not in fake.posts[0]


def test_edit_of_a_deleted_post_is_permanent_with_graphs_message(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    fake.post(receipt.post_id)["deleted"] = True
    with pytest.raises(ChannelError) as caught:
        channel.edit(channel.render(corrected()), receipt, "key-1")
    assert caught.value.permanent and caught.value.code == "100"
    assert "Unsupported post request" in caught.value.message and "does not exist" in caught.value.message


def test_delete_removes_the_post_with_the_token_masked(fake: FakeFacebook, caplog: pytest.LogCaptureFixture) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    with caplog.at_level(logging.DEBUG):
        channel.delete(receipt, "key-1")
    assert fake.posts[0]["deleted"] is True
    request = fake.requests[-1]
    assert (request.method, request.path) == ("DELETE", f"/v21.0/{receipt.post_id}")
    assert f"DELETE /v21.0/{receipt.post_id}" in caplog.text and PAGE_TOKEN not in caplog.text


def test_delete_of_a_post_already_gone_is_a_success(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    channel.delete(receipt, "key-1")
    channel.delete(receipt, "key-1")  # code 100 "does not exist", confirmed by a read
    assert [r.method for r in fake.requests][-2:] == ["DELETE", "GET"]


def test_delete_answered_does_not_exist_for_a_post_still_online_is_reported(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    fake.fail_next(100, "Unsupported delete request. Object with ID 'x' does not exist", subcode=33)
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "key-1")
    assert caught.value.permanent and "still online" in caught.value.message
    assert fake.posts[0].get("deleted") is not True


def test_delete_refused_is_permanent_with_graphs_message(fake: FakeFacebook) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    fake.protected.add(str(receipt.post_id))
    with pytest.raises(ChannelError) as caught:
        channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.code == "200"
    assert "(#200) Permissions error" in caught.value.message
    assert not fake.posts[0].get("deleted")


@pytest.mark.parametrize("action", ["edit", "delete"])
def test_an_expired_token_is_permanent_and_hidden(fake: FakeFacebook, action: str) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    fake.fail_next(190, f"Error validating access token {PAGE_TOKEN}: Session has expired", subcode=463)
    with pytest.raises(ChannelError) as caught:
        if action == "edit":
            channel.edit(channel.render(corrected()), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.code == "190"
    assert "generate a new long-lived Page token" in caught.value.message
    assert_hidden(caught.value, PAGE_TOKEN)


@pytest.mark.parametrize("action", ["edit", "delete"])
@pytest.mark.parametrize(
    ("arrange", "wait"),
    [
        (lambda f: f.fail_next(32, "Page request limit reached"), 300.0),
        (lambda f: f.fail_next(80001, "Too many calls", headers=usage_headers(regain_minutes=7)), 420.0),
        (lambda f: f.fail_next(2, "Service temporarily unavailable", status=500), None),
        (lambda f: f.then(Reply(503, "<html>Service Unavailable</html>", {"Retry-After": "12"})), 12.0),
    ],
    ids=["32", "80001", "2", "503"],
)
def test_edit_and_delete_failures_are_transient(
    fake: FakeFacebook, action: str, arrange: Callable[[FakeFacebook], None], wait: float | None
) -> None:
    channel = facebook(fake)
    receipt = channel.send(channel.render(article()), "key-1")
    arrange(fake)
    with pytest.raises(ChannelError) as caught:
        if action == "edit":
            channel.edit(channel.render(corrected()), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert not caught.value.permanent and caught.value.retry_after == wait
    assert "edits" not in fake.posts[0] and not fake.posts[0].get("deleted")
