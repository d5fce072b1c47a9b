"""Articles that stress length rules (the seed article and its hard cousins) and a channel builder
that goes through the real config loader, shared by the social channel tests."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distributor.channels import channel_class
from distributor.channels.base import Channel
from distributor.models import Article
from distributor.settings import settings_from_dict

SEED_TITLE = "Ban Dân vận Trung ương triển khai nhiệm vụ công tác dân vận 6 tháng cuối năm 2021"
SEED_SUMMARY = (
    "Chiều ngày 13/7/2021, Ban Dân vận Trung ương tổ chức hội nghị trực tuyến sơ kết công "
    "tác dân vận 6 tháng đầu năm, triển khai nhiệm vụ 6 tháng cuối năm 2021. Đồng chí Bùi "
    "Thị Minh Hoài, Bí thư Trung ương Đảng, Trưởng Ban Dân vận Trung ương chủ trì hội "
    "nghị. Tại điểm cầu tỉnh, đồng chí Phó Bí thư Thường trực Tỉnh ủy cùng lãnh đạo Ban "
    "Dân vận Tỉnh ủy, Ủy ban Mặt trận Tổ quốc Việt Nam tỉnh và các đoàn thể chính trị - "
    "xã hội tham dự. Hội nghị đánh giá trong 6 tháng đầu năm, công tác dân vận đã góp "
    "phần quan trọng vào thắng lợi của cuộc bầu cử đại biểu Quốc hội khóa XV và đại biểu "
    "Hội đồng nhân dân các cấp nhiệm kỳ 2021 - 2026, cũng như trong phòng, chống dịch "
    "Covid-19; đồng thời đề ra nhiệm vụ trọng tâm: nắm chắc tình hình nhân dân, thực hiện "
    "tốt quy chế dân chủ ở cơ sở và phong trào thi đua \u201cDân vận khéo\u201d."
)
SEED_URL = (
    "https://tinhuy.example.gov.vn/Tin-Tuc-Su-Kien/"
    "ban-dan-van-trung-uong-trien-khai-nhiem-vu-cong-tac-dan-van-6-thang-cuoi-nam-2021.aspx"
)
EMOJI_TITLE = "👨‍👩‍👧‍👦🇻🇳" * 100  # 200 graphemes, 3,300 UTF-8 bytes
SITE = {"title": "Cổng thông tin điện tử tỉnh", "url": "https://tinhuy.example.gov.vn"}


def article(**changes: Any) -> Article:
    """The seed-like article; keyword arguments replace fields."""
    fields: dict[str, Any] = {
        "id": "b5040debc31ac462",
        "url": SEED_URL,
        "title": SEED_TITLE,
        "summary": SEED_SUMMARY,
        "categories": ("Tin Tức Sự Kiện",),
        "tags": ("Dân vận",),
        "language": "vi",
        "published": datetime(2021, 7, 13, 14, 0, tzinfo=UTC),
        "updated": datetime(2021, 7, 13, 14, 0, tzinfo=UTC),
    }
    fields.update(changes)
    return Article(**fields)


def hard_articles() -> dict[str, Article]:
    """Every article a channel must fit under its limits."""
    return {
        "seed": article(),
        "one 2000-character word": article(summary="Nghiêng" + "ệ" * 1993),
        "emoji title": article(title=EMOJI_TITLE),
        "nfd title": article(title=unicodedata.normalize("NFD", SEED_TITLE * 4)),
    }


def channel_from(entry: dict[str, Any], data_dir: Path | None = None) -> Channel:
    """Build a channel from one `[[channels]]` table, validated by the real settings loader."""
    settings = settings_from_dict({"site": dict(SITE), "channels": [entry]})
    channel_settings = settings.channels[0]
    cls = channel_class(channel_settings.type)
    return cls(channel_settings, settings.site, data_dir or Path("data"))
