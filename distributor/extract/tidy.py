"""The body cleaned of the portal chrome that survives extraction.

Font size and view counter controls, share buttons, "Tin liên quan" lists, the site footer, and
a title or date line repeated at the top; SharePoint's image-and-caption tables become figures.
"""

from __future__ import annotations

import re

from lxml import etree
from lxml import html as lxml_html

from distributor import text as textlib
from distributor.extract.dateline import is_date_line

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


def tidy(content: str, title: str, categories: list[str]) -> str:
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
    return _is_empty(element) or text.casefold() in repeated or is_date_line(text)


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
