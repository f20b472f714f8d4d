"""Configuration: every VBOT_* variable, every error message, env files, and the CLI's use of them."""

from __future__ import annotations

import collections
import dataclasses
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.support import run_vbot
from vbot import __version__, cli
from vbot.cli import parse_args
from vbot.commands import builtin_table
from vbot.config import SETTINGS, TWITCH_HOST, Config, ConfigError, load_config, read_settings
from vbot.custom import read_file
from vbot.login import EXIT_CODES
from vbot.state import CountStore
from vbot.tokens import Tokens, load_tokens

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
    ({"VBOT_PING_INTERVAL": "10"}, "ping_interval", 10.0),
    ({"VBOT_PING_INTERVAL": "3600"}, "ping_interval", 3600.0),
    ({"VBOT_PING_INTERVAL": "12.5"}, "ping_interval", 12.5),
    ({"VBOT_PING_INTERVAL": "060"}, "ping_interval", 60.0),
    ({"VBOT_PING_TIMEOUT": "5"}, "ping_timeout", 5.0),
    ({"VBOT_PING_TIMEOUT": "300"}, "ping_timeout", 300.0),
    ({"VBOT_PING_TIMEOUT": ""}, "ping_timeout", 10.0),
    ({"VBOT_PORT": "06697"}, "port", 6697),
    # VBOT_HOST: names and addresses
    ({"VBOT_HOST": "irc.example.org."}, "host", "irc.example.org."),
    ({"VBOT_HOST": "::1"}, "host", "::1"),
    ({"VBOT_HOST": "my_host-1.lan"}, "host", "my_host-1.lan"),
    # VBOT_COMMANDS_FILE, VBOT_STATE_FILE
    ({"VBOT_COMMANDS_FILE": "bot/cmds.toml"}, "commands_file", Path("bot/cmds.toml")),
    ({"VBOT_COMMANDS_FILE": "bot/cmds.toml"}, "commands_file_required", True),
    ({"VBOT_COMMANDS_FILE": ""}, "commands_file", Path("commands.toml")),
    ({"VBOT_COMMANDS_FILE": ""}, "commands_file_required", False),
    ({"VBOT_STATE_FILE": "/var/lib/vbot/counts.db"}, "state_file", Path("/var/lib/vbot/counts.db")),
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


# --- the password: oauth:<token> on Twitch's host, the value as given elsewhere -------------------


@pytest.mark.parametrize("host", [TWITCH_HOST, "IRC.Chat.Twitch.TV", f"{TWITCH_HOST}."])
@pytest.mark.parametrize("token", [SECRET, f"oauth:{SECRET}", f"OAuth:{SECRET}"])
def test_twitch_host_sends_oauth_token(host, token):
    config = load_config(settings(VBOT_HOST=host, VBOT_TOKEN=token))
    assert config.is_twitch_host
    assert config.token == SECRET
    assert config.password == f"oauth:{SECRET}"


@pytest.mark.parametrize("token", ["hunter2", "oauth:abc", "OAuth:abc", "p@ss:word", "oauth:oauth:x", "été"])
def test_other_host_sends_the_password_as_given(token):
    config = load_config(settings(VBOT_HOST="irc.example.org", VBOT_TOKEN=f"  {token} "))
    assert not config.is_twitch_host
    assert config.token == token
    assert config.password == token


@pytest.mark.parametrize("token", [SECRET, f"oauth:{SECRET}", f"OAuth:{SECRET}"])
def test_other_host_with_a_token_service_takes_an_oauth_token_as_twitch_does(token):
    """With VBOT_AUTH_URL the token goes to /validate, which refuses the ``oauth:`` prefix."""
    config = load_config(settings(VBOT_HOST="127.0.0.1", VBOT_AUTH_URL="https://auth.example.org/oauth2",
                                  VBOT_TOKEN=token))
    assert not config.is_twitch_host and config.validates_token
    assert config.token == SECRET
    assert config.password == f"oauth:{SECRET}"
    with pytest.raises(ConfigError, match="VBOT_TOKEN is malformed"):
        load_config(settings(VBOT_HOST="127.0.0.1", VBOT_AUTH_URL="https://a.example.org/o",
                             VBOT_TOKEN=f"oauth:oauth:{SECRET}"))


@pytest.mark.parametrize("host, longest", [("irc.chat.twitch.tv", 499), ("127.0.0.1", 505)])
def test_a_token_too_long_for_the_pass_line_stops_at_start(host, longest):
    """The attack: a 600-character VBOT_TOKEN passed the check, then the irc library refused its PASS
    line at every connect and the bot sat in CONNECTING for good. ``PASS <password>`` and CR LF must
    fit in 512 bytes (RFC 1459 section 2.3); on Twitch the password is ``oauth:<token>``."""
    assert len(load_config(settings(VBOT_HOST=host, VBOT_TOKEN="t" * longest)).password.encode()) + 7 <= 512
    with pytest.raises(ConfigError) as caught:
        load_config(settings(VBOT_HOST=host, VBOT_TOKEN="t" * (longest + 1)))
    assert str(caught.value) == (
        f"VBOT_TOKEN is too long ({longest + 1} bytes): the line PASS "
        f"{'oauth:<token>' if longest == 499 else '<password>'} and CR LF must fit in IRC's 512 bytes, "
        f"so it may have {longest}; check that it was pasted once and whole"
    )
    with pytest.raises(ConfigError, match="too long"):  # bytes, not characters
        load_config(settings(VBOT_HOST=host, VBOT_TOKEN="é" * (longest // 2 + 1)))


@pytest.mark.parametrize("token", [None, "", "   "])
@pytest.mark.parametrize("console", [False, True])
def test_other_host_without_password_sends_no_pass(token, console):
    config = load_config(settings(VBOT_HOST="127.0.0.1", VBOT_TOKEN=token), console=console)
    assert config.token is None
    assert config.password is None
    assert not config.is_anonymous


def test_justinfan_is_anonymous_only_on_twitch():
    assert load_config(settings(VBOT_USERNAME="justinfan123", VBOT_TOKEN=None)).is_anonymous
    config = load_config(settings(VBOT_USERNAME="justinfan123", VBOT_TOKEN=None, VBOT_HOST="irc.example.org"))
    assert not config.is_anonymous  # a nick like any other there: it may speak


def test_config_made_directly_follows_the_same_rule():
    assert Config("bot", SECRET, ()).password == f"oauth:{SECRET}"
    assert Config("bot", "oauth:x", (), host="127.0.0.1").password == "oauth:x"
    assert Config("bot", None, (), host="127.0.0.1").password is None


def test_justinfan_without_digits_is_not_anonymous():
    config = load_config(settings(VBOT_USERNAME="justinfan", VBOT_TOKEN=None))
    assert not config.is_anonymous and config.validates_token  # so it needs a token (file) at start
    assert load_config(settings(VBOT_USERNAME="justinfan123", VBOT_TOKEN=None)).is_anonymous


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
    # numbers: ASCII digits only, within the bounds the message states
    ({"VBOT_PORT": "\u0661\u0662"}, "VBOT_PORT"),  # Arabic-Indic 12: "١٢".isdigit() is True
    ({"VBOT_PORT": "\uff16\uff16\uff16\uff17"}, "VBOT_PORT"),  # fullwidth 6667
    ({"VBOT_PORT": "+6667"}, "VBOT_PORT"),
    ({"VBOT_PORT": "6_667"}, "VBOT_PORT"),
    ({"VBOT_PORT": "9" * 5000}, "VBOT_PORT"),
    ({"VBOT_PING_INTERVAL": "\u0666\u0660"}, "VBOT_PING_INTERVAL"),  # Arabic-Indic 60
    ({"VBOT_PING_INTERVAL": "1e2"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "inf"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "6_0"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "0.5"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "9.99"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "3601"}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_INTERVAL": "60."}, "VBOT_PING_INTERVAL"),
    ({"VBOT_PING_TIMEOUT": "0.0000001"}, "VBOT_PING_TIMEOUT"),  # once rounded the scheduler's tick to 0
    ({"VBOT_PING_TIMEOUT": "4"}, "VBOT_PING_TIMEOUT"),
    ({"VBOT_PING_TIMEOUT": "301"}, "VBOT_PING_TIMEOUT"),
    ({"VBOT_PING_TIMEOUT": "\u0661\u0660"}, "VBOT_PING_TIMEOUT"),
    # VBOT_HOST: something a resolver could choke on
    ({"VBOT_HOST": "irc example org"}, "VBOT_HOST"),
    ({"VBOT_HOST": "irc..example"}, "VBOT_HOST"),
    ({"VBOT_HOST": "a" * 64 + ".example"}, "VBOT_HOST"),
    ({"VBOT_HOST": "irc\x00.example"}, "VBOT_HOST"),
    ({"VBOT_HOST": "b\u00fccher.example"}, "VBOT_HOST"),
    ({"VBOT_HOST": "-irc.example"}, "VBOT_HOST"),
    # the prefix and file paths
    ({"VBOT_PREFIX": "!\x00"}, "VBOT_PREFIX"),
    ({"VBOT_PREFIX": "\ud800"}, "VBOT_PREFIX"),
    ({"VBOT_COMMANDS_FILE": "a\x00b"}, "VBOT_COMMANDS_FILE"),
    ({"VBOT_STATE_FILE": "state\ud800.db"}, "VBOT_STATE_FILE"),
    # tokens the PASS line could not carry
    ({"VBOT_TOKEN": f"{SECRET}\x00"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": f"{SECRET}\ud800"}, "VBOT_TOKEN"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_TOKEN": f"{SECRET} x"}, "VBOT_TOKEN"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_TOKEN": f":{SECRET}"}, "VBOT_TOKEN"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_TOKEN": f"{SECRET}\r\nQUIT"}, "VBOT_TOKEN"),
    ({"VBOT_TOKEN": SECRET + "x" * 500}, "VBOT_TOKEN"),  # PASS oauth:<token> over 512 bytes
    ({"VBOT_HOST": "127.0.0.1", "VBOT_TOKEN": SECRET + "p" * 600}, "VBOT_TOKEN"),
    # IRC nicks: accepted off Twitch only, and only as RFC 2812 has them
    ({"VBOT_USERNAME": "Frank[x]"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "my-bot"}, "VBOT_USERNAME"),
    ({"VBOT_OWNERS": "alice,Frank[x]"}, "VBOT_OWNERS"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_USERNAME": "-bot"}, "VBOT_USERNAME"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_USERNAME": "bot!x"}, "VBOT_USERNAME"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_USERNAME": "a" * 65}, "VBOT_USERNAME"),
    ({"VBOT_HOST": "127.0.0.1", "VBOT_OWNERS": "frank[x],b@d"}, "VBOT_OWNERS"),
])
def test_errors_name_the_variable_in_one_line_without_the_token(overrides, variable):
    with pytest.raises(ConfigError) as caught:
        load_config(settings(**overrides))
    message = str(caught.value)
    assert variable in message
    assert "\n" not in message and "\r" not in message
    assert SECRET not in message
    assert len(message) > len(variable) + 10  # says how to fix it, not just the name


@pytest.mark.parametrize("name, value, bounds", [
    ("VBOT_PORT", "0", "from 1 to 65535"),
    ("VBOT_PING_INTERVAL", "5", "from 10 to 3600"),
    ("VBOT_PING_TIMEOUT", "1", "from 5 to 300"),
])
def test_number_errors_state_the_bounds(name, value, bounds):
    with pytest.raises(ConfigError, match=bounds):
        load_config(settings(**{name: value}))


@pytest.mark.parametrize("value", [",", ",,,", " , , "])
def test_channel_made_only_of_commas_names_no_channel(value):
    with pytest.raises(ConfigError) as caught:
        load_config(settings(VBOT_CHANNEL=value))
    message = str(caught.value)
    assert message.startswith("VBOT_CHANNEL")
    assert "not set" not in message
    assert load_config(settings(VBOT_CHANNEL=value), console=True).channels == ()


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


def test_dotenv_that_is_a_directory_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / ".env").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        read_settings(environ={"VBOT_CHANNEL": "x"})
    message = str(caught.value)
    assert message.startswith(".env: not a regular file") and "\n" not in message


def test_dotenv_that_is_a_dangling_link_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / ".env").symlink_to(tmp_path / "gone.env")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^\.env: cannot read it \(No such file or directory\)"):
        read_settings(environ={})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("named", [False, True])
def test_unreadable_env_file_is_an_error_naming_it(tmp_path, monkeypatch, named):
    path = tmp_path / ".env"
    path.write_text("VBOT_CHANNEL=x\n")
    path.chmod(0)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="Permission denied"):
        read_settings(path if named else None, environ={})


def test_env_file_path_with_a_line_break_stays_on_one_line(tmp_path):
    path = tmp_path / "odd\nname.env"
    path.mkdir()
    with pytest.raises(ConfigError) as caught:
        read_settings(path, environ={})
    assert "\n" not in str(caught.value) and "odd\\nname.env" in str(caught.value)


# --- one home for defaults: SETTINGS, README and config.example.env agree -------------------------

ROOT = Path(__file__).resolve().parent.parent


def readme_rows() -> list[str]:
    """The rows of README's configuration table (the table whose first column is ``variable``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("| variable | meaning | default |", 1)[1].split("\n\n", 1)[0]
    return [line for line in table.splitlines() if line.startswith("| `")]


def test_readme_table_is_the_settings_table():
    expected = [f"| `{setting.name}` | {setting.description} | {setting.documented_default} |"
                for setting in SETTINGS]
    assert readme_rows() == expected


def example_env() -> list[tuple[str, str, str]]:
    """``(name, value, comment above it)`` for each variable line of config.example.env."""
    entries, comment = [], []
    for line in (ROOT / "config.example.env").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# "))
        elif "=" in line:
            name, value = line.split("=", 1)
            entries.append((name, value, " ".join(comment)))
            comment = []
        else:
            comment = []
    return entries


def test_example_env_has_every_setting_with_its_default():
    entries = example_env()
    assert [name for name, _, _ in entries] == [setting.name for setting in SETTINGS]
    for (name, value, comment), setting in zip(entries, SETTINGS, strict=True):
        assert value in ("", setting.default), f"{name}={value} in config.example.env, default {setting.default!r}"
        assert "Default: " in comment or "Required" in comment, name
        if setting.default:
            assert f"Default: {setting.default}" in comment, name
        if setting.bounds:
            low, high = setting.bounds
            assert f"{low:g} to {high:g}" in comment, name


def test_example_env_as_given_is_a_valid_configuration(tmp_path):
    """Copied to .env and filled in with the three required values, it starts the bot."""
    values = read_settings(ROOT / "config.example.env", environ=BASE)
    assert load_config(values) == load_config(BASE)


def test_defaults_come_from_the_table():
    config = load_config(BASE)
    for setting in SETTINGS:
        if setting.name in ("VBOT_HOST", "VBOT_PREFIX", "VBOT_LOG_LEVEL"):
            assert getattr(config, setting.name[5:].lower()) == setting.default
        if setting.bounds and setting.default:
            assert getattr(config, setting.name[5:].lower()) == float(setting.default)
    assert config.commands_file == Path(next(s.default for s in SETTINGS if s.name == "VBOT_COMMANDS_FILE"))


# --- any string: a Config or a ConfigError, nothing else ---------------------------------------------

INTERESTING = ["", " ", ",", ",,", "#", "0", "1", "5", "10", "60", "3600", "65535", "65536", "-1", "1e3", "nan",
               "inf", "\u0661\u0662", "\uff11\uff10", "\u00b2", "0.0000001", "9" * 400, "oauth:", "oauth:x",
               "OAUTH:oauth:x", "justinfan1", TWITCH_HOST, "127.0.0.1", "::1", "true", "off", "debug", "a\x00b",
               "\ud800", "x\r\ny", "\t", "!", "@alice,bob", "mybot", "#chan,other", "\u212a"]
any_string = st.one_of(st.sampled_from(INTERESTING), st.text(st.characters(blacklist_categories=()), max_size=40))


def check_config_or_error(values: dict[str, str], console: bool) -> None:
    """load_config gives a Config within every bound, or a one-line ConfigError naming a variable."""
    try:
        config = load_config(values, console=console)
    except ConfigError as error:
        message = str(error)
        assert message.startswith("VBOT_") and "\n" not in message and "\r" not in message
        return
    assert 1 <= config.port <= 65535
    assert 10 <= config.ping_interval <= 3600 and 5 <= config.ping_timeout <= 300
    assert all(re.fullmatch(r"#[a-z0-9_]{1,25}", channel) for channel in config.channels)
    assert config.channels or console
    assert config.prefix.isprintable() and " " not in config.prefix
    if config.password is not None:
        assert config.password.isprintable() and " " not in config.password
        config.password.encode("utf-8")
    os.fsencode(config.commands_file)
    os.fsencode(config.state_file)
    config.host.encode("idna")  # what the resolver does with it


@pytest.mark.parametrize("name", [setting.name for setting in SETTINGS])
@given(value=any_string, console=st.booleans(), host=st.sampled_from([TWITCH_HOST, "127.0.0.1"]))
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_string_in_one_variable_gives_a_config_or_a_config_error(name, value, console, host):
    check_config_or_error({**BASE, "VBOT_HOST": host, name: value}, console)


@given(values=st.fixed_dictionaries({}, optional={setting.name: any_string for setting in SETTINGS}),
       console=st.booleans())
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_strings_everywhere_give_a_config_or_a_config_error(values, console):
    check_config_or_error(values, console)


# --- the command line ---------------------------------------------------------------------------


def test_help_needs_no_configuration(tmp_path):
    result = run_vbot({}, "--help", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "usage: vbot" in result.stdout
    assert "--env-file" in result.stdout
    assert result.stderr == ""


def test_help_says_vbot_channel_is_required_and_each_exit_code_of_the_bot(capsys):
    """Trial: --help named neither; the exit codes were only in vbot/cli.py's docstring."""
    with pytest.raises(SystemExit) as stop:
        parse_args(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "VBOT_CHANNEL, the channel(s) to join, is required" in text
    assert sorted(cli.EXIT_CODES) == [cli.EXIT_OK, cli.EXIT_CONFIG, cli.EXIT_LOGIN] == [0, 2, 3]
    for code, meaning in cli.EXIT_CODES.items():
        assert re.search(rf"^  {code} +{re.escape(meaning.split()[0])} ", text, re.MULTILINE), code


def test_help_on_an_unknown_topic_names_the_topics(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["help", "foo"])
    assert stop.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error == ("vbot: error: no help on 'foo': the topics are login (vbot help login); "
                     "vbot help alone shows the options and commands")


@pytest.mark.parametrize("args", [["login", "--help"], ["help", "login"]])
def test_login_help_says_what_login_does_the_token_file_ctrl_c_and_each_exit_code(capsys, args):
    with pytest.raises(SystemExit) as stop:
        parse_args(args)
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: vbot login")
    for words in ("device code login", "VBOT_CLIENT_ID", "VBOT_TOKEN_FILE", "Ctrl-C", "--env-file"):
        assert words in text
    assert sorted(EXIT_CODES) == [0, 1, 2, 3, 130]  # as vbot/login.py defines them
    for code, meaning in EXIT_CODES.items():
        assert re.search(rf"^  {code} +{re.escape(meaning.split()[0])} ", text, re.MULTILINE), code
    assert "130  stopped with Ctrl-C" in text


def test_help_is_a_command_too(tmp_path):
    result = run_vbot({}, "help", cwd=tmp_path, timeout=20)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: vbot") and "--env-file" in result.stdout and "login" in result.stdout


@pytest.mark.parametrize("args", [["--env-file", "x.env", "login"], ["login", "--env-file", "x.env"]])
def test_env_file_before_or_after_login(args):
    parsed = parse_args(args)
    assert (parsed.command, parsed.env_file, parsed.console) == ("login", "x.env", False)


def test_version_needs_no_configuration(tmp_path):
    result = run_vbot({}, "--version", cwd=tmp_path, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"vbot {__version__}"


@pytest.mark.parametrize("env, variable", [
    ({"VBOT_HOST": "127.0.0.1"}, "VBOT_USERNAME"),
    ({"VBOT_USERNAME": "mybot", "VBOT_CHANNEL": "mychannel"}, "VBOT_TOKEN"),
    ({**BASE, "VBOT_TOKEN": f"oauth:oauth:{SECRET}"}, "VBOT_TOKEN"),
    ({**BASE, "VBOT_PORT": "http"}, "VBOT_PORT"),
    ({**BASE, "VBOT_PORT": "\u00b2"}, "VBOT_PORT"),  # "²".isdigit() is True: once a traceback and exit 1
    ({**BASE, "VBOT_PING_TIMEOUT": "0.0000001"}, "VBOT_PING_TIMEOUT"),  # once a traceback at start-up
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


def test_cli_dotenv_directory_exits_2_naming_it(tmp_path):
    (tmp_path / ".env").mkdir()
    result = run_vbot(BASE, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and ".env: not a regular file" in lines[0]


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


def test_a_misspelt_setting_is_warned_about(tmp_path):
    """Trial: VBOT_CHANEL=mychannel was ignored in silence."""
    result = run_vbot({"VBOT_CHANEL": "mychannel"}, "--console", input="!version\n", cwd=tmp_path, timeout=20)
    assert result.returncode == 0
    assert "WARNING" in result.stderr and "VBOT_CHANEL is not a vbot setting" in result.stderr
    assert "did you mean VBOT_CHANNEL?" in result.stderr


@pytest.mark.parametrize("typo, hint", [("VBOT_CLEINT_ID", "VBOT_CLIENT_ID"), ("vbot_channel", "VBOT_CHANNEL")])
def test_a_misspelt_setting_is_told_once_with_the_error_it_may_cause(tmp_path, typo, hint):
    """Trial: a typo was a WARNING, then the error, then the same hint again; a lowercase name had none."""
    result = run_vbot({"VBOT_CHANNEL": "x", typo: "abc"} if typo.isupper() else {typo: "x"}, cwd=tmp_path, timeout=20)
    assert result.returncode == 2 and "configuration error" in result.stderr
    assert result.stderr.count(f"did you mean {hint}?") == 1


@pytest.mark.parametrize("url", ["https://id.twitch.tv/oauth2?x=1", "https://id.twitch.tv/oauth2#frag",
                                 "http://127.0.0.1:99999/oauth2", "http://example.org/oauth2", "ftp://x/y"])
def test_a_token_service_url_that_would_misroute_requests_is_refused(url):
    with pytest.raises(ConfigError, match="VBOT_AUTH_URL"):
        load_config(settings(VBOT_AUTH_URL=url))


@pytest.mark.parametrize("nick", ["Frank[x]", "my-bot", "a_b^c{d}|e`", "x" * 30, "123bot"])
def test_an_irc_nick_is_a_username_and_an_owner_off_twitch(nick):
    """Issue 18: ordinary IRC nicks (RFC 2812 section 2.3.1) were refused off Twitch; Twitch logins still do."""
    config = load_config(settings(VBOT_HOST="irc.example.org", VBOT_USERNAME=nick, VBOT_OWNERS=f"@{nick},alice"))
    assert config.username == nick.lower() and config.owners == {nick.lower(), "alice"}


@pytest.mark.parametrize("content, line", [
    ("VBOT_CHANNEL mychannel\n", 1),
    ("# settings\n\nVBOT_USERNAME=mybot\nVBOT_CHANNEL: mychannel\nVBOT_PREFIX=?\n", 4),
    (f"VBOT_CHANNEL=x\nVBOT_TOKEN='{SECRET}\n", 2),  # an unclosed quote: the secret is not repeated
], ids=["space", "colon", "unclosed-quote"])
def test_an_env_line_python_dotenv_cannot_parse_is_one_error_naming_the_line(tmp_path, monkeypatch, content, line):
    """Trial: python-dotenv's own warning, then a misleading "VBOT_CHANNEL is not set"."""
    (tmp_path / ".env").write_text(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        read_settings(environ={})
    assert str(caught.value).startswith(f".env line {line}: not a setting; write NAME=value")
    assert SECRET not in str(caught.value)


def test_cli_env_line_python_dotenv_cannot_parse_exits_2_with_one_line(tmp_path):
    (tmp_path / ".env").write_text("VBOT_CHANNEL mychannel\n")
    result = run_vbot({}, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "vbot: configuration error: .env line 1: not a setting; write NAME=value, e.g. VBOT_CHANNEL=mychannel, "
        "and close any quote"
    ]


@pytest.mark.parametrize("args, env, says", [
    ((), {}, "vbot: configuration error: VBOT_CHANNEL is not set: "),
    (("login",), {"VBOT_CHANNEL": "mychannel"}, "vbot login: VBOT_CLIENT_ID is not set: "),
])
def test_a_missing_setting_without_an_env_file_says_where_env_was_looked_for(tmp_path, args, env, says):
    """Trial: run from another folder than the one holding .env, vbot said only "VBOT_CHANNEL is not set"."""
    result = run_vbot(env, *args, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(says), line
    command = "vbot login" if args else "vbot"
    assert line.endswith(f"; no .env in {tmp_path}: run {command} from the folder holding .env, "
                         "or give --env-file PATH")


@pytest.mark.parametrize("where", ["dotenv", "env-file"])
def test_a_missing_setting_with_an_env_file_says_nothing_of_it(tmp_path, where):
    (tmp_path / "bot.env").write_text("VBOT_PREFIX=?\n")
    if where == "dotenv":
        (tmp_path / ".env").write_text("VBOT_PREFIX=?\n")
    result = run_vbot({}, *(["--env-file", "bot.env"] if where == "env-file" else []), cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "vbot: configuration error: VBOT_CHANNEL is not set: set it to the channel(s) to join, "
        "e.g. VBOT_CHANNEL=mychannel"
    ]


SWAPPER = """
import os, sys
folder, name, first, second = sys.argv[1:]
number = 0
while True:
    number += 1
    os.symlink(second if number % 2 else first, f"{folder}/.swap{number}")
    os.replace(f"{folder}/.swap{number}", f"{folder}/{name}")
"""
"""What an editor's save (or an attacker) does: flips ``name``, a symbolic link, between two files."""
SWAPPED_READS = 20_000
"""Reads while the swapper runs; a check by name before open() blocked after 2,000 to 3,000 of them."""


@pytest.mark.parametrize("reader", ["commands file", "env file", "token file"])
def test_a_file_swapped_for_a_fifo_after_its_check_never_blocks_the_reader(tmp_path, reader):
    """A FIFO swapped in between a check by name (``stat``: a regular file?) and ``open()`` made
    ``open()`` wait for a writer, and the event loop with it on ``!reload`` or SIGHUP (n1 of the
    attack trial). Every file vbot is pointed at is opened without waiting and checked once open
    (vbot.config.read_regular_file): each read gets the file or refuses the FIFO, none waits."""
    good, fifo, path = tmp_path / "good", tmp_path / "fifo", tmp_path / "swapped"
    if reader == "token file":
        good.write_text(Tokens("access0token", "refresh0token", None, ("chat:read",), client_id="app").to_json())
    else:
        good.write_text('[hi]\nreply = "hello"\n' if reader == "commands file" else "VBOT_CHANNEL=test\n")
    os.mkfifo(fifo)
    path.symlink_to("good")
    read = {
        "commands file": lambda: read_file(path, True, builtin_table(), CountStore(tmp_path / "state.sqlite3")),
        "env file": lambda: read_settings(path, environ={}),
        "token file": lambda: load_tokens(path),
    }[reader]
    outcomes: collections.Counter[str] = collections.Counter()

    def reads() -> None:
        for _ in range(SWAPPED_READS):
            try:
                read()
                outcomes["read"] += 1
            except ConfigError as error:
                outcomes["refused" if "FIFO" in str(error) or "not an existing file" in str(error) else str(error)] += 1

    swapper = subprocess.Popen([sys.executable, "-c", SWAPPER, str(tmp_path), path.name, good.name, fifo.name])
    reader_thread = threading.Thread(target=reads, daemon=True)
    try:
        reader_thread.start()
        reader_thread.join(60)  # a bound on a failure, not a speed: 20,000 reads take about a second
        blocked = reader_thread.is_alive()
    finally:
        swapper.kill()
        swapper.wait()
        if reader_thread.is_alive():  # blocked in open(): a writer lets it go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            reader_thread.join(10)
    assert not blocked, f"blocked on the FIFO after {outcomes}"
    assert set(outcomes) == {"read", "refused"}, outcomes  # both sides of the swap were met, nothing else
