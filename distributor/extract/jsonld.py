"""The article objects a page declares in JSON-LD, and the loose shapes schema.org values take.

Publishers write JSON-LD by hand or by plugin: a value may be a string, a list, an object with
`name` or `@value`, or nested in an `@graph`; each reader here accepts all of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from lxml import html as lxml_html

from distributor.extract.fields import unique

ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenews", "analysisnewsarticle"}


def json_ld_articles(root: lxml_html.HtmlElement) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object of an article type, in document order, broken scripts skipped."""
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "", strict=False)
        except (ValueError, RecursionError):  # RecursionError: arrays nested 100 000 deep
            continue  # broken JSON-LD is common; the page still has its other layers
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(_as_items(item.get("@graph")))
                kinds = {str(kind).lower() for kind in _as_items(item.get("@type"))}
                if kinds & ARTICLE_TYPES:
                    yield item


def _as_items(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def ld_text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name") or ""
    return str(value) if isinstance(value, str | int | float) else ""


def ld_url(value: Any) -> str:
    for item in _as_items(value):
        if isinstance(item, str) and item.strip():
            return item.strip()
        if isinstance(item, dict):
            found = item.get("url") or item.get("contentUrl") or item.get("@id")
            if isinstance(found, str) and found.strip():
                return found.strip()
    return ""


def ld_names(value: Any) -> list[str]:
    return unique(ld_text(item) for item in _as_items(value))


def ld_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return unique(value.split(","))
    return unique(ld_text(item) for item in _as_items(value))
