"""The article links on a listing page, for sources that find their articles by following links."""

from __future__ import annotations

from urllib.parse import urldefrag

from selectolax.lexbor import LexborHTMLParser

from distributor import text as textlib
from distributor.extract.selectors import check_css
from distributor.urls import absolute, is_http_url


def extract_links(html: str, base_url: str, link_selector: str) -> list[str]:
    """Absolute http(s) links of the elements `link_selector` matches, first-seen order, no repeats.

    A matched element that is not a link stands for the first link inside it, so a selector may
    name the list item rather than its anchor.
    """
    return list(listing_entries(html, base_url, link_selector))


def listing_entries(html: str, base_url: str, link_selector: str) -> dict[str, str]:
    """Like `extract_links`, each link with the text the page shows for it (title, or whole item).

    A listing source compares these texts between polls to notice an edited article.
    """
    tree = LexborHTMLParser(textlib.nfc(html))
    base = base_url
    if (base_node := tree.css_first("base[href]")) is not None:
        base = absolute(base_node.attributes.get("href"), base_url) or base_url
    entries: dict[str, list[str]] = {}
    for node in tree.css(check_css(link_selector)):
        anchor = node if node.attributes.get("href") is not None else node.css_first("[href]")
        href = (anchor.attributes.get("href") or "").strip() if anchor else ""
        link = absolute(href, base) if href and not href.startswith("#") else None
        link = urldefrag(link).url if link else ""
        if is_http_url(link):
            entries.setdefault(link, []).append(textlib.clean_text(node.text(separator=" ")))
    return {link: " ".join(t for t in texts if t) for link, texts in entries.items()}
