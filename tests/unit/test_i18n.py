"""Translations: every string of the console, the CLI and the e-mails is in the Vietnamese catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from distributor import i18n


@pytest.mark.parametrize("domain", i18n.DOMAINS)
def test_every_string_is_translated(domain: str) -> None:
    for locale in i18n.LOCALES:
        if locale != i18n.SOURCE_LOCALE:
            assert i18n.missing(locale, domain) == [], f"run `python -m distributor.i18n update` and translate {domain}"


def test_a_new_untranslated_string_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "web/templates/console").mkdir(parents=True)
    (tmp_path / "web/templates/console/page.html").write_text(
        "<h1>{{ _('Deliveries') }}</h1>{% trans %}Sign in{% endtrans %}", encoding="utf-8"
    )
    monkeypatch.setattr(i18n, "PACKAGE", tmp_path)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    assert i18n.missing("vi", "console") == ["Deliveries", "Sign in"]
    i18n.update_catalogs()
    assert i18n.missing("vi", "console") == ["Deliveries", "Sign in"]  # extracted, still untranslated
    po = i18n.catalog_path("vi", "console")
    po.write_text(
        po.read_text(encoding="utf-8").replace(
            'msgid "Deliveries"\nmsgstr ""', 'msgid "Deliveries"\nmsgstr "Lượt đăng"'
        ),
        encoding="utf-8",
    )
    assert i18n.missing("vi", "console") == ["Sign in"]
    i18n.translations.cache_clear()
    try:
        env = i18n.jinja_environment(tmp_path / "web/templates/console", "vi", "console")
        assert env.get_template("page.html").render() == "<h1>Lượt đăng</h1>Sign in"
    finally:
        i18n.translations.cache_clear()
        i18n.jinja_environment.cache_clear()


def test_a_new_untranslated_help_text_or_config_error_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli.py").write_text(
        '''
@app.command()
def check(force: Annotated[bool, typer.Option(help=_("Overwrite existing files."))] = False) -> None:
    """Validate the configuration.

    Every problem is printed with its location."""


def helper() -> None:
    """Not a command: its docstring is no help text."""
''',
        encoding="utf-8",
    )
    (tmp_path / "cli_examples.py").write_text('label = _("Example:")\n', encoding="utf-8")
    (tmp_path / "settings.py").write_text(
        'raise ValueError(_("must be a time zone name like {zone}").format(zone=repr(z)))\n', encoding="utf-8"
    )
    monkeypatch.setattr(i18n, "PACKAGE", tmp_path)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    help_text = "Validate the configuration.\n\nEvery problem is printed with its location."
    expected = sorted(["Example:", "Overwrite existing files.", help_text, "must be a time zone name like {zone}"])
    assert i18n.missing("vi", "cli") == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("vi-VN,vi;q=0.9,en;q=0.5", "vi"),
        ("fr-FR, en;q=0.1", "en"),
        ("en;q=0.2, vi;q=0.9", "vi"),
        ("", "vi"),
        (None, "vi"),
        ("de", "vi"),
        ("en;q=0", "vi"),
    ],
)
def test_accept_language_picks_the_reader_language(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_dates_are_in_the_site_timezone_and_the_reader_format() -> None:
    moment = 1764870000  # 2025-12-04 17:40 UTC, 00:40 on the 5th in Hanoi
    assert "5 thg 12, 2025" in i18n.format_datetime(moment, "vi", "Asia/Ho_Chi_Minh")
    assert i18n.format_datetime(moment, "en", "Asia/Ho_Chi_Minh").startswith("Dec 5, 2025")
    assert i18n.format_datetime(moment, "en", "UTC").startswith("Dec 4, 2025")
    assert i18n.format_number(12345, "vi") == "12.345"


def test_cli_language_comes_from_the_environment() -> None:
    assert i18n.cli_locale({"DISTRIBUTOR_LANG": "vi"}) == "vi"
    assert i18n.cli_locale({"LANG": "vi_VN.UTF-8"}) == "vi"
    assert i18n.cli_locale({"LANG": "C.UTF-8"}) == "en"
    assert i18n.cli_locale({"LANG": "de_DE.UTF-8"}) == "en"
    assert i18n.cli_locale({}) == "en"
