"""`distributor init`: a starter config that passes `distributor check`, and nothing overwritten."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distributor.cli import app
from distributor.cli_exit import ExitCode


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_LANG", "en")  # the messages asserted are the English ones
    monkeypatch.setenv("DISTRIBUTOR_CONFIG", "unused")  # `check` exports it; it must not leak into other tests


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_init_writes_a_config_that_passes_check(tmp_path: Path) -> None:
    code, output = invoke("init", str(tmp_path / "site"))
    assert code == ExitCode.OK, output
    config, env = tmp_path / "site" / "distributor.toml", tmp_path / "site" / "env.example"
    assert config.is_file() and env.is_file()
    assert f"distributor check --config {config}" in output  # the next steps name the real path
    code, output = invoke("check", "--config", str(config))
    assert code == ExitCode.OK, output
    assert "1 sources, 1 feeds, 1 channels" in output


def test_init_defaults_to_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("init")[0] == ExitCode.OK
    assert (tmp_path / "distributor.toml").is_file() and (tmp_path / "env.example").is_file()


def test_init_refuses_to_overwrite_and_names_the_file_unless_forced(tmp_path: Path) -> None:
    mine = tmp_path / "env.example"
    mine.write_text("MY_SECRET=keep\n", encoding="utf-8")
    code, output = invoke("init", str(tmp_path))
    assert code == ExitCode.EXISTS
    assert str(mine) in output and "--force" in output
    assert mine.read_text(encoding="utf-8") == "MY_SECRET=keep\n"
    assert not (tmp_path / "distributor.toml").exists()  # all or nothing
    assert invoke("init", str(tmp_path), "--force")[0] == ExitCode.OK
    assert "MY_SECRET" not in mine.read_text(encoding="utf-8")


def test_every_commented_example_is_valid_and_env_example_has_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uncommenting the shown defaults and channel blocks must still pass `check` with the secrets of
    env.example set: the comments cannot drift into unknown keys or secrets nobody lists."""
    assert invoke("init", str(tmp_path))[0] == ExitCode.OK
    for line in (tmp_path / "env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^# ([A-Z][A-Z0-9_]+)=(\S+)", line)
        if match and match[1] not in ("DISTRIBUTOR_LANG", "DISTRIBUTOR_CONFIG"):  # those are not secrets
            monkeypatch.setenv(match[1], match[2])
    text = (tmp_path / "distributor.toml").read_text(encoding="utf-8")
    uncommented = re.sub(r"(?m)^# (\[.*\]|[a-z_.]+ = .*)$", r"\1", text)
    assert uncommented.count("[[channels]]") == 11  # outbox and ten commented examples
    full = tmp_path / "full.toml"
    full.write_text(uncommented, encoding="utf-8")
    code, output = invoke("check", "--config", str(full))
    assert code == ExitCode.OK, output
    assert "11 channels" in output
