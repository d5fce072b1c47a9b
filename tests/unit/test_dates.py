"""Dates as the portal prints them parse in the site's time zone."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from distributor.dates import parse_date, zone

HCM = zone("Asia/Ho_Chi_Minh")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Thứ 3, Ngày 13/07/2021, 21:00", "2021-07-13T21:00:00+07:00"),
        ("13/07/2021 08:30", "2021-07-13T08:30:00+07:00"),
        ("ngày 13 tháng 7 năm 2021", "2021-07-13T00:00:00+07:00"),
        ("21:00 13/07/2021", "2021-07-13T21:00:00+07:00"),
        ("2021-07-13T14:00:00Z", "2021-07-13T21:00:00+07:00"),
        ("Tue, 13 Jul 2021 14:00:00 GMT", "2021-07-13T21:00:00+07:00"),
    ],
)
def test_vietnamese_and_standard_forms(line: str, expected: str) -> None:
    parsed = parse_date(line, HCM)
    assert parsed is not None
    assert parsed.isoformat() == expected
    assert parsed == datetime.fromisoformat(expected)


@pytest.mark.parametrize("junk", ["", "không có ngày", "31/02/2021", None])
def test_no_date_gives_none(junk: str | None) -> None:
    assert parse_date(junk, HCM) is None


@pytest.mark.parametrize(
    "edge",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "Fri, 31 Dec 9999 23:59:59 -0500", "0001-01-01"],
)
def test_dates_at_the_edge_of_the_calendar_are_no_dates(edge: str) -> None:
    # datetime cannot shift these to UTC: a feed carrying one must not crash the poll.
    assert parse_date(edge, HCM) is None


def test_a_long_run_of_spaces_after_a_time_parses_in_linear_time() -> None:
    # A hostile <lastmod> or JSON-LD date: the time-first pattern used to backtrack quadratically.
    started = time.monotonic()
    assert parse_date("1:23" + " " * 200_000 + "x", HCM) is None
    assert time.monotonic() - started < 1
