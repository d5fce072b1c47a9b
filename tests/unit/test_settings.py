"""Settings errors must tell the operator exactly what and where, and never leak a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from distributor.cli import app
from distributor.errors import ConfigError
from distributor.settings import Environment, load_settings, parse_duration, settings_from_dict

SITE = {"title": "T", "url": "https://example.vn"}


def problems(raw: dict, monkeypatch: pytest.MonkeyPatch | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(raw, origin="portal.toml", env=Environment(redis_url=None, data_dir=None))
    return caught.value.problems


def test_default_config_is_valid() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "config" / "distributor.toml", Environment())
    assert settings.redis.url == "" or settings.redis.url  # env may point it at a real Redis
    assert [s.type for s in settings.sources] == ["directory"]
    assert [f.name for f in settings.feeds] == ["all"]
    assert [c.type for c in settings.channels] == ["outbox"]


def test_missing_section_is_named() -> None:
    assert problems({"feeds": []}) == ["portal.toml: [site] section is missing"]


def test_wrong_type_names_table_key_and_expectation() -> None:
    found = problems({"site": SITE, "sources": [{"name": "a", "type": "directory", "interval": "soon"}]})
    assert found == [
        "portal.toml: [[sources]] #1 (name 'a') key 'interval' "
        "expected a duration like 90, '90s', '2m' or '1h' (got str)"
    ]


def test_unknown_key_is_an_error() -> None:
    found = problems({"site": {**SITE, "titel": "x"}, "channels": [{"name": "o", "type": "outbox", "pth": "x"}]})
    assert any("[site] key 'titel' is not a known key" in p for p in found)
    assert any("[[channels]] #1 (name 'o') key 'pth' is not a known key" in p for p in found)


def test_unknown_channel_type_lists_known_types() -> None:
    found = problems({"site": SITE, "channels": [{"name": "t", "type": "myspace"}]})
    assert len(found) == 1 and "key 'type' must be one of:" in found[0] and "telegram" in found[0]


def test_missing_env_secret_names_variable_and_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_TOKEN_FOR_TEST", raising=False)
    found = problems(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    assert found[0] == (
        "portal.toml: [[channels]] #1 (name 'tg') key 'token' needs environment variable "
        "TG_TOKEN_FOR_TEST, which is not set (written ${TG_TOKEN_FOR_TEST})"
    )


def test_env_secret_is_read_and_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN_FOR_TEST", "123456789:AAHSECRET-VALUE_abcdefghijklmnopqrstuv")
    settings = settings_from_dict(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    channel = settings.channels[0]
    assert channel.token.get_secret_value() == "123456789:AAHSECRET-VALUE_abcdefghijklmnopqrstuv"  # type: ignore[attr-defined]
    assert "SECRET-VALUE" not in repr(settings) and "SECRET-VALUE" not in str(channel)


def test_secret_file_variant(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("123456789:AAHfromafile_abcdefghijklmnopqrstuvw\n")
    monkeypatch.delenv("TG_TOKEN_FOR_TEST", raising=False)
    monkeypatch.setenv("TG_TOKEN_FOR_TEST_FILE", str(secret))
    settings = settings_from_dict(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    assert settings.channels[0].token.get_secret_value() == "123456789:AAHfromafile_abcdefghijklmnopqrstuvw"  # type: ignore[attr-defined]


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT_SECRETISH", "not-a-number-s3cr3t")
    found = problems({"site": SITE, "server": {"port": "${PORT_SECRETISH}"}})
    assert found and all("s3cr3t" not in p for p in found)
    assert "[server] key 'port'" in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "site": {"title": "T"},
            "feeds": [{"name": "All Feeds!"}],
            "sources": [{"name": "s", "type": "nope"}],
        }
    )
    assert len(found) == 3


def test_duplicate_names_are_rejected() -> None:
    found = problems({"site": SITE, "channels": [{"name": "o", "type": "outbox"}, {"name": "o", "type": "outbox"}]})
    assert "repeats 'o'" in found[0]


@pytest.mark.parametrize(("value", "seconds"), [(90, 90), ("90s", 90), ("2m", 120), ("1h", 3600), ("1.5m", 90)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", "redis://10.0.0.5:6379/2")
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", "/srv/distributor")
    settings = settings_from_dict({"site": SITE, "redis": {"url": "redis://file:6379/0"}})
    assert settings.redis.url == "redis://10.0.0.5:6379/2"
    assert str(settings.data_dir) == "/srv/distributor"


def test_check_command_prints_problems_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_TOKEN", "do-not-print-me")
    config = tmp_path / "bad.toml"
    config.write_text(
        '[site]\ntitle = "T"\nurl = "https://x.vn"\n'
        '[[channels]]\nname = "tg"\ntype = "telegram"\ntoken = "${LEAKY_TOKEN}"\nchat_id = 5\nextra = 1\n'
    )
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "key 'extra' is not a known key" in result.output
    assert str(config) in result.output
    assert "do-not-print-me" not in result.output


def test_check_command_accepts_default_config() -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "distributor.toml"
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 sources, 1 feeds, 1 channels" in result.output


def test_check_output_keeps_table_names_and_whole_paths(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "portal-configuration.toml"
    deep.parent.mkdir(parents=True)
    deep.write_text('[site]\ntitle = "T"\nurl = "https://x.vn"\n[[channels]]\nname = "o"\ntype = "outbox"\npth = 1\n')
    result = CliRunner().invoke(app, ["check", "--config", str(deep)])
    assert result.exit_code == 2
    assert f"error: {deep}: [[channels]] #1 (name 'o') key 'pth' is not a known key" in result.output
