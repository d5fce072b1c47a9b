"""The compose file keeps its promises: Redis with AOF on a volume; worker, beat and web from one
image with health checks, the config mounted and the Redis URL set. (No Docker engine runs here,
so this reads the file; the commands it runs are the ones the integration tests start.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from distributor.errors import ConfigError
from distributor.settings import Environment, settings_from_dict

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_redis_persists_with_aof_on_a_volume() -> None:
    redis = COMPOSE["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "healthcheck" in redis


def test_worker_beat_and_web_share_one_image_and_config() -> None:
    roles = {"worker": "worker", "beat": "beat", "web": "serve"}
    for service, command in roles.items():
        spec = COMPOSE["services"][service]
        assert spec["image"] == "distributor:latest" and spec["build"] == "."
        assert spec["command"][:2] == ["distributor", command]
        assert spec["environment"]["DISTRIBUTOR_REDIS_URL"] == "redis://redis:6379/0"
        assert "./config:/app/config:ro" in spec["volumes"]
        assert "healthcheck" in spec
        assert spec["depends_on"]["redis"]["condition"] == "service_healthy"
    assert COMPOSE["services"]["web"]["ports"] == ["8000:8000"]


def test_dockerfile_installs_the_package_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install ." in dockerfile and "USER distributor" in dockerfile


# --- secrets handed to the containers (Docker secrets, *_FILE) ------------------------------------

SITE = {"title": "T", "url": "https://example.vn"}
TOKEN_REF = {"site": SITE, "server": {"api_tokens": ["${DEPLOY_TEST_TOKEN}"]}}


def config_problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(raw, origin="compose.toml", env=Environment(redis_url=None, data_dir=None))
    return caught.value.problems


def test_a_secret_given_both_as_variable_and_as_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stale .env value must not silently shadow the secret file (e.g. env.example's dummy token)."""
    secret = tmp_path / "token.txt"
    secret.write_text("from-the-secret-file-0123456789\n")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN", "change-me-long-random-token")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(secret))
    found = config_problems(TOKEN_REF)
    assert len(found) == 1 and "DEPLOY_TEST_TOKEN and DEPLOY_TEST_TOKEN_FILE" in found[0]
    assert "[server] key 'api_tokens.0'" in found[0]
    assert "change-me" not in found[0] and "from-the-secret" not in found[0]


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_secret_file_that_cannot_be_read_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str) -> None:
    """Compose mounts a missing secret file as an empty directory: say which file, not 'not set'."""
    path = tmp_path / "token.txt"
    if kind == "directory":
        path.mkdir()
    monkeypatch.delenv("DEPLOY_TEST_TOKEN", raising=False)
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(path))
    found = config_problems(TOKEN_REF)
    assert any(f"key 'api_tokens.0' needs DEPLOY_TEST_TOKEN_FILE ({path}), which cannot be read" in p for p in found)


def test_an_empty_secret_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("\n")
    monkeypatch.delenv("DEPLOY_TEST_TOKEN", raising=False)
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(secret))
    found = config_problems(TOKEN_REF)
    assert any(f"key 'api_tokens.0' needs DEPLOY_TEST_TOKEN_FILE ({secret}), which is empty" in p for p in found)


def test_an_empty_variable_defers_to_the_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("from-the-secret-file-0123456789\n")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN", "")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(secret))
    settings = settings_from_dict(TOKEN_REF, env=Environment(redis_url=None, data_dir=None))
    assert [t.get_secret_value() for t in settings.server.api_tokens] == ["from-the-secret-file-0123456789"]


@pytest.mark.parametrize(
    "server", [{"api_tokens": ["  "]}, {"api_tokens": ["ok-token-0123456789", ""]}, {"push_secret": ""}]
)
def test_a_blank_token_or_push_secret_is_refused(server: dict[str, Any]) -> None:
    """A blank token would let anyone in with an empty password; a blank HMAC key lets anyone sign."""
    found = config_problems({"site": SITE, "server": server})
    assert len(found) == 1 and f"[server] key '{next(iter(server))}'" in found[0] and "empty" in found[0]
