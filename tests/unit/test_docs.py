"""Docs stay honest: every setting, channel type and source type is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from distributor.channels import CHANNELS, channel_class
from distributor.settings import ChannelSettings, Settings, SourceSettings
from distributor.sources import SOURCES, source_class

DOCS = Path(__file__).resolve().parents[2] / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text(encoding="utf-8")


def documented(key: str, text: str) -> bool:
    return re.search(rf"`{re.escape(key)}`", text) is not None


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += _keys(annotation, f"{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_every_core_setting_is_documented() -> None:
    missing = []
    for table, field in Settings.model_fields.items():
        model = field.annotation
        if table in ("config_path", "sources", "channels", "feeds"):
            continue
        assert isinstance(model, type) and issubclass(model, BaseModel)
        missing += [f"[{table}] {key}" for key in _keys(model) if not documented(key, CONFIGURATION)]
    from distributor.settings import FeedSettings

    missing += [f"[[feeds]] {key}" for key in _keys(FeedSettings) if not documented(key, CONFIGURATION)]
    missing += [f"[[sources]] {key}" for key in _keys(SourceSettings) if not documented(key, CONFIGURATION)]
    missing += [f"[[channels]] {key}" for key in _keys(ChannelSettings) if not documented(key, CONFIGURATION)]
    assert missing == []


@pytest.mark.parametrize("kind", sorted(CHANNELS))
def test_every_channel_has_a_setup_guide_covering_its_keys(kind: str) -> None:
    guide = DOCS / "channels" / f"{kind}.md"
    text = guide.read_text(encoding="utf-8") if guide.exists() else CONFIGURATION
    if kind != "outbox":
        assert guide.exists(), f"docs/channels/{kind}.md is missing"
    model = channel_class(kind).settings_model
    own = set(_keys(model)) - set(_keys(ChannelSettings))
    assert [key for key in sorted(own) if not documented(key, text)] == []


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_source_type_is_documented_with_its_keys(kind: str) -> None:
    text = (DOCS / "sources.md").read_text(encoding="utf-8")
    assert re.search(rf"^## .*{kind}", text, re.MULTILINE), f"docs/sources.md has no section for {kind}"
    model = source_class(kind).settings_model
    own = set(_keys(model)) - set(_keys(SourceSettings))
    assert [key for key in sorted(own) if not documented(key, text)] == []
