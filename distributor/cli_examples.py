"""One example per command for `--help` (and docs/cli.md): people learn a command from its example.

`attach` also gives each command its help in the operator's language: typer shows a command's
docstring, which `i18n.extract_command_docstrings` puts in the cli catalog.
"""

from __future__ import annotations

import inspect

import typer

from distributor.i18n import cli_gettext as _

# Keyed by the command's path after `distributor`; a group's own entry is its path ("channels").
EXAMPLES: dict[str, str] = {
    "": "distributor init mysite && distributor check --config mysite/distributor.toml",
    "init": "distributor init /etc/distributor",
    "check": "distributor check --config config/distributor.toml --json",
    "run": "distributor run --config config/distributor.toml --port 8000",
    "serve": "distributor serve --host 0.0.0.0 --port 8000",
    "worker": "distributor worker --queues distributor,deliver.facebook",
    "beat": "distributor beat --config config/distributor.toml",
    "health": "distributor health worker --json",
    "publish": "distributor publish articles/bai-moi.md --no-announce",
    "preview": "distributor preview 0123456789abcdef --channel telegram",
    "approve": "distributor approve 0123456789abcdef --channel facebook",
    "reject": 'distributor reject 0123456789abcdef --reason "sai số liệu"',
    "audit": "distributor audit --since 7d --json",
    "retract": 'distributor retract 0123456789abcdef --reason "sai số liệu"',
    "feeds": "distributor feeds build --out public/feeds",
    "feeds build": "distributor feeds build --out public/feeds",
    "feeds links": "distributor feeds links --json",
    "deliveries": "distributor deliveries --state failed --limit 20 --json",
    "deliveries retry": "distributor deliveries retry 0123456789abcdef facebook",
    "deliveries cancel": "distributor deliveries cancel 0123456789abcdef facebook",
    "shares": "distributor shares top --period week --json",
    "shares top": "distributor shares top --period week --by clicks --json",
    "shares export": "distributor shares export --format csv --period month --out shares.csv",
    "sources": "distributor sources test portal",
    "sources test": "distributor sources test portal --json",
    "channels": "distributor channels --json",
    "channels test": "distributor channels test telegram",
    "channels pause": "distributor channels pause facebook",
    "channels resume": "distributor channels resume facebook",
    "channels backfill": "distributor channels backfill zalo --since 3d --dry-run",
    "recovery": "distributor recovery status --json",
    "recovery status": "distributor recovery status --json",
    "recovery ack": "distributor recovery ack",
}


def epilog(path: str) -> str | None:
    """The help's closing paragraph; `\\b` keeps click from re-wrapping the command line."""
    example = EXAMPLES.get(path)
    if not example:
        return None
    label = _("Example:")
    return f"{label}\n\n\b\n  {example}"


def attach(app: typer.Typer, path: str = "") -> None:
    """Give every registered command and group of `app` its example and its translated help.

    typer builds the click objects late (at the first call), so changing its records here is enough.
    """
    app.info.epilog = epilog(path)
    if app.registered_callback is not None:
        app.registered_callback.epilog = epilog(path)
    for command in app.registered_commands:
        name = command.name or (command.callback.__name__.replace("_", "-") if command.callback else "")
        command.epilog = epilog(f"{path} {name}".strip())
        doc = inspect.getdoc(command.callback) if command.callback else None
        if command.help is None and doc:
            command.help = _(doc)
    for group in app.registered_groups:
        if group.typer_instance is not None and group.name:
            attach(group.typer_instance, f"{path} {group.name}".strip())
