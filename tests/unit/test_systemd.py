"""The systemd units in deploy/systemd run real CLI commands with real options, read the config and
the environment the way the service expects, and give a stopping worker longer than its own grace."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main

from distributor.cli import app
from distributor.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = {
    "distributor-web.service": "serve",
    "distributor-worker.service": "worker",
    "distributor-beat.service": "beat",
}


def directives(path: Path) -> dict[str, list[str]]:
    """Key -> every value given in the unit (systemd allows repeats, e.g. Environment=)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def parse(argv: list[str]) -> tuple[str, Any]:
    """The subcommand and its parsed options, exactly as `distributor ...` would parse them (no run)."""
    group: Any = typer.main.get_command(app)  # typer's own (vendored) click group
    assert Path(argv[0]).name == "distributor", argv
    name, *rest = argv[1:]
    command = group.get_command(group.context_class(group), name)
    assert command is not None, f"no command {name!r}"
    return name, command.make_context(name, rest)  # raises on an unknown option or a bad value


def test_parse_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(Exception, match="No such option"):
        parse(["/opt/distributor/venv/bin/distributor", "serve", "--hots", "0.0.0.0"])
    with pytest.raises(AssertionError, match="no command"):
        parse(["distributor", "web"])


@pytest.mark.parametrize("unit", sorted(SERVICES))
def test_each_unit_starts_a_real_command_with_real_options(unit: str) -> None:
    found = directives(UNITS / unit)
    [start] = found["ExecStart"]
    name, _ = parse(shlex.split(start))
    assert name == SERVICES[unit]
    for before in found.get("ExecStartPre", []):
        assert parse(shlex.split(before.lstrip("-")))[0] == "check"  # a bad config stops the start, named


@pytest.mark.parametrize("unit", sorted(SERVICES))
def test_each_unit_reads_the_config_and_secrets_and_restarts(unit: str) -> None:
    found = directives(UNITS / unit)
    environment = dict(entry.split("=", 1) for entry in found["Environment"])
    assert {"DISTRIBUTOR_CONFIG", "DISTRIBUTOR_REDIS_URL", "DISTRIBUTOR_DATA_DIR"} <= set(environment)
    assert found["EnvironmentFile"] == ["-/etc/distributor/env"]  # secrets, overriding the defaults
    assert environment["DISTRIBUTOR_DATA_DIR"] in found["ReadWritePaths"]  # writable under ProtectSystem
    assert found["Restart"][0] in ("on-failure", "always") and found["User"] == ["distributor"]
    assert found["WantedBy"] == ["multi-user.target"]


def test_the_worker_outlasts_its_own_stop_grace() -> None:
    found = directives(UNITS / "distributor-worker.service")
    assert found["KillMode"] == ["mixed"]  # SIGTERM to `distributor worker`, which stops its child in order
    assert float(found["TimeoutStopSec"][0]) > WorkerSettings().stop_timeout + 60


def test_the_target_starts_restarts_and_stops_the_three_services() -> None:
    wants = directives(UNITS / "distributor.target")["Wants"][0].split()
    assert sorted(wants) == sorted(SERVICES)
    for unit in SERVICES:  # without PartOf, `systemctl restart distributor.target` would restart nothing
        assert directives(UNITS / unit)["PartOf"] == ["distributor.target"]


def test_the_deployment_guide_names_every_unit() -> None:
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for unit in [*SERVICES, "distributor.target"]:
        assert f"deploy/systemd/{unit}" in guide


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_itself_accepts_the_units() -> None:
    """systemd's own parser: a misspelt directive or a bad value is reported. The one complaint
    expected here is that /opt/distributor is not installed on this machine."""
    units = sorted(str(p) for p in UNITS.iterdir())
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60)
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if line.strip() and "/opt/distributor/venv/bin/distributor is not executable" not in line
    ]
    assert problems == []
