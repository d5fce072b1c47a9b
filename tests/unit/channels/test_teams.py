from __future__ import annotations

import json

import pytest

from distributor.channels.teams import Teams, detect_flavour, teams_length
from distributor.errors import ChannelError
from distributor.models import Post
from tests.fakes.server import Reply
from tests.fakes.teams import CONNECTOR_ID, SIG, WORKFLOW_ID, TeamsFake, rate_limited
from tests.unit.channels.secret_url_cases import (
    HARD,
    SEED,
    ErrorCase,
    assert_classified,
    assert_logs_hide,
    assert_rejected,
    assert_unreachable_hides,
    build,
    closed_port_url,
    fake_fixtures,
    text_post,
)
from tests.unit.channels.vi_articles import article

server, fake = fake_fixtures(TeamsFake)
WORKFLOWS_URL = (
    "https://prod-27.southeastasia.logic.azure.com:443/workflows/4f1d/triggers/manual/paths/invoke"
    f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
)
CONNECTOR_URL = f"https://tinhuy.webhook.office.com/webhookb2/a@b/IncomingWebhook/{CONNECTOR_ID}/c"


def teams(fake: TeamsFake, endpoint: str = "workflows", **keys: object) -> Teams:
    path = fake.workflow_path if endpoint == "workflows" else fake.connector_path
    channel = build("teams", **{"url": fake.url + path, **keys})
    assert isinstance(channel, Teams)
    return channel


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "flavour"),
    [
        (WORKFLOWS_URL, "workflows"),
        ("https://default1234.56.environment.api.powerplatform.com/powerautomate/automations/direct/x", "workflows"),
        (CONNECTOR_URL, "connector"),
        ("https://outlook.office.com/webhook/a@b/IncomingWebhook/c/d", "connector"),
        ("http://127.0.0.1:8080/hook", None),
    ],
    ids=["logic-apps", "power-platform", "connector", "old-connector", "unknown"],
)
def test_flavour_is_read_from_the_url(url: str, flavour: str | None) -> None:
    assert detect_flavour(url) == flavour


def test_config_is_built_with_a_forced_flavour() -> None:
    channel = build("teams", url="http://127.0.0.1:8080/hook", flavour="connector", button="Đọc bài")
    assert isinstance(channel, Teams)
    assert channel.flavour == "connector"
    assert channel.config.button == "Đọc bài"
    assert SIG not in repr(build("teams", url=WORKFLOWS_URL).settings)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, "key 'url' is required but missing"),
        ({"url": "http://127.0.0.1:8080/hook"}, 'set flavour = "workflows" or "connector"'),
        ({"url": WORKFLOWS_URL, "flavour": "legacy"}, "key 'flavour'"),
        ({"url": "${TEAMS_WEBHOOK_UNSET}"}, "environment variable TEAMS_WEBHOOK_UNSET"),
    ],
    ids=["no-url", "unknown-kind", "bad-flavour", "env-unset"],
)
def test_config_is_rejected_naming_the_key(keys: dict[str, object], expected: str) -> None:
    assert_rejected("teams", keys, expected, SIG)


# --- rendering and sending -----------------------------------------------------------------------


def test_workflows_get_an_adaptive_card(fake: TeamsFake) -> None:
    channel = teams(fake)
    post = channel.render(article(title="Giá *vàng* [mới]", image=SEED.image))

    channel.send(post, "key-1")

    [sent] = fake.posts
    assert sent["flavour"] == "workflows"
    [attachment] = sent["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    image, text, site = card["body"]
    assert image == {"type": "Image", "url": SEED.image, "size": "Stretch", "altText": "Giá *vàng* [mới]"}
    assert text["text"] == post.text
    assert post.text.startswith(rf"**[Giá \*vàng\* \[mới\]]({post.url})**")
    assert "#TinTucSuKien" in post.text
    assert site["text"] == "Cổng thông tin điện tử tỉnh"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Xem chi tiết", "url": post.url}]
    assert "utm_source=teams" in post.url


def test_connector_gets_a_message_card_and_needs_the_body_1(fake: TeamsFake) -> None:
    channel = teams(fake, "connector", button="Đọc bài")
    post = channel.render(SEED)

    assert channel.send(post, "key-1").post_id is None  # Teams returns no message id

    [sent] = fake.posts
    assert sent["flavour"] == "connector"
    assert sent["@type"] == "MessageCard"
    assert sent["summary"] == SEED.title
    assert sent["text"] == post.text
    assert sent["sections"][0]["images"] == [{"image": SEED.image, "title": SEED.title}]
    assert sent["potentialAction"][0]["name"] == "Đọc bài"
    assert sent["potentialAction"][0]["targets"] == [{"os": "default", "uri": post.url}]


def test_api_base_sends_a_real_connector_url_elsewhere(fake: TeamsFake) -> None:
    channel = build("teams", url="https://tinhuy.webhook.office.com" + fake.connector_path, api_base=fake.url)
    channel.send(channel.render(SEED), "key-1")
    assert fake.posts[0]["flavour"] == "connector"  # detected from the real host


def test_a_forced_flavour_beats_what_the_url_suggests(fake: TeamsFake) -> None:
    channel = teams(fake, "workflows", flavour="connector")
    with pytest.raises(ChannelError, match="TriggerInputSchemaMismatch"):
        channel.send(channel.render(SEED), "key-1")
    assert fake.requests[0].json()["@type"] == "MessageCard"


def test_a_url_in_parentheses_cannot_end_the_link(fake: TeamsFake) -> None:
    post = teams(fake).render(article(url="https://example.gov.vn/tin(1).aspx"))
    assert "](https://example.gov.vn/tin%281%29.aspx?utm_source=teams" in post.text


@pytest.mark.parametrize("name", [*HARD, "30 KB summary"])
def test_hard_articles_fit_the_28_kb_card(fake: TeamsFake, name: str) -> None:
    item = HARD.get(name) or article(summary="Nghị quyết " * 3000, image=SEED.image)
    for flavour in ("workflows", "connector"):
        channel = teams(fake, flavour)
        post = channel.render(item)
        assert post.length == teams_length(post.text) <= post.limit
        assert f"]({post.url})**" in post.text
        assert len(json.dumps(channel.payload(post), ensure_ascii=False).encode()) <= 28_000
        channel.send(post, "key-1")  # the fake refuses more than 28 KB
    assert len(fake.posts) == 2


def test_an_oversized_card_is_refused_before_sending(fake: TeamsFake) -> None:
    channel = teams(fake)
    with pytest.raises(ChannelError, match="over the 28 KB limit") as caught:
        channel.send(text_post("teams", "x" * 29_000), "key-1")
    assert caught.value.permanent
    assert fake.requests == []


# --- errors --------------------------------------------------------------------------------------


def _post(text: str = "x") -> Post:
    return text_post("teams", text)


WORKFLOW_ERRORS = [
    ErrorCase(
        "rate-limit",
        lambda f: f.then(rate_limited(9)),
        _post(),
        False,
        9.0,
        "Rate limit is exceeded",
        "TooManyRequests",
    ),
    ErrorCase(
        "server-error", lambda f: f.then(Reply(502, "Bad Gateway")), _post(), False, None, "Teams: Bad Gateway", "502"
    ),
    ErrorCase(
        "bad-signature",
        lambda f: f.workflows.update({WORKFLOW_ID: "other"}),
        _post(),
        True,
        None,
        "The provided signature is not valid. (DirectApiInvalidAuthorizationSignature)",
    ),
    ErrorCase(
        "workflow-deleted", lambda f: f.workflows.clear(), _post(), True, None, "the webhook or workflow was removed"
    ),
    ErrorCase(
        "schema-mismatch",
        lambda f: f.then(Reply(400, {"error": {"code": "TriggerInputSchemaMismatch", "message": "did not match"}})),
        _post(),
        True,
        None,
        "did not match (TriggerInputSchemaMismatch)",
        "TriggerInputSchemaMismatch",
    ),
    ErrorCase(
        "too-large", lambda f: f.then(Reply(413, "too large")), _post(), True, None, "over Teams' 28 KB limit", "413"
    ),
]
CONNECTOR_ERRORS = [
    ErrorCase(
        "rate-limit", lambda f: f.then(Reply(429, "", {"Retry-After": "5"})), _post(), False, 5.0, "Teams", "429"
    ),
    ErrorCase(
        "200-with-429-text",
        lambda f: f.then(Reply(200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0")),
        _post(),
        False,
        None,
        "HTTP error 429",
    ),
    ErrorCase(
        "200-not-1",
        lambda f: f.then(Reply(200, "Webhook message delivery failed with error: Forbidden")),
        _post(),
        True,
        None,
        "the connector answered 'Webhook message delivery failed with error: Forbidden' instead of '1'",
    ),
    ErrorCase(
        "gone", lambda f: f.connectors.clear(), _post(), True, None, "Webhook not found: the webhook or workflow"
    ),
]


@pytest.mark.parametrize("case", [case.param() for case in WORKFLOW_ERRORS])
def test_workflow_errors_are_classified(fake: TeamsFake, case: ErrorCase) -> None:
    assert_classified(teams(fake), fake, case, SIG)


@pytest.mark.parametrize("case", [case.param() for case in CONNECTOR_ERRORS])
def test_connector_errors_are_classified(fake: TeamsFake, case: ErrorCase) -> None:
    assert_classified(teams(fake, "connector"), fake, case, CONNECTOR_ID)


# --- secrets -------------------------------------------------------------------------------------


def test_url_is_hidden_when_the_connection_fails() -> None:
    url = closed_port_url() + WORKFLOWS_URL.split(":443", 1)[1]
    assert_unreachable_hides(build("teams", url=url), SIG)


def test_url_is_hidden_in_debug_logs(fake: TeamsFake, caplog: pytest.LogCaptureFixture) -> None:
    assert_logs_hide(teams(fake), caplog, SIG)


def test_check_posts_nothing_and_says_so(fake: TeamsFake) -> None:
    found = teams(fake, "connector").check()
    assert found == "connector webhook at http://127.0.0.1/*** (Teams offers no read-only check: nothing was sent)"
    assert fake.requests == []


# --- corrections and retractions -----------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["workflows", "connector"])
@pytest.mark.parametrize(
    ("operation", "reason"),
    [
        ("edit", "a Teams webhook cannot change a card once posted (it returns no message id)"),
        ("delete", "a Teams webhook cannot delete a card once posted (it returns no message id)"),
    ],
)
def test_a_posted_card_cannot_be_edited_or_deleted_and_nothing_is_sent(
    fake: TeamsFake, endpoint: str, operation: str, reason: str
) -> None:
    channel = teams(fake, endpoint)
    receipt = channel.send(channel.render(SEED), "key-1")
    assert not channel.can_edit and not channel.can_delete
    with pytest.raises(ChannelError) as caught:
        if operation == "edit":
            channel.edit(channel.render(SEED), receipt, "key-1")
        else:
            channel.delete(receipt, "key-1")
    assert caught.value.permanent and caught.value.message == reason
    assert len(fake.requests) == 1
