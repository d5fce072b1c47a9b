"""The operator console in a real browser (Debian's chromium, headless, driven by Playwright) against
the real HTTP server, a real Celery worker and a loopback Telegram fake that first refuses the post:
sign in, see the failed delivery with the platform's message, retry it and see it sent, pause a
channel, switch to English and back, and a form POST without the CSRF token refused. A screenshot of
each page is saved under tests/artifacts/console-*.png."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis as redis_py
import requests

from distributor.keys import Keys
from distributor.ledger import Ledger
from distributor.store import Store
from tests.fakes.telegram import TOKEN, TelegramFake, error
from tests.integration.helpers import config_file, free_port, process, wait_for, worker
from tests.integration.test_share_bar_browser import ARGS, ARTIFACTS, CHROMIUM

OPERATOR_TOKEN = "console-browser-token-0123456789"
REFUSAL = "Forbidden: bot was blocked by the user"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install -y chromium")


def write_config(tmp_path: Path, redis_url: str, prefix: str, api_base: str, port: int) -> Path:
    rest = f"""
[server]
api_tokens = [{{ name = "mai.tran", token = "{OPERATOR_TOKEN}" }}]

[[feeds]]
name = "all"

[[channels]]
name = "telegram"
type = "telegram"
api_base = "{api_base}"
token = "{TOKEN}"
chat_id = "@tintuc_tayninh"
"""
    path = config_file(tmp_path, redis_url, prefix, rest)
    # Forms are same-origin only: the public URL is the address the browser uses.
    path.write_text(path.read_text().replace("http://127.0.0.1:8000", f"http://127.0.0.1:{port}"))
    return path


@contextmanager
def web_server(config: Path, log: Path, port: int) -> Iterator[str]:
    args = [sys.executable, "-m", "distributor.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with process(args, config, log):
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz?scope=web", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, what=f"the HTTP server (log: {log})")
        yield base


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def test_console_sign_in_retry_pause_language_and_csrf(tmp_path: Path, redis_url: str, prefix: str) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    client = redis_py.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(prefix)
    store = Store(client, redis_py.Redis.from_url(redis_url), keys)
    ledger = Ledger(client, keys)
    port = free_port()
    with TelegramFake() as fake:
        config = write_config(tmp_path, redis_url, prefix, fake.url, port)
        with worker(config, tmp_path / "worker.log"), web_server(config, tmp_path / "web.log", port) as base:
            wait_for(lambda: store.first_poll_done("articles"), what="the first poll")
            fake.then(error(403, REFUSAL))
            (tmp_path / "articles" / "a.md").write_text(
                '---\ntitle: "Hội nghị sơ kết công tác dân vận"\ncategories: ["Tin tức"]\n---\nNội dung.\n',
                encoding="utf-8",
            )

            def failed() -> Any:
                newest = store.newest(0, 1)
                found = newest and ledger.get(newest[0].id, "telegram")
                return found if found and found.state == "failed" else None

            article_id = wait_for(failed, timeout=30, what="the refused post to be recorded").article_id

            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 800})
                context.route(lambda url: not url.startswith("http://127.0.0.1:"), lambda route: route.abort())
                page = context.new_page()

                # Sign in: the console sends an anonymous browser to the form.
                page.goto(f"{base}/dashboard")
                assert page.url.startswith(f"{base}/dashboard/login")
                shot(page, "login")
                page.fill("input[name=token]", "not-the-token")
                page.click("button[type=submit]")
                assert "Mã truy cập không hợp lệ." in page.inner_text("main")
                page.fill("input[name=token]", OPERATOR_TOKEN)
                page.click("button[type=submit]")
                page.wait_for_url(f"{base}/dashboard")
                assert "Đăng nhập với tên mai.tran" in page.inner_text("header")

                # The failed delivery, with the platform's message, needs attention.
                attention = page.locator("table").first
                assert REFUSAL in attention.inner_text() and "thất bại" in attention.inner_text()
                shot(page, "overview")

                # Retry it: the worker posts it this time (the fake answers normally now).
                attention.locator("button", has_text="Thử lại").first.click()
                page.wait_for_url(f"{base}/dashboard")
                assert "telegram: đã đưa lại vào hàng đợi." in page.inner_text("main")

                def sent() -> bool:
                    found = ledger.get(article_id, "telegram")
                    return bool(found and found.state == "sent")

                wait_for(sent, timeout=30, what="the retried delivery to be sent")
                page.goto(f"{base}/dashboard/articles/{article_id}")
                channels = page.locator("table").first.inner_text()
                assert "đã đăng" in channels and "mở bài đăng" in channels
                assert page.get_attribute("a:has-text('mở bài đăng')", "href", timeout=5000) == (
                    ledger.get(article_id, "telegram").post_url  # type: ignore[union-attr]
                )
                assert page.locator("svg rect").count() == 14  # the shares chart, one bar a day
                shot(page, "article")

                page.goto(f"{base}/dashboard/articles")
                assert "Hội nghị sơ kết công tác dân vận" in page.inner_text("main")
                shot(page, "articles")

                # Pause the channel: the operator's name is on record and on the page.
                page.goto(f"{base}/dashboard/channels")
                page.locator("button", has_text="Tạm dừng").first.click()
                page.wait_for_url(f"{base}/dashboard/channels")
                row = page.locator("tr", has_text="telegram").inner_text()
                assert "tạm dừng" in row and "mai.tran tạm dừng" in row
                assert page.locator("button", has_text="Chạy lại").count() == 1
                shot(page, "channels")

                # English, then Vietnamese again, with the switcher; the choice is remembered.
                page.click("a[hreflang=en]")
                assert "Signed in as mai.tran" in page.inner_text("header")
                assert "paused" in page.locator("tr", has_text="telegram").inner_text()
                page.goto(f"{base}/dashboard")
                assert "Needs attention" in page.inner_text("main")
                shot(page, "overview-en")
                page.click("a[hreflang=vi]")
                assert "Cần xử lý" in page.inner_text("main")

                for name in ("sources", "feeds", "audit"):
                    page.goto(f"{base}/dashboard/{name}")
                    shot(page, name)
                    if name == "sources":  # the worker recorded its polls
                        assert "chưa bao giờ" not in page.locator("tr", has_text="directory").inner_text()
                audit = page.inner_text("main")
                assert "mai.tran" in audit and "retry" in audit and "pause" in audit

                # A form POST with the session cookie but without the CSRF token is refused.
                forged = context.request.post(
                    f"{base}/dashboard/channels/telegram/resume",
                    form={"next": "/dashboard/channels"},
                    headers={"origin": base},
                    max_redirects=0,
                )
                assert forged.status == 403 and "CSRF" in forged.text()
                assert "mai.tran tạm dừng" in page.goto(f"{base}/dashboard/channels").text()  # type: ignore[union-attr]
                browser.close()
