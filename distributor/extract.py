"""One article out of one HTML page: title, dates, category, image and the main text, no chrome.

Each field is taken from the most trustworthy layer that has it:
1. the source's own CSS `selectors` (the operator knows the site);
2. what the page declares for machines: JSON-LD, Open Graph / `article:` meta tags, microdata,
   `<time datetime>`, `<link rel=canonical>`;
3. what the page shows people: the date line ("Thứ 3, Ngày 13/07/2021, 21:00") and the heading
   next to it, the breadcrumb. Government portals on SharePoint declare nothing, so this layer is
   what finds their title, date and category;
4. plain fallbacks: the page's `<h1>` and `<title>`.

The body comes from trafilatura, after layout tables are turned into divs (trafilatura otherwise
keeps a whole table-based page, footer included), and is then cleaned of the portal controls that
survive it (font size, view counter, share buttons, site footer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urldefrag, urljoin

import trafilatura
from lxml import etree
from lxml import html as lxml_html
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from distributor import text as textlib
from distributor.dates import parse_date
from distributor.normalize import Draft
from distributor.urls import is_http_url

SELECTOR_KEYS = ("title", "published", "updated", "content", "image", "category", "author")
ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenews", "analysisnewsarticle"}

_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_DATE_HINT = re.compile(
    r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}|ngày\s+\d{1,2}\s+tháng\s+\d{1,2}\s+năm\s+\d{4}", re.IGNORECASE
)
_TIME_HINT = re.compile(r"\d{1,2}\s*[:hg]\s*\d{2}")
_DATE_LINE_MAX = 80  # a date line is short; a date inside a paragraph is not the article's date
_TITLE_RANGE = (10, 300)
_NEAR = 60  # elements around the date line where its title and section heading are looked for
_HEADINGS = {"h1", "h2", "h3", "h4"}
_TITLE_HINT = re.compile(r"title|tieu-?de|headline|heading", re.IGNORECASE)
_BREADCRUMB_HINT = re.compile(r"breadcrumb|duong-?dan", re.IGNORECASE)
_HOME = re.compile(r"^(trang chủ|trang nhất|trang chính|home)$", re.IGNORECASE)
_WHOLE_PAGE = re.compile(r"\s*<html>\s*<body>\s*<p>([^<]*)</p>\s*</body>\s*</html>\s*")
_NEVER_BODY = ("nav", "footer", "aside", "select", "button", "noscript", "template")
_CHROME_TAGS = {"nav", "footer", "aside", "script", "style", "noscript", "select", "button"}
_CHROME_HINT = re.compile(
    r"nav|menu|footer|sidebar|ribbon|banner|comment|related|share|social|widget|advert|quang-?cao",
    re.IGNORECASE,
)
# A table holding any of these lays out a page; a data or image table does not.
_LAYOUT_INSIDE = (
    "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "form", "nav", "iframe", "table",
)  # fmt: skip

# Portal controls that may sit inside the article area: a block reading exactly like one is dropped.
_CONTROLS = re.compile(
    r"skip ribbon commands|skip to main content|turn (on|off) more accessible mode"
    r"|(cỡ chữ|font size|(số )?lượt (người )?(xem|đọc|truy cập)|views?|chia sẻ|share)\s*:.{0,80}"
    r"|(giảm|tăng) cỡ chữ|chia sẻ( bài viết)?|share( this)?|in bài( viết)?|bản in|in trang"
    r"|gửi (email|e-mail|bài viết|cho bạn bè)|lưu bài( viết)?|quay (lại|về)|trở (về|lại)"
    r"|(về|lên) đầu trang|back to top|ý kiến bạn đọc|gửi ý kiến|(viết )?bình luận",
    re.IGNORECASE,
)
_CONTROL_EDGES = " -|»«↑·:>"
# Lists of other articles after the body: cut from the heading on.
_MORE_NEWS = re.compile(
    r"^(các )?(tin|bài|bài viết) (liên quan|khác|cùng chuyên mục|cùng loại|mới hơn|cũ hơn|đã đưa)"
    r"\s*:?$|^xem thêm\s*:?$",
    re.IGNORECASE,
)
# A site footer that leaked in: cut from its first line on, if every line after it is short.
_FOOTER = re.compile(
    r"^(cổng thông tin điện tử|trang thông tin điện tử|số giấy phép|giấy phép số|cơ quan chủ quản"
    r"|chịu trách nhiệm|bản quyền|copyright|©)",
    re.IGNORECASE,
)
_SHORT_LINE = 200
_BLOCKS = (
    "p", "div", "li", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "span", "a", "em", "strong",
)  # fmt: skip
# Words a date line may hold besides the date and time ("Thứ 3, Ngày 13/07/2021, 21:00").
_DATE_WORDS = {
    "thứ", "hai", "ba", "tư", "năm", "sáu", "bảy", "chủ", "nhật", "ngày", "lúc", "cập", "đăng",
    "giờ", "gmt", "am", "pm", "sáng", "chiều", "tối",
}  # fmt: skip


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
        base = urljoin(base_url, (base_node.attributes.get("href") or "").strip())
    entries: dict[str, list[str]] = {}
    for node in tree.css(check_css(link_selector)):
        anchor = node if node.attributes.get("href") is not None else node.css_first("[href]")
        href = (anchor.attributes.get("href") or "").strip() if anchor else ""
        link = urldefrag(urljoin(base, href)).url if href and not href.startswith("#") else ""
        if is_http_url(link):
            entries.setdefault(link, []).append(textlib.clean_text(node.text(separator=" ")))
    return {link: " ".join(t for t in texts if t) for link, texts in entries.items()}


@dataclass
class _Fields:
    """What the layers found; the first layer to set a field wins."""

    title: str = ""
    published: datetime | None = None
    updated: datetime | None = None
    content: str = ""
    summary: str = ""
    image: str = ""
    author: str = ""
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def offer(self, **values: Any) -> None:
        for name, value in values.items():
            if value and not getattr(self, name):
                setattr(self, name, value)


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

    found = _Fields()
    if selectors:
        _from_selectors(found, LexborHTMLParser(markup), selectors, tz)
    page = _Layout(root)
    _from_declarations(found, page, tz)
    _from_layout(found, page, tz)
    found.offer(title=page.fallback_title(found.categories))
    canonical, language = _canonical(root, url), _language(root)
    if not found.content:
        found.content = _main_text(root, url)  # last: it rewrites the tree
    found.content = _tidy(found.content, found.title, found.categories)
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
        image=urljoin(url, found.image) if found.image else None,
        author=found.author or None,
        categories=found.categories,
        tags=found.tags,
        language=language,
        published=found.published,
        updated=found.updated,
        canonical=canonical,
    )


# --- layer 1: the source's selectors ----------------------------------------------------------


def _from_selectors(found: _Fields, tree: LexborHTMLParser, selectors: dict[str, str], tz: tzinfo) -> None:
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
        found.offer(categories=_unique(labels))


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


# --- layer 2: what the page declares ---------------------------------------------------------


def _from_declarations(found: _Fields, page: _Layout, tz: tzinfo) -> None:
    root = page.root
    for item in _json_ld_articles(root):
        found.offer(
            title=textlib.clean_text(_ld_text(item.get("headline") or item.get("name"))),
            published=parse_date(_ld_text(item.get("datePublished")), tz),
            updated=parse_date(_ld_text(item.get("dateModified")), tz),
            summary=textlib.clean_text(_ld_text(item.get("description"))),
            image=_ld_url(item.get("image") or item.get("thumbnailUrl")),
            author=", ".join(_ld_names(item.get("author"))),
            categories=_ld_list(item.get("articleSection")),
            tags=_ld_list(item.get("keywords")),
        )
    meta = _meta(root)

    def one(*names: str) -> str:
        return next((meta[n][0] for n in names if meta.get(n)), "")

    found.offer(
        title=one("og:title", "twitter:title"),
        published=parse_date(one("article:published_time", "datepublished", "pubdate"), tz),
        updated=parse_date(one("article:modified_time", "og:updated_time", "datemodified"), tz),
        summary=one("og:description", "twitter:description"),  # plain description: site-wide
        image=one("og:image", "og:image:url", "og:image:secure_url", "twitter:image"),
        author=one("author", "article:author"),
        categories=_unique(meta.get("article:section", [])),
        tags=_unique(tag for value in meta.get("article:tag", []) for tag in value.split(",")),
    )
    found.offer(
        title=_itemprop(root, "headline"),
        published=parse_date(_itemprop(root, "datePublished"), tz),
        updated=parse_date(_itemprop(root, "dateModified"), tz),
        author=_itemprop(root, "author"),
    )
    times = (t for t in root.iter("time") if t.get("datetime") and t not in page.chrome)
    found.offer(published=parse_date(next(times, root).get("datetime"), tz))


def _meta(root: lxml_html.HtmlElement) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for tag in root.iter("meta"):
        name = (tag.get("property") or tag.get("name") or tag.get("itemprop") or "").strip().lower()
        content = textlib.clean_text(tag.get("content"))
        if name and content:
            values.setdefault(name, []).append(content)
    return values


def _itemprop(root: lxml_html.HtmlElement, name: str) -> str:
    for node in root.xpath("//*[@itemprop=$name]", name=name):
        if node.tag == "meta":
            continue  # read with the other meta tags
        value = node.get("datetime") or node.get("content") or node.text_content()
        if value and value.strip():
            return textlib.clean_text(value)
    return ""


def _json_ld_articles(root: lxml_html.HtmlElement) -> Iterator[dict[str, Any]]:
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
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


def _ld_text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    if isinstance(value, dict):
        value = value.get("@value") or value.get("name") or ""
    return str(value) if isinstance(value, str | int | float) else ""


def _ld_url(value: Any) -> str:
    for item in _as_items(value):
        if isinstance(item, str) and item.strip():
            return item.strip()
        if isinstance(item, dict):
            found = item.get("url") or item.get("contentUrl") or item.get("@id")
            if isinstance(found, str) and found.strip():
                return found.strip()
    return ""


def _ld_names(value: Any) -> list[str]:
    return _unique(_ld_text(item) for item in _as_items(value))


def _ld_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return _unique(value.split(","))
    return _unique(_ld_text(item) for item in _as_items(value))


# --- layer 3: what the page shows ------------------------------------------------------------


@dataclass
class _Heading:
    element: lxml_html.HtmlElement
    text: str
    distance: int
    after: bool  # after the anchor in document order


class _Layout:
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

    def date_line(self, tz: tzinfo) -> tuple[lxml_html.HtmlElement, datetime] | None:
        """The first short element that reads as a date; one with a time wins among the first 3."""
        candidates: list[tuple[lxml_html.HtmlElement, datetime, bool]] = []
        for element in self.elements:
            if element in self.chrome or not _DATE_HINT.search(_own_text(element)):
                continue
            block = _short_block(element)
            if block is None or any(block is seen for seen, _, _ in candidates):
                continue
            text = textlib.clean_text(block.text_content())
            when = parse_date(text, tz)
            if when is not None:
                candidates.append((block, when, bool(_TIME_HINT.search(text))))
            if len(candidates) == 3:
                break
        if not candidates:
            return None
        block, when, _ = next((c for c in candidates if c[2]), candidates[0])
        return block, when

    def headings_near(self, anchor: lxml_html.HtmlElement, exclude: Iterable[str]) -> list[_Heading]:
        """Heading-like elements around `anchor`, with their distance to it in elements."""
        excluded = {label.casefold() for label in exclude}
        start, end = self.order[anchor], self.last[anchor]
        found: list[_Heading] = []
        for index in range(max(0, start - _NEAR), min(len(self.elements), end + _NEAR)):
            element = self.elements[index]
            if start <= index <= end or element in self.chrome or not _looks_like_heading(element):
                continue
            text = textlib.clean_text(element.text_content())
            if not text or text.casefold() in excluded or _DATE_HINT.search(text):
                continue
            after = index > end
            distance = index - end if after else start - self.last[element]
            if distance > 0:
                found.append(_Heading(element, text, distance, after))
        return found

    def breadcrumb(self) -> list[str]:
        """The first breadcrumb's labels, home left out (categories are read from its end)."""
        for element in self.elements:
            if element.tag in ("a", "li") or not _BREADCRUMB_HINT.search(_hint(element)):
                continue
            items = element.xpath(".//li")
            items = items if len(items) >= 2 else element.xpath(".//a")
            labels = _unique(item.text_content() for item in items)
            labels = [label for label in labels if len(label) <= 80 and not _HOME.match(label)]
            if len(items) >= 2 and labels:
                return labels
        return []

    def fallback_title(self, categories: list[str]) -> str:
        excluded = {label.casefold() for label in categories}
        for element in self.root.iter("h1"):
            text = textlib.clean_text(element.text_content())
            if element not in self.chrome and _fits_title(text) and text.casefold() not in excluded:
                return text
        return self.tab_title()

    def tab_title(self) -> str:
        title = self.root.find(".//title")
        return textlib.clean_text(title.text_content()) if title is not None else ""


def _from_layout(found: _Fields, page: _Layout, tz: tzinfo) -> None:
    """The portal layer: the date line, the heading beside it, the breadcrumb or section heading."""
    crumbs = page.breadcrumb()
    dated = page.date_line(tz)
    headings: list[_Heading] = []
    if dated is not None:
        line, when = dated
        found.offer(published=when)
        # A category name is short; the title may end the breadcrumb too, so long labels stay in.
        headings = page.headings_near(line, [c for c in crumbs if len(c) <= 60])
        if not found.title and headings:
            best = min(headings, key=_title_score(page))
            if _fits_title(best.text):
                found.title = best.text
    title = found.title.casefold()
    found.offer(categories=[c for c in crumbs if c.casefold() != title][-1:])
    if found.title:
        above = [h for h in headings if not h.after and len(h.text) <= 60 and h.text != found.title]
        found.offer(categories=[min(above, key=lambda h: h.distance).text] if above else [])


def _title_score(page: _Layout) -> Callable[[_Heading], tuple[int, int, int, int]]:
    """Sort key: named in the <title> tab, a title's length, nearness (h1/"title" class nearer)."""
    tab = page.tab_title().casefold()

    def score(heading: _Heading) -> tuple[int, int, int, int]:
        strong = heading.element.tag == "h1" or bool(_TITLE_HINT.search(_hint(heading.element)))
        in_tab = bool(tab) and heading.text.casefold() in tab
        return (
            not in_tab,
            not _fits_title(heading.text),
            heading.distance + (0 if strong else 3),
            not heading.after,
        )

    return score


def _fits_title(text: str) -> bool:
    return _TITLE_RANGE[0] <= len(text) <= _TITLE_RANGE[1]


def _hint(element: lxml_html.HtmlElement) -> str:
    return f"{element.get('id', '')} {element.get('class', '')}"


def _is_chrome(element: lxml_html.HtmlElement) -> bool:
    if element.tag in _CHROME_TAGS:
        return True
    if element.tag in ("html", "body", "form"):
        return False  # SharePoint wraps the whole page in one form
    if "display:none" in (element.get("style") or "").replace(" ", "").lower():
        return True
    if not _CHROME_HINT.search(_hint(element)):
        return False
    # A class is only a hint: a column named "sidebar-1" may hold the article itself.
    return not element.xpath("boolean(.//h1 | .//article | .//p[3])")


def _looks_like_heading(element: lxml_html.HtmlElement) -> bool:
    return element.tag in _HEADINGS or bool(_TITLE_HINT.search(_hint(element)))


def _own_text(element: lxml_html.HtmlElement) -> str:
    return (element.text or "") + "".join(child.tail or "" for child in element)


def _short_block(element: lxml_html.HtmlElement) -> lxml_html.HtmlElement | None:
    """The largest ancestor-or-self of a date text that is still a short line, or None."""
    if len(textlib.clean_text(element.text_content())) > _DATE_LINE_MAX:
        return None
    block = element
    parent = block.getparent()
    while parent is not None and parent.tag not in ("body", "html", "form"):
        if len(textlib.clean_text(parent.text_content())) > _DATE_LINE_MAX:
            break
        block, parent = parent, parent.getparent()
    return block


# --- the body ---------------------------------------------------------------------------------


def _main_text(root: lxml_html.HtmlElement, url: str) -> str:
    """trafilatura's main text, as HTML, of the page without menus and with flat layout tables.

    trafilatura's own pruning misses both when it falls back to its baseline extractor.
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


def _tidy(content: str, title: str, categories: list[str]) -> str:
    """Drop portal controls, trailing news lists and footers, and a repeated title or date line."""
    if not content.strip():
        return ""
    try:
        root = lxml_html.document_fromstring(content)
    except (etree.ParserError, ValueError):
        return content
    box = root.find("body")
    box = root if box is None else box
    while len(box) == 1 and box[0].tag == "div" and not (box[0].tail or "").strip():
        box = box[0]
    for element in list(box.iter(*_BLOCKS)):
        text = textlib.clean_text(element.text_content()).strip(_CONTROL_EDGES)
        if element is not box and _CONTROLS.fullmatch(text):
            element.drop_tree()
    _cut_trailers(box)
    repeated = {title.casefold(), *(label.casefold() for label in categories)}
    while len(box) and _is_noise(box[0], repeated):
        box[0].drop_tree()
    for element in list(box.iter("p", "div", "span", "strong", "em", "li", "ul")):
        if element is not box and _is_empty(element):
            element.drop_tree()
    for table in list(box.iter("table")):
        _table_to_figure(table)
    inner = "".join(lxml_html.tostring(child, encoding="unicode") for child in box)
    return ((box.text or "") + inner).strip()


def _cut_trailers(box: lxml_html.HtmlElement) -> None:
    """Cut from a "Tin liên quan" heading, or from a site footer's first line, to the end."""
    children = list(box)
    for index, child in enumerate(children):
        text = textlib.clean_text(child.text_content())
        footer = bool(_FOOTER.match(text)) and len(text) <= 100
        if footer:
            rest = children[index + 1 :]
            footer = all(len(textlib.clean_text(e.text_content())) <= _SHORT_LINE for e in rest)
        if footer or _MORE_NEWS.match(text):
            for element in children[index:]:
                element.drop_tree()
            return


def _is_empty(element: lxml_html.HtmlElement) -> bool:
    has_text = bool(textlib.clean_text(element.text_content()))
    return not has_text and not element.xpath("descendant-or-self::*[self::img or self::iframe]")


def _is_noise(element: lxml_html.HtmlElement, repeated: set[str]) -> bool:
    """A leading block that repeats the title or category, or only says when, or is empty."""
    text = textlib.clean_text(element.text_content())
    return _is_empty(element) or text.casefold() in repeated or _is_date_line(text)


def _is_date_line(text: str) -> bool:
    if len(text) > _DATE_LINE_MAX or not _DATE_HINT.search(text):
        return False
    rest = _TIME_HINT.sub(" ", _DATE_HINT.sub(" ", text))
    return all(word.casefold() in _DATE_WORDS for word in re.findall(r"[^\W\d_]+", rest))


def _table_to_figure(table: lxml_html.HtmlElement) -> None:
    """A one-image table whose other cell is its caption (SharePoint's way) becomes a figure."""
    images = table.xpath(".//img")
    if len(images) != 1 or len(table.xpath(".//tr")) > 3:
        return
    caption = textlib.clean_text(table.text_content())
    if len(caption) > 300:
        return
    figure = lxml_html.Element("figure")
    figure.append(images[0])
    images[0].tail = None
    if caption:
        figcaption = etree.SubElement(figure, "figcaption")
        figcaption.text = caption
    figure.tail = table.tail
    table.getparent().replace(table, figure)


def _first_image(content: str) -> str:
    match = re.search(r"<img\b[^>]*?\bsrc=\"([^\"]+)\"", content)
    return match.group(1) if match else ""


# --- small helpers ----------------------------------------------------------------------------


def _canonical(root: lxml_html.HtmlElement, url: str) -> str | None:
    for link in root.xpath("//link[@href]"):
        if "canonical" in (link.get("rel") or "").lower().split():
            target = urljoin(url, link.get("href").strip())
            return target if is_http_url(target) else None
    return None


def _language(root: lxml_html.HtmlElement) -> str | None:
    lang = (root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang") or "").strip()
    primary = re.split(r"[-_]", lang, maxsplit=1)[0].lower()
    return primary if re.fullmatch(r"[a-z]{2,3}", primary) else None


def _unique(labels: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(c for c in (textlib.clean_text(label) for label in labels) if c))
