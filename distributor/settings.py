"""The one configuration reader: TOML file + environment -> one validated, typed model.

Rules (starlette's): environment beats file beats default; secrets are written `${ENV_NAME}` in the
file and wrapped in `SecretStr`; every problem is reported with its location and the value given,
except a secret's (a `SecretStr` field, or anything read from the environment), which is never shown.
Nothing else in the package reads `os.environ`.

The messages are in the operator's language (the cli catalog, `i18n.cli_gettext`: DISTRIBUTOR_LANG,
else the locale), so `distributor check` and a failed start speak it; they still name the file, the
key and the value given, which no translation changes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

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
from distributor.urls import mask_urls

DEFAULT_CONFIG = "config/distributor.toml"


def _(message: str) -> str:
    """A message in the operator's language; imported late so that loading settings needs no Babel."""
    from distributor.i18n import cli_gettext

    return cli_gettext(message)


def N_(message: str) -> str:
    """Marks a string for the catalog; it is translated where it is shown."""
    return message


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """90, "90s", "2m", "1h", "1d" -> seconds."""
    if isinstance(value, bool):
        raise ValueError(_("expected a duration like 90, '90s', '2m' or '1h'"))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(_("expected a duration like 90, '90s', '2m' or '1h'"))
    if seconds <= 0:
        raise ValueError(_("a duration must be positive"))
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]

_LABEL = re.compile(r"^(?!-)[\w-]{1,63}(?<!-)$")  # letters (IDN too), digits, '-' and '_' (compose service names)
HTTP_URL_EXPECTED = N_("must be an absolute http(s) URL with a host, like 'https://example.vn'")
HOST_EXPECTED = N_("must be a bare host name like 'www.example.vn' (no scheme, port or path)")


def _valid_host(host: str) -> bool:
    """A DNS name (labels of letters, digits, '-', '_') or an IP address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    labels = host.removesuffix(".").split(".")
    return len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def http_url(value: Any) -> str:
    """The one check of every URL-typed key: absolute, http(s), a valid host, no spaces."""
    if not isinstance(value, str):
        raise ValueError(_(HTTP_URL_EXPECTED))
    url: str = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number or out of range
    except ValueError:
        raise ValueError(_(HTTP_URL_EXPECTED)) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or not _valid_host(parts.hostname):
        raise ValueError(_(HTTP_URL_EXPECTED))
    if any(c.isspace() for c in url):
        raise ValueError(_("must be a URL without spaces (write a space in a path as %20)"))
    return url


def host_name(value: Any) -> str:
    """'WWW.Example.vn' -> 'www.example.vn'; a scheme, port, path or anything else is refused."""
    if not isinstance(value, str) or not _valid_host(value.strip().lower()) or ":" in value:
        raise ValueError(_(HOST_EXPECTED))
    return value.strip().lower().removesuffix(".")


HttpUrlStr = Annotated[str, BeforeValidator(http_url)]
HostName = Annotated[str, BeforeValidator(host_name)]


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSettings(Strict):
    title: str
    url: HttpUrlStr
    description: str = ""
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    public_url: HttpUrlStr = "http://127.0.0.1:8000"
    author: str = ""
    logo: HttpUrlStr | None = None
    allowed_hosts: list[HostName] = []  # other hosts whose article URLs belong to this site

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value)
        except Exception as exc:
            raise ValueError(_("must be a time zone name like 'Asia/Ho_Chi_Minh'")) from exc
        return value


def _redis_url_form(value: str) -> str:
    """A Sentinel URL is checked here, so that a wrong one is a config error with its location."""
    from distributor.redis import sentinel_url

    sentinel_url(value)
    return value


class RedisSettings(Strict):
    url: str = ""  # empty: embedded; redis://, rediss://, unix://, or redis+sentinel://host:port,.../service/db
    key_prefix: str = "distributor:"

    _url_form = field_validator("url")(_redis_url_form)


class PathSettings(Strict):
    data_dir: str = "data"
    public_dir: str = ""  # empty: <data_dir>/public


def _token_table(value: Any) -> Any:
    """A bare token string is the legacy form: a token named later by its position."""
    return value if isinstance(value, dict | BaseModel) else {"token": value}


class ApiToken(Strict):
    """An operator token and the name the audit log records for whoever uses it."""

    holds_secret: ClassVar[bool] = True  # errors anywhere in `api_tokens` never show the value given
    name: Annotated[str, Field(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.@-]{0,63})?$")] = ""
    token: SecretStr


class ServerSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Each a string (named `token-1`, `token-2` ... by position) or { name = "...", token = "..." }.
    api_tokens: list[Annotated[ApiToken, BeforeValidator(_token_table)]] = []
    push_secret: SecretStr | None = None
    push_window: Duration = 300
    trusted_proxies: list[str] = []
    public_metrics: bool = False
    access_log: bool = False  # one log line per request roughly halves the plain request rate
    # The console's sign-in sessions (docs/console.md): their lifetime, and an optional key that
    # signs the session cookies (else a random key kept in Redis, shared by every web process).
    session_hours: float = Field(default=12, gt=0, le=24 * 30)
    session_secret: SecretStr | None = None

    @field_validator("push_secret")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        # A blank HMAC key lets anyone sign a push.
        if value is not None and not value.get_secret_value().strip():
            raise ValueError(_("must not be empty (a blank secret would let anyone in)"))
        return value

    @field_validator("api_tokens")
    @classmethod
    def _named(cls, tokens: list[ApiToken]) -> list[ApiToken]:
        """Unnamed tokens are named by position; a blank one would admit an empty password."""
        for index, token in enumerate(tokens):
            if not token.token.get_secret_value().strip():
                name = token.name or index + 1
                message = _("token {name} must not be empty (a blank secret would let anyone in)")
                raise ValueError(message.format(name=name))
        return [t if t.name else t.model_copy(update={"name": f"token-{i + 1}"}) for i, t in enumerate(tokens)]


class WorkerSettings(Strict):
    broker_url: str = ""  # empty: the Redis above; e.g. "amqp://guest:guest@rabbit:5672//"
    pool: Literal["threads", "prefork", "solo", "gevent"] = "threads"
    concurrency: int = Field(default=12, ge=1)  # threads: a drainer waiting on a platform holds one
    max_attempts: int = Field(default=8, ge=1)
    lease: Duration = 300
    sweep_interval: Duration = 30  # how often lost deliveries are looked for (and how late they must be)
    stop_timeout: Duration = 30  # a stopping worker's time to finish its deliveries before it is killed
    breaker_failures: int = Field(default=5, ge=1)  # transient failures in a row that open a channel's circuit
    breaker_cooldown: Duration = 60  # first pause of an open circuit; doubles on each trip, up to an hour
    edit_debounce: Duration = 60  # an article's changes within this time become one edit of each post
    retry_backoff: Duration = 10  # first wait after a transient failure without Retry-After; doubles each time

    _broker_url_form = field_validator("broker_url")(_redis_url_form)


class AuditSettings(Strict):
    retention: Duration = 90 * 86400  # operator actions older than this are dropped from the log


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


class LoggingSettings(Strict):
    """How the web, worker and beat processes log (see `distributor.logs`)."""

    format: Literal["text", "json"] = "text"  # json: one object per line, for a log shipper
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = "INFO"


SHARE_NETWORKS = ("facebook", "x", "telegram", "zalo", "linkedin", "email", "bluesky", "copy")


class ShareSettings(Strict):
    networks: list[str] = list(SHARE_NETWORKS)
    repeat_window: Duration = 86400
    ignore_bots: bool = True
    client_limit: int = Field(default=30, ge=0)  # counted clicks per client per hour, across articles; 0: no limit
    utm: bool = True
    utm_campaign: str = ""
    cors_origins: list[str] = []
    flush_interval: Duration = 0.1
    # Engagement the platforms report on our posts (issue 13): pulled for posts this many days old...
    engagement_days: int = Field(default=7, ge=0)
    # ...this often (on the worker's separate "engagement" queue, so deliveries never wait for it).
    engagement_interval: Duration = Field(default=900, ge=60)

    @field_validator("networks")
    @classmethod
    def _known_networks(cls, value: list[str]) -> list[str]:
        unknown = [n for n in value if n not in SHARE_NETWORKS]
        if unknown:
            message = _("unknown network(s) {unknown}: use {known}")
            raise ValueError(message.format(unknown=", ".join(unknown), known=", ".join(SHARE_NETWORKS)))
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s?#]+", origin):
                message = _("{origin} is not an origin: write 'https://portal.example.vn' (no path) or '*'")
                raise ValueError(message.format(origin=repr(origin)))
        return [o.lower() for o in value]


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
    hubs: list[HttpUrlStr] = []
    filters: FeedFilters = FeedFilters()


class SourceSettings(Strict):
    """Keys every source has; a source type subclasses this with its own keys."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    type: str
    url: HttpUrlStr | None = None
    path: str | None = None
    interval: Duration = 300
    category: str | None = None
    announce_existing: bool = False
    max_age: Duration | None = None
    enabled: bool = True
    # Round 2 (issue 10): retract an article's posts when it disappears from this source, once the
    # removal has been confirmed on two polls.
    retract_on_remove: bool = False


class ChannelSettings(Strict):
    """Keys every channel has; a channel type subclasses this with its credentials."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    type: str
    enabled: bool = True
    template: str | None = None
    api_base: HttpUrlStr | None = None
    utm: bool = True
    utm_campaign: str = "distributor"
    rate_per_minute: float | None = Field(default=None, gt=0)
    allow_private_images: bool = False
    categories: list[str] = []  # empty: every article
    # Corrections and approval (issue 10)
    on_edit: Literal["edit", "repost", "ignore"] = "edit"
    edit_window: Duration = 7 * 86400  # posts older than this are left alone when the article changes
    approval: bool = False  # hold each new delivery until an operator approves it
    approval_notify: str | None = None  # a channel name: where editors get the preview of what waits
    # Share tracking (issue 13)
    track_clicks: bool = False  # links in posts go through /r/{id}/{channel}
    # Delivery at scale (issue 14)
    max_in_flight: int = Field(default=2, ge=1)  # deliveries of this channel at once, across all workers
    min_interval: Duration | None = None  # no two posts closer than this
    max_per_day: int | None = Field(default=None, ge=1)  # posts per day (site's timezone)
    quiet_hours: str | None = None  # "22:00-06:00" in the site's timezone: posts wait for the morning

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str | None) -> str | None:
        if value is None:
            return None
        match = re.fullmatch(r"\s*([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]):([0-5]\d)\s*", value)
        if not match or match.group(1, 2) == match.group(3, 4):
            raise ValueError(_('expected two different times like "22:00-06:00"'))
        return f"{match.group(1)}:{match.group(2)}-{match.group(3)}:{match.group(4)}"


class Settings(Strict):
    site: SiteSettings
    redis: RedisSettings = RedisSettings()
    paths: PathSettings = PathSettings()
    server: ServerSettings = ServerSettings()
    worker: WorkerSettings = WorkerSettings()
    shares: ShareSettings = ShareSettings()
    audit: AuditSettings = AuditSettings()
    logging: LoggingSettings = LoggingSettings()
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

    def has_channel(self, name: str) -> bool:
        return any(channel.name == name for channel in self.channels)


class Environment(BaseSettings):
    """The process environment this service reads (all optional)."""

    model_config = SettingsConfigDict(env_prefix="DISTRIBUTOR_", extra="ignore")

    config: str = DEFAULT_CONFIG
    redis_url: str | None = None
    data_dir: str | None = None


# --- loading -------------------------------------------------------------------------------------


Location = tuple[Any, ...]


@dataclasses.dataclass
class _EnvTrace:
    """Where the environment was read: values never shown, and keys whose variable was missing."""

    hidden: set[Location] = dataclasses.field(default_factory=set)
    unresolved: set[Location] = dataclasses.field(default_factory=set)


def _interpolate(
    value: Any,
    where: Location,
    missing: list[tuple[Location, str]],
    hidden: set[Location] | None = None,
) -> Any:
    """Replace `${NAME}` with the environment's NAME (or the contents of the file NAME_FILE).

    Problems go to `missing`; every location that took a value from the environment goes to
    `hidden`, so that no error message ever shows it.
    """
    hidden = set() if hidden is None else hidden
    if isinstance(value, dict):
        return {k: _interpolate(v, (*where, k), missing, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*where, i), missing, hidden) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match[str]) -> str:
        found, problem = _from_environment(match.group(1))
        if problem:
            missing.append((where, problem))
        return found

    if _ENV_REF.search(value):
        hidden.add(where)
    return _ENV_REF.sub(lookup, value)


def _from_environment(name: str) -> tuple[str, str]:
    """(value, "") or ("", the problem): NAME, else the file NAME_FILE names (Docker secrets)."""
    file_variable = f"{name}_FILE"
    names = {"name": name, "file_variable": file_variable, "written": f"${{{name}}}"}
    value = os.environ.get(name)
    if value and os.environ.get(file_variable):  # a stale .env value must not shadow the secret file
        return "", _("has both {name} and {file_variable} set; set only one (written {written})").format(**names)
    if value is not None and (value or file_variable not in os.environ):
        return value, ""
    if file_variable not in os.environ:
        return "", _("needs environment variable {name}, which is not set (written {written})").format(**names)
    file_name = os.environ[file_variable]
    if not file_name.strip():
        message = _(
            "needs environment variable {name}, which is not set, and {file_variable} is empty (written {written})"
        )
        return "", message.format(**names)
    try:
        content = Path(file_name).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        why = _("which does not exist")
    except IsADirectoryError:
        why = _("which is a directory, not a file")
    except PermissionError:
        why = _("which this process may not read (permission denied)")
    except UnicodeDecodeError:
        why = _("which is not UTF-8 text")
    except OSError as exc:
        why = _("which cannot be read ({error})").format(error=exc.strerror or exc)
    else:
        if content:
            return content, ""
        why = _("which is empty")
    message = _("needs {name}: {name} is not set and {file_variable} names {file}, {why} (written {written})")
    return "", message.format(**names, file=repr(file_name), why=why)


def _describe(loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    """('channels', 1, 'token') -> "[[channels]] #2 (name 'tg') key 'token'"."""
    if not loc:
        return _("top level")
    head, *rest = loc
    if head in ("channels", "sources", "feeds") and rest and isinstance(rest[0], int):
        index = rest[0]
        items = raw.get(head) or []
        name = items[index].get("name") if index < len(items) and isinstance(items[index], dict) else None
        label = f"[[{head}]] #{index + 1}" + (" " + _("(name {name})").format(name=repr(name)) if name else "")
        keys = ".".join(str(p) for p in rest[1:])
        return _("{table} key {key}").format(table=label, key=f"'{keys}'") if keys else label
    keys = ".".join(str(p) for p in rest)
    return _("{table} key {key}").format(table=f"[{head}]", key=f"'{keys}'") if keys else f"[{head}]"


SHOWN_LENGTH = 80  # a longer value is shortened in messages
_KINDS = {str: N_("a string"), int: N_("an integer"), float: N_("a number"), bool: N_("true or false"),
          list: N_("an array")}  # fmt: skip
_A_VALUE = N_("a value")


def _shown(value: Any) -> str:
    """A given value as a message quotes it: 'not a url', 70000, true, ["a"]; long ones shortened."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        value = mask_urls(value)  # a URL's password (redis://:pw@host) is not shown back
        return repr(value if len(value) <= SHOWN_LENGTH else value[: SHOWN_LENGTH - 1] + "…")
    text = json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, list) else repr(value)
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 1] + "…"


def _mentions_secret(annotation: Any) -> bool:
    if annotation is SecretStr or getattr(annotation, "holds_secret", False) is True:
        return True
    return any(_mentions_secret(arg) for arg in typing.get_args(annotation))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple, Annotated):
        for arg in typing.get_args(annotation):
            if found := _model_in(arg):
                return found
    return None


def _is_secret_field(model: type[BaseModel] | None, loc: Location) -> bool:
    """Whether `loc` (relative to `model`) is, or is inside, a `SecretStr` key."""
    for part in loc:
        if model is None:
            return False
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return False
        if _mentions_secret(info.annotation):
            return True
        model = _model_in(info.annotation)
    return False


def _overlaps(loc: Location, hidden: set[Location]) -> bool:
    return any(loc[: len(h)] == h or h[: len(loc)] == loc for h in hidden)


def _message(error: Any, secret: str = "") -> str:
    """What is wrong and what was given: the value itself, unless `secret` says why it is hidden."""
    kind = error["type"]
    if kind == "missing":
        return _("is required but missing")
    if kind == "extra_forbidden":
        return _("is not a known key (check the spelling; see docs/configuration.md)")
    message = _pydantic_message(error)
    given = error.get("input")
    if isinstance(given, dict | BaseModel):
        return message  # a table-level problem: its message names what is wrong
    if secret:
        kind_given = _(_KINDS.get(type(given), _A_VALUE))
        return _("{message} (got {kind}; not shown, {why})").format(message=message, kind=kind_given, why=secret)
    quoted = _shown(given)
    return message if quoted in message else _("{message} (got {value})").format(message=message, value=quoted)


# Pydantic's own messages, by error type, in pydantic's words (the English stays as it was) so that
# they can be translated; a type not listed keeps pydantic's English message.
_PYDANTIC = {
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_type": N_("Input should be a valid integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "float_type": N_("Input should be a valid number"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "bool_type": N_("Input should be a valid boolean"),
    "string_type": N_("Input should be a valid string"),
    "list_type": N_("Input should be a valid list"),
    "dict_type": N_("Input should be a valid dictionary"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "literal_error": N_("Input should be {expected}"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
}


def _pydantic_message(error: Any) -> str:
    """The error's message in the operator's language; our validators' ValueErrors are translated already."""
    message = str(error["msg"]).removeprefix("Value error, ")
    template = _PYDANTIC.get(error["type"])
    context = {k: str(v) for k, v in (error.get("ctx") or {}).items()}
    if template is None or template.format(**context) != message:
        return message  # pydantic worded it differently (another version): keep its words
    if "expected" in context:  # "'text' or 'json'": the list's own "or" is a word to translate
        head, _sep, last = context["expected"].rpartition(" or ")
        or_ = _(" or ")
        context["expected"] = f"{head}{or_}{last}" if head else last
    return _(template).format(**context)


def _format(
    exc: ValidationError,
    raw: dict[str, Any],
    origin: str,
    prefix: Location = (),
    *,
    model: type[BaseModel] | None = None,
    env: _EnvTrace | None = None,
) -> list[str]:
    env = env or _EnvTrace()
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        if any(unresolved[: len(loc)] == loc for unresolved in env.unresolved):
            continue  # already reported: the environment variable it (or an item of it) needs is missing
        if len(loc) == 1 and error["type"] == "missing":
            problems.append(_("{origin}: [{section}] section is missing").format(origin=origin, section=loc[0]))
            continue
        secret = ""
        if _is_secret_field(model, tuple(error["loc"])):
            secret = _("it is a secret")
        elif _overlaps(loc, env.hidden):
            secret = _("it comes from the environment")
        problems.append(f"{origin}: {_describe(loc, raw)} {_message(error, secret)}")
    return problems


def _typed_items(
    raw: dict[str, Any],
    table: str,
    base: type[BaseModel],
    origin: str,
    problems: list[str],
    env: _EnvTrace | None = None,
) -> list[Any]:
    """Validate each [[sources]] / [[channels]] entry with the model its `type` registers."""
    from distributor.channels import CHANNELS, channel_class
    from distributor.sources import SOURCES, source_class

    registry, load = (CHANNELS, channel_class) if table == "channels" else (SOURCES, source_class)
    items = raw.get(table, [])
    if not isinstance(items, list):
        message = _("{origin}: {table} must be an array of tables ([[{table}]])")
        problems.append(message.format(origin=origin, table=table))
        return []
    validated: list[Any] = []
    names: set[str] = set()
    for index, item in enumerate(items):
        where = _describe((table, index), raw)
        if not isinstance(item, dict):
            problems.append(_("{origin}: {where} must be a table").format(origin=origin, where=where))
            continue
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in registry:
            known = ", ".join(sorted(registry))
            given = (
                _("not shown, it comes from the environment")
                if env and _overlaps((table, index, "type"), env.hidden)
                else _shown(kind)
            )
            message = _("{origin}: {where} key 'type' must be one of: {known} (got {value})")
            problems.append(message.format(origin=origin, where=where, known=known, value=given))
            continue
        model = load(kind).settings_model
        try:
            entry = model.model_validate(item)
        except ValidationError as exc:
            problems.extend(_format(exc, raw, origin, (table, index), model=model, env=env))
            continue
        if entry.name in names:
            message = _("{origin}: {where} key 'name' repeats {name}; names must be unique")
            problems.append(message.format(origin=origin, where=where, name=repr(entry.name)))
        names.add(entry.name)
        validated.append(entry)
    return validated


def load_settings(path: str | Path | None = None, env: Environment | None = None) -> Settings:
    """Read, interpolate and validate the config; raise ConfigError listing every problem."""
    env = env or Environment()
    config_path = Path(path or env.config)
    origin = str(config_path)
    if not config_path.is_file():
        message = _("{origin}: config file not found (set DISTRIBUTOR_CONFIG or pass --config)")
        raise ConfigError([message.format(origin=origin)])
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([_("{origin}: not valid TOML: {error}").format(origin=origin, error=exc)]) from exc
    return settings_from_dict(raw, origin=origin, env=env)


def settings_from_dict(raw: dict[str, Any], *, origin: str = "<config>", env: Environment | None = None) -> Settings:
    env = env or Environment()
    missing: list[tuple[Location, str]] = []
    env_trace = _EnvTrace()
    raw = _interpolate(raw, (), missing, env_trace.hidden)
    env_trace.unresolved.update(loc for loc, _problem in missing)
    problems = [f"{origin}: {_describe(loc, raw)} {message}" for loc, message in missing]
    raw.setdefault("redis", {})
    raw.setdefault("paths", {})
    if env.redis_url is not None and isinstance(raw["redis"], dict):
        raw["redis"]["url"] = env.redis_url
    if env.data_dir and isinstance(raw["paths"], dict):
        raw["paths"]["data_dir"] = env.data_dir
    sources = _typed_items(raw, "sources", SourceSettings, origin, problems, env_trace)
    channels = _typed_items(raw, "channels", ChannelSettings, origin, problems, env_trace)
    rest = {k: v for k, v in raw.items() if k not in ("sources", "channels")}
    try:
        settings = Settings.model_validate({**rest, "sources": sources, "channels": channels, "config_path": origin})
    except ValidationError as exc:
        problems.extend(_format(exc, raw, origin, model=Settings, env=env_trace))
        raise ConfigError(problems) from None
    problems.extend(_cross_checks(settings, origin))
    if problems:
        raise ConfigError(problems)
    return settings


def _cross_checks(settings: Settings, origin: str) -> list[str]:
    problems = []
    feed_names = [f.name for f in settings.feeds]
    for name in {n for n in feed_names if feed_names.count(n) > 1}:
        message = _("{origin}: [[feeds]] name {name} is used twice; names must be unique")
        problems.append(message.format(origin=origin, name=repr(name)))
    source_names = {s.name for s in settings.sources}
    for feed in settings.feeds:
        for unknown in set(feed.filters.sources) - source_names:
            message = _("{origin}: [[feeds]] {feed} key 'filters.sources' names unknown source {source}")
            problems.append(message.format(origin=origin, feed=repr(feed.name), source=repr(unknown)))
    token_names = [t.name for t in settings.server.api_tokens]
    for name in sorted({n for n in token_names if token_names.count(n) > 1}):
        message = _(
            "{origin}: [server] api_tokens name {name} is used twice (unnamed tokens are named token-1, token-2 "
            "... by position); the audit log must tell who acted"
        )
        problems.append(message.format(origin=origin, name=repr(name)))
    for name in sorted({"hmac", "local"} & set(token_names)):
        message = _("{origin}: [server] api_tokens name {name} is reserved for the audit log; pick another")
        problems.append(message.format(origin=origin, name=repr(name)))
    problems.extend(_approval_checks(settings, origin))
    # A channel type whose keys depend on other tables (Zalo's cover on [site] logo) says so itself.
    names = {"channels": [{"name": c.name} for c in settings.channels]}
    for index, channel in enumerate(settings.channels):
        cross_check = getattr(channel, "cross_check", None)
        for key, problem in cross_check(settings.site) if cross_check else []:
            problems.append(f"{origin}: {_describe(('channels', index, key), names)} {problem}")
    return problems


def _approval_checks(settings: Settings, origin: str) -> list[str]:
    """`approval_notify` names another configured channel (where the editors see the preview)."""
    problems = []
    names = {c.name for c in settings.channels}
    listed = {"channels": [{"name": c.name} for c in settings.channels]}
    for index, channel in enumerate(settings.channels):
        target = channel.approval_notify
        where = _describe(("channels", index, "approval_notify"), listed)
        if target is None:
            continue
        if target == channel.name:
            message = _("{origin}: {where} names the channel itself; name the editors' channel instead")
            problems.append(message.format(origin=origin, where=where))
        elif target not in names:
            known = ", ".join(sorted(names))
            message = _("{origin}: {where} names unknown channel {name} (channels: {known})")
            problems.append(message.format(origin=origin, where=where, name=repr(target), known=known))
        elif not channel.approval:
            message = _("{origin}: {where} is set but approval is false: nothing would ever be previewed")
            problems.append(message.format(origin=origin, where=where))
    return problems
