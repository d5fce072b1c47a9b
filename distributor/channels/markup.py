"""Escaping article text for the chat platforms' markup, so a title is shown as written and can
neither format nor ping (`*`, `<!channel>`, `[text](url)`).

Only the fields taken from the article are escaped; the template's own markup stays active.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

ARTICLE_FIELDS = ("title", "summary", "category", "site", "author")
_MARKDOWN = re.compile(r"([\\*_~`|<>\[\]])")


def escape_markdown(value: str) -> str:
    """Backslash-escape markdown punctuation (Discord, Teams)."""
    return _MARKDOWN.sub(r"\\\1", value)


def escape_mrkdwn(value: str) -> str:
    """Slack mrkdwn: only `& < >` are special, written as HTML entities."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_target(url: str, unsafe: str) -> str:
    """Percent-encode the characters in `unsafe` that would end a link's markup early."""
    return "".join(f"%{ord(char):02X}" if char in unsafe or char == " " else char for char in url)


def escape_fields(context: dict[str, Any], escape: Callable[[str], str]) -> dict[str, Any]:
    """A template context whose article text is escaped with `escape`."""
    return {**context, **{field: escape(context[field]) for field in ARTICLE_FIELDS if field in context}}
