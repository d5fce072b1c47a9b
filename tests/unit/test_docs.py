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


def _source_text() -> str:
    root = DOCS.parent
    return "\n".join(p.read_text(encoding="utf-8") for d in ("distributor", "worker") for p in (root / d).rglob("*.py"))


def test_troubleshooting_quotes_messages_the_code_prints() -> None:
    """Each '### `message`' heading of docs/troubleshooting.md is (with its {placeholders}) text the
    code still prints: a reworded error must take its entry along."""
    code = _source_text()
    headings = re.findall(r"^### `([^`]+)`", (DOCS / "troubleshooting.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert len(headings) >= 20
    pieces = {h: [p.strip() for p in re.split(r"\{[^}]*\}", h) if p.strip()] for h in headings}
    missing = [h for h, parts in pieces.items() if not all(part in code for part in parts)]
    assert missing == []


@pytest.mark.parametrize("page", ["deployment.md", "troubleshooting.md", "operations.md", "configuration.md"])
def test_relative_links_lead_to_files_and_headings(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (DOCS / path).resolve() if path else DOCS / page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md":
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.MULTILINE)}
            if anchor not in slugs:
                broken.append(target)
    assert broken == []


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
