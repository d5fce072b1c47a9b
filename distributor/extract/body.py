"""The article's main text, by trafilatura, when no selector names it.

Menus and layout tables are taken out first: trafilatura's own pruning misses both when it
falls back to its baseline extractor, and then keeps a whole table-based page, footer included.
"""

from __future__ import annotations

import re

import trafilatura
from lxml import html as lxml_html

_WHOLE_PAGE = re.compile(r"\s*<html>\s*<body>\s*<p>([^<]*)</p>\s*</body>\s*</html>\s*")
_NEVER_BODY = ("nav", "footer", "aside", "select", "button", "noscript", "template")
# A table holding any of these lays out a page; a data or image table does not.
_LAYOUT_INSIDE = (
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "form", "nav", "iframe", "table",
)  # fmt: skip


def main_text(root: lxml_html.HtmlElement, url: str) -> str:
    """trafilatura's main text, as HTML, of the page without menus and with flat layout tables.

    It rewrites the tree, so it runs after every layer that reads the page.
    """
    for element in root.xpath("|".join(f"//{tag}" for tag in _NEVER_BODY)):
        element.drop_tree()
    inside = " or ".join(f"self::{tag}" for tag in _LAYOUT_INSIDE)
    for table in root.xpath(f"//table[.//*[{inside}]]"):
        for part in table.xpath("self::table|./*|./*/tr|./tr/*|./*/tr/*"):
            part.tag = "div"
    extracted = trafilatura.extract(
        root,
        url=url,
        output_format="html",
        include_images=True,
        include_links=True,
        include_tables=True,
        include_comments=False,
        include_formatting=True,
    )
    dump = _WHOLE_PAGE.fullmatch(extracted or "")
    if dump and dump.group(1).count("\n") >= 3:
        return ""  # trafilatura's last resort, every text of the page in one block: no article
    return extracted or ""
