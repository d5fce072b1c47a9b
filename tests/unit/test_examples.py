"""The shipped examples stay valid: the portal config with env.example's dummy secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distributor.channels import channel_class
from distributor.settings import Environment, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"


def env_example() -> dict[str, str]:
    values = {}
    for line in (CONFIG / "env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, rest = line.partition("=")
            values[name] = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
    return values


def test_portal_example_is_valid_with_every_secret_from_env_example(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env_example().items():
        monkeypatch.setenv(name, value)
    settings = load_settings(CONFIG / "examples" / "portal.toml", Environment(redis_url=None, data_dir=None))
    kinds = {c.type for c in settings.channels}
    assert kinds >= {"facebook", "zalo", "telegram", "x", "mastodon", "bluesky", "email", "webhook", "outbox"}
    for channel in settings.channels:  # every adapter can be built from it
        channel_class(channel.type)(channel, settings.site)


def test_env_example_lists_exactly_the_secrets_the_example_reads() -> None:
    text = (CONFIG / "examples" / "portal.toml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)\}", text))
    assert referenced == set(env_example())
