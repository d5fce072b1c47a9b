"""Articles and feed specs for the feed tests: a Vietnamese portal, dates in Asia/Ho_Chi_Minh."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from distributor.dates import zone
from distributor.feeds.build import FeedSpec
from distributor.models import Article

TZ = zone("Asia/Ho_Chi_Minh")
BASE_URL = "http://127.0.0.1:8000"
SITE_URL = "https://portal.example.gov.vn/"
HUB = "https://hub.example.net/"
LOGO = "https://portal.example.gov.vn/logo.png"
NEWEST = datetime(2021, 7, 13, 21, 0, tzinfo=TZ)


def make_spec(**overrides: Any) -> FeedSpec:
    values: dict[str, Any] = {
        "name": "all",
        "title": "Cổng Thông tin điện tử tỉnh",
        "description": "Tin tức, sự kiện của tỉnh",
        "self_url": f"{BASE_URL}/feeds/all.rss",
        "base_url": BASE_URL,
        "site_url": SITE_URL,
        "hubs": (HUB,),
        "image": LOGO,
        "author": "Ban biên tập",
    }
    values.update(overrides)
    return FeedSpec(**values)


def make_article(n: int = 0, **overrides: Any) -> Article:
    """Article `n` is published n hours before NEWEST and edited 5 minutes after publication."""
    published = NEWEST - timedelta(hours=n)
    values: dict[str, Any] = {
        "id": f"{n:016x}",
        "url": f"https://portal.example.gov.vn/tin-tuc-su-kien/bai-{n}.aspx",
        "title": f"Hội nghị trực tuyến phòng, chống dịch số {n}",
        "summary": "UBND tỉnh tổ chức hội nghị trực tuyến với các huyện, thị xã, thành phố.",
        "content": f'<p>Nội dung bài {n}, <a href="https://portal.example.gov.vn/lien-quan.aspx">liên quan</a>.</p>',
        "image": f"https://portal.example.gov.vn/Images/anh-{n}.jpg",
        "author": "Nguyễn Văn A",
        "categories": ("Tin Tức Sự Kiện",),
        "tags": ("Y tế",),
        "published": published,
        "updated": published + timedelta(minutes=5),
    }
    values.update(overrides)
    return Article(**values)


def articles(count: int) -> list[Article]:
    """`count` articles, newest first."""
    return [make_article(n) for n in range(count)]
