"""Exact fitting of a rendered message under a platform's limit.

The summary shrinks first (word boundary, ellipsis, never inside a grapheme), then the title; the
link and the rest of the template always survive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distributor.text import LengthFn, truncate

Render = Callable[[dict[str, Any]], str]


def _shrink(render: Render, context: dict[str, Any], field: str, length: LengthFn, limit: int) -> dict[str, Any]:
    """The longest truncation of `context[field]` whose rendering fits (binary search on budget)."""
    original: str = context[field] or ""
    low, high = 0, len(original)
    best = {**context, field: ""}
    while low <= high:
        budget = (low + high) // 2
        candidate = {**context, field: truncate(original, budget, len)}
        if length(render(candidate)) <= limit:
            best = candidate
            low = budget + 1
        else:
            high = budget - 1
    return best


def fit(render: Render, context: dict[str, Any], length: LengthFn, limit: int) -> str:
    """Render `context`, shrinking summary, then hashtags, then title until the result fits."""
    text = render(context)
    if length(text) <= limit:
        return text
    for field in ("summary", "hashtags", "title"):
        if context.get(field):
            context = _shrink(render, context, field, length, limit)
            text = render(context)
            if length(text) <= limit:
                return text
    return text  # only the fixed template text and link remain; the caller's limit is too small
