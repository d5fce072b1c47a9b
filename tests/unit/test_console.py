"""The operator console (issue 11): sign-in with a cookie session, CSRF on every form, the actions
and their audit records, no secret on any page, Vietnamese or English."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from distributor import audit, engagement
from distributor.context import Context
from distributor.ledger import AWAITING
from distributor.web.app import create_app
from tests.unit.channels.secret_url_cases import closed_port_url
from tests.unit.test_web import REMOTE, add

OWNER = "owner-token-1234567890"
OTHER = "other-token-0987654321"
TG_SECRET = "987654:TELEGRAM-SECRET-abcdef"
ZALO_SECRET = "zalo-app-secret-xyz"
PUSH_SECRET = "push-hmac-secret-42"
SESSION_SECRET = "session-signing-secret-77"
SECRETS = (OWNER, OTHER, TG_SECRET, ZALO_SECRET, "zalo-refresh-secret", "zalo-access-secret")
SECRETS += (PUSH_SECRET, SESSION_SECRET)
ENGLISH = {"accept-language": "en"}
FAILURE = "Forbidden: bot was blocked by the user"


def console_settings(make_settings, **server: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        sources=[{"name": "portal", "type": "feed", "url": "https://portal.example.gov.vn/rss.xml"}],
        server={
            "api_tokens": [{"name": "anh.nguyen", "token": OWNER}, OTHER],
            "push_secret": PUSH_SECRET,
            "session_secret": SESSION_SECRET,
            **server,
        },
        channels=[
            {"name": "outbox", "type": "outbox"},
            # Disabled: articles added by the tests are not posted to them (the tests make deliveries).
            {"name": "telegram", "type": "telegram", "token": TG_SECRET, "chat_id": "@tintuc", "enabled": False},
            {
                "name": "zalo",
                "type": "zalo",
                "enabled": False,
                "app_id": "1234",
                "secret_key": ZALO_SECRET,
                "refresh_token": "zalo-refresh-secret",
                "access_token": "zalo-access-secret",
                "cover": "https://portal.example.gov.vn/cover.jpg",
                "api_base": closed_port_url(),  # the credentials test fails here, not at Zalo
                "oauth_base": closed_port_url(),
            },
        ],
    )


class Console:
    def __init__(self, ctx: Context, client: TestClient, queued: list[tuple[str, list[Any]]]) -> None:
        self.ctx, self.client, self.queued = ctx, client, queued

    def sign_in(self, token: str = OWNER) -> Any:
        return self.client.post("/dashboard/login", data={"token": token, "next": "/dashboard"}, headers=ENGLISH)

    def csrf(self, path: str = "/dashboard") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.client.get(path, headers=ENGLISH).text)
        assert found, "the page carries a CSRF token"
        return found.group(1)

    def post(self, path: str, csrf: str | None = None, **fields: str) -> Any:
        data = dict(fields)
        if csrf is not None:
            data["csrf"] = csrf
        return self.client.post(path, data=data, headers=ENGLISH)

    def flash(self) -> str:
        page = self.client.get("/dashboard", headers=ENGLISH).text
        return " ".join(re.findall(r'role="status">([^<]*)<', page))


@pytest.fixture
def console(make_settings) -> Iterator[Console]:  # type: ignore[no-untyped-def]
    ctx = Context.create(console_settings(make_settings))
    queued: list[tuple[str, list[Any]]] = []
    app = create_app(ctx, enqueue=lambda task, args: queued.append((task, args)))
    with TestClient(app, follow_redirects=False, client=REMOTE, base_url="http://127.0.0.1:8000") as client:
        yield Console(ctx, client, queued)


def failed(ctx: Context, channel: str = "telegram", slug: str = "bai-viet", title: str = "Bài viết thử") -> str:
    article_id = add(ctx, slug, title)
    ctx.ledger.create(article_id, channel)
    assert ctx.ledger.claim(article_id, channel, lease=60) == "go"
    ctx.ledger.failed(article_id, channel, FAILURE, "403")
    return article_id


def last_audit(ctx: Context) -> audit.AuditEntry:
    return audit.read(ctx, None, 1)[0]


# --- sign-in ---------------------------------------------------------------------------------------


def test_pages_send_an_anonymous_browser_to_the_sign_in_form(console: Console) -> None:
    for path in ("/dashboard", "/dashboard/articles?q=x", "/dashboard/channels", "/dashboard/audit"):
        response = console.client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/dashboard/login?next=%2Fdashboard")
    form = console.client.get("/dashboard/login", headers=ENGLISH)
    assert form.status_code == 200 and 'type="password" name="token"' in form.text


def test_a_good_token_signs_in_with_a_safe_cookie_named_after_the_token(console: Console) -> None:
    response = console.sign_in()
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("distributor_session=")
    for flag in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=43200"):
        assert flag.lower() in cookie.lower(), flag
    assert "secure" not in cookie.lower()  # plain HTTP on loopback: a Secure cookie would never come back
    assert OWNER not in cookie
    page = console.client.get("/dashboard", headers=ENGLISH)
    assert page.status_code == 200 and "Signed in as anh.nguyen" in page.text
    entry = last_audit(console.ctx)
    assert (entry.actor, entry.action, entry.outcome) == ("anh.nguyen", "sign-in", "signed in")


def test_a_bad_token_is_refused_and_five_failures_are_rate_limited(console: Console) -> None:
    for _ in range(5):
        refused = console.sign_in("not-a-token")
        assert refused.status_code == 401 and "That token is not valid." in refused.text
        assert "set-cookie" not in refused.headers
    limited = console.sign_in(OWNER)  # even the right token, from this address, for a while
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert console.ctx.redis.get(console.ctx.keys.sign_in_failures(REMOTE[0])) == "5"  # per client address
    assert 0 < console.ctx.redis.ttl(console.ctx.keys.sign_in_failures(REMOTE[0])) <= 300  # for five minutes
    assert console.client.get("/dashboard").status_code == 303


def test_the_cookie_is_secure_behind_https(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(console_settings(make_settings, trusted_proxies=["203.0.113.0/24"]))
    with TestClient(create_app(ctx, enqueue=lambda t, a: None), follow_redirects=False, client=REMOTE) as client:
        relayed = client.post("/dashboard/login", data={"token": OWNER}, headers={"x-forwarded-proto": "https"})
        assert "secure" in relayed.headers["set-cookie"].lower()
    with TestClient(
        create_app(ctx, enqueue=lambda t, a: None), follow_redirects=False, client=REMOTE, base_url="https://testserver"
    ) as client:
        assert "secure" in client.post("/dashboard/login", data={"token": OWNER}).headers["set-cookie"].lower()


def test_sign_out_ends_the_session_even_for_a_copied_cookie(console: Console) -> None:
    console.sign_in()
    copied = dict(console.client.cookies)
    out = console.post("/dashboard/logout", console.csrf())
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    assert console.client.get("/dashboard").status_code == 303
    console.client.cookies.update(copied)
    assert console.client.get("/dashboard").status_code == 303


def test_a_session_expires(console: Console) -> None:
    console.sign_in()
    session_id = console.client.cookies["distributor_session"].partition(".")[0]
    key = console.ctx.keys.console_session(session_id)
    assert 43000 < console.ctx.redis.ttl(key) <= 43200  # [server] session_hours = 12
    console.ctx.redis.delete(key)  # what the TTL does after 12 hours
    assert console.client.get("/dashboard").status_code == 303


def test_a_forged_or_tampered_cookie_is_refused(console: Console) -> None:
    console.sign_in()
    session_id, _, signature = console.client.cookies["distributor_session"].partition(".")
    console.client.cookies.clear()
    console.client.cookies.set("distributor_session", f"{session_id}.{'0' * len(signature)}", path="/dashboard")
    assert console.client.get("/dashboard").status_code == 303


def test_a_bearer_token_still_opens_the_pages(console: Console) -> None:
    page = console.client.get("/dashboard/channels", headers={"authorization": f"Bearer {OTHER}", **ENGLISH})
    assert page.status_code == 200 and "Signed in as token-2" in page.text
    assert "set-cookie" not in page.headers  # a script gets no session: it cannot send the forms


# --- CSRF ------------------------------------------------------------------------------------------


def test_every_action_without_the_csrf_token_is_refused(console: Console) -> None:
    article_id = failed(console.ctx)
    console.sign_in()
    token = console.csrf()
    paths = [
        f"/dashboard/deliveries/{article_id}/telegram/retry",
        f"/dashboard/deliveries/{article_id}/telegram/cancel",
        f"/dashboard/articles/{article_id}/approve",
        f"/dashboard/articles/{article_id}/reject",
        f"/dashboard/articles/{article_id}/retract",
        "/dashboard/channels/telegram/pause",
        "/dashboard/channels/telegram/resume",
        "/dashboard/channels/telegram/test",
        "/dashboard/sources/portal/poll",
        "/dashboard/logout",
    ]
    for path in paths:
        missing = console.post(path, next="/dashboard")
        assert missing.status_code == 403 and "CSRF" in missing.json()["error"]["message"], path
        assert console.post(path, token[:-2] + "xx").status_code == 403, path
        assert console.client.post(path, json={"csrf": token}).status_code == 415, path  # a form, not JSON
        crossed = console.client.post(path, data={"csrf": token}, headers={"origin": "https://attacker.example"})
        assert crossed.status_code == 403, path
    assert console.ctx.ledger.get(article_id, "telegram").state == "failed"  # type: ignore[union-attr]
    assert console.ctx.admission.health("telegram").breaker == "closed"
    assert console.queued == []


def test_another_session_token_is_not_this_sessions_csrf_token(console: Console) -> None:
    console.sign_in(OTHER)
    foreign = console.csrf()
    console.client.cookies.clear()
    console.sign_in()
    assert console.post("/dashboard/channels/telegram/pause", foreign).status_code == 403


# --- actions ---------------------------------------------------------------------------------------


def test_retry_a_failed_delivery_queues_it_and_is_audited(console: Console) -> None:
    article_id = failed(console.ctx)
    console.sign_in()
    page = console.client.get("/dashboard", headers=ENGLISH).text
    assert FAILURE in page and "(code 403)" in page
    response = console.post(f"/dashboard/deliveries/{article_id}/telegram/retry", console.csrf(), next="/dashboard")
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    assert console.ctx.ledger.get(article_id, "telegram").state == "pending"  # type: ignore[union-attr]
    assert console.queued == [("worker.tasks.deliver", [article_id, "telegram"])]
    entry = last_audit(console.ctx)
    assert (entry.actor, entry.action, entry.target, entry.outcome) == (
        "anh.nguyen",
        "retry",
        f"{article_id} -> telegram",
        "queued",
    )
    assert "telegram: queued again." in console.flash()
    assert console.flash() == ""  # a flash message is shown once


def test_cancel_a_failed_delivery(console: Console) -> None:
    article_id = failed(console.ctx)
    console.sign_in()
    console.post(f"/dashboard/deliveries/{article_id}/telegram/cancel", console.csrf())
    assert console.ctx.ledger.get(article_id, "telegram").state == "cancelled"  # type: ignore[union-attr]
    assert (last_audit(console.ctx).action, last_audit(console.ctx).outcome) == ("cancel", "cancelled")
    assert "telegram: cancelled" in console.flash()
    refused = console.post(f"/dashboard/deliveries/{article_id}/zalo/cancel", console.csrf())
    assert refused.status_code == 303 and "Nothing to cancel for zalo (no such delivery)" in console.flash()
    assert last_audit(console.ctx).outcome == "refused"


def test_approve_and_reject_what_awaits_approval(console: Console) -> None:
    one, two = add(console.ctx, "mot", "Một"), add(console.ctx, "hai", "Hai")
    for article_id in (one, two):
        console.ctx.ledger.create(article_id, "telegram", state=AWAITING)
    console.sign_in()
    assert "Awaiting approval" in console.client.get("/dashboard", headers=ENGLISH).text
    console.post(f"/dashboard/articles/{one}/approve", console.csrf(), channel="telegram")
    assert console.queued == [("worker.tasks.deliver", [one, "telegram"])]
    assert (last_audit(console.ctx).action, last_audit(console.ctx).outcome) == ("approve", "approved")
    console.post(f"/dashboard/articles/{two}/reject", console.csrf(), channel="telegram", reason="trùng lặp")
    assert console.ctx.ledger.get(two, "telegram").state == "rejected"  # type: ignore[union-attr]
    entry = last_audit(console.ctx)
    assert (entry.actor, entry.action, entry.outcome) == ("anh.nguyen", "reject", "rejected")


def test_retract_an_article_removes_it_from_the_feeds(console: Console) -> None:
    article_id = add(console.ctx)
    console.sign_in()
    console.post(f"/dashboard/articles/{article_id}/retract", console.csrf(), reason="sai thông tin")
    assert console.ctx.store.get(article_id) is None
    assert (last_audit(console.ctx).action, last_audit(console.ctx).outcome) == ("retract", "retracted")
    assert "Retracted" in console.flash()


def test_a_refused_retraction_says_why_in_the_pages_language(console: Console) -> None:
    console.sign_in()
    vietnamese = {"accept-language": "vi"}
    data = {"csrf": console.csrf(), "reason": "thử"}
    console.client.post("/dashboard/articles/0123456789abcdef/retract", data=data, headers=vietnamese)
    page = console.client.get("/dashboard", headers=vietnamese).text
    assert "không có bài viết này ở đây (chưa lưu, chưa đăng)" in " ".join(re.findall(r'role="status">([^<]*)<', page))
    assert last_audit(console.ctx).detail == "no such article here (neither stored nor delivered)"  # the log: English
    console.post("/dashboard/articles/0123456789abcdef/retract", console.csrf(), reason="thử")
    assert "no such article here" in console.flash()


def test_pause_holds_a_channels_deliveries_and_resume_sends_them_again(console: Console) -> None:
    ctx = console.ctx
    article_id = add(ctx)
    ctx.ledger.create(article_id, "telegram")
    console.sign_in()
    console.post("/dashboard/channels/telegram/pause", console.csrf("/dashboard/channels"), next="/dashboard/channels")
    assert ctx.admission.health("telegram").breaker == "paused"
    gate = ctx.admission.enter(ctx.settings.channel("telegram"), f"{article_id}:telegram")
    assert gate.wait > 0 and "paused" in gate.reason  # the delivery waits, nothing is lost
    assert ctx.ledger.get(article_id, "telegram").state == "pending"  # type: ignore[union-attr]
    page = console.client.get("/dashboard/channels", headers=ENGLISH).text
    assert "paused by anh.nguyen" in page and "/dashboard/channels/telegram/resume" in page
    assert (last_audit(ctx).action, last_audit(ctx).outcome) == ("pause", "paused")
    console.post("/dashboard/channels/telegram/resume", console.csrf("/dashboard/channels"))
    assert ctx.admission.health("telegram").breaker == "closed"
    assert ("worker.tasks.deliver", [article_id, "telegram"]) in console.queued
    assert (last_audit(ctx).action, last_audit(ctx).outcome) == ("resume", "resumed")


def test_poll_a_source_now_queues_its_poll(console: Console) -> None:
    console.sign_in()
    console.post("/dashboard/sources/portal/poll", console.csrf("/dashboard/sources"))
    assert console.queued == [("worker.tasks.poll_source", ["portal"])]
    assert (last_audit(console.ctx).action, last_audit(console.ctx).outcome) == ("poll", "queued")
    console.post("/dashboard/sources/nope/poll", console.csrf("/dashboard/sources"))
    assert console.queued == [("worker.tasks.poll_source", ["portal"])]
    assert last_audit(console.ctx).outcome == "refused"


def test_testing_credentials_reports_the_platforms_answer(console: Console) -> None:
    console.sign_in()
    console.post("/dashboard/channels/outbox/test", console.csrf("/dashboard/channels"))
    assert "outbox: credentials work" in console.flash()
    entry = last_audit(console.ctx)
    assert (entry.actor, entry.action, entry.target, entry.outcome) == ("anh.nguyen", "test", "outbox", "passed")


# --- pages -----------------------------------------------------------------------------------------


def test_no_page_shows_a_secret(console: Console) -> None:
    article_id = failed(console.ctx)
    console.ctx.redis.hset(console.ctx.keys.channel_state("zalo"), mapping={"expires_at": str(time.time() + 3600)})
    console.sign_in()
    token = console.csrf()
    console.post("/dashboard/channels/zalo/test", token)  # its error must not echo a secret either
    paths = [
        "/dashboard",
        "/dashboard/articles",
        f"/dashboard/articles/{article_id}",
        "/dashboard/channels",
        "/dashboard/sources",
        "/dashboard/feeds",
        "/dashboard/audit",
        "/dashboard/login",
    ]
    for path in paths:
        for language in ("vi", "en"):
            page = console.client.get(path, headers={"accept-language": language})
            assert page.status_code == 200, path
            for secret in SECRETS:
                assert secret not in page.text, (path, secret)
                assert secret.split(":")[-1] not in page.text, (path, secret)
    assert "expires" in console.client.get("/dashboard", headers=ENGLISH).text  # the Zalo token, within a week


def test_the_article_page_shows_states_history_previews_and_shares(console: Console) -> None:
    article_id = failed(console.ctx)
    console.ctx.shares.record(article_id, "facebook", "198.51.100.1", "Mozilla/5.0 Firefox/133.0")
    console.sign_in()
    page = console.client.get(f"/dashboard/articles/{article_id}", headers=ENGLISH).text
    assert "Bài viết thử" in page and FAILURE in page
    assert f"/dashboard/deliveries/{article_id}/telegram/retry" in page
    assert "What each channel posts" in page and "https://portal.example.gov.vn/bai-viet" in page
    assert "1 shares by 1 readers" in page and "<svg" in page and "<rect" in page
    assert "No engagement reported yet." in page and "Engagement per day" not in page
    engagement.store(console.ctx, article_id, "telegram", {"reactions": 7, "comments": 2})
    page = console.client.get(f"/dashboard/articles/{article_id}", headers=ENGLISH).text
    assert "reactions 7" in page and "(highest: 9)" in page and page.count("<svg") == 2
    assert "Tương tác theo ngày" in console.client.get(f"/dashboard/articles/{article_id}").text
    assert console.client.get("/dashboard/articles/nope", headers=ENGLISH).status_code == 404


def test_articles_search_filter_and_page(console: Console) -> None:
    ctx = console.ctx
    failed(ctx, slug="hop-bao", title="Họp báo tháng 12")
    for n in range(55):
        add(ctx, f"tin-{n}", f"Tin số {n}")
    console.sign_in()
    first = console.client.get("/dashboard/articles", headers=ENGLISH).text
    assert first.count('<a href="/dashboard/articles/') == 50 and "page=2" in first
    found = console.client.get("/dashboard/articles?q=h%E1%BB%8Dp+b%C3%A1o", headers=ENGLISH).text
    assert "Họp báo tháng 12" in found and "Tin số" not in found
    failing = console.client.get("/dashboard/articles?state=failed", headers=ENGLISH).text
    assert "Họp báo tháng 12" in failing and "Tin số 3" not in failing
    assert "Tin số" in console.client.get("/dashboard/articles?category=tin+t%E1%BB%A9c+s%E1%BB%B1+ki%E1%BB%87n").text
    narrowed = console.client.get("/dashboard/articles?source=test&q=H%E1%BB%8Dp", headers=ENGLISH)
    assert "1 articles found" in narrowed.text


def test_a_search_reaches_the_whole_archive_even_stored_before_the_index(console: Console) -> None:
    from datetime import UTC, datetime, timedelta

    from distributor import pipeline
    from distributor.normalize import Draft

    ctx = console.ctx
    start = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
    for n in range(2100):  # an archive older and larger than any scan of the newest articles
        title = "Quyết định số 0001 về đất đai" if n == 0 else f"Tin lưu trữ {n}"
        draft = Draft(url=f"https://portal.example.gov.vn/luu-tru/{n}", title=title,
                      published=(start + timedelta(hours=n)).isoformat(), categories=["Lưu trữ"])  # fmt: skip
        article = pipeline.to_article(ctx, draft, "archive")
        ctx.store.upsert(article)
        ctx.store.publish(article)
    ctx.redis.delete(ctx.keys.article_search())  # as stored by a version without the index
    console.sign_in()
    found = console.client.get("/dashboard/articles?q=QUY%E1%BA%BET+%C4%90%E1%BB%8ANH+s%E1%BB%91+0001",
                               headers=ENGLISH).text  # fmt: skip
    assert "Quyết định số 0001 về đất đai" in found and "1 articles found" in found  # the oldest, any case
    assert ctx.redis.hlen(ctx.keys.article_search()) == 2100
    listed = console.client.get("/dashboard/articles?category=l%C6%B0u+tr%E1%BB%AF&page=42", headers=ENGLISH).text
    assert "2,100 articles found" in listed and "Quyết định số 0001 về đất đai" in listed  # last page: the oldest
    assert ctx.store.search("tin lưu trữ 2099") == [ctx.store.newest(0, 1)[0].id]
    ctx.store.remove(ctx.store.newest(0, 1)[0].id)
    assert ctx.store.search("tin lưu trữ 2099") == [] and ctx.store.search(source="nope") == []


def test_the_language_follows_the_browser_and_the_switcher(console: Console) -> None:
    console.sign_in()
    assert "Tổng quan" in console.client.get("/dashboard", headers={"accept-language": "vi-VN,vi;q=0.9"}).text
    assert ">Overview<" in console.client.get("/dashboard", headers={"accept-language": "en-US"}).text
    switched = console.client.get("/dashboard/channels?lang=en", headers={"accept-language": "vi"})
    assert ">Channels<" in switched.text and "lang=en" in switched.headers["set-cookie"]
    assert ">Overview<" in console.client.get("/dashboard", headers={"accept-language": "vi"}).text  # the cookie
    back = console.client.get("/dashboard?lang=vi")
    assert "Tổng quan" in back.text
    assert "Tổng quan" in console.client.get("/dashboard", headers=ENGLISH).text


def test_without_tokens_the_console_is_open_on_this_machine_only_and_says_so(make_settings) -> None:  # type: ignore[no-untyped-def]
    backup = {"name": "backup", "type": "outbox", "path": "backup.jsonl", "enabled": False}
    ctx = Context.create(make_settings(sources=[], channels=[backup]))
    article_id = failed(ctx, channel="backup")
    app = create_app(ctx, enqueue=lambda t, a: None)
    with TestClient(app, follow_redirects=False, client=("127.0.0.1", 1), base_url="http://127.0.0.1:8000") as local:
        page = local.get("/dashboard", headers=ENGLISH)
        assert page.status_code == 200 and "No operator token is configured" in page.text
        assert local.get("/dashboard/login").headers["location"] == "/dashboard"
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        local.post(f"/dashboard/deliveries/{article_id}/backup/cancel", data={"csrf": token})
        assert (last_audit(ctx).actor, last_audit(ctx).action) == ("local", "cancel")
        assert local.post("/dashboard/channels/backup/pause", data={"next": "/dashboard"}).status_code == 403
    with TestClient(app, follow_redirects=False, client=REMOTE) as remote:
        assert remote.get("/dashboard").status_code == 403
        assert remote.post("/dashboard/login", data={"token": "x"}).status_code == 303  # nothing to sign in to


def test_sources_page_and_overview_show_the_last_poll_and_its_error(console: Console) -> None:
    from distributor import source_health
    from distributor.pipeline import PollReport

    report = PollReport(source="portal", found=3, new=["a", "b"], errors=["portal: HTTP 503 from the server"])
    source_health.record(console.ctx, report, now=time.time() - 60)
    console.sign_in()
    page = console.client.get("/dashboard/sources", headers=ENGLISH).text
    assert "3 found: 2 new, 0 updated, 0 removed" in page and "HTTP 503 from the server" in page
    assert "Failing sources" in (overview := console.client.get("/dashboard", headers=ENGLISH).text)
    assert "HTTP 503 from the server" in overview.split("Failing sources")[1]


def test_a_bluesky_session_expiry_is_shown_but_never_the_session(console: Console) -> None:
    import base64
    import json

    exp = int(time.time()) + 2 * 86400
    claims = base64.urlsafe_b64encode(json.dumps({"exp": exp}).encode()).decode().rstrip("=")
    jwt = f"eyJhbGciOiJIUzI1NiJ9.{claims}.c2lnbmF0dXJlLXNlY3JldA"
    console.ctx.redis.hset(console.ctx.keys.channel_state("telegram"), mapping={"refresh_jwt": jwt})
    console.sign_in()
    channels = console.client.get("/dashboard/channels", headers=ENGLISH).text
    overview = console.client.get("/dashboard", headers=ENGLISH).text
    assert "telegram: its access token expires" in overview
    assert "c2lnbmF0dXJlLXNlY3JldA" not in channels + overview and claims not in channels + overview
    assert channels.split("telegram")[1].count("not known") == 0  # the expiry is shown


def round_trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each command sent to Redis on its own, and each pipeline sent, as they happen (real Redis)."""
    import redis

    sent: list[str] = []
    plain, batch = redis.Redis.execute_command, redis.client.Pipeline.execute

    def command(self: Any, *args: Any, **options: Any) -> Any:
        if not isinstance(self, redis.client.Pipeline):
            sent.append(str(args[0]))
        return plain(self, *args, **options)

    def pipeline(self: Any, *args: Any, **options: Any) -> Any:
        sent.append("pipeline")
        return batch(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    return sent


def test_a_page_of_articles_costs_the_same_round_trips_for_5_or_50(console: Console, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from distributor.web.console import data

    ctx = console.ctx
    for n in range(5):
        failed(ctx, slug=f"a-{n}", title=f"Tin {n}")
    sent = round_trips(monkeypatch)
    assert len(data.articles(ctx, data.ArticleQuery()).rows) == 5
    few = len(sent)
    monkeypatch.undo()
    for n in range(5, 50):
        failed(ctx, slug=f"a-{n}", title=f"Tin {n}")
    sent = round_trips(monkeypatch)
    assert len(data.articles(ctx, data.ArticleQuery()).rows) == 50
    assert len(sent) == few <= 6, sent


def test_an_untrusted_peer_cannot_claim_https(console: Console) -> None:
    claimed = console.client.post("/dashboard/login", data={"token": OWNER}, headers={"x-forwarded-proto": "https"})
    assert claimed.status_code == 303 and "secure" not in claimed.headers["set-cookie"].lower()
