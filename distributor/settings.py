"""The one configuration reader: TOML file + environment -> one validated, typed model.

Rules (starlette's): environment beats file beats default; secrets are written `${ENV_NAME}` in the
file and wrapped in `SecretStr`; every problem is reported with its location, never with a value.
Nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from distributor.errors import ConfigError

DEFAULT_CONFIG = "config/distributor.toml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """90, "90s", "2m", "1h", "1d" -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90, '90s', '2m' or '1h'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError("expected a duration like 90, '90s', '2m' or '1h'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(Strict):
    title: str
    url: str
    description: str = ""
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    public_url: str = "http://127.0.0.1:8000"
    author: str = ""
    logo: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class RedisSettings(Strict):
    url: str = ""
    key_prefix: str = "distributor:"


class PathSettings(Strict):
    data_dir: str = "data"
    public_dir: str = ""  # empty: <data_dir>/public


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_tokens: list[SecretStr] = []
    push_secret: SecretStr | None = None
    push_window: Duration = 300
    trusted_proxies: list[str] = []
    access_log: bool = False  # one log line per request roughly halves the plain request rate


class WorkerSettings(Strict):
    broker_url: str = ""  # empty: the Redis above; e.g. "amqp://guest:guest@rabbit:5672//"
    pool: Literal["threads", "prefork", "solo", "gevent"] = "threads"
    concurrency: int = Field(default=8, ge=1)
    max_attempts: int = Field(default=8, ge=1)
    lease: Duration = 300
    sweep_interval: Duration = 30  # how often lost deliveries are looked for (and how late they must be)


class ShareSettings(Strict):
    networks: list[str] = ["facebook", "x", "telegram", "zalo", "linkedin", "email", "bluesky"]
    repeat_window: Duration = 86400
    ignore_bots: bool = True


class FeedFilters(Strict):
    categories: list[str] = []
    tags: list[str] = []
    sources: list[str] = []
    language: str | None = None


class FeedSettings(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    title: str = ""
    description: str = ""
    limit: int = Field(default=50, ge=1, le=1000)
    per_category: bool = False
    ttl: int = Field(default=15, ge=1)
    hubs: list[str] = []
    filters: FeedFilters = FeedFilters()


class SourceSettings(Strict):
    """Keys every source has; a source type subclasses this with its own keys."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    type: str
    url: str | None = None
    path: str | None = None
    interval: Duration = 300
    category: str | None = None
    announce_existing: bool = False
    max_age: Duration | None = None
    enabled: bool = True


class ChannelSettings(Strict):
    """Keys every channel has; a channel type subclasses this with its credentials."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    type: str
    enabled: bool = True
    template: str | None = None
    api_base: str | None = None
    utm: bool = True
    utm_campaign: str = "distributor"
    rate_per_minute: float | None = Field(default=None, gt=0)
    allow_private_images: bool = False
    categories: list[str] = []  # empty: every article


class Settings(Strict):
    site: SiteSettings
    redis: RedisSettings = RedisSettings()
    paths: PathSettings = PathSettings()
    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    shares: ShareSettings = ShareSettings()
    sources: list[SourceSettings] = []
    feeds: list[FeedSettings] = []
    channels: list[ChannelSettings] = []
    config_path: str = ""

    @property
    def data_dir(self) -> Path:
        return Path(self.paths.data_dir)

    @property
    def public_dir(self) -> Path:
        return Path(self.paths.public_dir) if self.paths.public_dir else self.data_dir / "public"

    def source(self, name: str) -> SourceSettings:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def channel(self, name: str) -> ChannelSettings:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


class Environment(BaseSettings):
    """The process environment this service reads (all optional)."""

    model_config = SettingsConfigDict(env_prefix="DISTRIBUTOR_", extra="ignore")

    config: str = DEFAULT_CONFIG
    redis_url: str | None = None
    data_dir: str | None = None


# --- loading -------------------------------------------------------------------------------------


def _interpolate(value: Any, where: tuple[Any, ...], missing: list[tuple[tuple[Any, ...], str]]) -> Any:
    """Replace `${NAME}` with the environment's NAME (or the contents of the file NAME_FILE)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, (*where, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*where, i), missing) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in os.environ:
            return os.environ[name]
        file_name = os.environ.get(f"{name}_FILE")
        if file_name and Path(file_name).is_file():
            return Path(file_name).read_text(encoding="utf-8").strip()
        missing.append((where, f"needs environment variable {name}, which is not set (written ${{{name}}})"))
        return ""

    return _ENV_REF.sub(lookup, value)


def _describe(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """('channels', 1, 'token') -> "[[channels]] #2 (name 'tg') key 'token'"."""
    if not loc:
        return "top level"
    head, *rest = loc
    if head in ("channels", "sources", "feeds") and rest and isinstance(rest[0], int):
        index = rest[0]
        items = raw.get(head) or []
        name = items[index].get("name") if index < len(items) and isinstance(items[index], dict) else None
        label = f"[[{head}]] #{index + 1}" + (f" (name {name!r})" if name else "")
        keys = ".".join(str(p) for p in rest[1:])
        return f"{label} key '{keys}'" if keys else label
    keys = ".".join(str(p) for p in rest)
    return f"[{head}] key '{keys}'" if keys else f"[{head}]"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return "is not a known key (check the spelling; see docs/configuration.md)"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{message} (got {type(error.get('input')).__name__})"


def _format(exc: ValidationError, raw: dict[str, Any], origin: str, prefix: tuple[Any, ...] = ()) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        if len(loc) == 1 and error["type"] == "missing":
            problems.append(f"{origin}: [{loc[0]}] section is missing")
            continue
        problems.append(f"{origin}: {_describe(loc, raw)} {_message(error)}")
    return problems


def _typed_items(raw: dict[str, Any], table: str, base: type[BaseModel], origin: str, problems: list[str]) -> list[Any]:
    """Validate each [[sources]] / [[channels]] entry with the model its `type` registers."""
    from distributor.channels import CHANNELS, channel_class
    from distributor.sources import SOURCES, source_class

    registry, load = (CHANNELS, channel_class) if table == "channels" else (SOURCES, source_class)
    items = raw.get(table, [])
    if not isinstance(items, list):
        problems.append(f"{origin}: {table} must be an array of tables ([[{table}]])")
        return []
    validated: list[Any] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        where = _describe((table, index), raw)
        if not isinstance(item, dict):
            problems.append(f"{origin}: {where} must be a table")
            continue
        kind = item.get("type")
        if kind not in registry:
            known = ", ".join(sorted(registry))
            problems.append(f"{origin}: {where} key 'type' must be one of: {known} (got {kind!r})")
            continue
        model = load(kind).settings_model
        try:
            entry = model.model_validate(item)
        except ValidationError as exc:
            problems.extend(_format(exc, raw, origin, (table, index)))
            continue
        if entry.name in names:
            problems.append(f"{origin}: {where} key 'name' repeats {entry.name!r}; names must be unique")
        names.add(entry.name)
        validated.append(entry)
    return validated


def load_settings(path: str | Path | None = None, env: Environment | None = None) -> Settings:
    """Read, interpolate and validate the config; raise ConfigError listing every problem."""
    env = env or Environment()
    config_path = Path(path or env.config)
    origin = str(config_path)
    if not config_path.is_file():
        raise ConfigError([f"{origin}: config file not found (set DISTRIBUTOR_CONFIG or pass --config)"])
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{origin}: not valid TOML: {exc}"]) from exc
    return settings_from_dict(raw, origin=origin, env=env)


def settings_from_dict(raw: dict[str, Any], *, origin: str = "<config>", env: Environment | None = None) -> Settings:
    env = env or Environment()
    missing: list[tuple[tuple[Any, ...], str]] = []
    raw = _interpolate(raw, (), missing)
    problems = [f"{origin}: {_describe(loc, raw)} {message}" for loc, message in missing]
    raw.setdefault("redis", {})
    raw.setdefault("paths", {})
    if env.redis_url is not None and isinstance(raw["redis"], dict):
        raw["redis"]["url"] = env.redis_url
    if env.data_dir and isinstance(raw["paths"], dict):
        raw["paths"]["data_dir"] = env.data_dir
    sources = _typed_items(raw, "sources", SourceSettings, origin, problems)
    channels = _typed_items(raw, "channels", ChannelSettings, origin, problems)
    rest = {k: v for k, v in raw.items() if k not in ("sources", "channels")}
    try:
        settings = Settings.model_validate({**rest, "sources": sources, "channels": channels, "config_path": origin})
    except ValidationError as exc:
        problems.extend(_format(exc, raw, origin))
        raise ConfigError(problems) from None
    problems.extend(_cross_checks(settings, origin))
    if problems:
        raise ConfigError(problems)
    return settings


def _cross_checks(settings: Settings, origin: str) -> list[str]:
    problems = []
    feed_names = [f.name for f in settings.feeds]
    for name in {n for n in feed_names if feed_names.count(n) > 1}:
        problems.append(f"{origin}: [[feeds]] name {name!r} is used twice; names must be unique")
    source_names = {s.name for s in settings.sources}
    for feed in settings.feeds:
        for unknown in set(feed.filters.sources) - source_names:
            problems.append(f"{origin}: [[feeds]] {feed.name!r} key 'filters.sources' names unknown source {unknown!r}")
    return problems
