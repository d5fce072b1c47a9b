"""Layer 1: the source's own CSS `selectors` (the operator knows the site), and their validation.

Validation runs when the settings load, so a typo fails at startup rather than on every poll.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from distributor import text as textlib
from distributor.dates import parse_date
from distributor.extract.fields import Fields, unique

SELECTOR_KEYS = ("title", "published", "updated", "content", "image", "category", "author")


def check_css(selector: str) -> str:
    """The selector, or ValueError when it does not parse as CSS."""
    try:
        LexborHTMLParser("<p></p>").css(selector)
    except SelectolaxError:
        raise ValueError(f"not a valid CSS selector: {selector!r}") from None
    return selector


def check_selectors(selectors: dict[str, str] | None) -> dict[str, str]:
    """The selectors, or ValueError naming an unknown key or a selector that does not parse."""
    selectors = dict(selectors or {})
    unknown = sorted(set(selectors) - set(SELECTOR_KEYS))
    if unknown:
        known = ", ".join(SELECTOR_KEYS)
        raise ValueError(f"unknown selector key(s) {', '.join(unknown)}; known keys: {known}")
    for key, selector in selectors.items():
        try:
            check_css(selector)
        except ValueError as exc:
            raise ValueError(f"selector {key!r}: {exc}") from None
    return selectors


def from_selectors(found: Fields, tree: LexborHTMLParser, selectors: dict[str, str], tz: tzinfo) -> None:
    """Offer what the selectors point at: the first match for a field, every match for categories."""

    def first(key: str) -> LexborNode | None:
        return tree.css_first(selectors[key]) if key in selectors else None

    def when(key: str) -> datetime | None:
        node = first(key)
        if node is None:
            return None
        attributes = node.attributes
        raw = attributes.get("datetime") or attributes.get("content") or node.text(separator=" ")
        return parse_date(textlib.clean_text(raw), tz)

    title, content, image, author = (
        first("title"),
        first("content"),
        first("image"),
        first("author"),
    )
    found.offer(
        title=textlib.clean_text(title.text(separator=" ")) if title else "",
        published=when("published"),
        updated=when("updated"),
        content=(content.inner_html or "") if content else "",
        image=_node_image(image) if image else "",
        author=textlib.clean_text(author.text(separator=" ")) if author else "",
    )
    if "category" in selectors:
        labels = (textlib.clean_text(node.text(separator=" ")) for node in tree.css(selectors["category"]))
        found.offer(categories=unique(labels))


def _node_image(node: LexborNode) -> str:
    attributes = node.attributes
    if node.tag != "img" and attributes.get("content") is None and attributes.get("href") is None:
        inner = node.css_first("img")
        attributes = inner.attributes if inner else attributes
    for name in ("src", "data-src", "content", "href"):
        value = attributes.get(name)
        if value and value.strip():
            return value.strip()
    return ""
