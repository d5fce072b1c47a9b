"""The compose recipe starts a working stack from the README's steps: one image built once for worker,
beat and web; the config it mounts is valid with only the secrets compose hands over (Docker secrets,
`*_FILE`); the article folder, outbox and feed files live on the data volume; the worker outlasts a
delivery when stopped; the health checks ask each component itself.

No Docker engine runs here: the file is rendered by `docker compose config` when the client has the
compose plugin (it needs no engine), else read as YAML; both give the same facts to check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from distributor.channels import channel_class
from distributor.cli import app as cli_app
from distributor.errors import ConfigError
from distributor.http import DEFAULT_TIMEOUT
from distributor.images import FETCH_TIMEOUT
from distributor.settings import Environment, Settings, load_settings, settings_from_dict
from distributor.sources import source_class

ROOT = Path(__file__).resolve().parents[2]
APP_ROLES = {"worker": "worker", "beat": "beat", "web": "serve"}  # service -> distributor subcommand
SECRETS_DIR = PurePosixPath("/run/secrets")


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Docker reads it: rendered by `docker compose config` where it exists."""
    if not _compose_plugin():
        return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    command = ["docker", "compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    done = subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    assert done.returncode == 0, f"docker compose config refused the file:\n{done.stderr}"
    rendered: dict[str, Any] = json.loads(done.stdout)
    return rendered


# --- the two shapes of every fact: short YAML syntax, or compose's rendered long syntax -----------


@dataclass(frozen=True)
class Mount:
    kind: str  # volume | bind
    source: str  # a volume name, or an absolute host path for a bind
    target: PurePosixPath
    read_only: bool


def mounts(service: dict[str, Any]) -> list[Mount]:
    found = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            kind, source, target = entry["type"], entry["source"], entry["target"]
            read_only = bool(entry.get("read_only"))
        else:
            source, target, *mode = entry.split(":")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            read_only = "ro" in (mode[0].split(",") if mode else [])
        if kind == "bind":
            source = str((ROOT / source).resolve())
        found.append(Mount(kind, source, PurePosixPath(target), read_only))
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {k: str(v) for k, v in env.items()}


def secret_paths(service: dict[str, Any]) -> dict[PurePosixPath, str]:
    """Where each Docker secret appears in the container -> the secret's name."""
    found = {}
    for entry in service.get("secrets", []):
        name = entry if isinstance(entry, str) else entry["source"]
        target = name if isinstance(entry, str) else entry.get("target") or name
        found[SECRETS_DIR / target] = name
    return found


def seconds(value: Any) -> float:
    """Compose durations: "2m", "90s", "1m30s" (YAML) or Go's "2m0s" (rendered)."""
    if isinstance(value, int | float):
        return float(value)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def published_ports(service: dict[str, Any]) -> set[tuple[str, int]]:
    found = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            found.add((str(entry["published"]), int(entry["target"])))
        else:
            published, _, target = str(entry).rpartition(":")
            found.add((published.rpartition(":")[2], int(target)))
    return found


def host_path(service: dict[str, Any], path: str) -> Path:
    """The host file behind a path in the container, through the service's bind mounts."""
    inside = PurePosixPath(path)
    for mount in mounts(service):
        if mount.kind == "bind" and inside.is_relative_to(mount.target):
            return Path(mount.source, inside.relative_to(mount.target))
    raise AssertionError(f"{path} is not on a bind mount of the service")


def data_volume(service: dict[str, Any]) -> Mount:
    """The writable named volume mounted at DISTRIBUTOR_DATA_DIR."""
    data_dir = PurePosixPath(environment(service)["DISTRIBUTOR_DATA_DIR"])
    found = [m for m in mounts(service) if m.target == data_dir]
    assert len(found) == 1, f"nothing (or several things) mounted at {data_dir}"
    assert found[0].kind == "volume" and not found[0].read_only
    return found[0]


def settings_in(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The service's config loaded as the container loads it, with only the secrets compose hands it
    (each `NAME_FILE` that names one of its Docker secrets gets a dummy file)."""
    env = environment(service)
    for name, value in env.items():
        if name.endswith("_FILE") and PurePosixPath(value) in secret_paths(service):
            dummy = tmp_path / PurePosixPath(value).name
            dummy.write_text(f"dummy-{name.lower()}-0123456789abcdef\n", encoding="utf-8")
            monkeypatch.delenv(name.removesuffix("_FILE"), raising=False)
            monkeypatch.setenv(name, str(dummy))
    config = host_path(service, env["DISTRIBUTOR_CONFIG"])
    assert config.is_file(), f"{env['DISTRIBUTOR_CONFIG']} ({config}) does not exist"
    return load_settings(
        config, Environment(redis_url=env["DISTRIBUTOR_REDIS_URL"], data_dir=env["DISTRIBUTOR_DATA_DIR"])
    )


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: compose["services"][name] for name in APP_ROLES}


# --- the stack ------------------------------------------------------------------------------------


def test_redis_persists_with_aof_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert [m.kind for m in mounts(redis) if m.target == PurePosixPath("/data")] == ["volume"]
    assert "healthcheck" in redis


def test_one_image_is_built_once_and_runs_every_role(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    builders = [name for name, spec in compose["services"].items() if "build" in spec]
    assert len(builders) == 1, f"compose would build the image {len(builders)} times: {builders}"
    image = compose["services"][builders[0]]["image"]
    for name, spec in services.items():
        assert spec["image"] == image == "distributor:latest"
        assert spec["command"][:2] == ["distributor", APP_ROLES[name]]
        if "build" not in spec:  # never looked for in a registry: it is the one built here
            assert spec["pull_policy"] == "never"


def test_every_role_reads_the_same_config_and_redis(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    configs = {environment(spec)["DISTRIBUTOR_CONFIG"] for spec in services.values()}
    assert len(configs) == 1
    for spec in services.values():
        env = environment(spec)
        assert env["DISTRIBUTOR_REDIS_URL"] == "redis://redis:6379/0"
        config_mount = [m for m in mounts(spec) if PurePosixPath(env["DISTRIBUTOR_CONFIG"]).is_relative_to(m.target)]
        assert [(m.kind, m.source, m.read_only) for m in config_mount] == [("bind", str(ROOT / "config"), True)]
        assert spec["depends_on"]["redis"]["condition"] == "service_healthy"
        assert data_volume(spec).source == data_volume(services["worker"]).source  # one volume, shared


def test_the_config_is_valid_with_only_the_secrets_compose_offers(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for spec in app_services(compose).values():
        settings = settings_in(spec, monkeypatch, tmp_path)
        # Clients reach the web container from Docker's network, never loopback: without a token the
        # dashboard, API details and metrics would answer nobody.
        assert settings.server.api_tokens
        assert str(settings.data_dir) == environment(spec)["DISTRIBUTOR_DATA_DIR"]


def test_articles_outbox_and_feed_files_are_on_the_data_volume(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    worker = compose["services"]["worker"]  # the worker polls the sources and writes the outbox
    settings = settings_in(worker, monkeypatch, tmp_path)
    volume = data_volume(worker).target
    folders = [
        source_class(s.type)(s, settings.site, settings.data_dir).folder  # type: ignore[attr-defined]
        for s in settings.sources
        if s.type == "directory"
    ]
    outboxes = [
        channel_class(c.type)(c, settings.site, settings.data_dir).path  # type: ignore[attr-defined]
        for c in settings.channels
        if c.type == "outbox"
    ]
    assert folders and outboxes
    for path in [*folders, *outboxes, settings.public_dir]:
        assert PurePosixPath(path).is_absolute() and PurePosixPath(path).is_relative_to(volume), path
    # A new volume starts as a copy of the image's /data: the folder is there, owned by the user.
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    for folder in folders:
        assert re.search(rf"mkdir -p [^\n]*{re.escape(str(folder))}\b", dockerfile), folder
    assert re.search(rf"chown -R distributor:distributor {re.escape(str(volume))}\b", dockerfile)


def test_worker_outlasts_a_delivery_when_stopped(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    # The longest delivery: fetch an image, upload it, post (Mastodon, Bluesky).
    longest_delivery = sum(FETCH_TIMEOUT) + 2 * sum(DEFAULT_TIMEOUT)
    assert seconds(worker["stop_grace_period"]) > longest_delivery
    for spec in app_services(compose).values():
        assert spec["init"] is True  # an init as PID 1 passes Docker's SIGTERM on to the process


def test_health_checks_ask_each_component_not_redis(compose: dict[str, Any]) -> None:
    services = app_services(compose)
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "distributor", "health", "worker"]
    assert services["beat"]["healthcheck"]["test"] == ["CMD", "distributor", "health", "beat"]
    web = services["web"]["healthcheck"]["test"]
    assert web[0] == "CMD" and "http://127.0.0.1:8000/healthz?scope=web" in " ".join(web)
    for spec in services.values():
        check = spec["healthcheck"]
        assert "ping" not in " ".join(check["test"]).lower()
        assert seconds(check["timeout"]) < seconds(check["interval"])


def test_health_check_commands_exist() -> None:
    for role in ("worker", "beat"):
        result = CliRunner().invoke(cli_app, ["health", role, "--help"])
        assert result.exit_code == 0, result.output


def test_web_is_published_on_port_8000(compose: dict[str, Any]) -> None:
    assert published_ports(compose["services"]["web"]) == {("8000", 8000)}


def test_tokens_can_be_docker_secrets(compose: dict[str, Any]) -> None:
    declared = compose["secrets"]
    for name, spec in declared.items():  # files on this machine, kept in secrets/
        assert (ROOT / spec["file"]).resolve().parent == ROOT / "secrets", name
    for spec in app_services(compose).values():
        mounted = secret_paths(spec)
        assert set(mounted.values()) <= set(declared)
        env = environment(spec)
        assert PurePosixPath(env["DISTRIBUTOR_API_TOKEN_FILE"]) in mounted
        for name, value in env.items():  # every *_FILE names a secret mounted in this service
            if name.endswith("_FILE"):
                assert PurePosixPath(value) in mounted, name


def test_the_readme_steps_create_every_secret_file(compose: dict[str, Any]) -> None:
    """A secret file missing at `docker compose up` stops the stack: the README must make each one."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Deployment with docker compose", 1)[1].split("\n## ", 1)[0]
    steps = "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.S))
    for spec in compose["secrets"].values():
        name = (ROOT / spec["file"]).resolve().relative_to(ROOT).as_posix()
        assert re.search(rf"> ?{re.escape(name)}\b", steps), f"the README's steps never create {name}"
    assert "openssl rand" in steps or "secrets.token" in steps


def test_secrets_and_env_stay_out_of_git_and_images() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "secrets/" in ignored and ".env" in ignored and ".venv/" in ignored
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in ("secrets/distributor_api_token.txt", ".env"):
        assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path]).returncode == 0, path


def test_dockerfile_installs_only_the_package_and_runs_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]  # the final stage
    assert re.search(r"pip install [^\n]*\bdistributor$", runtime, flags=re.M)
    assert "[test]" not in dockerfile and "build-essential" not in runtime
    user = re.findall(r"^USER (\S+)", runtime, flags=re.M)
    assert user and user[-1] not in ("root", "0")
    env = dict(re.findall(r"\b([A-Z_]+)=(\S+)", runtime.split("\nRUN", 1)[0]))
    assert env["PYTHONUNBUFFERED"] == "1" and env["DISTRIBUTOR_DATA_DIR"] == "/data"
    default_config = PurePosixPath(env["DISTRIBUTOR_CONFIG"])  # COPY config ./config under WORKDIR /app
    assert "COPY config ./config" in runtime and (ROOT / default_config.relative_to("/app")).is_file()


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
    reason = "which does not exist" if kind == "missing" else "which is a directory"
    assert any(
        "key 'api_tokens.0'" in p and f"DEPLOY_TEST_TOKEN_FILE names {str(path)!r}, {reason}" in p for p in found
    )


def test_an_empty_secret_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("\n")
    monkeypatch.delenv("DEPLOY_TEST_TOKEN", raising=False)
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(secret))
    found = config_problems(TOKEN_REF)
    assert any(
        "key 'api_tokens.0'" in p and f"DEPLOY_TEST_TOKEN_FILE names {str(secret)!r}, which is empty" in p
        for p in found
    )


def test_an_empty_variable_defers_to_the_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token.txt"
    secret.write_text("from-the-secret-file-0123456789\n")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN", "")
    monkeypatch.setenv("DEPLOY_TEST_TOKEN_FILE", str(secret))
    settings = settings_from_dict(TOKEN_REF, env=Environment(redis_url=None, data_dir=None))
    assert [t.token.get_secret_value() for t in settings.server.api_tokens] == ["from-the-secret-file-0123456789"]


@pytest.mark.parametrize(
    "server", [{"api_tokens": ["  "]}, {"api_tokens": ["ok-token-0123456789", ""]}, {"push_secret": ""}]
)
def test_a_blank_token_or_push_secret_is_refused(server: dict[str, Any]) -> None:
    """A blank token would let anyone in with an empty password; a blank HMAC key lets anyone sign."""
    found = config_problems({"site": SITE, "server": server})
    assert len(found) == 1 and f"[server] key '{next(iter(server))}'" in found[0] and "empty" in found[0]
