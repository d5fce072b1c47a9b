"""Text rules for Vietnamese-first publishing: NFC, platform length counting, safe truncation, slugs.

Every platform counts length its own way; the functions here are the single place those rules live.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

import regex

# XML 1.0 forbids most C0 controls, surrogates and U+FFFE/U+FFFF; lxml refuses them outright.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")
ELLIPSIS = "…"

LengthFn = Callable[[str], int]


def strip_illegal_xml(text: str) -> str:
    """Remove characters that are illegal in XML 1.0 (they would make a feed unparseable)."""
    return _XML_ILLEGAL.sub("", text)


def clean_text(text: str | None) -> str:
    """NFC, no XML-illegal characters, whitespace collapsed to single spaces, trimmed."""
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    text = strip_illegal_xml(text)
    return _WHITESPACE.sub(" ", text).strip()


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", strip_illegal_xml(text))


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters)."""
    found: list[str] = _GRAPHEME.findall(text)
    return found


def grapheme_length(text: str) -> int:
    return len(graphemes(text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, how Telegram and JavaScript count."""
    return len(text.encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _with_urls_as(text: str, url_weight: int, count: LengthFn) -> int:
    total = 0
    position = 0
    for match in URL_RE.finditer(text):
        total += count(text[position : match.start()]) + url_weight
        position = match.end()
    return total + count(text[position:])


def _x_weight(cluster: str) -> int:
    # twitter-text v3: code points in these ranges weigh 1, everything else 2; an emoji cluster 2.
    if len(cluster) > 1 and unicodedata.category(cluster[0]) == "So":
        return 2
    total = 0
    for char in cluster:
        point = ord(char)
        light = point <= 4351 or 8192 <= point <= 8205 or 8208 <= point <= 8223 or 8242 <= point <= 8247
        total += 1 if light else 2
    return total


def x_length(text: str) -> int:
    """X (Twitter) weighted length: URLs count 23, CJK/Vietnamese precomposed letters and emoji 2."""
    text = unicodedata.normalize("NFC", text)
    return _with_urls_as(text, 23, lambda part: sum(_x_weight(g) for g in graphemes(part)))


def mastodon_length(text: str) -> int:
    """Mastodon: graphemes, every URL counted as 23."""
    return _with_urls_as(text, 23, grapheme_length)


def truncate(text: str, limit: int, length: LengthFn = grapheme_length, ellipsis: str = ELLIPSIS) -> str:
    """Shorten `text` so that `length(result) <= limit`.

    Cuts at the last word boundary that fits and appends `ellipsis`; never splits a grapheme. A
    single word longer than the limit (no boundary to cut at) is cut between graphemes.
    """
    if length(text) <= limit:
        return text
    if limit <= 0 or length(ellipsis) > limit:
        return ""
    clusters = graphemes(text)
    # Binary search the longest grapheme prefix that fits together with the ellipsis.
    low, high = 0, len(clusters)
    while low < high:
        middle = (low + high + 1) // 2
        if length("".join(clusters[:middle]).rstrip() + ellipsis) <= limit:
            low = middle
        else:
            high = middle - 1
    prefix = "".join(clusters[:low])
    if low < len(clusters) and not clusters[low].isspace():
        # We stopped inside a word: go back to the previous boundary when there is one.
        boundary = max(prefix.rfind(" "), prefix.rfind("\n"))
        if boundary > 0:
            prefix = prefix[:boundary]
    prefix = prefix.rstrip(" \n\t,;:-–—")
    return prefix + ellipsis if prefix else ""


def strip_diacritics(text: str) -> str:
    """ASCII-fold Vietnamese: 'Đà Nẵng' -> 'Da Nang' (đ/Đ have no decomposition, so map them)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def slugify(text: str) -> str:
    """'Tin Tức Sự Kiện' -> 'tin-tuc-su-kien'."""
    folded = strip_diacritics(clean_text(text)).lower()
    return re.sub(r"[^a-z0-9]+", "-", folded).strip("-")


def hashtag(text: str) -> str:
    """'Tin Tức Sự Kiện' -> '#TinTucSuKien'; empty when nothing usable remains."""
    words = re.split(r"[^A-Za-z0-9]+", strip_diacritics(clean_text(text)))
    body = "".join(w[:1].upper() + w[1:] for w in words if w)
    return f"#{body}" if body else ""


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, paragraphs kept as blank-line breaks."""
    from lxml import html as lxml_html

    if not markup.strip():
        return ""
    try:
        root = lxml_html.fragment_fromstring(markup, create_parent="div")
    except Exception:  # malformed markup: fall back to dropping tags
        return clean_text(html.unescape(re.sub(r"<[^>]+>", " ", markup)))
    for block in root.iter("p", "br", "div", "li", "h1", "h2", "h3", "h4", "blockquote"):
        block.tail = "\n\n" + (block.tail or "")
    paragraphs = [clean_text(p) for p in root.text_content().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def summarize(text: str, limit: int = 300) -> str:
    """A summary from body text: the first paragraphs, cut at a word boundary."""
    first = clean_text(text)
    return truncate(first, limit)
