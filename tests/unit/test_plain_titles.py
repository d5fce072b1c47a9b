"""A title with markup, from every source type that can carry one, is plain text everywhere: in the
RSS and Atom feeds (the W3C validator warns on markup in a title) and in what channels post."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from distributor import pipeline
from distributor.context import Context
from distributor.inline import InlineDispatcher
from distributor.models import Article
from distributor.sources.push import PushedArticle
from tests.fakes.server import FakeServer, Reply

MARKED = "Tiêu đề có <b>thẻ</b>"
ESCAPED = "Tiêu đề có &lt;b&gt;thẻ&lt;/b&gt;"
PLAIN = "Tiêu đề có thẻ"
AUTHOR, CATEGORY = "Ban Biên tập", "Kinh tế"
TITLE_ELEMENT = re.compile(rb"<title[^>]*>(.*?)</title>", re.DOTALL)
DATE = "2021-07-13T14:00:00+07:00"


def _rss(server: FakeServer) -> dict[str, Any]:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Cổng</title><link>{server.url}/</link><description>d</description>
<item><title>{ESCAPED}</title><link>{server.url}/tin/1</link><description>Tóm tắt</description>
<author>tin@example.vn (&lt;i&gt;{AUTHOR}&lt;/i&gt;)</author><category>&lt;b&gt;{CATEGORY}&lt;/b&gt;</category>
<pubDate>Tue, 13 Jul 2021 07:00:00 GMT</pubDate></item></channel></rss>"""
    server.add("GET", "/rss", lambda r: Reply(200, body, {"Content-Type": "application/rss+xml"}))
    return {"type": "feed", "url": f"{server.url}/rss"}


def _atom(server: FakeServer) -> dict[str, Any]:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Cổng</title><id>urn:x</id><updated>{DATE}</updated>
<entry><title type="html">{ESCAPED}</title><link href="{server.url}/tin/1"/><id>urn:1</id>
<author><name>&lt;i&gt;{AUTHOR}&lt;/i&gt;</name></author><category term="&lt;b&gt;{CATEGORY}&lt;/b&gt;"/>
<updated>{DATE}</updated><summary>Tóm tắt</summary></entry></feed>"""
    server.add("GET", "/atom", lambda r: Reply(200, body, {"Content-Type": "application/atom+xml"}))
    return {"type": "feed", "url": f"{server.url}/atom"}


def _json_feed(server: FakeServer) -> dict[str, Any]:
    item = {
        "id": "1",
        "url": f"{server.url}/tin/1",
        "title": MARKED,
        "content_html": "<p>Tóm tắt</p>",
        "authors": [{"name": f"<i>{AUTHOR}</i>"}],
        "tags": [f"<b>{CATEGORY}</b>"],
        "date_published": DATE,
    }
    body = {"version": "https://jsonfeed.org/version/1.1", "title": "Cổng", "items": [item]}
    server.add("GET", "/feed.json", lambda r: Reply(200, body, {"Content-Type": "application/feed+json"}))
    return {"type": "feed", "url": f"{server.url}/feed.json"}


def _html(server: FakeServer) -> dict[str, Any]:
    listing = f'<html><body><ul class="news"><li><a href="{server.url}/tin/1">{MARKED}</a></li></ul></body></html>'
    page = f"""<html><head><meta charset="utf-8"><title>{ESCAPED}</title>
<meta property="og:title" content="{ESCAPED}"><meta name="author" content="&lt;i&gt;{AUTHOR}&lt;/i&gt;">
<meta property="article:published_time" content="{DATE}"></head><body><article>
<h1 class="title">{MARKED}</h1><p>{"Nội dung bài viết về hội nghị. " * 20}</p></article></body></html>"""
    html_type = {"Content-Type": "text/html; charset=utf-8"}
    server.add("GET", "/tin", lambda r: Reply(200, listing, html_type))
    server.add("GET", "/tin/1", lambda r: Reply(200, page, html_type))
    return {"type": "html", "url": f"{server.url}/tin", "link_selector": ".news a"}


def _wordpress(server: FakeServer) -> dict[str, Any]:
    post = {
        "id": 1,
        "date_gmt": "2021-07-13T07:00:00",
        "modified_gmt": "2021-07-13T07:00:00",
        "link": f"{server.url}/tin/1",
        "title": {"rendered": MARKED},
        "content": {"rendered": "<p>Nội dung</p>", "protected": False},
        "excerpt": {"rendered": "<p>Tóm tắt</p>"},
        "_embedded": {
            "author": [{"id": 1, "name": f"<i>{AUTHOR}</i>"}],
            "wp:term": [[{"id": 3, "name": f"&lt;b&gt;{CATEGORY}&lt;/b&gt;", "taxonomy": "category"}]],
        },
    }

    def posts(request: Any) -> Reply:
        return Reply(200, [post], {"X-WP-Total": "1", "X-WP-TotalPages": "1"})

    server.add("GET", "/wp-json/wp/v2/posts", posts)
    return {"type": "wordpress", "url": server.url}


SOURCES: dict[str, Callable[[FakeServer], dict[str, Any]]] = {
    "rss": _rss,
    "atom": _atom,
    "json feed": _json_feed,
    "html": _html,
    "wordpress": _wordpress,
}


def _email_channel() -> dict[str, Any]:
    return {"name": "mail", "type": "email", "host": "127.0.0.1", "sender": "tin@example.vn", "recipients": ["a@x.vn"]}


def assert_plain_everywhere(ctx: Context, article: Article) -> None:
    assert article.title == PLAIN
    for fmt in ("rss", "atom"):
        body = ctx.store.load_render("all", fmt)[b"body"]
        titles = [t.decode() for t in TITLE_ELEMENT.findall(body)]
        assert PLAIN in titles, (fmt, titles)
        assert all("<b>" not in t and "&lt;b&gt;" not in t and "&amp;lt;" not in t for t in titles), (fmt, titles)
        assert b"&lt;i&gt;" not in body and b"&lt;b&gt;" not in body, fmt  # author and category too
    for name in ("outbox", "mail"):
        post = ctx.channel(name).render(article)
        assert PLAIN in post.text and "<b>" not in post.text and "&lt;b&gt;" not in post.text, name
        assert post.title in ("", PLAIN), name
    assert ctx.channel("mail").render(article).extra["subject"] == PLAIN


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_a_marked_up_title_from_a_source_is_plain_in_feeds_and_posts(kind: str, make_settings, server) -> None:  # type: ignore[no-untyped-def]
    table = {"name": "portal", "politeness": 0, "retries": 0, **SOURCES[kind](server)}
    ctx = Context.create(
        make_settings(sources=[table], channels=[{"name": "outbox", "type": "outbox"}, _email_channel()])
    )
    report = pipeline.poll_source(ctx, "portal", InlineDispatcher(ctx))
    assert len(report.new) == 1, report
    article = ctx.store.get(report.new[0])
    assert article is not None
    if kind != "html":  # an HTML page names no author the way a feed does
        assert article.author == AUTHOR and CATEGORY in article.categories + article.tags, article
    assert_plain_everywhere(ctx, article)


def test_a_marked_up_title_pushed_is_plain_in_feeds_and_posts(make_settings) -> None:  # type: ignore[no-untyped-def]
    ctx = Context.create(make_settings(sources=[], channels=[{"name": "outbox", "type": "outbox"}, _email_channel()]))
    payload = {
        "url": "https://portal.example.gov.vn/tin/1",
        "title": MARKED,
        "author": f"<i>{AUTHOR}</i>",
        "categories": [f"&lt;b&gt;{CATEGORY}&lt;/b&gt;"],
        "content": "<p>Nội dung</p>",
        "published": DATE,
    }
    # What the push endpoint's task does with an accepted body.
    article = pipeline.to_article(ctx, PushedArticle.model_validate(json.loads(json.dumps(payload))).draft(), "push")
    dispatch = InlineDispatcher(ctx)
    change, feeds = pipeline.ingest(ctx, article, dispatch, announce=False)
    dispatch.rebuild(sorted(feeds))
    assert change == "new" and article.author == AUTHOR and article.categories == (CATEGORY,)
    assert_plain_everywhere(ctx, article)
