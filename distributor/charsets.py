"""Find the charset of fetched bytes and decode them to NFC text.

Vietnamese portals still serve Windows-1258 (which spells tones as combining marks), VISCII and
TCVN3, and often declare the wrong charset. Declarations are tried in order (BOM, HTTP header,
XML declaration, <meta>); one whose codec cannot decode the bytes is skipped, and detection
(charset-normalizer) decides when none fits, so a bad label never yields mojibake or a crash.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from typing import TYPE_CHECKING

import charset_normalizer

if TYPE_CHECKING:
    from typing_extensions import Buffer

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_XML_DECLARATION = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_SNIFF_BYTES = 16 * 1024

# Upper halves (0x80-0xFF) of the legacy Vietnamese 8-bit charsets, from glibc's charmaps.
_VISCII_HIGH = (
    "ẠẮẰẶẤẦẨẬẼẸẾỀỂỄỆỐỒỔỖỘỢỚỜỞỊỎỌỈỦŨỤỲÕắằặấầẩậẽẹếềểễệố"
    "ồổỗỠƠộờởịỰỨỪỬơớƯÀÁÂÃẢĂẳẵÈÉÊẺÌÍĨỳĐứÒÓÔạỷừửÙÚỹỵÝỡư"
    "àáâãảăữẫèéêẻìíĩỉđựòóôõỏọụùúũủýợỮ"
)
_VISCII_LOW = {0x02: "Ẳ", 0x05: "Ẵ", 0x06: "Ẫ", 0x14: "Ỷ", 0x19: "Ỹ", 0x1E: "Ỵ"}
_TCVN_HIGH = (
    "ÀẢÃÁẠẶẬÈẺẼÉẸỆÌỈĨÍỊÒỎÕÓỌỘỜỞỠỚỢÙỦŨ\u00a0ĂÂÊÔƠƯĐăâêôơưđẰ"
    "\u0300\u0309\u0303\u0301\u0323àảãáạẲằẳẵắẴẮẦẨẪẤỀặầẩẫấậèỂẻẽ"
    "éẹềểễếệìỉỄẾỒĩíịòỔỏõóọồổỗốộờởỡớợùỖủũúụừửữứựỳỷỹýỵỐ"
)
_TCVN_LOW = {
    0x01: "Ú", 0x02: "Ụ", 0x04: "Ừ", 0x05: "Ử", 0x06: "Ữ", 0x11: "Ứ", 0x12: "Ự", 0x13: "Ỳ",
    0x14: "Ỷ", 0x15: "Ỹ", 0x16: "Ý", 0x17: "Ỵ",
}  # fmt: skip
_LEGACY_NAMES = {
    "viscii": "viscii",
    "csviscii": "viscii",
    "viscii1.1-1": "viscii",
    "tcvn": "tcvn",
    "tcvn3": "tcvn",
    "tcvn-5712": "tcvn",
    "tcvn5712-1": "tcvn",
    "tcvn5712-1:1993": "tcvn",
    "x-viet-tcvn5712": "tcvn",
}


def _charmap(name: str, low: dict[int, str], high: str) -> codecs.CodecInfo:
    chars = [chr(i) for i in range(128)] + list(high)
    for byte, char in low.items():
        chars[byte] = char
    decoding = "".join(chars)
    encoding = codecs.charmap_build(decoding)

    def encode(text: str, errors: str = "strict", /) -> tuple[bytes, int]:
        return codecs.charmap_encode(text, errors, encoding)

    def decode(data: Buffer, errors: str = "strict", /) -> tuple[str, int]:
        return codecs.charmap_decode(data, errors, decoding)

    return codecs.CodecInfo(encode, decode, name=name)


_LEGACY = {
    "viscii": _charmap("viscii", _VISCII_LOW, _VISCII_HIGH),
    "tcvn": _charmap("tcvn", _TCVN_LOW, _TCVN_HIGH),
}


def _search(name: str) -> codecs.CodecInfo | None:
    key = _LEGACY_NAMES.get(name.lower().replace("_", "-"))
    return _LEGACY[key] if key else None


codecs.register(_search)


def codec_name(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when Python knows no such charset."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in ("utf8", "unicode-1-1-utf-8", "x-unicode20utf8"):
        label = "utf-8"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def header_charset(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def declared(data: bytes, content_type: str | None = None) -> list[str]:
    """Every charset the reply declares, strongest first: BOM, HTTP header, XML, <meta>."""
    labels: list[str | None] = []
    labels.extend([name for bom, name in _BOMS if data.startswith(bom)][:1])
    labels.append(header_charset(content_type))
    head = data[:_SNIFF_BYTES]
    xml = _XML_DECLARATION.match(head)
    labels.append(xml.group(1).decode("ascii") if xml else None)
    meta = _META_CHARSET.search(head)
    labels.append(meta.group(1).decode("ascii") if meta else None)
    names = [codec_name(label) for label in labels]
    return list(dict.fromkeys(name for name in names if name))


def _decodes(data: bytes, name: str) -> bool:
    try:
        data.decode(name)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _looks_utf8(data: bytes) -> bool:
    return not data.isascii() and _decodes(data, "utf-8")


def detect(data: bytes, content_type: str | None = None) -> str:
    """The codec for `data`: the first declaration that fits, else detection, else UTF-8."""
    for name in declared(data, content_type):
        # Non-ASCII text in an 8-bit charset is practically never valid UTF-8: a page that is
        # valid UTF-8 but labelled latin-1 or windows-1258 is a misconfigured UTF-8 page.
        if not name.startswith("utf") and _looks_utf8(data):
            return "utf-8"
        # Markup in UTF-16/32 is full of NUL bytes (every ASCII character has one); without any,
        # the label is a copied template's, and UTF-16 would still "decode" the bytes, as CJK.
        if name.startswith(("utf-16", "utf-32")) and b"\x00" not in data:
            continue
        if _decodes(data, name):
            return name
    if data.isascii() or _decodes(data, "utf-8"):
        return "utf-8"
    best = charset_normalizer.from_bytes(data).best()
    guess = codec_name(best.encoding) if best is not None else None
    if guess and _decodes(data, guess):
        return guess
    return "utf-8"


def decode(data: bytes, encoding: str | None) -> str:
    """Bytes to NFC text without a BOM; undecodable bytes become U+FFFD rather than an error."""
    name = codec_name(encoding) or "utf-8"
    if name == "utf-8":
        name = "utf-8-sig"
    text = data.decode(name, errors="replace").lstrip("\ufeff")
    return unicodedata.normalize("NFC", text)
