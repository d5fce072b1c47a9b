"""Translations: Babel catalogs per domain, Jinja2's i18n extension, the reader's locale and dates.

Source strings are English; `distributor/locale/<locale>/LC_MESSAGES/<domain>.po` translates them.
The .po files are the only artefact: they are compiled in memory when first used, so there is no
build step to forget. `python -m distributor.i18n update` re-extracts every domain and merges the
new strings into each catalog (pybabel's extract + update, driven from `SOURCES` below);
`tests/unit/test_i18n.py` fails when a string is missing from a catalog.

Domains keep the catalogs apart by audience: `console` (the operator's web pages), `cli` (the
command line's messages) and `mail` (e-mail posts, in the article's language).
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale, UnknownLocaleError, dates, numbers
from babel.messages import Catalog, extract, mofile, pofile
from babel.support import NullTranslations, Translations

LOCALES = ("vi", "en")  # the console's languages; the first is the default for a reader who states none
SOURCE_LOCALE = "en"
DOMAINS = ("console", "cli", "mail")
PACKAGE = Path(__file__).parent
LOCALE_DIR = PACKAGE / "locale"

# Where each domain's strings live, as (glob relative to the package, Babel extraction method).
# "commands": the docstrings typer shows as a command's help (see `extract_command_docstrings`).
SOURCES: dict[str, list[tuple[str, str]]] = {
    "console": [
        ("web/console/**/*.py", "python"),
        ("web/templates/console/**/*.html", "jinja2"),
    ],
    "cli": [
        ("cli.py", "python"),
        ("cli.py", "commands"),
        ("cli_*.py", "python"),
        ("settings.py", "python"),
        ("channels/*.py", "python"),  # each channel's and source's own configuration checks
        ("sources/*.py", "python"),
        # Refusals (errors.Refusal) whose templates the command line translates:
        ("approval.py", "python"),
        ("corrections.py", "python"),
        ("audit.py", "python"),
        ("shares.py", "python"),
        ("engagement.py", "python"),
    ],
    "mail": [("channels/templates/email*.j2", "jinja2")],
}
KEYWORDS = {**extract.DEFAULT_KEYWORDS, "_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true"}


def catalog_path(locale: str, domain: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


@cache
def translations(locale: str, domain: str) -> NullTranslations:
    """The compiled catalog for a locale and domain; the source language needs none."""
    path = catalog_path(locale, domain)
    if locale == SOURCE_LOCALE or not path.exists():
        return NullTranslations()
    with path.open("rb") as handle:
        catalog = pofile.read_po(handle, locale=locale, domain=domain)
    compiled = BytesIO()
    mofile.write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=domain)


def negotiate(accept_language: str | None, available: tuple[str, ...] = LOCALES) -> str:
    """The best of `available` for an Accept-Language header (q-values honoured), else the first."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    for _q, _p, tag in sorted(ranked):
        language = tag.split("-")[0].split("_")[0]
        if language in available:
            return language
        if tag == "*":
            return available[0]
    return available[0]


def cli_locale(environ: dict[str, str] | None = None) -> str:
    """The command line's language: DISTRIBUTOR_LANG, then the POSIX locale variables, else English."""
    env = os.environ if environ is None else environ
    for name in ("DISTRIBUTOR_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        language = value.split(".")[0].split("_")[0].split("-")[0].lower()
        if language in LOCALES:
            return language
        if value and name != "DISTRIBUTOR_LANG" and value not in ("C", "POSIX"):
            return SOURCE_LOCALE  # a locale is set, just not one we translate into
    return SOURCE_LOCALE


def gettext(message: str, locale: str, domain: str) -> str:
    return translations(locale, domain).ugettext(message)


def ngettext(singular: str, plural: str, n: int, locale: str, domain: str) -> str:
    return translations(locale, domain).ungettext(singular, plural, n)


def said(exc: BaseException, locale: str) -> str:
    """An error's message in `locale` where it carries its template (`errors.Refusal`, whose
    templates live in the cli catalog); other errors as they are."""
    from distributor.errors import Refusal

    if isinstance(exc, Refusal):
        return gettext(exc.template, locale, "cli").format(**exc.fields)
    return str(exc)


def cli_gettext(message: str) -> str:
    """The command line's `_()`: the language of the operator's shell."""
    return gettext(message, cli_locale(), "cli")


@cache
def jinja_environment(templates: Path, locale: str, domain: str, autoescape: bool = True) -> jinja2.Environment:
    """One environment per template folder, locale and domain: templates compile once, not per request."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=autoescape,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale, domain), newstyle=True)  # type: ignore[attr-defined]
    env.globals["locale"] = locale
    return env


def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(SOURCE_LOCALE)


def format_datetime(moment: float | datetime | None, locale: str, timezone: str, format: str = "medium") -> str:
    """A moment in the site's timezone, written the way the reader's locale writes dates."""
    if moment is None:
        return ""
    when = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return dates.format_datetime(when, format=format, tzinfo=ZoneInfo(timezone), locale=_babel_locale(locale))


def format_date(moment: float | datetime, locale: str, timezone: str, format: str = "medium") -> str:
    when = moment if isinstance(moment, datetime) else datetime.fromtimestamp(moment, UTC)
    return dates.format_date(when.astimezone(ZoneInfo(timezone)), format=format, locale=_babel_locale(locale))


def format_number(value: int | float, locale: str) -> str:
    return numbers.format_decimal(value, locale=_babel_locale(locale))


# --- catalog maintenance (developers) ------------------------------------------------------------


def _files(domain: str) -> Iterator[tuple[Path, str]]:
    for pattern, method in SOURCES[domain]:
        for path in sorted(PACKAGE.glob(pattern)):
            if path.is_file():
                yield path, method


def extract_command_docstrings(
    fileobj: IO[bytes], keywords: Iterable[str], comment_tags: Iterable[str], options: dict[str, Any]
) -> Iterator[tuple[int, None, str, list[str]]]:
    """Babel extraction method: the docstring of every `@<app>.command(...)` function.

    typer shows that docstring as the command's help; `cli_examples.attach` looks it up in the
    catalog (the same `inspect.cleandoc` text), so a new command's help is a string to translate.
    """
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        commands = [
            d for d in node.decorator_list
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "command"
        ]  # fmt: skip
        doc = ast.get_docstring(node, clean=True)
        if commands and doc:
            yield node.body[0].lineno, None, doc, []


def extract_messages(domain: str) -> Catalog:
    """Every translatable string of a domain, as pybabel extract would find it."""
    catalog = Catalog(domain=domain, project="distributor", charset="utf-8")
    for path, method in _files(domain):
        options: dict[str, Any] = JINJA_OPTIONS if method == "jinja2" else {}
        methods: dict[str, Any] = {"jinja2": "jinja2.ext:babel_extract", "commands": extract_command_docstrings}
        method_ref = methods.get(method, method)
        with path.open("rb") as handle:
            for lineno, message, comments, context in extract.extract(
                method_ref, handle, keywords=KEYWORDS, options=options
            ):
                catalog.add(
                    message, None, [(str(path.relative_to(PACKAGE)), lineno)], auto_comments=comments, context=context
                )
    return catalog


def update_catalogs() -> None:
    """Extract every domain and merge into each locale's catalog, keeping existing translations."""
    for domain in DOMAINS:
        template = extract_messages(domain)
        for locale in LOCALES:
            if locale == SOURCE_LOCALE:
                continue
            path = catalog_path(locale, domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                with path.open("rb") as handle:
                    catalog = pofile.read_po(handle, locale=locale, domain=domain)
                catalog.update(template, no_fuzzy_matching=True)
            else:
                catalog = Catalog(locale=locale, domain=domain, project="distributor", charset="utf-8")
                catalog.update(template, no_fuzzy_matching=True)
            with path.open("wb") as handle:
                pofile.write_po(handle, catalog, width=100, omit_header=False, ignore_obsolete=True)


def missing(locale: str, domain: str) -> list[str]:
    """Strings of a domain that the locale's catalog does not translate (or only fuzzily)."""
    wanted = extract_messages(domain)
    path = catalog_path(locale, domain)
    if not path.exists():
        return sorted(str(m.id) for m in wanted if m.id)
    with path.open("rb") as handle:
        catalog = pofile.read_po(handle, locale=locale, domain=domain)
    gaps = []
    for message in wanted:
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        strings = found.string if found is not None else None
        translated = all(strings) if isinstance(strings, tuple | list) else bool(strings)
        if found is None or found.fuzzy or not translated:
            gaps.append(message.id if isinstance(message.id, str) else message.id[0])
    return sorted(gaps)


if __name__ == "__main__":  # python -m distributor.i18n update | missing
    command = sys.argv[1] if len(sys.argv) > 1 else "missing"
    if command == "update":
        update_catalogs()
    for domain in DOMAINS:
        for locale in LOCALES:
            if locale != SOURCE_LOCALE:
                for message in missing(locale, domain):
                    sys.stdout.write(f"{locale}/{domain}: untranslated: {message!r}\n")
