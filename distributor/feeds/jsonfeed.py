"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1); feedgen has no writer for it.

Keys are written in a fixed order and dates come from the articles, so equal input gives equal
bytes (stable ETags), like the XML formats.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from distributor import text as textlib
from distributor.feeds.spec import Entry, FeedSpec, feed_url

VERSION = "https://jsonfeed.org/version/1.1"

# Article bodies are most of a feed's bytes, and json's escaper is slow on non-ASCII text (a third
# of a whole rebuild). Bodies are written as placeholders, then spliced in as UTF-8 escaped with
# bytes.replace, which is several times faster. Cleaned strings never hold U+0000, so the
# placeholder's JSON form cannot occur anywhere else.
_PLACEHOLDER = "\x00"
_PLACEHOLDER_JSON = b'"\\u0000"'
_ESCAPES = ((b"\\", b"\\\\"), (b'"', b'\\"'), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\t", b"\\t"))


def _item(entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.id, "url": entry.url, "title": entry.title}
    # The spec requires content_html or content_text; a bodiless article still has its summary.
    if entry.content:
        item["content_html"] = _PLACEHOLDER
    else:
        item["content_text"] = entry.summary or entry.title
    if entry.summary:
        item["summary"] = entry.summary
    if entry.image:
        item["image"] = entry.image
    item["date_published"] = entry.published.isoformat()
    item["date_modified"] = entry.updated.isoformat()
    if entry.author:
        item["authors"] = [{"name": entry.author}]
    if entry.labels:
        item["tags"] = list(entry.labels)
    if entry.language:
        item["language"] = entry.language
    return item


def _document(spec: FeedSpec, entries: Sequence[Entry]) -> dict[str, Any]:
    """The JSON Feed document, bodies as placeholders."""
    title = textlib.clean_text(spec.title) or spec.name
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": title,
        "home_page_url": spec.site_url,
        "feed_url": feed_url(spec, "json"),
        "description": textlib.clean_text(spec.description) or title,
    }
    if spec.language:
        feed["language"] = spec.language
    if spec.image:
        feed["icon"] = spec.image
    feed["authors"] = [{"name": textlib.clean_text(spec.author) or title, "url": spec.site_url}]
    if spec.hubs:
        feed["hubs"] = [{"type": "WebSub", "url": hub} for hub in spec.hubs]
    feed["items"] = [_item(entry) for entry in entries]
    return feed


def json_body(xml_legal: bytes) -> bytes:
    """UTF-8 text as json.dumps writes it between the quotes (ensure_ascii=False).

    The text must be XML-legal, as every Entry body is: then the only control characters left
    are tab, line feed and carriage return, and five replacements escape everything JSON needs.
    """
    for plain, escaped in _ESCAPES:
        xml_legal = xml_legal.replace(plain, escaped)
    return xml_legal


def render_json(spec: FeedSpec, entries: Sequence[Entry]) -> bytes:
    document = _document(spec, entries)
    skeleton = json.dumps(document, ensure_ascii=False).encode("utf-8")
    bodies = [json_body(entry.content_utf8) for entry in entries if entry.content]
    pieces = skeleton.split(_PLACEHOLDER_JSON)
    if len(pieces) != len(bodies) + 1:  # cannot happen with cleaned input; stay correct anyway
        for item, entry in zip(document["items"], entries, strict=True):
            if entry.content:
                item["content_html"] = entry.content
        return json.dumps(document, ensure_ascii=False).encode("utf-8")
    out = [pieces[0]]
    for body, piece in zip(bodies, pieces[1:], strict=True):
        out += (b'"', body, b'"', piece)
    return b"".join(out)
