"""Text rules for Vietnamese-first publishing: NFC, platform length counting, safe truncation, slugs.

Every platform counts length its own way; the functions here are the single place those rules live.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import regex

from distributor.tlds import TLDS

# XML 1.0 forbids most C0 controls, surrogates and U+FFFE/U+FFFF; lxml refuses them outright.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_WHITESPACE = re.compile(r"\s+")
URL_RE = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_GRAPHEME = regex.compile(r"\X")
# Characters that can join their neighbours into one grapheme (the Unicode grapheme-break classes
# other than Other, Control and LF): text without any has exactly one grapheme per code point, so its
# length needs no segmenting (most Vietnamese in NFC, for one).
_JOINS = regex.compile(
    r"[\p{GCB=CR}\p{GCB=Extend}\p{GCB=ZWJ}\p{GCB=RI}\p{GCB=Prepend}\p{GCB=SpacingMark}"
    r"\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}]"
)
# Where X and Mastodon end a link: never on punctuation (`https://a.vn/x).` links `https://a.vn/x`).
_LINK_END = re.compile(r"[^\w/=#+&-]+$")
# A domain without a scheme, which X (not Mastodon) also turns into a link: labels (Vietnamese
# letters allowed), a dot, an alphabetic TLD; not after `@` (an email address) or inside a word
# (which also keeps the search linear on a long unbroken word).
_LABEL = "-a-z0-9\u00c0-\u024f\u0300-\u036f\u1e00-\u1eff"
_BARE_DOMAIN = re.compile(
    rf"(?<![{_LABEL}@$#._/])(?:[{_LABEL}]+\.)+(?P<tld>[a-z]{{2,}}|xn--[-a-z0-9]+)(?![a-z0-9@+-])(?P<path>/)?",
    re.IGNORECASE,
)
ELLIPSIS = "…"

LengthFn = Callable[[str], int]


QUOTE_LIMIT = 80


def quoted(value: str, limit: int = QUOTE_LIMIT) -> str:
    """`value` as an error may echo it: repr-quoted (control characters escaped), at most `limit`
    characters of it, then an ellipsis when it was longer. Ids and names come from anyone."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + ELLIPSIS


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


# The HTML elements that editors' and CMS markup puts into titles (and Word's namespaced ones, `<o:p>`,
# that SharePoint pages carry): only these are markup in a plain-text field, so that "a < b",
# "List<Object>" and "R&D" stay as written.
_MARKUP_ELEMENTS = frozenset({
    "a", "abbr", "b", "big", "blink", "blockquote", "br", "center", "cite", "code", "dd", "del",
    "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "li", "mark", "nobr", "ol", "p", "pre", "q", "s", "script", "small", "span",
    "strike", "strong", "style", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "tt", "u", "ul", "wbr"
})  # fmt: skip
# Inline elements vanish without a trace ("<b>T</b>in" is one word); any other tag is a word break.
_INLINE_ELEMENTS = frozenset({
    "a", "abbr", "b", "big", "blink", "cite", "code", "del", "em", "font", "i", "ins", "mark",
    "nobr", "q", "s", "small", "span", "strike", "strong", "sub", "sup", "tt", "u", "wbr"
})  # fmt: skip
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*(?::[A-Za-z][A-Za-z0-9]*)?)\b(?:[^<>\"']|\"[^\"]*\"|'[^']*')*>")
_HIDDEN_CONTENT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_PLAIN_PASSES = 5  # markup escaped more often than this is left as text


def _untag(match: re.Match[str]) -> str:
    name = match.group(2).lower()
    if ":" not in name and name not in _MARKUP_ELEMENTS:
        return match.group()  # "x<y>" is text, not markup
    return "" if name in _INLINE_ELEMENTS else " "


def plain_text(text: str | None) -> str:
    """A title, author or label as plain text: tags removed, entities decoded, then `clean_text`.

    'Tiêu đề có <b>thẻ</b>' and 'Tiêu đề có &lt;b&gt;thẻ&lt;/b&gt;' both become 'Tiêu đề có thẻ';
    'a < b', 'R&D' and 'AT&T' stay. Only entities with their ';' are decoded (never '&copy' in
    '&copyright'). Applying it twice changes nothing more.
    """
    if not text:
        return ""
    for _ in range(_PLAIN_PASSES):
        before = text
        text = _COMMENT.sub(" ", _HIDDEN_CONTENT.sub(" ", text))
        text = _TAG.sub(_untag, text)
        text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)
        if text == before:
            break
    return clean_text(text)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", strip_illegal_xml(text))


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters)."""
    found: list[str] = _GRAPHEME.findall(text)
    return found


def grapheme_length(text: str) -> int:
    if _JOINS.search(text) is None:
        return len(text)
    return len(graphemes(text))


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units, how Telegram and JavaScript count."""
    return len(text.encode("utf-16-le")) // 2


def utf8_length(text: str) -> int:
    return len(text.encode("utf-8"))


def _with_urls_as(text: str, url_weight: int, count: LengthFn) -> int:
    """Every http(s) link weighs `url_weight`; punctuation after it is counted as text."""
    total = 0
    position = 0
    for match in URL_RE.finditer(text):
        total += count(text[position : match.start()]) + url_weight
        position = match.start() + len(_LINK_END.sub("", match.group()))
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


def _x_weights(text: str) -> int:
    return sum(_x_weight(g) for g in graphemes(text))


def _x_linked(match: re.Match[str]) -> bool:
    """Whether X makes a link of this bare domain: a known TLD, and not one label plus a country
    code with no path (`tuoitre.vn` stays text, `tuoitre.vn/abc` and `vnexpress.net` do not)."""
    tld = match["tld"].lower()
    if tld not in TLDS and not tld.startswith("xn--"):
        return False
    host = match.group().removesuffix("/").lower()
    return bool(match["path"]) or host == "t.co" or not (len(tld) == 2 and host.count(".") == 1)


def _x_text_length(text: str) -> int:
    """Weighted length of text between http(s) links: a bare domain X links weighs at least 23
    (its path, if any, is counted as text: never less than X counts)."""
    total = 0
    position = 0
    for match in _BARE_DOMAIN.finditer(text):
        if _x_linked(match):
            domain = text[match.start() : match.end("tld")]
            total += _x_weights(text[position : match.start()]) + max(23, _x_weights(domain))
            position = match.end("tld")
    return total + _x_weights(text[position:])


def x_length(text: str) -> int:
    """X (Twitter) weighted length: links count 23 (`vnexpress.net` too), CJK/Vietnamese
    precomposed letters and emoji 2."""
    return _with_urls_as(unicodedata.normalize("NFC", text), 23, _x_text_length)


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


@lru_cache(maxsize=4096)
def hashtag(text: str) -> str:
    """'Tin Tức Sự Kiện' -> '#TinTucSuKien'; empty when nothing usable remains. Cached: a site's
    categories and tags come back in every post of every channel."""
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
