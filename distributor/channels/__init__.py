"""Channel registry: adding a platform is one module plus one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from distributor.registry import load

if TYPE_CHECKING:
    from distributor.channels.base import Channel

CHANNELS: dict[str, str] = {
    "outbox": "distributor.channels.outbox:Outbox",
    "facebook": "distributor.channels.facebook:Facebook",
    "zalo": "distributor.channels.zalo:Zalo",
    "telegram": "distributor.channels.telegram:Telegram",
    "x": "distributor.channels.x:X",
    "mastodon": "distributor.channels.mastodon:Mastodon",
    "bluesky": "distributor.channels.bluesky:Bluesky",
    "discord": "distributor.channels.discord:Discord",
    "slack": "distributor.channels.slack:Slack",
    "teams": "distributor.channels.teams:Teams",
    "webhook": "distributor.channels.webhook:Webhook",
    "email": "distributor.channels.email:Email",
    "apprise": "distributor.channels.apprise:Apprise",
}


def channel_class(kind: str) -> type[Channel]:
    """The Channel class registered for `kind` (KeyError when unknown)."""
    cls: type[Channel] = load(CHANNELS[kind])
    return cls
