"""Configuration: every VBOT_* variable, every error message, env files, and the CLI's use of them."""

from __future__ import annotations

import dataclasses

import pytest

from vbot import __version__
from vbot.config import TWITCH_HOST, Config, ConfigError, load_config, read_settings
from tests.support import run_vbot

SECRET = "s3cr3tt0ken0123456789abcdef"
BASE = {"VBOT_USERNAME": "mybot", "VBOT_TOKEN": SECRET, "VBOT_CHANNEL": "mychannel"}


def settings(**overrides: str | None) -> dict[str, str]:
    """BASE with ``overrides`` applied; an override of None removes the variable."""
    merged = dict(BASE)
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


# --- valid values -----------------------------------------------------------------------


def test_defaults():
    config = load_config(BASE)
    assert config.username == "mybot"
    assert config.token == SECRET
    assert config.password == f"oauth:{SECRET}"
    assert config.channels == ("#mychannel",)
    assert config.host == TWITCH_HOST == "irc.chat.twitch.tv"
    assert config.port == 6697
    assert config.tls is True
    assert config.prefix == "!"
    assert config.owners == frozenset()
    assert config.log_level == "INFO"
    assert config.ping_interval == 60.0
    assert config.ping_timeout == 10.0
    assert config.is_anonymous is False


@pytest.mark.parametrize("overrides, field, expected", [
    # VBOT_USERNAME: lowercased, trimmed
    ({"VBOT_USERNAME": "MyBot"}, "username", "mybot"),
    ({"VBOT_USERNAME": "  my_bot_2 "}, "username", "my_bot_2"),
    ({"VBOT_USERNAME": "a" * 25}, "username", "a" * 25),
    # VBOT_TOKEN: the oauth: prefix is accepted once, in any case, and stored bare
    ({"VBOT_TOKEN": SECRET}, "token", SECRET),
    ({"VBOT_TOKEN": f"oauth:{SECRET}"}, "token", SECRET),
    ({"VBOT_TOKEN": f"OAuth:{SECRET}"}, "token", SECRET),
    ({"VBOT_TOKEN": f"  oauth:{SECRET}  "}, "token", SECRET),
    ({"VBOT_TOKEN": f"oauth:{SECRET}"}, "password", f"oauth:{SECRET}"),
    ({"VBOT_TOKEN": SECRET}, "password", f"oauth:{SECRET}"),
    # VBOT_CHANNEL: '#' optional, any case, comma-separated, duplicates joined once
    ({"VBOT_CHANNEL": "#mychannel"}, "channels", ("#mychannel",)),
    ({"VBOT_CHANNEL": "MyChannel"}, "channels", ("#mychannel",)),
    ({"VBOT_CHANNEL": "#MyChannel"}, "channels", ("#mychannel",)),
    ({"VBOT_CHANNEL": "one,#Two, three ,,"}, "channels", ("#one", "#two", "#three")),
    ({"VBOT_CHANNEL": "one,#ONE,One"}, "channels", ("#one",)),
    # VBOT_HOST
    ({"VBOT_HOST": "127.0.0.1"}, "host", "127.0.0.1"),
    ({"VBOT_HOST": ""}, "host", TWITCH_HOST),
    # VBOT_TLS and the VBOT_PORT default that follows it
    ({"VBOT_TLS": "true"}, "tls", True),
    ({"VBOT_TLS": "TRUE"}, "tls", True),
    ({"VBOT_TLS": "1"}, "tls", True),
    ({"VBOT_TLS": "yes"}, "tls", True),
    ({"VBOT_TLS": "on"}, "tls", True),
    ({"VBOT_TLS": ""}, "tls", True),
    ({"VBOT_TLS": "false"}, "tls", False),
    ({"VBOT_TLS": "False"}, "tls", False),
    ({"VBOT_TLS": "0"}, "tls", False),
    ({"VBOT_TLS": "no"}, "tls", False),
    ({"VBOT_TLS": "off"}, "tls", False),
    ({"VBOT_TLS": "true"}, "port", 6697),
    ({"VBOT_TLS": "false"}, "port", 6667),
    ({"VBOT_TLS": "false", "VBOT_PORT": "7000"}, "port", 7000),
    ({"VBOT_TLS": "true", "VBOT_PORT": "6667"}, "port", 6667),
    ({"VBOT_PORT": " 1 "}, "port", 1),
    ({"VBOT_PORT": "65535"}, "port", 65535),
    ({"VBOT_PORT": ""}, "port", 6697),
    # VBOT_PREFIX
    ({"VBOT_PREFIX": "?"}, "prefix", "?"),
    ({"VBOT_PREFIX": "!!"}, "prefix", "!!"),
    ({"VBOT_PREFIX": ""}, "prefix", "!"),
    # VBOT_OWNERS: comma-separated, lowercased
    ({"VBOT_OWNERS": "Alice, BOB,,carol "}, "owners", frozenset({"alice", "bob", "carol"})),
    ({"VBOT_OWNERS": ""}, "owners", frozenset()),
    ({"VBOT_OWNERS": "@Alice,bob"}, "owners", frozenset({"alice", "bob"})),
    # VBOT_LOG_LEVEL: any case
    ({"VBOT_LOG_LEVEL": "debug"}, "log_level", "DEBUG"),
    ({"VBOT_LOG_LEVEL": "Info"}, "log_level", "INFO"),
    ({"VBOT_LOG_LEVEL": "WARNING"}, "log_level", "WARNING"),
    ({"VBOT_LOG_LEVEL": "error"}, "log_level", "ERROR"),
    ({"VBOT_LOG_LEVEL": ""}, "log_level", "INFO"),
    # VBOT_PING_INTERVAL, VBOT_PING_TIMEOUT: seconds
    ({"VBOT_PING_INTERVAL": "30"}, "ping_interval", 30.0),
    ({"VBOT_PING_INTERVAL": "0.5"}, "ping_interval", 0.5),
    ({"VBOT_PING_TIMEOUT": "5"}, "ping_timeout", 5.0),
    ({"VBOT_PING_TIMEOUT": ""}, "ping_timeout", 10.0),
])
def test_valid_values(overrides, field, expected):
    assert getattr(load_config(settings(**overrides)), field) == expected


@pytest.mark.parametrize("username", ["justinfan12345", "JustinFan7", "justinfan0"])
@pytest.mark.parametrize("token", [None, ""])
def test_anonymous_login_needs_no_token(username, token):
    config = load_config(settings(VBOT_USERNAME=username, VBOT_TOKEN=token))
    assert config.username == username.lower()
    assert config.is_anonymous
    assert config.token is None
    assert config.password is None


def test_justinfan_without_digits_is_not_anonymous():
    with pytest.raises(ConfigError, match="VBOT_TOKEN"):
        load_config(settings(VBOT_USERNAME="justinfan", VBOT_TOKEN=None, VBOT_HOST="127.0.0.1"))


def test_other_variables_are_ignored():
    assert load_config(settings(HOME="/root", VBOT_UNKNOWN="x")) == load_config(BASE)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("overrides, variable", [
    # missing username or token: an error with a plain IRC server (Twitch's token is validated instead)
    ({"VBOT_USERNAME": None, "VBOT_HOST": "127.0.0.1"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "", "VBOT_HOST": "127.0.0.1"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "   ", "VBOT_HOST": "127.0.0.1"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "my bot"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "bot!"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "#mybot"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "a" * 26}, "VBOT_USERNAME"),
    ({"VBOT_TOKEN": None, "VBOT_HOST": "127.0.0.1"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": "", "VBOT_HOST": "127.0.0.1"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": "  ", "VBOT_HOST": "127.0.0.1"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": "oauth:", "VBOT_HOST": "127.0.0.1"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"oauth:oauth:{SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"OAUTH:oauth:{SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"oauth:OAuth:{SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"{SECRET} {SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"oauth: {SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"{SECRET}\tx"}, "VBOT_TOKEN"),
    ({"VBOT_CHANNEL": None}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": ""}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": " , ,"}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": "#"}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": "my channel"}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": "good,b@d"}, "VBOT_CHANNEL"),
    ({"VBOT_CHANNEL": "&local"}, "VBOT_CHANNEL"),
    ({"VBOT_TLS": "maybe"}, "VBOT_TLS"),
    ({"VBOT_TLS": "tru"}, "VBOT_TLS"),
    ({"VBOT_PORT": "0"}, "VBOT_PORT"),
    ({"VBOT_PORT": "65536"}, "VBOT_PORT"),
    ({"VBOT_PORT": "-1"}, "VBOT_PORT"),
    ({"VBOT_PORT": "abc"}, "VBOT_PORT"),
    ({"VBOT_PORT": "66.5"}, "VBOT_PORT"),
    ({"VBOT_PORT": "6 667"}, "VBOT_PORT"),
    ({"VBOT_PREFIX": "! !"}, "VBOT_PREFIX"),
    ({"VBOT_OWNERS": "alice bob"}, "VBOT_OWNERS"),
    ({"VBOT_OWNERS": "alice,b@d"}, "VBOT_OWNERS"),
    ({"VBOT_LOG_LEVEL": "verbose"}, "VBOT_LOG_LEVEL"),
    ({"VBOT_LOG_LEVEL": "CRITICAL"}, "VBOT_LOG_LEVEL"),
    ({"VBOT_PING_INTERVAL": "0"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "-5"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "soon"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "86400"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "nan"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_TIMEOUT": "0"}, "VBOT_PING_TIMEOUT"),
    ({"VBOT_PING_TIMEOUT": "x"}, "VBOT_PING_TIMEOUT"),
])
def test_errors_name_the_variable_in_one_line_without_the_token(overrides, variable):
    with pytest.raises(ConfigError) as caught:
        load_config(settings(**overrides))
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message and "\r" not in message
    assert SECRET not in message
    assert len(message) > len(variable) + 10  # says how to fix it, not just the name


def test_missing_everything_names_the_first_required_variable():
    with pytest.raises(ConfigError, match="VBOT_USERNAME"):
        load_config({"VBOT_HOST": "127.0.0.1"})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- the object itself ----------------------------------------------------------------------


def test_repr_and_str_never_show_the_token():
    config = load_config(settings(VBOT_TOKEN=f"oauth:{SECRET}"))
    for text in (repr(config), str(config), f"{config}", f"{config!r}"):
        assert SECRET not in text
        assert "mybot" in text  # the repr is still useful


def test_config_is_immutable():
    config = load_config(BASE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.token = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.channels = ("#x",)  # type: ignore[misc]


def test_equal_settings_give_equal_configs():
    assert load_config(BASE) == load_config(dict(BASE)) == Config(
        username="mybot", token=SECRET, channels=("#mychannel",))


# --- env files --------------------------------------------------------------------------------


@pytest.fixture
def no_vbot_environment(monkeypatch):
    """Remove every VBOT_* variable from the real environment for this test."""
    import os
    for key in list(os.environ):
        if key.startswith("VBOT_"):
            monkeypatch.delenv(key)


def test_dotenv_in_the_working_directory_is_read(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "# a comment\n"
        "VBOT_USERNAME=FileBot\n"
        f"VBOT_TOKEN='oauth:{SECRET}'\n"
        'VBOT_CHANNEL="#FileChannel"\n'
        "export VBOT_TLS=false\n"
        "VBOT_HOST\n"
    )
    monkeypatch.chdir(tmp_path)
    values = read_settings(environ={})
    assert values == {"VBOT_USERNAME": "FileBot", "VBOT_TOKEN": f"oauth:{SECRET}",
                      "VBOT_CHANNEL": "#FileChannel", "VBOT_TLS": "false"}
    config = load_config(values)
    assert (config.username, config.token, config.channels, config.port) == ("filebot", SECRET, ("#filechannel",), 6667)


def test_no_dotenv_in_the_working_directory_means_environment_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert read_settings(environ={"VBOT_CHANNEL": "x"}) == {"VBOT_CHANNEL": "x"}
    assert read_settings(environ={}) == {}


def test_environment_wins_over_the_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VBOT_USERNAME=filebot\nVBOT_CHANNEL=filechannel\n")
    monkeypatch.chdir(tmp_path)
    values = read_settings(environ={"VBOT_CHANNEL": "envchannel", "VBOT_TOKEN": SECRET})
    assert values == {"VBOT_USERNAME": "filebot", "VBOT_CHANNEL": "envchannel", "VBOT_TOKEN": SECRET}


def test_empty_environment_variable_does_not_hide_the_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VBOT_CHANNEL=filechannel\n")
    monkeypatch.chdir(tmp_path)
    assert read_settings(environ={"VBOT_CHANNEL": ""})["VBOT_CHANNEL"] == "filechannel"


def test_process_environment_is_the_default(tmp_path, monkeypatch, no_vbot_environment):
    (tmp_path / ".env").write_text("VBOT_CHANNEL=filechannel\nVBOT_PREFIX=?\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VBOT_CHANNEL", "envchannel")
    values = read_settings()
    assert values["VBOT_CHANNEL"] == "envchannel"
    assert values["VBOT_PREFIX"] == "?"


def test_env_file_option_replaces_dotenv(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VBOT_USERNAME=dotenvbot\nVBOT_PREFIX=?\n")
    other = tmp_path / "elsewhere" / "bot.env"
    other.parent.mkdir()
    other.write_text("VBOT_USERNAME=otherbot\n")
    monkeypatch.chdir(tmp_path)
    assert read_settings(other, environ={}) == {"VBOT_USERNAME": "otherbot"}
    assert read_settings(str(other), environ={"VBOT_USERNAME": "envbot"}) == {"VBOT_USERNAME": "envbot"}


def test_missing_env_file_is_an_error(tmp_path):
    missing = tmp_path / "nope.env"
    with pytest.raises(ConfigError) as caught:
        read_settings(missing, environ={})
    message = str(caught.value)
    assert "--env-file" in message and str(missing) in message
    assert "\n" not in message


def test_env_file_that_is_a_directory_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="--env-file"):
        read_settings(tmp_path, environ={})


# --- the command line ---------------------------------------------------------------------------


def test_help_needs_no_configuration(tmp_path):
    result = run_vbot({}, "--help", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "usage: vbot" in result.stdout
    assert "--env-file" in result.stdout
    assert result.stderr == ""


def test_version_needs_no_configuration(tmp_path):
    result = run_vbot({}, "--version", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vbot {__version__}"


@pytest.mark.parametrize("env, variable", [
    ({"VBOT_HOST": "127.0.0.1"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "mybot", "VBOT_CHANNEL": "mychannel"}, "VBOT_TOKEN"),
    ({**BASE, "VBOT_TOKEN": f"oauth:oauth:{SECRET}"}, "VBOT_TOKEN"),
    ({**BASE, "VBOT_PORT": "http"}, "VBOT_PORT"),
])
def test_configuration_error_exits_2_with_one_line(tmp_path, env, variable):
    result = run_vbot(env, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert SECRET not in result.stderr + result.stdout


def test_cli_reads_dotenv_from_the_working_directory(tmp_path):
    (tmp_path / ".env").write_text(f"VBOT_USERNAME=mybot\nVBOT_TOKEN={SECRET}\nVBOT_CHANNEL=x\nVBOT_LOG_LEVEL=loud\n")
    result = run_vbot({}, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "VBOT_LOG_LEVEL" in result.stderr


def test_cli_missing_env_file_exits_2(tmp_path):
    result = run_vbot(BASE, "--env-file", str(tmp_path / "missing.env"), cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "--env-file" in lines[0]


@pytest.mark.parametrize("content", [
    "# caf\xe9\nVBOT_CHANNEL=x\n".encode("latin-1"),  # Windows "ANSI"
    "VBOT_CHANNEL=x\n".encode("utf-16"),  # Notepad's "Unicode"
])
@pytest.mark.parametrize("console", [False, True])
def test_cli_env_file_that_is_not_utf8_exits_2_with_one_line(tmp_path, content, console):
    (tmp_path / ".env").write_bytes(content)
    result = run_vbot(BASE, *(["--console"] if console else []), input="", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and ".env: not UTF-8" in lines[0]
