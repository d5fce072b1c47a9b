"""The share bar in a real browser (Debian's chromium, headless, driven by Playwright): a portal page
on another origin embeds the script; the bar appears with counts, a click is counted and lands on
the network's share page (intercepted: nothing reaches the internet), the iframe version renders.
A screenshot is saved under tests/artifacts/."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from distributor.context import Context
from distributor.settings import settings_from_dict
from tests.integration.helpers import ALL_FEEDS_AND_OUTBOX, config_file, free_port, server, wait_for
from tests.unit.test_web import add

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
CANONICAL = "https://portal.example.gov.vn/tin-tức/bài-viết-số-1?id=5&loại=tin"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium missing: apt-get install -y chromium")


def page_html(base: str) -> str:
    return f"""<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Bài viết số 1</title>
<link rel="canonical" href="{CANONICAL.replace("&", "&amp;")}"></head>
<body style="font-family:sans-serif;max-width:720px;margin:20px">
<h1>Hội nghị sơ kết công tác dân vận</h1><p>Nội dung bài viết…</p>
<div id="vi" data-distributor-share></div>
<div id="en" data-distributor-share data-lang="en" data-url="https://portal.example.gov.vn/chua-dang?x=1"></div>
<iframe id="frame" title="share" style="border:0;width:100%;height:48px"
  src="{base}/embed/share-bar?url={requests.utils.quote(CANONICAL, safe="")}"></iframe>
<script async src="{base}/embed/share-bar.js"></script>
</body></html>"""


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def portal_page() -> Iterator[tuple[int, dict[str, str]]]:
    """A loopback 'portal' on its own origin serving whatever page is put in the dict."""
    pages: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], pages
    httpd.shutdown()


def test_share_bar_renders_counts_and_counts_a_click(tmp_path: Path, redis_url: str, prefix: str, portal_page) -> None:  # type: ignore[no-untyped-def]
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    port, pages = portal_page
    origin = f"http://127.0.0.1:{port}"
    rest = ALL_FEEDS_AND_OUTBOX + f'\n[shares]\ncors_origins = ["{origin}"]\n'
    config = config_file(tmp_path, redis_url, prefix, rest)
    ctx = Context.create(
        settings_from_dict({"site": {"title": "t", "url": "https://portal.example.gov.vn"},
                            "redis": {"url": redis_url, "key_prefix": prefix},
                            "paths": {"data_dir": str(tmp_path / "data")}})
    )  # fmt: skip
    article_id = add(ctx, "tin-tức/bài-viết-số-1?id=5&loại=tin", "Hội nghị sơ kết công tác dân vận")
    with server(config, tmp_path / "web.log") as base:
        for n in range(2):  # two readers shared it on Zalo already
            requests.get(f"{base}/s/{article_id}/zalo", headers={"User-Agent": f"{UA} r{n}"}, allow_redirects=False)
        wait_for(lambda: ctx.shares.counts(article_id).get("total") == 2, timeout=5, what="the first clicks")
        pages["/bai-viet"] = page_html(base)
        outside: list[str] = []

        def block(route: Any) -> None:
            outside.append(route.request.url)
            route.abort()

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            context = browser.new_context(user_agent=UA, viewport={"width": 800, "height": 360})
            context.route(lambda url: not url.startswith("http://127.0.0.1:"), block)
            page = context.new_page()
            page.goto(f"{origin}/bai-viet")
            page.wait_for_selector("#vi .dsb a")
            page.wait_for_selector("#en .dsb a")
            assert words(page.inner_text("#vi")).startswith("Chia sẻ: 2 Facebook X Telegram Zalo 2")
            assert words(page.inner_text("#vi a.dsb-zalo")) == "Zalo 2"
            assert page.get_attribute("#vi a.dsb-facebook", "href") == f"{base}/s/{article_id}/facebook"
            assert page.inner_text("#en").startswith("Share:")  # not known yet: no count, direct links
            direct = page.get_attribute("#en a.dsb-facebook", "href") or ""
            assert direct.startswith("https://www.facebook.com/sharer/sharer.php?u=https%3A%2F%2Fportal")
            frame = page.frame_locator("#frame")
            assert words(frame.locator(".dsb-zalo").inner_text()) == "Zalo 2"
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "share-bar.png"), full_page=True)
            assert outside == []  # loading the bar asked no other host

            with context.expect_page() as popup:
                page.click("#vi a.dsb-facebook")
            popup.value.wait_for_event("requestfailed", predicate=lambda r: "facebook.com" in r.url)
            browser.close()
        assert len(outside) == 1
        target = urlsplit(outside[0])
        assert target.netloc == "www.facebook.com" and target.path == "/sharer/sharer.php"
        shared = urlsplit(parse_qs(target.query)["u"][0])
        assert unquote(shared.path) == "/tin-tức/bài-viết-số-1"
        assert parse_qs(shared.query)["utm_source"] == ["facebook"] and parse_qs(shared.query)["loại"] == ["tin"]
        wait_for(lambda: ctx.shares.counts(article_id).get("facebook") == 1, timeout=5, what="the browser's click")
