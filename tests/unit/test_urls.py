"""URL rules: which links a source may follow, and how a URL is shown without its secrets."""

from __future__ import annotations

import logging
import sys

import pytest

from distributor.errors import SourceError
from distributor.urls import MaskUrlSecrets, mask_url, mask_urls, may_follow, parse_allowed_host

HOME = "https://portal.example.gov.vn/tin-tuc"


@pytest.mark.parametrize(
    "link",
    [
        "https://portal.example.gov.vn/tin/1",
        "http://portal.example.gov.vn/tin/1",  # http <-> https on the same site
        "https://www.portal.example.gov.vn/tin/1",  # its www. variant
        "https://PORTAL.example.gov.vn./tin/1",
        "https://portal.example.gov.vn:443/tin/1",
    ],
)
def test_links_on_the_source_own_site_are_followed(link: str) -> None:
    assert may_follow(link, HOME)


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1:6379/",  # the Redis port
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/internal-admin",
        "https://evil.example.com/tin/1",
        "https://portal.example.gov.vn.evil.com/tin/1",
        "https://cdn.portal.example.gov.vn/tin/1",  # subdomains are other hosts
        "https://portal.example.gov.vn:8443/admin",  # another port of the same host
        "ftp://portal.example.gov.vn/tin/1",
        "file:///etc/passwd",
        "https://portal.example.gov.vn:99999/x",  # no port at all
        "not a url",
    ],
)
def test_other_links_are_not(link: str) -> None:
    assert not may_follow(link, HOME)


def test_allowed_hosts_widen_the_rule_exactly() -> None:
    allowed = ["tinhuy.example.gov.vn", "*.cdn.example.vn", "media.example.vn:8080"]
    assert may_follow("https://tinhuy.example.gov.vn/a", HOME, allowed)
    assert may_follow("https://www.tinhuy.example.gov.vn/a", HOME, allowed)
    assert not may_follow("https://tinhuy.example.gov.vn:8443/a", HOME, allowed)
    assert may_follow("https://cdn.example.vn/a", HOME, allowed)
    assert may_follow("https://img.cdn.example.vn/a", HOME, allowed)
    assert not may_follow("https://evilcdn.example.vn/a", HOME, allowed)
    assert may_follow("http://media.example.vn:8080/a", HOME, allowed)
    assert not may_follow("http://media.example.vn/a", HOME, allowed)


def test_a_source_on_another_port_keeps_to_it() -> None:
    home = "http://127.0.0.1:8081/listing"
    assert may_follow("http://127.0.0.1:8081/tin/1", home)
    assert not may_follow("http://127.0.0.1:6379/", home)
    assert not may_follow("http://localhost:8081/tin/1", home)  # another host name


@pytest.mark.parametrize("entry", ["https://news.example.vn/", "news.example.vn/path", "user@news.example.vn", ""])
def test_allowed_hosts_entries_must_be_hosts(entry: str) -> None:
    with pytest.raises(ValueError):
        parse_allowed_host(entry)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://reader:s3cret@127.0.0.1:8080/feed?token=abc123", "http://reader:***@127.0.0.1:8080/feed?token=***"),
        ("https://ghp_abcdef@git.example.vn/feed", "https://***@git.example.vn/feed"),
        ("https://portal.example.vn/rss?cat=5&api_key=K&apiKey=K2&X-Amz-Signature=S", None),
        ("https://portal.example.vn/rss?access_token=a&client_secret=b&password=c&sig=d&code=e", None),
        ("redis://:p4ss@redis.internal:6379/0", "redis://:***@redis.internal:6379/0"),
        (
            "https://portal.example.vn/rss?cat=tin-tuc&page=2#top",
            "https://portal.example.vn/rss?cat=tin-tuc&page=2#top",
        ),
        ("https://portal.example.vn/Pages/chi-tiet.aspx?ItemID=7842&l=TinTuc", None),
        ("/srv/articles/tin.md", "/srv/articles/tin.md"),
    ],
)
def test_mask_url(url: str, shown: str | None) -> None:
    masked = mask_url(url)
    if shown is not None:
        assert masked == shown
    for secret in ("s3cret", "abc123", "ghp_abcdef", "=K", "K2", "=S", "=a&", "=b&", "=c&", "=d&", "=e", "p4ss"):
        assert secret not in masked
    assert mask_url(masked) == masked
    if "ItemID" in url:
        assert masked == url  # nothing secret: shown exactly as written


def test_mask_urls_in_text() -> None:
    text = (
        "redirect loop: http://u:pw1234@h/a?token=t0k3n -> http://h/b?key=k3y -> http://u:pw1234@h/a?token=t0k3n; "
        '"GET /feed?token=abc123&page=2 HTTP/1.1" 404'
    )
    masked = mask_urls(text)
    for secret in ("pw1234", "t0k3n", "k3y", "abc123"):
        assert secret not in masked
    assert "http://u:***@h/a?token=***" in masked and "page=2" in masked


def test_source_errors_mask_their_url_and_message() -> None:
    url = "http://reader:s3cret@127.0.0.1:8080/feed?token=abc123"
    error = SourceError("portal", f"too many redirects, last to {url}", input=url)
    assert "s3cret" not in str(error) and "abc123" not in str(error)
    assert error.input == "http://reader:***@127.0.0.1:8080/feed?token=***"
    assert str(error).startswith("portal: http://reader:***@127.0.0.1:8080/feed?token=***: ")


def test_the_log_filter_masks_messages_and_tracebacks() -> None:
    url = "http://reader:s3cret@127.0.0.1/feed?token=abc123"
    try:
        raise RuntimeError(f"broke on {url}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "polling %s", (url,), exc_info=sys.exc_info())
    MaskUrlSecrets().filter(record)
    formatted = logging.Formatter().format(record)
    assert "s3cret" not in formatted and "abc123" not in formatted
    assert "127.0.0.1" in formatted and "RuntimeError" in formatted
