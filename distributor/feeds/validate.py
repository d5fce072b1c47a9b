"""A strict checker for the feeds we serve: each function returns a list of problems, [] when valid.

Stricter than readers on purpose (RSS enclosures need a positive length, every date must carry
a zone, every link must be absolute), so a feed that passes here is read the same everywhere.
Used by the tests and by operator tooling; it parses with a safe parser (no DTDs, no network).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml import etree

from distributor.text import strip_illegal_xml
from distributor.urls import is_http_url

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"
JSON_FEED_VERSIONS = ("https://jsonfeed.org/version/1.1", "https://jsonfeed.org/version/1")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, recover=False)
_ZONE = r"(?:[+-]\d{4}|UT|GMT|EST|EDT|CST|CDT|MST|MDT|PST|PDT|[A-IK-Z])"
_RFC822 = re.compile(
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?\d{1,2} "
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{2}(?:\d{2})? "
    rf"\d{{2}}:\d{{2}}(?::\d{{2}})? {_ZONE}$"
)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")

Problems = list[str]


def rfc822_problem(value: str | None, where: str) -> str | None:
    if value is None or not _RFC822.match(value.strip()):
        return f"{where}: not an RFC 822 date: {value!r}"
    try:
        parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return f"{where}: RFC 822 date does not exist: {value!r}"
    return None


def rfc3339_problem(value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not _RFC3339.match(value):
        return f"{where}: not an RFC 3339 date with an offset: {value!r}"
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return f"{where}: RFC 3339 date does not exist: {value!r}"
    return None


def url_problem(value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not is_http_url(value.strip()):
        return f"{where}: not an absolute http(s) URL: {value!r}"
    return None


def _decoded(body: bytes, problems: Problems) -> str | None:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"not UTF-8: {exc}")
        return None
    if strip_illegal_xml(text) != text:
        problems.append("contains characters that are illegal in XML 1.0")
    return text


def _parse_xml(body: bytes, problems: Problems) -> Any:
    if _decoded(body, problems) is None:
        return None
    try:
        return etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        problems.append(f"not well-formed XML: {exc}")
        return None


def _text(element: Any, path: str, namespaces: dict[str, str] | None = None) -> str | None:
    found = element.find(path, namespaces)
    if found is None:
        return None
    return "".join(found.itertext()).strip()


def _require_text(
    element: Any,
    names: tuple[str, ...],
    where: str,
    problems: Problems,
    namespaces: dict[str, str] | None = None,
) -> None:
    for name in names:
        if not _text(element, name, namespaces):
            problems.append(f"{where}: missing or empty <{name.rpartition(':')[2]}>")


def _unique(ids: list[tuple[str, str]], label: str, problems: Problems) -> None:
    seen: dict[str, str] = {}
    for where, value in ids:
        if value in seen:
            problems.append(f"{where}: duplicate {label} {value!r} (first at {seen[value]})")
        else:
            seen[value] = where


def _self_link(links: list[Any], self_url: str | None, where: str, problems: Problems) -> None:
    own = [link for link in links if link.get("rel") == "self"]
    if not own:
        problems.append(f"{where}: no link rel=self")
        return
    href = own[0].get("href")
    problem = url_problem(href, f"{where} self link")
    if problem:
        problems.append(problem)
    elif self_url is not None and href != self_url:
        problems.append(f"{where}: self link {href!r} does not match {self_url!r}")


def _add(problems: Problems, *found: str | None) -> None:
    problems.extend(problem for problem in found if problem)


# RSS 2.0 ---------------------------------------------------------------------------------------


def validate_rss(body: bytes, self_url: str | None = None) -> Problems:
    """RSS 2.0 with atom:link rel=self; `self_url`, when given, must be that link."""
    problems: Problems = []
    root = _parse_xml(body, problems)
    if root is None:
        return problems
    if root.tag != "rss" or root.get("version") != "2.0":
        return [*problems, f"root is <{root.tag}> version {root.get('version')!r}, not RSS 2.0"]
    channel = root.find("channel")
    if channel is None:
        return [*problems, "no <channel>"]
    _require_text(channel, ("title", "link", "description"), "channel", problems)
    _add(problems, url_problem(_text(channel, "link"), "channel <link>"))
    links = channel.findall(f"{{{ATOM}}}link")
    _self_link(links, self_url, "channel", problems)
    for link in links:
        _add(problems, url_problem(link.get("href"), f"channel atom:link rel={link.get('rel')}"))
    for name in ("lastBuildDate", "pubDate"):
        if channel.find(name) is not None:
            _add(problems, rfc822_problem(_text(channel, name), f"channel <{name}>"))
    ttl = _text(channel, "ttl")
    if ttl is not None and not ttl.isdigit():
        problems.append(f"channel <ttl>: not a number of minutes: {ttl!r}")
    image = channel.find("image")
    if image is not None:
        _require_text(image, ("url", "title", "link"), "channel <image>", problems)
        _add(problems, url_problem(_text(image, "url"), "channel <image><url>"))
    guids: list[tuple[str, str]] = []
    for index, item in enumerate(channel.iterfind("item"), start=1):
        where = f"item {index}"
        guid = _check_rss_item(item, where, problems)
        if guid is not None:
            guids.append((where, guid))
    _unique(guids, "guid", problems)
    return problems


def _check_rss_item(item: Any, where: str, problems: Problems) -> str | None:
    """Add the item's problems; return its guid."""
    if not (_text(item, "title") or _text(item, "description")):
        problems.append(f"{where}: needs a <title> or a <description>")
    if item.find("link") is not None:
        _add(problems, url_problem(_text(item, "link"), f"{where} <link>"))
    guid = item.find("guid")
    value = _text(item, "guid")
    if guid is None or not value:
        problems.append(f"{where}: no <guid>")
    elif guid.get("isPermaLink", "true") == "true":
        _add(problems, url_problem(value, f"{where} <guid isPermaLink=true>"))
    if item.find("pubDate") is None:
        problems.append(f"{where}: no <pubDate>")
    else:
        _add(problems, rfc822_problem(_text(item, "pubDate"), f"{where} <pubDate>"))
    author = _text(item, "author")
    if author is not None and "@" not in author:
        problems.append(f"{where}: <author> must start with an email address: {author!r}")
    for enclosure in item.iterfind("enclosure"):
        _add(problems, url_problem(enclosure.get("url"), f"{where} <enclosure url>"))
        length = enclosure.get("length") or ""
        if not length.isdigit() or int(length) <= 0:
            problems.append(f"{where}: <enclosure> needs a positive length, got {length!r}")
        if not enclosure.get("type"):
            problems.append(f"{where}: <enclosure> has no type")
    for media in item.iter(f"{{{MEDIA}}}content", f"{{{MEDIA}}}thumbnail"):
        name = etree.QName(media).localname
        _add(problems, url_problem(media.get("url"), f"{where} <media:{name} url>"))
    return value or None


# Atom 1.0 --------------------------------------------------------------------------------------


def validate_atom(body: bytes, self_url: str | None = None) -> Problems:
    """Atom 1.0 (RFC 4287); `self_url`, when given, must be the rel=self link."""
    problems: Problems = []
    root = _parse_xml(body, problems)
    if root is None:
        return problems
    ns = {"a": ATOM}
    if root.tag != f"{{{ATOM}}}feed":
        return [*problems, f"root is {root.tag}, not an Atom <feed>"]
    _require_text(root, ("a:id", "a:title", "a:updated"), "feed", problems, ns)
    _add(problems, _iri_problem(_text(root, "a:id", ns), "feed <id>"))
    _add(problems, rfc3339_problem(_text(root, "a:updated", ns), "feed <updated>"))
    links = root.findall("a:link", ns)
    _self_link(links, self_url, "feed", problems)
    _check_links(links, "feed", problems)
    feed_author = root.find("a:author/a:name", ns) is not None
    ids: list[tuple[str, str]] = []
    for index, entry in enumerate(root.iterfind("a:entry", ns), start=1):
        where = f"entry {index}"
        _require_text(entry, ("a:id", "a:title", "a:updated"), where, problems, ns)
        value = _text(entry, "a:id", ns) or ""
        _add(problems, _iri_problem(value, f"{where} <id>"))
        ids.append((where, value))
        _add(problems, rfc3339_problem(_text(entry, "a:updated", ns), f"{where} <updated>"))
        if entry.find("a:published", ns) is not None:
            published = _text(entry, "a:published", ns)
            _add(problems, rfc3339_problem(published, f"{where} <published>"))
        if not feed_author and entry.find("a:author/a:name", ns) is None:
            problems.append(f"{where}: no <author> here nor on the feed")
        entry_links = entry.findall("a:link", ns)
        _check_links(entry_links, where, problems)
        alternate = [link for link in entry_links if link.get("rel", "alternate") == "alternate"]
        if entry.find("a:content", ns) is None and not alternate:
            problems.append(f"{where}: needs <content> or a link rel=alternate")
    _unique(ids, "id", problems)
    return problems


def _iri_problem(value: str | None, where: str) -> str | None:
    if not value or not _SCHEME.match(value):
        return f"{where}: not an absolute IRI: {value!r}"
    return None


def _check_links(links: list[Any], where: str, problems: Problems) -> None:
    for link in links:
        rel = link.get("rel", "alternate")
        _add(problems, url_problem(link.get("href"), f"{where} link rel={rel}"))
        length = link.get("length")
        if length is not None and not length.isdigit():
            problems.append(f"{where} link rel={rel}: length is not a number: {length!r}")


# JSON Feed 1.1 ---------------------------------------------------------------------------------


def validate_json_feed(body: bytes, self_url: str | None = None) -> Problems:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1); `self_url` must be its feed_url."""
    problems: Problems = []
    text = _decoded(body, problems)
    if text is None:
        return problems
    try:
        feed = json.loads(text)
    except ValueError as exc:
        return [*problems, f"not JSON: {exc}"]
    if not isinstance(feed, dict):
        return [*problems, "top level is not an object"]
    if any(strip_illegal_xml(value) != value for value in _strings(feed)):
        problems.append("a string holds control characters (not representable in XML feeds)")
    if feed.get("version") not in JSON_FEED_VERSIONS:
        problems.append(f"version is {feed.get('version')!r}, not a JSON Feed version URL")
    if not isinstance(feed.get("title"), str) or not feed["title"].strip():
        problems.append("feed: missing title")
    for key in ("home_page_url", "feed_url", "icon", "favicon"):
        if key in feed:
            _add(problems, url_problem(feed[key], f"feed {key}"))
    if self_url is not None and feed.get("feed_url") != self_url:
        problems.append(f"feed_url {feed.get('feed_url')!r} does not match {self_url!r}")
    for index, hub in enumerate(feed.get("hubs", []), start=1):
        if not isinstance(hub, dict) or not isinstance(hub.get("type"), str):
            problems.append(f"hub {index}: needs a type and a url")
        else:
            _add(problems, url_problem(hub.get("url"), f"hub {index} url"))
    _check_authors(feed, "feed", problems)
    items = feed.get("items")
    if not isinstance(items, list):
        return [*problems, "feed: items is not a list"]
    ids: list[tuple[str, str]] = []
    for index, item in enumerate(items, start=1):
        where = f"item {index}"
        if not isinstance(item, dict):
            problems.append(f"{where}: not an object")
            continue
        value = _check_json_item(item, where, problems)
        if value is not None:
            ids.append((where, value))
    _unique(ids, "id", problems)
    return problems


def _check_json_item(item: dict[str, Any], where: str, problems: Problems) -> str | None:
    """Add the item's problems; return its id."""
    value = item.get("id")
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: id must be a non-empty string")
        value = None
    if not any(isinstance(item.get(key), str) for key in ("content_html", "content_text")):
        problems.append(f"{where}: needs content_html or content_text")
    for key in ("url", "external_url", "image", "banner_image"):
        if key in item:
            _add(problems, url_problem(item[key], f"{where} {key}"))
    for key in ("date_published", "date_modified"):
        if key in item:
            _add(problems, rfc3339_problem(item[key], f"{where} {key}"))
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        problems.append(f"{where}: tags must be a list of strings")
    _check_authors(item, where, problems)
    return value


def _check_authors(holder: dict[str, Any], where: str, problems: Problems) -> None:
    authors = holder.get("authors", [])
    if not isinstance(authors, list):
        problems.append(f"{where}: authors must be a list")
        return
    for author in authors:
        if not isinstance(author, dict) or not any(k in author for k in ("name", "url", "avatar")):
            problems.append(f"{where}: an author needs a name, url or avatar")
        elif "url" in author:
            _add(problems, url_problem(author["url"], f"{where} author url"))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


VALIDATORS: dict[str, Callable[[bytes, str | None], Problems]] = {
    "rss": validate_rss,
    "atom": validate_atom,
    "json": validate_json_feed,
}


def validate(body: bytes, fmt: str, self_url: str | None = None) -> Problems:
    """Check `body` as feed format `fmt` ("rss", "atom" or "json")."""
    return VALIDATORS[fmt](body, self_url)
