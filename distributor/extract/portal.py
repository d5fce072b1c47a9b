"""Layer 3: what the page shows people, for pages that declare nothing.

Government portals on SharePoint have no JSON-LD and no meta tags: their date is the date line
("Thứ 3, Ngày 13/07/2021, 21:00"), their title the heading next to it, their category the end
of the breadcrumb or the section heading above.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from lxml import html as lxml_html

from distributor import text as textlib
from distributor.dates import parse_date
from distributor.extract.dateline import DATE_HINT, DATE_LINE_MAX, TIME_HINT
from distributor.extract.fields import Fields, unique
from distributor.extract.layout import Layout, fits_title, hint

_NEAR = 60  # elements around the date line where its title and section heading are looked for
_HEADINGS = {"h1", "h2", "h3", "h4"}
_TITLE_HINT = re.compile(r"title|tieu-?de|headline|heading", re.IGNORECASE)
_BREADCRUMB_HINT = re.compile(r"breadcrumb|duong-?dan", re.IGNORECASE)
_HOME = re.compile(r"^(trang chủ|trang nhất|trang chính|home)$", re.IGNORECASE)


@dataclass
class _Heading:
    element: lxml_html.HtmlElement
    text: str
    distance: int
    after: bool  # after the anchor in document order


def from_layout(found: Fields, page: Layout, tz: tzinfo) -> None:
    """The portal layer: the date line, the heading beside it, the breadcrumb or section heading."""
    crumbs = _breadcrumb(page)
    dated = _date_line(page, tz)
    headings: list[_Heading] = []
    if dated is not None:
        line, when = dated
        found.offer(published=when)
        # A category name is short; the title may end the breadcrumb too, so long labels stay in.
        headings = _headings_near(page, line, [c for c in crumbs if len(c) <= 60])
        if not found.title and headings:
            best = min(headings, key=_title_score(page))
            if fits_title(best.text):
                found.title = best.text
    title = found.title.casefold()
    found.offer(categories=[c for c in crumbs if c.casefold() != title][-1:])
    if found.title:
        above = [h for h in headings if not h.after and len(h.text) <= 60 and h.text != found.title]
        found.offer(categories=[min(above, key=lambda h: h.distance).text] if above else [])


def _date_line(page: Layout, tz: tzinfo) -> tuple[lxml_html.HtmlElement, datetime] | None:
    """The first short element that reads as a date; one with a time wins among the first 3."""
    candidates: list[tuple[lxml_html.HtmlElement, datetime, bool]] = []
    for element in page.elements:
        if element in page.chrome or not DATE_HINT.search(_own_text(element)):
            continue
        block = _short_block(element)
        if block is None or any(block is seen for seen, _, _ in candidates):
            continue
        text = textlib.clean_text(block.text_content())
        when = parse_date(text, tz)
        if when is not None:
            candidates.append((block, when, bool(TIME_HINT.search(text))))
        if len(candidates) == 3:
            break
    if not candidates:
        return None
    block, when, _ = next((c for c in candidates if c[2]), candidates[0])
    return block, when


def _headings_near(page: Layout, anchor: lxml_html.HtmlElement, exclude: Iterable[str]) -> list[_Heading]:
    """Heading-like elements around `anchor`, with their distance to it in elements."""
    excluded = {label.casefold() for label in exclude}
    start, end = page.order[anchor], page.last[anchor]
    found: list[_Heading] = []
    for index in range(max(0, start - _NEAR), min(len(page.elements), end + _NEAR)):
        element = page.elements[index]
        if start <= index <= end or element in page.chrome or not _looks_like_heading(element):
            continue
        text = textlib.clean_text(element.text_content())
        if not text or text.casefold() in excluded or DATE_HINT.search(text):
            continue
        after = index > end
        distance = index - end if after else start - page.last[element]
        if distance > 0:
            found.append(_Heading(element, text, distance, after))
    return found


def _breadcrumb(page: Layout) -> list[str]:
    """The first breadcrumb's labels, home left out (categories are read from its end)."""
    for element in page.elements:
        if element.tag in ("a", "li") or not _BREADCRUMB_HINT.search(hint(element)):
            continue
        items = element.xpath(".//li")
        items = items if len(items) >= 2 else element.xpath(".//a")
        labels = unique(item.text_content() for item in items)
        labels = [label for label in labels if len(label) <= 80 and not _HOME.match(label)]
        if len(items) >= 2 and labels:
            return labels
    return []


def _title_score(page: Layout) -> Callable[[_Heading], tuple[int, int, int, int]]:
    """Sort key: named in the <title> tab, a title's length, nearness (h1/"title" class nearer)."""
    tab = page.tab_title().casefold()

    def score(heading: _Heading) -> tuple[int, int, int, int]:
        strong = heading.element.tag == "h1" or bool(_TITLE_HINT.search(hint(heading.element)))
        in_tab = bool(tab) and heading.text.casefold() in tab
        return (
            not in_tab,
            not fits_title(heading.text),
            heading.distance + (0 if strong else 3),
            not heading.after,
        )

    return score


def _looks_like_heading(element: lxml_html.HtmlElement) -> bool:
    return element.tag in _HEADINGS or bool(_TITLE_HINT.search(hint(element)))


def _own_text(element: lxml_html.HtmlElement) -> str:
    return (element.text or "") + "".join(child.tail or "" for child in element)


def _short_block(element: lxml_html.HtmlElement) -> lxml_html.HtmlElement | None:
    """The largest ancestor-or-self of a date text that is still a short line, or None."""
    if len(textlib.clean_text(element.text_content())) > DATE_LINE_MAX:
        return None
    block = element
    parent = block.getparent()
    while parent is not None and parent.tag not in ("body", "html", "form"):
        if len(textlib.clean_text(parent.text_content())) > DATE_LINE_MAX:
            break
        block, parent = parent, parent.getparent()
    return block
