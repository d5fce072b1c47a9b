"""The compose file keeps its promises: Redis with AOF on a volume; worker, beat and web from one
image with health checks, the config mounted and the Redis URL set. (No Docker engine runs here,
so this reads the file; the commands it runs are the ones the integration tests start.)"""

from __future__ import annotations

from pathlib import Path

import yaml

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
