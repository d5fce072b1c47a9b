"""What a date line looks like ("Thứ 3, Ngày 13/07/2021, 21:00").

The portal layer looks for one to date the article; the body cleaning drops one that trafilatura
kept at the top of the text.
"""

from __future__ import annotations

import re

DATE_HINT = re.compile(r"\d{1,2}[/.\-]\d{1,2}[/.\-]\d{4}|ngày\s+\d{1,2}\s+tháng\s+\d{1,2}\s+năm\s+\d{4}", re.IGNORECASE)
TIME_HINT = re.compile(r"\d{1,2}\s*[:hg]\s*\d{2}")
DATE_LINE_MAX = 80  # a date line is short; a date inside a paragraph is not the article's date
# Words a date line may hold besides the date and time ("Thứ 3, Ngày 13/07/2021, 21:00").
_DATE_WORDS = {
    "thứ", "hai", "ba", "tư", "năm", "sáu", "bảy", "chủ", "nhật", "ngày", "lúc", "cập", "đăng",
    "giờ", "gmt", "am", "pm", "sáng", "chiều", "tối",
}  # fmt: skip


def is_date_line(text: str) -> bool:
    """True when the text says only when: a date, maybe a time, and date words."""
    if len(text) > DATE_LINE_MAX or not DATE_HINT.search(text):
        return False
    rest = TIME_HINT.sub(" ", DATE_HINT.sub(" ", text))
    return all(word.casefold() in _DATE_WORDS for word in re.findall(r"[^\W\d_]+", rest))
