"""typer's own words on a help page ("Options", "Commands", "default: ...", "required") in the
operator's language, so that a Vietnamese help page is Vietnamese beyond our own texts.

typer translates these with the standard library's `gettext`, which reads compiled .mo files we
do not ship; its module's `_` is pointed at the cli catalog instead, for the messages below
(anything else keeps its English). Only when the CLI's language is not English: in English
nothing of typer's is touched. The click that typer bundles writes "Usage:", "Show this message
and exit." and its usage errors without gettext: those stay English.
"""

from __future__ import annotations

import gettext as stdlib_gettext


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


def install(locale: str) -> None:
    """Point typer's `_` at the cli catalog of `locale` (nothing to do for English)."""
    import typer.core

    from distributor.i18n import SOURCE_LOCALE, gettext

    if locale == SOURCE_LOCALE or getattr(typer.core, "_", None) is not stdlib_gettext.gettext:
        return

    def translate(message: str) -> str:
        return gettext(message, locale, "cli") if message in MESSAGES else stdlib_gettext.gettext(message)

    typer.core._ = translate  # type: ignore[attr-defined]
