"""One article out of one HTML page: the layers run in trust order, then the body is cleaned.

Each field is taken from the most trustworthy layer that has it (see the package docstring);
a page with no title or no body is no article, and says why.
"""

from __future__ import annotations

import re
from datetime import tzinfo

from lxml import etree
from lxml import html as lxml_html
from selectolax.lexbor import LexborHTMLParser

from distributor import text as textlib
from distributor.extract.body import main_text
from distributor.extract.fields import Fields
from distributor.extract.layout import Layout
from distributor.extract.meta import canonical, from_declarations, language
from distributor.extract.portal import from_layout
from distributor.extract.selectors import check_selectors, from_selectors
from distributor.extract.tidy import tidy
from distributor.normalize import Draft
from distributor.urls import absolute

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def extract_article(html: str, url: str, *, selectors: dict[str, str] | None = None, tz: tzinfo) -> Draft:
    """The article on the page at `url`; ValueError("no article found ...") when there is none."""
    selectors = check_selectors(selectors)
    markup = _XML_DECLARATION.sub("", textlib.nfc(html), count=1)
    if not markup.strip():
        raise ValueError(f"no article found at {url}: the page is empty")
    try:
        root = lxml_html.document_fromstring(markup)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"no article found at {url}: the HTML cannot be parsed ({exc})") from exc

    found = Fields()
    if selectors:
        from_selectors(found, LexborHTMLParser(markup), selectors, tz)
    page = Layout(root)
    from_declarations(found, page, tz)
    from_layout(found, page, tz)
    found.offer(title=page.fallback_title(found.categories))
    page_canonical, page_language = canonical(root, url), language(root)
    if not found.content:
        found.content = main_text(root, url)  # last: it rewrites the tree
    found.content = tidy(found.content, found.title, found.categories)
    found.offer(image=_first_image(found.content))

    if not found.title:
        raise ValueError(f"no article found at {url}: no title")
    if not textlib.html_to_text(found.content) and "<img" not in found.content:
        raise ValueError(f"no article found at {url}: no body text")
    return Draft(
        url=url,
        title=found.title,
        content=found.content,
        summary=found.summary,
        image=absolute(found.image, url),
        author=found.author or None,
        categories=found.categories,
        tags=found.tags,
        language=page_language,
        published=found.published,
        updated=found.updated,
        canonical=page_canonical,
    )


def _first_image(content: str) -> str:
    match = re.search(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", content)
    return match.group(1) if match else ""
