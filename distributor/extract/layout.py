"""The page in document order with its chrome (menus, footers, share boxes) marked.

The declared and portal layers must not take a date or heading from a menu or a "related news"
box; they ask this model what is chrome. It also gives the plain fallbacks: `<h1>`, `<title>`.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

from distributor import text as textlib

_TITLE_RANGE = (10, 300)
_CHROME_TAGS = {"nav", "footer", "aside", "script", "style", "noscript", "select", "button"}
_CHROME_HINT = re.compile(
    r"nav|menu|footer|sidebar|ribbon|banner|comment|related|share|social|widget|advert|quang-?cao",
    re.IGNORECASE,
)


class Layout:
    """The page in document order, with the chrome (menus, footers, share boxes) marked."""

    def __init__(self, root: lxml_html.HtmlElement) -> None:
        self.root = root
        self.elements: list[lxml_html.HtmlElement] = []
        self.order: dict[lxml_html.HtmlElement, int] = {}
        self.last: dict[lxml_html.HtmlElement, int] = {}
        self.chrome: set[lxml_html.HtmlElement] = set()
        opened: list[bool] = []
        depth = 0
        for event, element in etree.iterwalk(root, events=("start", "end")):
            if not isinstance(element.tag, str):
                continue  # comments and processing instructions
            if event == "start":
                self.order[element] = len(self.elements)
                self.elements.append(element)
                is_chrome = _is_chrome(element)
                opened.append(is_chrome)
                depth += is_chrome
                if depth:
                    self.chrome.add(element)
            else:
                self.last[element] = len(self.elements) - 1
                depth -= opened.pop()

    def fallback_title(self, categories: list[str]) -> str:
        excluded = {label.casefold() for label in categories}
        for element in self.root.iter("h1"):
            text = textlib.clean_text(element.text_content())
            if element not in self.chrome and fits_title(text) and text.casefold() not in excluded:
                return text
        return self.tab_title()

    def tab_title(self) -> str:
        title = self.root.find(".//title")
        return textlib.clean_text(title.text_content()) if title is not None else ""


def fits_title(text: str) -> bool:
    return _TITLE_RANGE[0] <= len(text) <= _TITLE_RANGE[1]


def hint(element: lxml_html.HtmlElement) -> str:
    """The element's id and class, where templates name what a block is for."""
    return f"{element.get('id', '')} {element.get('class', '')}"


def _is_chrome(element: lxml_html.HtmlElement) -> bool:
    if element.tag in _CHROME_TAGS:
        return True
    if element.tag in ("html", "body", "form"):
        return False  # SharePoint wraps the whole page in one form
    if "display:none" in (element.get("style") or "").replace(" ", "").lower():
        return True
    if not _CHROME_HINT.search(hint(element)):
        return False
    # A class is only a hint: a column named "sidebar-1" may hold the article itself.
    return not element.xpath("boolean(.//h1 | .//article | .//p[3])")
