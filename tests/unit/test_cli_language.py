"""The CLI in the operator's language: help pages and configuration errors, Vietnamese or English."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages import pofile
from typer.testing import CliRunner

from distributor import i18n
from distributor.cli import app
from distributor.cli_exit import ExitCode
from distributor.errors import ConfigError
from distributor.settings import load_settings
from tests.unit.test_cli import config  # noqa: F401  (the CLI's config fixture)

UNSET = ("DISTRIBUTOR_LANG", "LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")


def help_page(*args: str, lang: str | None) -> str:
    """Help is built when the command starts (the language is read then): ask a fresh process."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET} | {"COLUMNS": "200"}
    if lang:
        env["LANG"] = lang
    shown = subprocess.run([sys.executable, "-m", "distributor.cli", *args, "--help"],
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def test_the_main_help_is_vietnamese_under_a_vietnamese_locale() -> None:
    page = help_page(lang="vi_VN.UTF-8")
    assert "Phân phối RSS và mạng xã hội" in page  # the group's help
    assert "Kiểm tra cấu hình; in từng lỗi kèm vị trí" in page  # a command's docstring
    assert "Tùy chọn:" in page and "Lệnh:" in page  # typer's own headings
    assert page.startswith("Cách dùng: ") and "Hiện trang trợ giúp này rồi thoát." in page  # its bundled click's
    assert "Ví dụ:" in page and "distributor init mysite && distributor check" in page  # the example, as written
    assert "Validate the configuration" not in page


def test_a_subcommand_help_is_vietnamese_with_its_example() -> None:
    page = help_page("worker", lang="vi_VN.UTF-8")
    assert "Chỉ chạy một Celery worker" in page and "tiến trình con được giám sát" in page  # both paragraphs
    assert "Chạy cả beat trong tiến trình này." in page  # option help
    assert "Ví dụ:" in page and "distributor worker --queues distributor,deliver.facebook" in page


def test_the_help_is_english_otherwise() -> None:
    for lang in (None, "C.UTF-8", "de_DE.UTF-8"):
        page = help_page("check", lang=lang)
        assert "Validate the configuration; print every problem with its location" in page
        assert "Options:" in page and "Example:" in page and "distributor check --config" in page
        assert page.startswith("Usage: ") and "Show this message and exit." in page
        assert "Kiểm tra" not in page


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text('[site]\ntitle = "T"\nurl = "not a url"\n[server]\nport = 70000\n', encoding="utf-8")
    return path


def test_check_names_the_bad_key_in_vietnamese_under_a_vietnamese_locale(bad_config: Path) -> None:
    env: dict[str, str | None] = dict.fromkeys(UNSET)
    result = CliRunner().invoke(app, ["check", "--config", str(bad_config)], env={**env, "LANG": "vi_VN.UTF-8"})
    assert result.exit_code == ExitCode.CONFIG
    assert f"lỗi: {bad_config}: [site] khóa 'url' phải là URL http(s) tuyệt đối" in result.output
    assert "(nhận được 'not a url')" in result.output
    assert "[server] khóa 'port' phải nhỏ hơn hoặc bằng 65535 (nhận được 70000)" in result.output  # pydantic's
    english = CliRunner().invoke(app, ["check", "--config", str(bad_config)], env=env)
    assert f"error: {bad_config}: [site] key 'url' must be an absolute http(s) URL" in english.output
    assert "[server] key 'port' Input should be less than or equal to 65535 (got 70000)" in english.output


def test_a_missing_config_file_is_named_in_vietnamese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_LANG", "vi")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.toml")
    assert caught.value.problems == [f"{tmp_path / 'nope.toml'}: không tìm thấy tệp cấu hình "
                                     "(hãy đặt DISTRIBUTOR_CONFIG hoặc dùng --config)"]  # fmt: skip


def test_a_vietnamese_error_still_hides_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_LANG", "vi")
    monkeypatch.setenv("SITE_URL_SECRET", "hunter2 not a url")
    monkeypatch.delenv("MISSING_TOKEN", raising=False)
    path = tmp_path / "distributor.toml"
    path.write_text('[site]\ntitle = "T"\nurl = "${SITE_URL_SECRET}"\n[server]\npush_secret = "${MISSING_TOKEN}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = "\n".join(caught.value.problems)
    assert "hunter2" not in text
    assert "[site] khóa 'url' phải là URL" in text and "không hiển thị, vì giá trị lấy từ biến môi trường" in text
    assert "[server] khóa 'push_secret' cần biến môi trường MISSING_TOKEN, nhưng biến này chưa được đặt" in text


FIELD = re.compile(r"\{[^{}]*\}")


@pytest.mark.parametrize("domain", ["cli"])
def test_a_translation_keeps_every_placeholder(domain: str) -> None:
    """A translation that drops {origin} or {value} would stop naming the file, key or value given."""
    with i18n.catalog_path("vi", domain).open("rb") as handle:
        catalog = pofile.read_po(handle, locale="vi", domain=domain)
    changed = [m.id for m in catalog if m.id and m.string and sorted(FIELD.findall(str(m.id))) !=
               sorted(FIELD.findall(str(m.string)))]  # fmt: skip
    assert changed == []


def test_a_refusal_is_said_in_the_operators_language_and_stays_english_for_scripts(
    monkeypatch: pytest.MonkeyPatch,
    config: Path,  # noqa: F811
) -> None:
    """`errors.Refusal` carries its template: the command line translates it, the audit log, the
    API and `--json` keep the English text."""
    import json

    runner = CliRunner()
    monkeypatch.setenv("DISTRIBUTOR_LANG", "vi")
    retract = runner.invoke(app, ["retract", "0123456789abcdef", "--config", str(config)])
    assert retract.exit_code == ExitCode.NOT_FOUND
    assert "không có bài viết này ở đây (chưa lưu, chưa đăng)" in retract.output
    approve = runner.invoke(app, ["approve", "0123456789abcdef", "--config", str(config)])
    assert "bài viết '0123456789abcdef' không có lượt đăng nào" in approve.output
    scripted = runner.invoke(app, ["approve", "0123456789abcdef", "--json", "--config", str(config)])
    assert json.loads(scripted.stdout)["error"] == "no delivery of article '0123456789abcdef'"
    period = runner.invoke(app, ["shares", "top", "--period", "year", "--config", str(config)])
    assert period.exit_code == ExitCode.USAGE and "không rõ khoảng thời gian 'year'" in period.output
    monkeypatch.setenv("DISTRIBUTOR_LANG", "en")
    assert "no such article here" in runner.invoke(app, ["retract", "0123456789abcdef", "--config", str(config)]).output
    audit = json.loads(runner.invoke(app, ["audit", "--json", "--config", str(config)]).stdout)["entries"]
    assert {e["detail"] for e in audit if e["action"] == "retract"} == {
        "no such article here (neither stored nor delivered)"
    }


def test_a_channels_own_check_is_said_in_vietnamese_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks each channel and source make of their own keys go through the same catalog."""
    path = tmp_path / "distributor.toml"
    path.write_text('[site]\ntitle = "T"\nurl = "https://portal.example.gov.vn"\n'
                    '[[channels]]\nname = "tg"\ntype = "telegram"\ntoken = "123456789:AAbbccdd"\nchat_id = "tintuc"\n'
                    '[[channels]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nsender = "không-phải-email"\n'
                    'recipients = ["a@example.org"]\n', encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("DISTRIBUTOR_LANG", "vi")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = "\n".join(caught.value.problems)
    assert "phải là @tenkenh hoặc mã chat dạng số như -1001234567890" in text and "chat_id" in text
    assert "'không-phải-email' không phải địa chỉ email" in text
    monkeypatch.setenv("DISTRIBUTOR_LANG", "en")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "must be @channelname or a numeric chat id like -1001234567890" in "\n".join(caught.value.problems)
