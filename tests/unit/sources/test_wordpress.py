"""The WordPress source against a loopback WordPress REST API that changes between polls."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from distributor.sources import source_class
from distributor.sources import wordpress as wordpress_module
from distributor.sources.wordpress import WordPressSource, WordPressSourceSettings
from tests.fakes.server import Reply, Request
from tests.unit.sources.web_helpers import poll_fails, web_source

PASSWORD = "abcd EFGH 1234 ijkl MNOP 5678"
WP_TIME = "%Y-%m-%dT%H:%M:%S"


class FakeWordPress:
    """`GET /wp-json/wp/v2/posts` as WordPress answers it: modified_after, orderby=modified,
    paging with X-WP-Total / X-WP-TotalPages, `_embed`, and Basic auth when asked for."""

    def __init__(self, server, *, password: str | None = None) -> None:
        self.server = server
        self.posts: dict[int, dict[str, Any]] = {}
        self.password = password
        server.add("GET", "/wp-json/wp/v2/posts", self.list_posts)

    def publish(self, post_id: int, title: str, modified: str, **extra: Any) -> None:
        self.posts[post_id] = {
            "id": post_id,
            "date_gmt": extra.pop("date_gmt", modified),
            "modified_gmt": modified,
            "link": f"https://blog.example.vn/{post_id}/",
            "title": {"rendered": title},
            "content": {"rendered": f"<p>Nội dung {post_id}</p>", "protected": False},
            "excerpt": {"rendered": f"<p>Tóm tắt {post_id}</p>\n"},
            "_embedded": {
                "author": [{"id": 1, "name": "Biên tập viên"}],
                "wp:featuredmedia": [{"id": 9, "source_url": f"https://blog.example.vn/anh/{post_id}.jpg"}],
                "wp:term": [
                    [{"id": 3, "name": "Kinh t&#7871;", "taxonomy": "category"}],
                    [{"id": 7, "name": "Đầu tư &amp; phát triển", "taxonomy": "post_tag"}],
                ],
            },
            **extra,
        }

    def list_posts(self, request: Request) -> Reply:
        if self.password is not None:
            expected = "Basic " + base64.b64encode(f"editor:{self.password}".encode()).decode()
            if request.header("Authorization") != expected:
                body = {"code": "rest_not_logged_in", "message": "Bạn chưa đăng nhập.", "data": {"status": 401}}
                return Reply(401, body)
        query = {key: values[-1] for key, values in request.query.items()}
        assert query["orderby"] == "modified" and query["order"] == "asc" and query["_embed"] == "1"
        posts = sorted(self.posts.values(), key=lambda p: (p["modified_gmt"], p["id"]))
        if "modified_after" in query:
            after = datetime.fromisoformat(query["modified_after"].replace("Z", "+00:00"))
            posts = [p for p in posts if datetime.strptime(p["modified_gmt"], WP_TIME).replace(tzinfo=UTC) > after]
        per_page, page = int(query["per_page"]), int(query["page"])
        pages = max(1, -(-len(posts) // per_page))
        if page > pages:
            body = {"code": "rest_post_invalid_page_number", "message": "The page number requested is larger."}
            return Reply(400, body)
        chunk = posts[(page - 1) * per_page : page * per_page]
        return Reply(200, chunk, {"X-WP-Total": str(len(posts)), "X-WP-TotalPages": str(pages)})

    def queries(self) -> list[dict[str, str]]:
        return [{k: v[-1] for k, v in r.query.items()} for r in self.server.requests]


def wordpress(server, **options: object) -> WordPressSource:
    return web_source(WordPressSource, server.url, **options)


def test_registered_under_its_type():
    assert source_class("wordpress") is WordPressSource


def test_posts_become_drafts_with_embedded_image_terms_and_author(server):
    wp = FakeWordPress(server)
    wp.publish(
        1,
        "Khánh thành cầu &#8220;Mỹ Thuận&#8221; <em>2</em>",
        "2021-07-13T14:00:00",
        date_gmt="2021-07-13T13:00:00",
    )
    result = wordpress(server).poll({})
    (draft,) = result.drafts
    assert draft.url == "https://blog.example.vn/1/"
    assert draft.title == "Khánh thành cầu “Mỹ Thuận” 2"
    assert draft.content == "<p>Nội dung 1</p>"
    assert draft.summary == "<p>Tóm tắt 1</p>\n"
    assert draft.image == "https://blog.example.vn/anh/1.jpg"
    assert draft.categories == ["Kinh tế"] and draft.tags == ["Đầu tư & phát triển"]
    assert draft.author == "Biên tập viên"
    assert draft.published == datetime(2021, 7, 13, 13, 0, tzinfo=UTC)
    assert draft.updated == datetime(2021, 7, 13, 14, 0, tzinfo=UTC)
    assert result.complete is False and result.errors == []
    assert result.state == {"modified_gmt": "2021-07-13T14:00:00", "ids_at_cursor": "1"}
    (query,) = wp.queries()
    assert query == {"per_page": "50", "page": "1", "orderby": "modified", "order": "asc", "_embed": "1"}


def test_only_posts_added_or_edited_since_the_last_poll_come_back(server):
    wp = FakeWordPress(server)
    wp.publish(1, "Bài một", "2021-07-13T10:00:00")
    wp.publish(2, "Bài hai", "2021-07-13T11:00:00")
    source = wordpress(server)
    first = source.poll({})
    assert [d.title for d in first.drafts] == ["Bài một", "Bài hai"]

    quiet = source.poll(first.state)
    assert quiet.drafts == [] and quiet.state == first.state
    assert wp.queries()[-1]["modified_after"] == "2021-07-13T10:59:59Z"

    wp.publish(1, "Bài một (đã sửa)", "2021-07-14T08:00:00")  # edited
    wp.publish(3, "Bài ba", "2021-07-14T09:00:00")  # added
    del wp.posts[2]  # removed (trashed): the API stops listing it
    changed = source.poll(quiet.state)
    assert [d.title for d in changed.drafts] == ["Bài một (đã sửa)", "Bài ba"]
    assert changed.state["modified_gmt"] == "2021-07-14T09:00:00"
    assert changed.complete is False


def test_posts_modified_in_the_same_second_are_not_lost_or_repeated(server):
    wp = FakeWordPress(server)
    wp.publish(1, "Một", "2021-07-13T10:00:00")
    wp.publish(2, "Hai", "2021-07-13T10:00:00")
    source = wordpress(server, per_page=1, max_pages=1)  # one post per poll
    titles = []
    state: dict[str, str] = {}
    for _ in range(3):
        result = source.poll(state)
        titles += [d.title for d in result.drafts]
        state = result.state
    assert titles == ["Một", "Hai"]
    assert state == {"modified_gmt": "2021-07-13T10:00:00", "ids_at_cursor": "1,2"}
    wp.publish(3, "Ba", "2021-07-13T10:00:00")  # a late arrival in the very same second
    assert [d.title for d in source.poll(state).drafts] == ["Ba"]


def test_pages_are_followed_up_to_max_pages_then_resumed(server):
    wp = FakeWordPress(server)
    for post_id in range(1, 8):
        wp.publish(post_id, f"Bài {post_id}", f"2021-07-1{post_id}T00:00:00")
    source = wordpress(server, per_page=2, max_pages=2)
    first = source.poll({})
    assert [d.title for d in first.drafts] == ["Bài 1", "Bài 2", "Bài 3", "Bài 4"]
    assert [q["page"] for q in wp.queries()] == ["1", "2"]
    second = source.poll(first.state)
    assert [d.title for d in second.drafts] == ["Bài 5", "Bài 6", "Bài 7"]


def test_application_password_is_sent_and_never_shown(server):
    wp = FakeWordPress(server, password=PASSWORD)
    wp.publish(1, "Bài riêng", "2021-07-13T10:00:00")
    source = wordpress(server, username="editor", application_password=PASSWORD)
    assert [d.title for d in source.poll({}).drafts] == ["Bài riêng"]
    assert PASSWORD not in repr(source.settings) and PASSWORD not in str(source.settings)

    wrong = wordpress(server, username="editor", application_password="wrong secret value")
    error = poll_fails(wrong)
    assert "HTTP 401" in str(error) and "Bạn chưa đăng nhập." in str(error)
    assert "wrong secret value" not in str(error) and "wrong secret value" not in repr(error)
    encoded = base64.b64encode(b"editor:wrong secret value").decode()
    assert encoded not in str(error)


def test_a_post_without_a_link_is_skipped_with_an_error(server):
    wp = FakeWordPress(server)
    wp.publish(1, "Không liên kết", "2021-07-13T10:00:00", link="")
    wp.publish(2, "Có liên kết", "2021-07-13T11:00:00")
    result = wordpress(server).poll({})
    assert [d.title for d in result.drafts] == ["Có liên kết"]
    (error,) = result.errors
    assert str(error).startswith("portal: ") and "post 1 'Không liên kết' has no link" in str(error)


def test_missing_embeds_leave_fields_empty(server):
    wp = FakeWordPress(server)
    wp.publish(1, "Trơn", "2021-07-13T10:00:00", _embedded={"wp:featuredmedia": [{"code": "rest_forbidden"}]})
    (draft,) = wordpress(server, category="Blog").poll({}).drafts
    assert draft.image is None and draft.author is None and draft.tags == []
    assert draft.categories == ["Blog"]  # the source's category stands in


# --- broken and hostile input ----------------------------------------------------------------


def test_a_site_without_the_rest_api_is_a_clear_error(server):
    page = "<html><body>Trang chủ</body></html>".encode()
    server.add("GET", "/wp-json/wp/v2/posts", lambda r: Reply(200, page, {"Content-Type": "text/html"}))
    error = poll_fails(wordpress(server))
    assert "/wp-json/wp/v2/posts?" in str(error) and "is the REST API enabled?" in str(error)


def test_json_nested_past_the_recursion_limit_is_a_clear_error(server):
    server.add(
        "GET", "/wp-json/wp/v2/posts", lambda r: Reply(200, b"[" * 100_000, {"Content-Type": "application/json"})
    )
    assert "is the REST API enabled?" in str(poll_fails(wordpress(server)))


def test_an_unexpected_json_shape_is_a_clear_error(server):
    server.add("GET", "/wp-json/wp/v2/posts", lambda r: Reply(200, {"posts": []}))
    assert "did not answer with a list of posts" in str(poll_fails(wordpress(server)))


def test_a_later_page_failing_keeps_the_earlier_pages(server):
    wp = FakeWordPress(server)
    for post_id in range(1, 4):
        wp.publish(post_id, f"Bài {post_id}", f"2021-07-1{post_id}T00:00:00")
    original = wp.list_posts

    def flaky(request: Request) -> Reply:
        return Reply(500, b"oops") if request.query["page"] == ["2"] else original(request)

    server.routes.clear()
    server.add("GET", "/wp-json/wp/v2/posts", flaky)
    result = wordpress(server, per_page=2).poll({})
    assert [d.title for d in result.drafts] == ["Bài 1", "Bài 2"]
    assert "HTTP 500" in str(result.errors[0])
    assert result.state["modified_gmt"] == "2021-07-12T00:00:00"  # resumes after Bài 2


def test_embeds_and_headers_of_the_wrong_shape_are_ignored(server):
    # Hostile or broken plugins: these used to escape the poll as TypeError / ValueError.
    wp = FakeWordPress(server)
    wp.publish(1, "Lạ", "2021-07-13T10:00:00", _embedded={"author": 1, "wp:term": 3, "wp:featuredmedia": "x"})
    original = wp.list_posts

    def odd_header(request: Request) -> Reply:
        reply = original(request)
        reply.headers["X-WP-TotalPages"] = "²"
        return reply

    server.routes.clear()
    server.add("GET", "/wp-json/wp/v2/posts", odd_header)
    result = wordpress(server).poll({})
    (draft,) = result.drafts
    assert (draft.title, draft.author, draft.categories, draft.tags, draft.image) == ("Lạ", None, [], [], None)
    assert result.errors == []


def test_a_site_that_never_stops_paging_is_left_after_a_bounded_number_of_pages(server, monkeypatch):
    # The same page again and again, and a page count that never ends (or a site ignoring
    # modified_after): pages of posts seen before used to be read without end.
    post = {
        "id": 1,
        "link": "https://blog.example.vn/1/",
        "title": {"rendered": "Một"},
        "modified_gmt": "2021-07-13T10:00:00",
    }
    server.add("GET", "/wp-json/wp/v2/posts", lambda r: Reply(200, [post], {"X-WP-TotalPages": "1000000"}))
    monkeypatch.setattr(wordpress_module, "MAX_SKIPPED_PAGES", 5)
    result = wordpress(server).poll({})
    assert [d.title for d in result.drafts] == ["Một"]
    assert len(server.requests) == 1 + 5
    assert "modified_after" in str(result.errors[-1])


def test_a_post_with_an_unreadable_modified_time_does_not_move_the_cursor(server):
    # "zzz" sorts after every date: as the cursor it would have hidden every later post.
    def post(post_id: int, modified: str) -> dict[str, Any]:
        return {
            "id": post_id,
            "link": f"https://blog.example.vn/{post_id}/",
            "title": {"rendered": f"Bài {post_id}"},
            "modified_gmt": modified,
        }

    posts = [post(1, "2021-07-13T10:00:00"), post(2, "zzz")]
    server.add("GET", "/wp-json/wp/v2/posts", lambda r: Reply(200, posts))
    source = wordpress(server)
    first = source.poll({})
    assert first.state["modified_gmt"] == "2021-07-13T10:00:00"
    assert "post 2" in str(first.errors[0]) and "modified_gmt" in str(first.errors[0])
    posts[:] = [post(3, "2021-07-14T10:00:00")]
    assert [d.title for d in source.poll(first.state).drafts] == ["Bài 3"]


def test_a_slow_api_times_out(server):
    def slow(request: Request) -> Reply:
        time.sleep(0.6)
        return Reply(200, [])

    server.add("GET", "/wp-json/wp/v2/posts", slow)
    assert "timed out" in str(poll_fails(wordpress(server, timeout=0.2)))


# --- settings --------------------------------------------------------------------------------


def test_settings_validation():
    base = {"name": "wp", "type": "wordpress", "url": "https://blog.example.vn"}
    settings = WordPressSourceSettings.model_validate(base)
    assert settings.per_page == 50 and settings.application_password is None
    with pytest.raises(ValidationError, match="go together"):
        WordPressSourceSettings.model_validate({**base, "username": "editor"})
    with pytest.raises(ValidationError, match="per_page"):
        WordPressSourceSettings.model_validate({**base, "per_page": 500})
