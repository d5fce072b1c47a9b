"""typer's own words on a help page ("Options", "Commands", "default: ...", "required") in the
operator's language, so that a Vietnamese help page is Vietnamese beyond our own texts.

typer translates these with the standard library's `gettext`, which reads compiled .mo files we
do not ship; its module's `_` is pointed at the cli catalog instead, for the messages below
(anything else keeps its English). The click that typer bundles writes "Usage:" and the `--help`
line ("Show this message and exit.") without gettext: its usage line and help option are wrapped to
say them in the catalog's words (if a later typer moves them, they simply stay English). Its usage
errors ("Error: ...", "Try ... for help.") stay English. Only when the CLI's language is not
English: in English nothing of typer's is touched.
"""

from __future__ import annotations

import gettext as stdlib_gettext
from typing import Any


def N_(message: str) -> str:
    """Marks a string for the catalog (extracted by `python -m distributor.i18n update`)."""
    return message


# typer.core's exact words; a translation of words a later typer no longer uses is harmless.
MESSAGES = frozenset({
    N_("Options"),
    N_("Commands"),
    N_("Arguments"),
    N_("default: {default}"),
    N_("env var: {var}"),
    N_("(dynamic)"),
    N_("required"),
    N_("Missing command."),
    N_("No such command {name!r}."),
    N_("Aborted!"),
})  # fmt: skip
USAGE = N_("Usage:")
HELP_OPTION = N_("Show this message and exit.")


def install(locale: str) -> None:
    """Point typer's `_` at the cli catalog of `locale` (nothing to do for English)."""
    import typer.core

    from distributor.i18n import SOURCE_LOCALE, gettext

    if locale == SOURCE_LOCALE or getattr(typer.core, "_", None) is not stdlib_gettext.gettext:
        return

    def translate(message: str) -> str:
        return gettext(message, locale, "cli") if message in MESSAGES else stdlib_gettext.gettext(message)

    typer.core._ = translate  # type: ignore[attr-defined]
    _wrap_bundled_click(gettext(USAGE, locale, "cli") + " ", gettext(HELP_OPTION, locale, "cli"))


def _wrap_bundled_click(usage: str, help_option: str) -> None:
    """The usage line's prefix and the help option's text of the click that typer bundles."""
    try:
        from typer._click import core, formatting
    except ImportError:  # a typer without its own click: nothing of ours to wrap
        return
    write_usage = getattr(formatting.HelpFormatter, "write_usage", None)
    get_help_option = getattr(core.Command, "get_help_option", None)
    if write_usage is None or get_help_option is None:
        return

    def usage_line(self: Any, prog: str, args: str = "", prefix: str | None = None) -> None:
        write_usage(self, prog, args, usage if prefix is None else prefix)

    def translated_help_option(self: Any, ctx: Any) -> Any:
        option = get_help_option(self, ctx)
        if option is not None:
            option.help = help_option
        return option

    formatting.HelpFormatter.write_usage = usage_line  # type: ignore[method-assign]
    core.Command.get_help_option = translated_help_option  # type: ignore[method-assign]
