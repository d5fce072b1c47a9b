"""Logging for the web, worker and beat processes: one event per line, readable text by default or
one JSON object per line (`[logging] format = "json"`) for a log shipper, secrets masked in both.

A log call that reports an event passes its fields with `extra=event("delivery", article_id=...,
channel=..., state=...)`: the text format appends them as `key=value`, the JSON format makes them
keys of the object, so `jq 'select(.article_id == "...")'` follows one article through the service.

Masking happens in the formatter, on the finished line (message, fields and traceback alike): every
URL goes through `distributor.urls.mask_urls`, and every secret value of the configuration (tokens,
passwords, app passwords: the `SecretStr` fields) is replaced by `***` wherever it appears.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

from distributor import quiet_logs
from distributor.urls import MASK, mask_urls

if TYPE_CHECKING:
    from distributor.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MIN_SECRET = 4  # shorter "secrets" (a test value, a PIN) would mask ordinary words


def event(kind: str, **fields: object) -> dict[str, object]:
    """The `extra=` of a log call that reports an event; None fields are left out."""
    return {"event": kind, "fields": {name: value for name, value in fields.items() if value is not None}}


def secrets_of(model: object) -> set[str]:
    """Every secret value held by the settings (recursively), to be masked in every line."""
    found: set[str] = set()
    if isinstance(model, SecretStr):
        value = model.get_secret_value()
        if len(value) >= MIN_SECRET:
            found.add(value)
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            found |= secrets_of(getattr(model, name))
    elif isinstance(model, list | tuple):
        for item in model:
            found |= secrets_of(item)
    elif isinstance(model, dict):
        for item in model.values():
            found |= secrets_of(item)
    return found


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(set(secrets), key=len, reverse=True)  # longest first: no partial leftovers

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return mask_urls(text)


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class TextFormatter(logging.Formatter):
    """'2026-12-04 18:00:00,123 INFO distributor.delivery: delivered ... | article_id=... channel=...'"""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if fields:
            pairs = " ".join(f"{name}={_plain(value)}" for name, value in fields.items())
            head, newline, trace = line.partition("\n")  # fields on the event's line, before a traceback
            line = f"{head} | {pairs}{newline}{trace}"
        return self.redact(line)


def _plain(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (" " in text or not text) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, event and its fields,
    and `error` (the traceback) when there is one."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        kind = getattr(record, "event", None)
        if isinstance(kind, str):
            data["event"] = kind
        for name, value in _fields(record).items():
            data.setdefault(name, value if isinstance(value, int | float | bool) or value is None else str(value))
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["error"] = record.exc_text
        line = json.dumps(data, ensure_ascii=False, default=str)
        # Masked after encoding: a secret is replaced inside the JSON text (it holds no quotes or
        # backslashes worth escaping differently), so the line stays valid JSON.
        return self.redact(line)


class _Ours(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler `configure` installed, so a second call replaces it instead of adding one."""


def configure(settings: Settings | None = None, stream: Any = None) -> logging.Handler:
    """Install the one root handler of this process, in the configured format and level (text at
    INFO without settings, as before the configuration is read)."""
    fmt = settings.logging.format if settings is not None else "text"
    level = settings.logging.level if settings is not None else "INFO"
    redact = Redactor(secrets_of(settings) if settings is not None else ())
    handler = _Ours(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _Ours) or type(old) is logging.StreamHandler:  # ours, or basicConfig's
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_logs.install(root)
    return handler
