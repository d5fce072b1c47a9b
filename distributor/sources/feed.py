"""An RSS (0.9x, 1.0, 2.0), Atom or JSON Feed URL.

The fetcher reads the bytes (conditional GET, size cap, real charset); feedparser parses them, or
our own reader for JSON Feed, which feedparser 6 does not know. A feed shows only its newest
items, so a poll is never complete: an item that drops off the feed is not unpublished.
"""

from __future__ import annotations

import calendar
import html
import io
from datetime import UTC, datetime
from typing import Any

import feedparser

from distributor.dates import parse_date, zone
from distributor.fetch import Fetched
from distributor.normalize import Draft
from distributor.sources.base import PollResult
from distributor.sources.web import (
    WebSource,
    WebSourceSettings,
    first,
    json_body,
    listed,
    validators,
    xml_bytes,
)
from distributor.text import html_to_text
from distributor.urls import absolute, is_http_url

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
_JSON_FEED_VERSION = "https://jsonfeed.org/version/1"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")


class FeedSourceSettings(WebSourceSettings):
    """A feed needs only its `url` (plus the fetcher knobs every web source has)."""


class FeedSource(WebSource):
    type = "feed"
    settings_model = FeedSourceSettings

    def poll(self, state: dict[str, str]) -> PollResult:
        fetched = self.fetch_if_changed(state, accept=ACCEPT)
        if fetched.not_modified:
            return PollResult(state=dict(state), not_modified=True)
        result = PollResult(complete=False, state=validators(fetched))
        if _is_json(fetched):
            self._read_json_feed(fetched, result)
        else:
            self._read_xml_feed(fetched, result)
        return result

    # --- RSS and Atom ----------------------------------------------------------------------------

    def _read_xml_feed(self, fetched: Fetched, result: PollResult) -> None:
        try:
            parsed = feedparser.parse(
                io.BytesIO(xml_bytes(fetched)),
                response_headers={"content-type": "application/xml; charset=utf-8"},
            )
        except Exception as exc:  # feedparser lets some broken input escape as anything at all
            raise self.error(f"not a readable feed: {type(exc).__name__}: {exc}", fetched.url) from exc
        entries = parsed.get("entries") or []
        if not entries and parsed.get("bozo"):
            problem = _describe(parsed.get("bozo_exception"))
            raise self.error(f"not a readable feed: {problem}", fetched.url)
        if not entries and not parsed.get("version"):
            raise self.error("not an RSS, Atom or JSON feed", fetched.url)
        if parsed.get("bozo"):
            problem = _describe(parsed.get("bozo_exception"))
            message = f"feed is malformed ({problem}); read {len(entries)} entries anyway"
            result.errors.append(self.error(message, fetched.url))
        channel = parsed.get("feed", {})
        # Relative entry links (xml:base aside) are relative to the site the feed describes.
        base = _absolute(channel.get("link"), fetched.url) or fetched.url
        for entry in entries:
            try:
                result.drafts.append(self._entry_draft(entry, base, channel.get("language")))
            except ValueError as exc:
                result.errors.append(self.error(str(exc), fetched.url))

    def _entry_draft(self, entry: Any, base: str, language: str | None) -> Draft:
        title = str(entry.get("title") or "")
        if (entry.get("title_detail") or {}).get("type") in ("text/html", "application/xhtml+xml"):
            title = html_to_text(title)
        link = _absolute(entry.get("link"), base)
        if not link:
            raise ValueError(f"entry {title or '(untitled)'!r} has no link; skipped")
        summary = str(entry.get("summary") or "")
        content = _entry_content(entry) or summary
        author = (entry.get("author_detail") or {}).get("name") or entry.get("author")
        labels = [t.get("label") or t.get("term") for t in entry.get("tags") or []]
        return Draft(
            url=link,
            title=title,
            content=content,
            summary="" if summary == content else summary,
            image=_absolute(_entry_image(entry), link),
            author=str(author) if author else None,
            categories=self.categories([str(label) for label in labels if label]),
            language=str(language) if language else None,
            published=self._date(entry, "published"),
            updated=self._date(entry, "updated"),
        )

    def _date(self, entry: Any, key: str) -> datetime | None:
        """The entry's date: read in the site's zone when it names none, else feedparser's UTC."""
        raw = entry.get(key)
        if raw and (when := parse_date(str(raw), zone(self.site.timezone))):
            return when
        parsed = entry.get(f"{key}_parsed")
        try:
            if parsed:
                return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
        except (OverflowError, OSError, ValueError):  # year 0 or 10000 once shifted to UTC
            pass
        return None  # unreadable: no date

    # --- JSON Feed 1.0 / 1.1 ---------------------------------------------------------------------

    def _read_json_feed(self, fetched: Fetched, result: PollResult) -> None:
        try:
            data = json_body(fetched)
        except ValueError as exc:
            raise self.error(f"not a readable JSON Feed: {exc}", fetched.url) from None
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, str) or not version.startswith(_JSON_FEED_VERSION):
            raise self.error("not a JSON Feed (no jsonfeed.org version)", fetched.url)
        items = data.get("items")
        if not isinstance(items, list):
            raise self.error("JSON Feed has no 'items' list", fetched.url)
        for index, item in enumerate(items):
            try:
                result.drafts.append(self._item_draft(item, data, fetched.url))
            except ValueError as exc:
                result.errors.append(self.error(f"item #{index + 1}: {exc}", fetched.url))

    def _item_draft(self, item: Any, feed: dict[str, Any], base: str) -> Draft:
        if not isinstance(item, dict):
            raise ValueError("an item must be an object; skipped")
        title = _text(item.get("title"))
        identifier = _text(item.get("id"))
        link = _absolute(item.get("url"), base) or (identifier if is_http_url(identifier) else None)
        if not link:
            raise ValueError(f"entry {title or '(untitled)'!r} has no link; skipped")
        content = _text(item.get("content_html")) or _paragraphs(_text(item.get("content_text")))
        author = first(_author_names(item) or _author_names(feed))
        image = _text(item.get("image")) or _text(item.get("banner_image"))
        language = _text(item.get("language")) or _text(feed.get("language"))
        return Draft(
            url=link,
            title=title,
            content=content,
            summary=_text(item.get("summary")),
            image=_absolute(image, link),
            author=str(author) if author else None,
            categories=self.categories([]),
            tags=[tag for tag in listed(item.get("tags")) if isinstance(tag, str)],
            language=language or None,
            published=_text(item.get("date_published")) or None,
            updated=_text(item.get("date_modified")) or None,
        )


def _is_json(fetched: Fetched) -> bool:
    content_type = fetched.headers.get("content-type", "").lower()
    return "json" in content_type or fetched.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _entry_content(entry: Any) -> str:
    """`content:encoded` / Atom content, HTML preferred over plain text."""
    parts = entry.get("content") or []
    for part in parts:
        if "html" in str(part.get("type", "")) and part.get("value"):
            return str(part["value"])
    for part in parts:
        if part.get("value"):
            return _paragraphs(str(part["value"]))
    return ""


def _entry_image(entry: Any) -> str | None:
    """The first image among enclosures, media:content and media:thumbnail."""
    for enclosure in entry.get("enclosures") or []:
        if str(enclosure.get("type", "")).startswith("image/") and enclosure.get("href"):
            return str(enclosure["href"])
    for media in entry.get("media_content") or []:
        url = str(media.get("url") or "")
        kind = str(media.get("type") or media.get("medium") or "")
        looks_like_image = not kind and url.lower().endswith(_IMAGE_SUFFIXES)
        if url and (kind.startswith("image") or looks_like_image):
            return url
    for thumbnail in entry.get("media_thumbnail") or []:
        if thumbnail.get("url"):
            return str(thumbnail["url"])
    return None


def _absolute(url: Any, base: str) -> str | None:
    return absolute(url, base) if isinstance(url, str) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _paragraphs(text: str) -> str:
    """Plain text as HTML paragraphs."""
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{html.escape(block)}</p>" for block in blocks if block)


def _author_names(data: dict[str, Any]) -> list[str]:
    """JSON Feed 1.1 `authors`, or 1.0's single `author`."""
    authors = listed(data.get("authors")) or [data.get("author")]
    return [str(a["name"]) for a in authors if isinstance(a, dict) and a.get("name")]


def _describe(exc: Any) -> str:
    """A SAX error as 'line N: message', anything else as its text."""
    if exc is None:
        return "unknown parse error"
    if hasattr(exc, "getLineNumber") and hasattr(exc, "getMessage"):
        return f"line {exc.getLineNumber()}: {exc.getMessage()}"
    return str(exc) or type(exc).__name__
