"""Every registered channel fits the seed article and its hard cousins within its limit, as the
platform counts, and keeps the link (the per-channel suites test the details)."""

from __future__ import annotations

import pytest

from distributor.channels import CHANNELS
from distributor.urls import canonical_url
from tests.unit.channels.vi_articles import channel_from, hard_articles

MINIMAL: dict[str, dict[str, object]] = {
    "outbox": {},
    "facebook": {"page_id": "1234567890", "access_token": "EAAB-token"},
    "zalo": {
        "access_token": "a",
        "refresh_token": "r",
        "app_id": "1234",
        "secret_key": "s",
        "cover": "https://tinhuy.example.gov.vn/logo-zalo.jpg",
    },
    "telegram": {"token": "123456789:AAFakeTokenForTestsOnly_abcdefghijk", "chat_id": "@tintuc_tayninh"},
    "x": {"api_key": "k", "api_secret": "s", "access_token": "t", "access_token_secret": "ts"},
    "mastodon": {"api_base": "https://mastodon.example", "access_token": "t"},
    "bluesky": {"handle": "tintuc.bsky.social", "app_password": "abcd-efgh-ijkl-mnop"},
    "discord": {"url": "https://discord.com/api/webhooks/1/secret"},
    "slack": {"url": "https://hooks.slack.com/services/T0/B0/secret"},
    "teams": {"url": "https://prod.example.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=s"},
    "webhook": {"url": "https://partner.example.vn/hook", "secret": "s"},
    "email": {"host": "smtp.example.vn", "sender": "news@example.vn", "recipients": ["a@example.vn"]},
    "apprise": {"urls": ["json://hooks.example.vn/news"]},
}


SEPARATE_LINK = {"facebook", "bluesky", "zalo"}


def test_every_registered_channel_is_covered() -> None:
    assert set(MINIMAL) == set(CHANNELS)


@pytest.mark.parametrize("kind", sorted(MINIMAL))
@pytest.mark.parametrize("case", sorted(hard_articles()))
def test_fits_and_keeps_the_link(kind: str, case: str) -> None:
    channel = channel_from({"name": kind, "type": kind, "utm": False, **MINIMAL[kind]})
    article = hard_articles()[case]
    post = channel.render(article)
    assert 0 < post.length <= post.limit, f"{kind}/{case}: {post.length} > {post.limit}"
    assert channel.length(post.text) == post.length
    link = canonical_url(article.url)
    # Most platforms carry the link in the text; a Facebook link post sends it as `link`, Bluesky
    # as a facet and card over a short display, Zalo as the article's link (the suites check those).
    assert link in post.text or (kind in SEPARATE_LINK and post.url == link), f"{kind}/{case}: the link was lost"
