"""OPML 2.0 subscription list of every feed (/feeds.opml), so a reader can import them at once."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from distributor import text as textlib
from distributor.feeds.spec import FORMATS, FeedSpec, feed_url


def render_opml(title: str, specs: Sequence[FeedSpec], fmt: str = "rss") -> bytes:
    """One outline per feed; xmlUrl in `fmt`. No dateCreated: equal input gives equal bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown feed format {fmt!r} (known: {', '.join(FORMATS)})")
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = textlib.clean_text(title)
    body = etree.SubElement(root, "body")
    for spec in specs:
        name = textlib.clean_text(spec.title) or spec.name
        outline = etree.SubElement(body, "outline", type="rss", text=name, title=name)
        outline.set("xmlUrl", feed_url(spec, fmt))
        outline.set("htmlUrl", spec.site_url)
        description = textlib.clean_text(spec.description)
        if description:
            outline.set("description", description)
        if spec.language:
            outline.set("language", spec.language)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True))
