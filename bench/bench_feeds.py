"""Feed rebuild cost: render_all (RSS + Atom + JSON Feed) beside feedgen's bare serialisation.

Run: python bench/bench_feeds.py. The baseline is feedgen alone: a FeedGenerator holding the same
entries (title, link, summary, content, dates, author, categories, the image as feedgen's own
enclosure), built beforehand, timing only rss_str() + atom_str(). Ours does everything a rebuild
does: clean and check every article, build the entries, write RSS, Atom and JSON Feed. Both are
timed in CPU time, turn about, so other processes on the machine skew neither. Target: within 2x
at 50 items (the exit status says whether it was met); 20 and 500 show how cost scales.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from feedgen.feed import FeedGenerator

from distributor.feeds.build import FeedSpec, render_all
from distributor.models import Article

TARGET = 2.0
RUNS = 15
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PARAGRAPH = (
    "<p>Sáng 13/7, UBND tỉnh tổ chức hội nghị trực tuyến với các huyện, thị xã, thành phố về "
    'công tác phòng, chống dịch <a href="https://portal.example.vn/tin/lien-quan.aspx">bệnh '
    "COVID-19</a>. <strong>Đồng chí Chủ tịch</strong> yêu cầu các địa phương nâng cao cảnh giác."
    '</p><p><img src="https://portal.example.vn/Images/2021/07/hoi-nghi.jpg" alt="Hội nghị"></p>'
)
SPEC = FeedSpec(
    name="all",
    title="Cổng Thông tin điện tử tỉnh",
    description="Tin tức, sự kiện",
    self_url="http://127.0.0.1:8000/feeds/all.rss",
    base_url="http://127.0.0.1:8000",
    site_url="https://portal.example.vn/",
    hubs=("https://pubsubhubbub.appspot.com/",),
    image="https://portal.example.vn/logo.png",
    author="Ban biên tập",
)


def articles(count: int) -> list[Article]:
    """Full-content articles (about 8 KB of HTML each), newest first."""
    start = datetime(2021, 7, 13, 21, 0, tzinfo=TZ)
    return [
        Article(
            id=f"{n:016x}",
            url=f"https://portal.example.vn/tin-tuc-su-kien/bai-viet-{n}.aspx",
            title=f"Hội nghị trực tuyến phòng, chống dịch COVID-19 số {n}",
            summary="UBND tỉnh tổ chức hội nghị trực tuyến với các huyện, thị xã, thành phố.",
            content=PARAGRAPH * 16,
            image=f"https://portal.example.vn/Images/2021/07/anh-{n}.jpg",
            author="Nguyễn Văn A",
            categories=("Tin Tức Sự Kiện",),
            tags=("COVID-19", "Y tế"),
            published=start - timedelta(hours=n),
            updated=start - timedelta(hours=n) + timedelta(minutes=5),
        )
        for n in range(count)
    ]


def bare_feedgen(items: list[Article]) -> FeedGenerator:
    """The same entries in a plain FeedGenerator, built before timing starts."""
    fg = FeedGenerator()
    fg.id(SPEC.self_url)
    fg.title(SPEC.title)
    fg.link(href=SPEC.site_url, rel="alternate")
    fg.description(SPEC.description)
    fg.language("vi")
    for article in items:
        fe = fg.add_entry(order="append")
        fe.id(article.url)
        fe.title(article.title)
        fe.link(href=article.url)
        fe.summary(article.summary)
        fe.content(article.content, type="html")
        fe.published(article.published)
        fe.updated(article.updated)
        fe.author(name=article.author)
        fe.category([{"term": label} for label in (*article.categories, *article.tags)])
        fe.enclosure(article.image, 0, "image/jpeg")
    return fg


def interleaved(ours: Callable[[], object], theirs: Callable[[], object]) -> tuple[float, float]:
    """Median CPU seconds of each, run turn about so that load from other processes (and CPU
    frequency changes) falls on both alike."""
    ours()
    theirs()  # warm up
    timings: tuple[list[float], list[float]] = ([], [])
    for _ in range(RUNS):
        for work, into in ((ours, timings[0]), (theirs, timings[1])):
            started = time.process_time()
            work()
            into.append(time.process_time() - started)
    return statistics.median(timings[0]), statistics.median(timings[1])


def measure(count: int) -> float:
    items = articles(count)
    fg = bare_feedgen(items)
    ours, theirs = interleaved(lambda: render_all(SPEC, items), lambda: (fg.rss_str(), fg.atom_str()))
    total_kb = sum(len(body) for body in render_all(SPEC, items).values()) / 1024
    ratio = ours / theirs
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"{count:>4} items  render_all {ours * 1000:8.2f} ms  "
        f"feedgen rss+atom {theirs * 1000:8.2f} ms  ratio {ratio:4.2f}  "
        f"({total_kb:,.0f} KB out)  target within {TARGET:g}x: {verdict}"
    )
    return ratio


def main() -> int:
    print(
        f"feed rebuild, CPU time, median of {RUNS} interleaved runs "
        "(ours: clean + build + RSS + Atom + JSON Feed; feedgen: rss_str + atom_str of ready entries)"
    )
    ratios = {count: measure(count) for count in (20, 50, 500)}
    return 0 if ratios[50] <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
