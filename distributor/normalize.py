"""Turn what a source found (a Draft) into a clean Article.

NFC everywhere, collapsed whitespace, sanitised HTML with absolute URLs, aware datetimes in the
site's zone, and a summary cut from the body when the source gave none. Title, author, categories
and tags are plain text (no tags, entities decoded): feeds, posts and subjects print them as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import nh3
from lxml import html as lxml_html

from distributor import text as textlib
from distributor.dates import in_zone, parse_date
from distributor.models import Article
from distributor.urls import absolute, article_id, canonical_url, is_http_url

SUMMARY_LENGTH = 300

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
    "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "li", "ol",
    "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


@dataclass
class Draft:
    """An article as a source found it: loose types, possibly relative URLs and naive dates."""

    url: str
    title: str = ""
    content: str = ""  # HTML
    summary: str = ""
    image: str | None = None
    author: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    language: str | None = None
    published: datetime | str | None = None
    updated: datetime | str | None = None
    canonical: str | None = None  # <link rel=canonical>, wins over url for the identity


def sanitize_html(markup: str, base_url: str) -> str:
    """Allow-listed HTML (no scripts, styles, handlers), links and images made absolute."""
    markup = textlib.nfc(markup)
    if not markup.strip():
        return ""
    cleaned = nh3.clean(
        markup,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener",
    )
    if not cleaned.strip():
        return ""
    fragment = lxml_html.fragment_fromstring(cleaned, create_parent="div")
    fragment.make_links_absolute(base_url, resolve_base_href=False, handle_failures="discard")
    inner = "".join(lxml_html.tostring(child, encoding="unicode") for child in fragment)
    return ((fragment.text or "") + inner).strip()


def _clean_labels(labels: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in (textlib.plain_text(label) for label in labels) if c))


def _when(value: datetime | str | None, tz: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        return in_zone(value, tz)
    return parse_date(value, tz)


def is_dated(draft: Draft, tz: tzinfo) -> bool:
    """True when the draft has a date `normalize` can read; an unreadable one is no date."""
    return _when(draft.published, tz) is not None or _when(draft.updated, tz) is not None


def normalize(draft: Draft, *, source: str, tz: tzinfo, language: str, now: datetime) -> Article:
    """Build the Article; raises ValueError naming what is missing (no URL, no title)."""
    raw_url = (draft.canonical or draft.url or "").strip()
    if not raw_url or not is_http_url(raw_url):
        raise ValueError(f"article has no absolute http(s) URL (got {raw_url!r})")
    url = canonical_url(raw_url)
    title = textlib.plain_text(draft.title)
    if not title:
        raise ValueError(f"article {url} has no title")
    content = sanitize_html(draft.content or "", url)
    summary = textlib.clean_text(draft.summary)
    if "<" in summary:
        summary = textlib.clean_text(textlib.html_to_text(summary))
    if not summary and content:
        summary = textlib.summarize(textlib.html_to_text(content), SUMMARY_LENGTH)
    published = _when(draft.published, tz) or _when(draft.updated, tz) or now.astimezone(tz)
    updated = _when(draft.updated, tz) or published
    if updated < published:
        updated = published
    image = absolute(draft.image, url) if draft.image else None
    return Article(
        id=article_id(url),
        url=url,
        title=title,
        summary=summary,
        content=content,
        image=image if image and is_http_url(image) else None,
        author=textlib.plain_text(draft.author) or None,
        categories=_clean_labels(draft.categories),
        tags=_clean_labels(draft.tags),
        language=(draft.language or language or "vi").strip().lower(),
        published=published,
        updated=updated,
        source=source,
    )
