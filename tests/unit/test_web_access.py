"""Who may call each route (issue 9): every route declares an access level, documented in
docs/operations.md; operator data needs a token (or a local client when none is configured);
state-changing requests refuse what a browser could send on another site's behalf; errors quote
user input briefly."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from distributor.context import Context
from distributor.web.access import Access, GuardedRoute, require_access
from distributor.web.app import create_app
from distributor.web.errors import quoted
from tests.unit.test_web import ARTICLE, JSON, LOCAL, OPERATOR, REMOTE, TOKEN, add

OPERATIONS = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
SAFE = {"GET", "HEAD", "OPTIONS"}
NEEDS_OPERATOR = {Access.OPERATOR, Access.OPERATOR_PAGE, Access.METRICS}
# A sample value for every path parameter of every route; a new parameter needs one here.
SAMPLES = {"filename": "all.rss", "network": "facebook", "channel": "backup", "source": "portal"}
CONSOLE_LEVELS = {Access.CONSOLE, Access.CONSOLE_ACTION, Access.SIGN_IN}  # tested in their own tests below
FAILURE = "Forbidden: bot was blocked by the user (chat 4242)"


def make_client(ctx: Context, client: tuple[str, int] = REMOTE, base_url: str = "http://testserver") -> TestClient:
    app = create_app(ctx, enqueue=lambda task, args: None)
    return TestClient(app, follow_redirects=False, client=client, base_url=base_url)


def settings_with(make_settings, **server: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        sources=[],
        server=server,
        channels=[
            {"name": "outbox", "type": "outbox"},
            {"name": "backup", "type": "outbox", "path": "backup.jsonl", "enabled": False},
        ],
    )


@pytest.fixture
def tokened(make_settings) -> Iterator[tuple[Context, TestClient, str]]:  # type: ignore[no-untyped-def]
    ctx = Context.create(settings_with(make_settings, api_tokens=[TOKEN]))
    with make_client(ctx) as client:
        yield ctx, client, failed_article(ctx)


@pytest.fixture
def tokenless(make_settings) -> Iterator[tuple[Context, str]]:  # type: ignore[no-untyped-def]
    ctx = Context.create(settings_with(make_settings))
    yield ctx, failed_article(ctx)


def failed_article(ctx: Context) -> str:
    """An article whose delivery to `backup` failed with the platform's message."""
    article_id = add(ctx)
    ctx.ledger.create(article_id, "backup")
    assert ctx.ledger.claim(article_id, "backup", lease=60) == "go"
    ctx.ledger.failed(article_id, "backup", FAILURE, "403")
    return article_id


def calls(client: TestClient, article_id: str) -> Iterator[tuple[GuardedRoute, str, str]]:
    """Every (route, method, concrete path) of the app."""
    for route in client.app.routes:  # type: ignore[attr-defined]
        assert isinstance(route, GuardedRoute), f"{route!r} declares no access level"
        path = route.path
        for name in route.param_convertors:
            value = {"article_id": article_id, **SAMPLES}.get(name)
            assert value is not None, f"add a sample value for {{{name}}} (route {route.path})"
            path = path.replace("{" + name + "}", value)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield route, method, path


def call(client: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    if method in SAFE:
        return client.request(method, path, headers=headers or {})
    return client.request(method, path, content=json.dumps(ARTICLE).encode(), headers={**JSON, **(headers or {})})


def message(response: Any) -> str:
    return str(response.json()["error"]["message"])


# --- the declaration: every route, one level, the documented one ---


def documented_levels() -> set[tuple[str, str, str]]:
    section = OPERATIONS.split("## Who can see what")[1].split("\n## ")[0]
    rows = re.findall(r"^\| `([A-Z]+) (/\S*)` \| ([a-z ]+?) \|", section, flags=re.MULTILINE)
    return {(method, path, level) for method, path, level in rows}


def test_every_route_declares_the_access_level_documented_in_operations(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    declared = {(method, route.path, route.access.value) for route, method, _ in calls(client, article_id)}
    assert declared == documented_levels()
    assert {level for _, _, level in declared} <= {a.value for a in Access}


def test_a_route_without_a_level_or_a_state_changing_public_route_is_refused() -> None:
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse("x")

    with pytest.raises(TypeError, match="/plain declares no access level"):
        require_access([Route("/plain", endpoint)])
    for level in (Access.PUBLIC, Access.OPERATOR_PAGE, Access.METRICS):
        with pytest.raises(ValueError, match="/change"):
            GuardedRoute("/change", endpoint, methods=["POST"], access=level)


# --- every route, anonymous and operator ---


def test_with_tokens_every_operator_route_needs_one_and_public_routes_need_none(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    for route, method, path in calls(client, article_id):
        if route.access in CONSOLE_LEVELS:
            continue
        anonymous = call(client, method, path)
        if route.access in NEEDS_OPERATOR or route.access is Access.PUSH:
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.headers["www-authenticate"]
        else:
            assert anonymous.status_code not in (401, 403), (method, path, anonymous.text)
        assert FAILURE not in anonymous.text, (method, path)
        operator = call(client, method, path, OPERATOR)
        assert operator.status_code not in (401, 403), (method, path, operator.text)
        if route.access is not Access.PUBLIC:
            assert call(client, method, path, {"authorization": "Bearer not-the-token"}).status_code == 401


def test_basic_credentials_open_only_the_operator_pages(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    for route, method, path in calls(client, article_id):
        if route.access in CONSOLE_LEVELS:  # sessions, not Basic: see the console tests below
            assert client.request(method, path, auth=("anyone", TOKEN)).status_code in (303, 401, 415), path
            continue
        body: dict[str, Any] = {} if method in SAFE else {"content": json.dumps(ARTICLE), "headers": JSON}
        response = client.request(method, path, auth=("anyone", TOKEN), **body)
        if route.access is Access.OPERATOR_PAGE:
            assert response.status_code == 200 and FAILURE in response.text, (method, path)
            continue
        if route.access is not Access.PUBLIC:
            assert response.status_code == 401, (method, path)
        assert FAILURE not in response.text, (method, path)  # a public view, for /api/articles too
    assert client.get("/dashboard").headers["location"].startswith("/dashboard/login")


def test_without_tokens_operator_routes_answer_only_local_clients(tokenless) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = tokenless
    with make_client(ctx, REMOTE) as remote, make_client(ctx, LOCAL, "http://127.0.0.1:8000") as local:
        for route, method, path in calls(remote, article_id):
            if route.access in CONSOLE_LEVELS:
                continue
            far, near = call(remote, method, path), call(local, method, path)
            if route.access in NEEDS_OPERATOR:
                assert far.status_code == 403, (method, path)
                assert 'api_tokens = ["${DISTRIBUTOR_API_TOKEN}"]' in message(far)
                # Admitted; a change answers what the (here meaningless) body deserves.
                admitted = near.status_code == 200 if method in SAFE else near.status_code not in (401, 403)
                assert admitted, (method, path, near.text)
            elif route.access is Access.PUSH:  # a token or a signature, never just the address
                assert far.status_code == near.status_code == 401, (method, path)
            else:
                assert far.status_code not in (401, 403) and near.status_code not in (401, 403), (method, path)
            assert FAILURE not in far.text, (method, path)


@pytest.mark.parametrize(
    ("client", "base_url", "headers"),
    [
        (LOCAL, "http://127.0.0.1:8000", {"x-forwarded-for": "198.51.100.7"}),
        (LOCAL, "http://127.0.0.1:8000", {"forwarded": "for=198.51.100.7"}),
        (LOCAL, "http://127.0.0.1:8000", {"x-real-ip": "198.51.100.7"}),
        (LOCAL, "http://127.0.0.1:8000", {"x-forwarded-for": "127.0.0.1"}),  # a proxy is a proxy
        (LOCAL, "http://rebound.example:8000", {}),  # DNS rebinding: a foreign name on our address
        (("10.0.0.2", 1), "http://127.0.0.1:8000", {}),
        (("testclient", 1), "http://127.0.0.1:8000", {}),
    ],
)
def test_without_tokens_relayed_or_remote_clients_are_refused(tokenless, client, base_url, headers) -> None:  # type: ignore[no-untyped-def]
    ctx, _ = tokenless
    with make_client(ctx, client, base_url) as http:
        response = http.get("/dashboard", headers=headers)
        assert response.status_code == 403 and "api_tokens" in message(response)
        assert "deliveries" not in http.get("/api/articles", headers=headers).json()["articles"][0]


@pytest.mark.parametrize(
    ("client", "base_url"),
    [
        (LOCAL, "http://localhost:8000"),
        (("::1", 1), "http://[::1]:8000"),
        (("::ffff:127.0.0.1", 1), "http://127.0.0.1:8000"),
        (("127.0.0.2", 1), "http://127.0.0.1"),
    ],
)
def test_without_tokens_local_clients_are_operators(tokenless, client, base_url) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = tokenless
    with make_client(ctx, client, base_url) as http:
        assert http.get("/dashboard").status_code == 200
        assert FAILURE in http.get(f"/api/articles/{article_id}").text


# --- what public views show ---


def test_public_article_views_hide_deliveries_errors_and_sources(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    public_list = client.get("/api/articles").json()["articles"][0]
    public_one = client.get(f"/api/articles/{article_id}").json()
    assert set(public_list) == {"id", "url", "title", "published", "updated", "categories"}
    assert public_one["title"] == "Bài viết thử" and "shares" in public_one and "content" in public_one
    assert "deliveries" not in public_one and "source" not in public_one
    assert FAILURE not in json.dumps(public_one, ensure_ascii=False)
    full_list = client.get("/api/articles", headers=OPERATOR).json()["articles"][0]
    full_one = client.get(f"/api/articles/{article_id}", headers=OPERATOR).json()
    assert full_list["deliveries"]["backup"]["error"] == FAILURE
    assert full_one["deliveries"]["backup"] == {
        "state": "failed",
        "post_id": None,
        "url": None,
        "error": FAILURE,
        "history": [],
    }
    assert full_one["source"] == "test"


def test_metrics_are_public_only_when_configured(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(settings_with(make_settings, api_tokens=[TOKEN], public_metrics=True))
    with make_client(ctx) as client:
        response = client.get("/metrics")
        assert response.status_code == 200 and "distributor_articles" in response.text
        assert client.get("/dashboard").status_code == 303  # to the sign-in form


def test_health_shows_no_error_text_when_redis_is_down(tokened) -> None:  # type: ignore[no-untyped-def]
    import redis.asyncio as aioredis

    from tests.unit.channels.secret_url_cases import closed_port_url

    _, client, _ = tokened
    web = client.app.state.web  # type: ignore[attr-defined]
    healthy = web.redis
    web.redis = aioredis.Redis.from_url(closed_port_url().replace("http", "redis"), socket_connect_timeout=1)
    try:
        response = client.get("/healthz")
    finally:
        web.redis = healthy
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "redis": "down"}


# --- state-changing requests: no forgery from a browser ---


def unsafe_calls(client: TestClient, article_id: str, forms: bool = False) -> list[tuple[GuardedRoute, str, str]]:
    found = [c for c in calls(client, article_id) if c[1] not in SAFE and (forms or c[0].access not in CONSOLE_LEVELS)]
    assert found, "the app has state-changing routes (POST /api/articles at least)"
    return found


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://attacker.example"},
        {"origin": "null"},
        {"origin": "http://127.0.0.1:8001"},  # another port is another origin
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "same-site", "origin": "http://127.0.0.1:8000"},
    ],
)
def test_every_state_changing_route_refuses_cross_origin_browser_requests(tokened, headers) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    for _, method, path in unsafe_calls(client, article_id, forms=True):
        response = call(client, method, path, {**OPERATOR, **headers})
        assert response.status_code == 403, (method, path)
        assert "cross-origin" in message(response)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
)
def test_every_state_changing_route_takes_json_only(tokened, content_type) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    headers = {**OPERATOR, **({"content-type": content_type} if content_type else {})}
    for _, method, path in unsafe_calls(client, article_id):
        response = client.request(method, path, content=json.dumps(ARTICLE).encode(), headers=headers)
        assert response.status_code == 415, (method, path)
        assert "application/json" in message(response)


def test_the_forged_form_of_the_issue_publishes_nothing(make_settings) -> None:  # type: ignore[no-untyped-def]
    """A page elsewhere posts a form to the push route; the operator's browser adds Basic credentials."""
    queued: list[Any] = []
    ctx = Context.create(settings_with(make_settings, api_tokens=[TOKEN]))
    app = create_app(ctx, enqueue=lambda task, args: queued.append(args))
    forged = json.dumps({**ARTICLE, "url": "https://attacker.example/x"}).encode()
    browser = {"content-type": "text/plain", "origin": "https://attacker.example", "sec-fetch-site": "cross-site"}
    with TestClient(app, client=REMOTE) as client:
        assert (
            client.post("/api/articles", content=forged, auth=("operator", TOKEN), headers=browser).status_code == 403
        )
        # Even without the browser's origin headers: not JSON, then not a credential for a push.
        plain = {"content-type": "text/plain"}
        assert client.post("/api/articles", content=forged, auth=("operator", TOKEN), headers=plain).status_code == 415
        assert client.post("/api/articles", content=forged, auth=("operator", TOKEN), headers=JSON).status_code == 401
        # With the real token, the off-site link is refused all the same.
        assert client.post("/api/articles", content=forged, headers={**JSON, **OPERATOR}).status_code == 422
    assert queued == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "http://127.0.0.1:8000"},
        {"origin": "HTTP://127.0.0.1:8000", "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
        {"content-type": "application/json; charset=utf-8"},
    ],
)
def test_same_origin_and_server_to_server_pushes_pass(tokened, headers) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = tokened
    response = client.post(
        "/api/articles", content=json.dumps(ARTICLE).encode(), headers={**JSON, **OPERATOR, **headers}
    )
    assert response.status_code == 202, response.text


def test_pushed_articles_must_link_to_the_site(make_settings, site) -> None:  # type: ignore[no-untyped-def]
    site = {**site, "allowed_hosts": ["tin.example.gov.vn"]}
    settings = make_settings(sources=[], server={"api_tokens": [TOKEN]}, site=site)
    with make_client(Context.create(settings)) as client:

        def push(url: str) -> Any:
            body = json.dumps({**ARTICLE, "url": url}).encode()
            return client.post("/api/articles", content=body, headers={**JSON, **OPERATOR})

        off = push("https://attacker.example/tin/khai-truong")
        assert off.status_code == 422
        assert "'https://attacker.example/tin/khai-truong'" in message(off) and "allowed_hosts" in message(off)
        assert push("https://portal.example.gov.vn.attacker.example/a").status_code == 422
        assert push("https://portal.example.gov.vn@attacker.example/a").status_code == 422
        assert push("https://PORTAL.example.gov.vn/tin/a").status_code == 202
        assert push("https://tin.example.gov.vn/tin/a").status_code == 202


def test_state_changing_bodies_are_capped_before_authentication(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = tokened
    huge = b'{"url": "' + b"a" * (5 * 1024 * 1024) + b'"}'
    assert client.post("/api/articles", content=huge, headers=JSON).status_code == 413  # Content-Length
    chunks = (huge[i : i + 65536] for i in range(0, len(huge), 65536))  # chunked: no length declared
    assert client.post("/api/articles", content=chunks, headers=JSON).status_code == 413


# --- errors quote user input briefly ---


LONG = "x" * 10_000


@pytest.mark.parametrize(
    "path",
    [
        f"/feeds/{LONG}.rss",
        f"/s/{LONG}/facebook",
        "/s/{id}/" + LONG,
        f"/api/articles/{LONG}",
        f"/api/articles/{LONG}/shares",
        f"/r/{LONG}/backup",
        "/r/{id}/" + LONG,
        f"/embed/share-bar?id={LONG}",
    ],
)
def test_errors_echo_at_most_a_short_quote_of_the_input(tokened, path: str) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    response = client.get(path.replace("{id}", article_id), headers=OPERATOR)
    assert response.status_code == 404
    assert "x" * 80 + "'…" in message(response) and "x" * 81 not in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/api/articles/{LONG}/approve", {}),
        (f"/api/articles/{LONG}/reject", {}),
        (f"/api/articles/{LONG}/retract", {}),
        ("/api/articles/{id}/approve", {"channel": LONG}),
        ("/api/articles/{id}/reject", {"channel": LONG}),
        ("/api/articles/{id}/retract", {"channel": LONG}),
    ],
)
def test_operator_action_errors_echo_at_most_a_short_quote_of_the_input(tokened, path: str, body: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    _, client, article_id = tokened
    response = client.post(
        path.replace("{id}", article_id), content=json.dumps(body).encode(), headers={**JSON, **OPERATOR}
    )
    assert response.status_code == 404
    assert "x" * 80 + "'…" in message(response) and "x" * 81 not in response.text


def test_push_errors_are_capped_whatever_the_input(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, _ = tokened
    for payload in ({**ARTICLE, "url": "https://attacker.example/" + LONG}, {**ARTICLE, LONG: 1}, {"url": LONG}):
        response = client.post("/api/articles", content=json.dumps(payload).encode(), headers={**JSON, **OPERATOR})
        assert response.status_code == 422 and len(response.text) < 1200, payload.keys()


def test_quoted_escapes_control_characters_and_caps_length() -> None:
    assert quoted("all") == "'all'"
    assert quoted("\x1b[31mred\n") == "'\\x1b[31mred\\n'"
    assert quoted("y" * 200) == "'" + "y" * 80 + "'…"


# --- startup ---


@pytest.mark.parametrize(
    ("host", "tokens", "warned"),
    [("0.0.0.0", [], True), ("::", [], True), ("192.0.2.10", [], True), ("0.0.0.0", [TOKEN], False),
     ("127.0.0.1", [], False), ("localhost", [], False), ("::1", [], False), (None, [], False)],
)  # fmt: skip
def test_startup_warns_once_when_published_without_tokens(make_settings, caplog, host, tokens, warned) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(make_settings(sources=[], server={"api_tokens": tokens}))
    with caplog.at_level(logging.WARNING, logger="distributor.web"):
        create_app(ctx, enqueue=lambda task, args: None, bind_host=host)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == (1 if warned else 0)
    if warned:
        assert host in warnings[0] and "api_tokens" in warnings[0]


# --- the console: pages behind a sign-in, forms behind a session and its CSRF token ---


def console_calls(client: TestClient, article_id: str) -> list[tuple[GuardedRoute, str, str]]:
    found = [c for c in calls(client, article_id) if c[0].access in CONSOLE_LEVELS]
    assert {c[0].access for c in found} == CONSOLE_LEVELS
    return found


def test_console_routes_need_a_session_and_forms_need_its_csrf_token(tokened) -> None:  # type: ignore[no-untyped-def]
    _, client, article_id = tokened
    form = {"content-type": "application/x-www-form-urlencoded"}
    for route, _method, path in console_calls(client, article_id):
        if route.access is Access.CONSOLE:
            anonymous = client.get(path)
            assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/dashboard/login")
            assert client.get(path, headers=OPERATOR).status_code in (200, 404), path  # a Bearer token opens them
            assert "distributor_session" not in client.cookies  # no session for a script
            assert client.get(path, auth=("anyone", TOKEN)).status_code == 303, path  # Basic does not
        elif route.access is Access.CONSOLE_ACTION:
            assert client.post(path, content=b"next=%2Fdashboard", headers=form).status_code == 403, path
            # A Bearer token is no CSRF token: without the session's token a form is refused.
            assert client.post(path, content=b"csrf=x", headers={**form, **OPERATOR}).status_code == 403, path
            assert client.post(path, content=b"{}", headers={**JSON, **OPERATOR}).status_code == 415, path
    client.post("/dashboard/login", data={"token": TOKEN})
    page = client.get("/dashboard").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    for route, _method, path in console_calls(client, article_id):
        if route.access is Access.CONSOLE_ACTION and not path.endswith("/logout"):
            response = client.post(path, data={"csrf": csrf, "next": "/dashboard"})
            assert response.status_code == 303 and response.headers["location"] == "/dashboard", path


def test_without_tokens_the_console_answers_only_local_clients(tokenless) -> None:  # type: ignore[no-untyped-def]
    ctx, article_id = tokenless
    with make_client(ctx, REMOTE) as remote, make_client(ctx, LOCAL, "http://127.0.0.1:8000") as local:
        for route, _method, path in console_calls(remote, article_id):
            if route.access is Access.CONSOLE:
                assert remote.get(path).status_code == 403, path
                assert local.get(path).status_code in (200, 404), path
                assert FAILURE not in remote.get(path).text
            elif route.access is Access.CONSOLE_ACTION:
                assert remote.post(path, data={"csrf": "x"}).status_code == 403, path
