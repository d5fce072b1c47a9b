"""Settings errors must tell the operator exactly what and where, and never leak a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distributor.cli import app
from distributor.errors import ConfigError
from distributor.settings import Environment, load_settings, parse_duration, settings_from_dict

SITE = {"title": "T", "url": "https://example.vn"}
CHAT = "@tintuc_tayninh"


def problems(raw: dict, monkeypatch: pytest.MonkeyPatch | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(raw, origin="portal.toml", env=Environment(redis_url=None, data_dir=None))
    return caught.value.problems


def test_default_config_is_valid() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "config" / "distributor.toml", Environment())
    assert settings.redis.url == "" or settings.redis.url  # env may point it at a real Redis
    assert [s.type for s in settings.sources] == ["directory"]
    assert [f.name for f in settings.feeds] == ["all"]
    assert [c.type for c in settings.channels] == ["outbox"]


def test_missing_section_is_named() -> None:
    assert problems({"feeds": []}) == ["portal.toml: [site] section is missing"]


def test_wrong_type_names_table_key_and_expectation() -> None:
    found = problems({"site": SITE, "sources": [{"name": "a", "type": "directory", "interval": "soon"}]})
    assert found == [
        "portal.toml: [[sources]] #1 (name 'a') key 'interval' "
        "expected a duration like 90, '90s', '2m' or '1h' (got 'soon')"
    ]


def test_unknown_key_is_an_error() -> None:
    found = problems({"site": {**SITE, "titel": "x"}, "channels": [{"name": "o", "type": "outbox", "pth": "x"}]})
    assert any("[site] key 'titel' is not a known key" in p for p in found)
    assert any("[[channels]] #1 (name 'o') key 'pth' is not a known key" in p for p in found)


def test_unknown_channel_type_lists_known_types() -> None:
    found = problems({"site": SITE, "channels": [{"name": "t", "type": "myspace"}]})
    assert len(found) == 1 and "key 'type' must be one of:" in found[0] and "telegram" in found[0]


def test_missing_env_secret_names_variable_and_place(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_TOKEN_FOR_TEST", raising=False)
    found = problems(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    assert found[0] == (
        "portal.toml: [[channels]] #1 (name 'tg') key 'token' needs environment variable "
        "TG_TOKEN_FOR_TEST, which is not set (written ${TG_TOKEN_FOR_TEST})"
    )


def test_env_secret_is_read_and_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TOKEN_FOR_TEST", "123456789:AAHSECRET-VALUE_abcdefghijklmnopqrstuv")
    settings = settings_from_dict(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    channel = settings.channels[0]
    assert channel.token.get_secret_value() == "123456789:AAHSECRET-VALUE_abcdefghijklmnopqrstuv"  # type: ignore[attr-defined]
    assert "SECRET-VALUE" not in repr(settings) and "SECRET-VALUE" not in str(channel)


def test_secret_file_variant(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("123456789:AAHfromafile_abcdefghijklmnopqrstuvw\n")
    monkeypatch.delenv("TG_TOKEN_FOR_TEST", raising=False)
    monkeypatch.setenv("TG_TOKEN_FOR_TEST_FILE", str(secret))
    settings = settings_from_dict(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": "@tintaynin"}],
        }
    )
    assert settings.channels[0].token.get_secret_value() == "123456789:AAHfromafile_abcdefghijklmnopqrstuvw"  # type: ignore[attr-defined]


def test_invalid_secret_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT_SECRETISH", "not-a-number-s3cr3t")
    found = problems({"site": SITE, "server": {"port": "${PORT_SECRETISH}"}})
    assert found and all("s3cr3t" not in p for p in found)
    assert "[server] key 'port'" in found[0]


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        {
            "site": {"title": "T"},
            "feeds": [{"name": "All Feeds!"}],
            "sources": [{"name": "s", "type": "nope"}],
        }
    )
    assert len(found) == 3


def test_duplicate_names_are_rejected() -> None:
    found = problems({"site": SITE, "channels": [{"name": "o", "type": "outbox"}, {"name": "o", "type": "outbox"}]})
    assert "repeats 'o'" in found[0]


@pytest.mark.parametrize(("value", "seconds"), [(90, 90), ("90s", 90), ("2m", 120), ("1h", 3600), ("1.5m", 90)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTRIBUTOR_REDIS_URL", "redis://10.0.0.5:6379/2")
    monkeypatch.setenv("DISTRIBUTOR_DATA_DIR", "/srv/distributor")
    settings = settings_from_dict({"site": SITE, "redis": {"url": "redis://file:6379/0"}})
    assert settings.redis.url == "redis://10.0.0.5:6379/2"
    assert str(settings.data_dir) == "/srv/distributor"


def test_check_command_prints_problems_and_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKY_TOKEN", "do-not-print-me")
    config = tmp_path / "bad.toml"
    config.write_text(
        '[site]\ntitle = "T"\nurl = "https://x.vn"\n'
        '[[channels]]\nname = "tg"\ntype = "telegram"\ntoken = "${LEAKY_TOKEN}"\nchat_id = 5\nextra = 1\n'
    )
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 3  # ExitCode.CONFIG
    assert "key 'extra' is not a known key" in result.output
    assert str(config) in result.output
    assert "do-not-print-me" not in result.output


def test_check_command_accepts_default_config() -> None:
    config = Path(__file__).resolve().parents[2] / "config" / "distributor.toml"
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 sources, 1 feeds, 1 channels" in result.output


def test_check_output_keeps_table_names_and_whole_paths(tmp_path: Path) -> None:
    deep = tmp_path / ("a-rather-long-folder-name-" * 4) / "portal-configuration.toml"
    deep.parent.mkdir(parents=True)
    deep.write_text('[site]\ntitle = "T"\nurl = "https://x.vn"\n[[channels]]\nname = "o"\ntype = "outbox"\npth = 1\n')
    result = CliRunner().invoke(app, ["check", "--config", str(deep)])
    assert result.exit_code == 3  # ExitCode.CONFIG
    assert f"error: {deep}: [[channels]] #1 (name 'o') key 'pth' is not a known key" in result.output


# --- URLs and host names -------------------------------------------------------------------------

URL_EXPECTED = "must be an absolute http(s) URL with a host, like 'https://example.vn'"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("url", "not a url"),
        ("url", "www.example.vn"),
        ("public_url", "ftp//nope"),
        ("public_url", "ftp://example.vn/"),
        ("public_url", "http://"),
        ("public_url", "https://example.vn:99999/"),
        ("logo", "javascript:alert(1)"),
        ("logo", "https://bad host.vn/logo.png"),
        ("logo", "/logo.png"),
    ],
)
def test_site_urls_must_be_absolute_http_urls_and_the_value_is_quoted(key: str, value: str) -> None:
    found = problems({"site": {**SITE, key: value}})
    assert found == [f"portal.toml: [site] key '{key}' {URL_EXPECTED} (got {value!r})"]


def test_a_url_with_a_space_in_its_path_is_refused_with_a_hint() -> None:
    found = problems({"site": {**SITE, "logo": "https://example.vn/logo mới.png"}})
    assert found == [
        "portal.toml: [site] key 'logo' must be a URL without spaces (write a space in a path as %20) "
        "(got 'https://example.vn/logo mới.png')"
    ]


@pytest.mark.parametrize(
    "value",
    [
        "https://portal.example.gov.vn",
        "http://127.0.0.1:8000/",
        "http://[::1]:8000",
        "http://distributor_web:8000/base/",  # a compose service name
        "https://tâyninh.vn/tin-tuc?page=1",  # an internationalised domain name
        "  https://example.vn/  ",
    ],
)
def test_good_urls_are_accepted_and_trimmed(value: str) -> None:
    settings = settings_from_dict({"site": {**SITE, "public_url": value}})
    assert settings.site.public_url == value.strip()


# Every URL-typed key, in the core tables and in channel and source types, goes through one check.
URL_KEYS = [
    ({"site": {**SITE, "url": "ftp//nope"}}, "[site] key 'url'"),
    ({"site": SITE, "feeds": [{"name": "all", "hubs": ["pubsubhubbub.appspot.com"]}]}, "key 'hubs.0'"),
    ({"site": SITE, "sources": [{"name": "d", "type": "directory", "path": "x", "url": "ftp//nope"}]}, "key 'url'"),
    ({"site": SITE, "sources": [{"name": "f", "type": "feed", "url": "example.vn/rss"}]}, "key 'url'"),
    ({"site": SITE, "sources": [{"name": "w", "type": "wordpress", "url": "ftp://wp.vn"}]}, "key 'url'"),
    ({"site": SITE, "channels": [{"name": "o", "type": "outbox", "api_base": "api.example"}]}, "key 'api_base'"),
    (
        {
            "site": SITE,
            "channels": [
                {"name": "d", "type": "discord", "url": "https://discord.com/api/webhooks/1/x", "avatar_url": "logo"}
            ],
        },
        "key 'avatar_url'",
    ),
    (
        {
            "site": SITE,
            "channels": [
                {
                    "name": "z",
                    "type": "zalo",
                    "app_id": "1",
                    "access_token": "a",
                    "refresh_token": "r",
                    "secret_key": "s",
                    "cover": "anh-bia.jpg",
                    "oauth_base": "oauth.zaloapp.com",
                }
            ],
        },
        "key 'cover'",
    ),
]


@pytest.mark.parametrize(("raw", "where"), URL_KEYS)
def test_every_url_key_is_checked_the_same_way(raw: dict, where: str) -> None:
    found = problems(raw)
    assert any(where in p and URL_EXPECTED in p for p in found), found


def test_allowed_hosts_are_bare_host_names_lower_cased() -> None:
    settings = settings_from_dict(
        {"site": {**SITE, "allowed_hosts": ["M.Example.vn", "tintuc.tayninh.gov.vn.", "tâyninh.vn", "10.0.0.5"]}}
    )
    assert settings.site.allowed_hosts == ["m.example.vn", "tintuc.tayninh.gov.vn", "tâyninh.vn", "10.0.0.5"]
    assert settings_from_dict({"site": SITE}).site.allowed_hosts == []


@pytest.mark.parametrize(
    "value", ["https://m.example.vn", "m.example.vn/tin", "m.example.vn:8080", "a b.vn", "", "-x.vn"]
)
def test_a_host_with_a_scheme_port_or_path_is_refused(value: str) -> None:
    found = problems({"site": {**SITE, "allowed_hosts": ["ok.example.vn", value]}})
    assert found == [
        "portal.toml: [site] key 'allowed_hosts.1' must be a bare host name like 'www.example.vn' "
        f"(no scheme, port or path) (got {value!r})"
    ]


# --- what an error quotes ------------------------------------------------------------------------


def test_wrong_values_are_quoted_not_typed() -> None:
    found = problems({"site": SITE, "worker": {"pool": "thread", "concurrency": 0}, "shares": {"ignore_bots": "maybe"}})
    assert (
        "portal.toml: [worker] key 'pool' Input should be 'threads', 'prefork', 'solo' or 'gevent' (got 'thread')"
        in found
    )
    assert "portal.toml: [worker] key 'concurrency' Input should be greater than or equal to 1 (got 0)" in found
    assert any(p.startswith("portal.toml: [shares] key 'ignore_bots'") and p.endswith("(got 'maybe')") for p in found)


def test_a_long_value_is_shortened() -> None:
    value = "https://example.vn/" + "x" * 200
    found = problems({"site": {**SITE, "url": value.replace("https://", "htps://")}})
    quoted = found[0].rpartition("(got ")[2]
    assert quoted.endswith("…')") and len(quoted) < 90


def test_a_table_level_problem_does_not_dump_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(
        {
            "site": SITE,
            "channels": [
                {
                    "name": "z",
                    "type": "zalo",
                    "app_id": "1",
                    "access_token": "zalo-access-token-literal",
                    "refresh_token": "r",
                    "secret_key": "s",
                    "mode": "cs",
                }
            ],
        }
    )
    assert found == ["portal.toml: [[channels]] #1 (name 'z') mode 'cs' needs user_ids (the follower ids to message)"]


def test_a_secret_key_written_in_the_file_is_never_quoted() -> None:
    found = problems(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "my-literal-bot-token", "chat_id": CHAT}],
        }
    )
    assert len(found) == 1 and "key 'token'" in found[0]
    assert "my-literal-bot-token" not in found[0]
    assert found[0].endswith("(got a string; not shown, it is a secret)")


def test_a_value_from_the_environment_is_never_quoted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_URL_FOR_TEST", "ftp//internal-only.example")
    monkeypatch.setenv("POOL_FOR_TEST", "threadz")
    found = problems(
        {
            "site": {**SITE, "public_url": "${PUBLIC_URL_FOR_TEST}"},
            "worker": {"pool": "pre-${POOL_FOR_TEST}"},
        }
    )
    assert len(found) == 2
    assert all("internal-only" not in p and "threadz" not in p for p in found)
    assert all(p.endswith("(got a string; not shown, it comes from the environment)") for p in found)


def test_a_missing_variable_is_reported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TG_TOKEN_FOR_TEST", raising=False)
    monkeypatch.delenv("TG_TOKEN_FOR_TEST_FILE", raising=False)
    found = problems(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TG_TOKEN_FOR_TEST}", "chat_id": CHAT}],
        }
    )
    assert len(found) == 1 and "needs environment variable TG_TOKEN_FOR_TEST" in found[0]


# --- NAME_FILE (Docker secrets) ------------------------------------------------------------------


def file_problem(monkeypatch: pytest.MonkeyPatch, file_name: str) -> str:
    monkeypatch.delenv("TELEGRAM_TOKEN_FOR_TEST", raising=False)
    monkeypatch.setenv("TELEGRAM_TOKEN_FOR_TEST_FILE", file_name)
    found = problems(
        {
            "site": SITE,
            "channels": [{"name": "tg", "type": "telegram", "token": "${TELEGRAM_TOKEN_FOR_TEST}", "chat_id": CHAT}],
        }
    )
    assert len(found) == 1
    return found[0]


def test_a_missing_secret_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert file_problem(monkeypatch, "/run/secrets/telegram_tokn") == (
        "portal.toml: [[channels]] #1 (name 'tg') key 'token' needs TELEGRAM_TOKEN_FOR_TEST: "
        "TELEGRAM_TOKEN_FOR_TEST is not set and TELEGRAM_TOKEN_FOR_TEST_FILE names '/run/secrets/telegram_tokn', "
        "which does not exist (written ${TELEGRAM_TOKEN_FOR_TEST})"
    )


def test_a_secret_file_that_is_a_directory_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = file_problem(monkeypatch, str(tmp_path))
    assert f"TELEGRAM_TOKEN_FOR_TEST_FILE names '{tmp_path}', which is a directory, not a file" in found


def test_an_empty_secret_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    found = file_problem(monkeypatch, str(tmp_path / "token"))
    assert f"names '{tmp_path / 'token'}', which is empty" in found


def test_a_secret_file_that_is_not_text_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "token").write_bytes(b"\xff\xfe\x00binary")
    found = file_problem(monkeypatch, str(tmp_path / "token"))
    assert "which is not UTF-8 text" in found and "binary" not in found


def test_a_secret_file_under_a_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "secrets").write_text("x")
    found = file_problem(monkeypatch, str(tmp_path / "secrets" / "token"))
    assert f"names '{tmp_path / 'secrets' / 'token'}', which cannot be read (Not a directory)" in found


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_secret_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("123456789:AAHsecret")
    secret.chmod(0)
    found = file_problem(monkeypatch, str(secret))
    assert f"names '{secret}', which this process may not read (permission denied)" in found


def test_an_empty_file_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "TELEGRAM_TOKEN_FOR_TEST_FILE is empty" in file_problem(monkeypatch, "")


def test_check_command_on_the_issue_config_names_each_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    monkeypatch.setenv("TELEGRAM_TOKEN_FILE", "/missing/path")
    config = tmp_path / "bad.toml"
    config.write_text(
        '[site]\ntitle = "T"\nurl = "not a url"\npublic_url = "ftp//nope"\n'
        '[[channels]]\nname = "tg"\ntype = "telegram"\ntoken = "${TELEGRAM_TOKEN}"\nchat_id = "@tintuc_tayninh"\n'
    )
    result = CliRunner().invoke(app, ["check", "--config", str(config)])
    assert result.exit_code == 3  # ExitCode.CONFIG
    output = " ".join(result.output.split())  # the console may wrap long lines
    assert "[site] key 'url' must be an absolute http(s) URL" in output and "(got 'not a url')" in output
    assert "[site] key 'public_url' must be an absolute http(s) URL" in output and "(got 'ftp//nope')" in output
    assert "TELEGRAM_TOKEN_FILE names '/missing/path', which does not exist" in output


# --- cross-checks --------------------------------------------------------------------------------

ZALO = {"name": "zalo", "type": "zalo", "app_id": "1", "access_token": "a", "refresh_token": "r", "secret_key": "s"}
ZALO_NEEDS_COVER = (
    "portal.toml: [[channels]] #1 (name 'zalo') key 'cover' is needed in mode 'broadcast': Zalo refuses "
    "an article without a cover photo, and neither this channel's cover nor [site] logo is set for articles "
    "without an image (set one of them to an image URL)"
)


def test_a_zalo_broadcast_without_any_cover_fallback_is_refused() -> None:
    assert problems({"site": SITE, "channels": [ZALO]}) == [ZALO_NEEDS_COVER]


@pytest.mark.parametrize(
    ("site", "keys"),
    [
        ({"logo": "https://example.vn/logo.png"}, {}),
        ({}, {"cover": "https://example.vn/zalo-cover.jpg"}),
        ({}, {"mode": "cs", "user_ids": ["8454321000000000001"]}),
    ],
)
def test_a_zalo_channel_with_a_cover_fallback_or_in_cs_mode_passes(site: dict, keys: dict) -> None:
    settings = settings_from_dict({"site": {**SITE, **site}, "channels": [{**ZALO, **keys}]})
    assert [c.name for c in settings.channels] == ["zalo"]


def test_a_type_that_is_not_text_is_a_problem_not_a_crash() -> None:
    found = problems({"site": SITE, "channels": [{"name": "a", "type": ["outbox"]}]})
    assert len(found) == 1 and "key 'type' must be one of:" in found[0] and found[0].endswith('(got ["outbox"])')


@pytest.mark.parametrize("given", ["22:00", "25:00-06:00", "22:00-22:00", "10pm-6am"])
def test_quiet_hours_must_be_two_different_times(make_settings, given: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as caught:
        make_settings(channels=[{"name": "outbox", "type": "outbox", "quiet_hours": given}])
    assert any("quiet_hours" in p and "22:00-06:00" in p for p in caught.value.problems)


def test_quiet_hours_are_normalised(make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(channels=[{"name": "outbox", "type": "outbox", "quiet_hours": " 22:00 - 06:30 "}])
    assert settings.channels[0].quiet_hours == "22:00-06:30"
