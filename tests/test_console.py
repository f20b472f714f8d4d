"""Console mode: stdin lines are chat, replies go to stdout through the same dispatcher and outbox."""

from __future__ import annotations

import io

import pytest

from tests.support import run_vbot
from vbot import __version__
from vbot.commands import builtin_table
from vbot.config import ConfigError, load_config
from vbot.console import Console
from vbot.dispatch import Dispatcher
from vbot.outbox import Limits, Outbox, fit


def console(lines: str, env: dict[str, str] | None = None, cwd=None):
    return run_vbot(env or {}, "--console", input=lines, cwd=cwd, timeout=20)


# --- as a subprocess, with piped stdin ---------------------------------------------------------


def test_version(tmp_path):
    result = console("!version\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"vbot: Version: {__version__}\n"), result.stderr


def test_count_viewers_after_joins_and_a_part(tmp_path):
    result = console("/join alice\n/join bob\n/join carol\n/part bob\n!count_viewers\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "vbot: Viewer count: 2\n"), result.stderr


def test_moderator_only_command_refused_as_viewer_allowed_after_as(tmp_path):
    lines = "/as bob\n!reload\n/as bob vip\n!reload\n/as bob moderator\n!reload\n"
    result = console(lines, cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == "vbot: Reloaded: no commands.toml, built-in commands only.\n"


def test_typist_is_the_broadcaster_by_default(tmp_path):
    result = console("!help\n!exit\n!version\n", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == "vbot: Commands: !version, !count_viewers, !help, !reload, !exit\n"  # nothing after !exit


def test_end_of_input_exits_0(tmp_path):
    result = console("", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    result = console("!version", cwd=tmp_path)  # last line without a newline
    assert (result.returncode, result.stdout) == (0, f"vbot: Version: {__version__}\n")


def test_quit_stops_reading(tmp_path):
    result = console("/quit\n!version\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_configured_login_and_channel(tmp_path):
    (tmp_path / "commands.toml").write_text('[where]\nreply = "{user} in {channel}"\n')
    env = {"VBOT_USERNAME": "MyBot", "VBOT_CHANNEL": "#Streamer,other"}
    result = console("!where\n/as Alice\n!where\n", env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mybot: streamer in streamer\nmybot: Alice in streamer\n"


def test_custom_commands_and_not_commands(tmp_path):
    (tmp_path / "commands.toml").write_text('[hug]\nreply = "{user} hugs {args}!"\naliases = ["cuddle"]\n')
    result = console("hello chat\n!nope\n!\n/as Alice\n!cuddle chat\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "vbot: Alice hugs chat!\n"), result.stderr


def test_console_lines_are_explained_on_stderr(tmp_path):
    result = console("/join\n/as bob admin\n/dance\n/part nobody\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert "usage: /join <login>" in result.stderr
    assert "unknown role 'admin'" in result.stderr
    assert "unknown console command '/dance'" in result.stderr
    assert "nobody is not in #console" in result.stderr


@pytest.mark.parametrize(("env", "variable"), [
    ({"VBOT_USERNAME": "not a login"}, "VBOT_USERNAME"),
    ({"VBOT_TOKEN": "two words"}, "VBOT_TOKEN"),
    ({"VBOT_CHANNEL": "bad channel!"}, "VBOT_CHANNEL"),
    ({"VBOT_PORT": "http"}, "VBOT_PORT"),
    ({"VBOT_PREFIX": "a b"}, "VBOT_PREFIX"),
])
def test_console_still_validates_what_is_set(tmp_path, env, variable):
    result = console("!version\n", env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"vbot: configuration error: {variable}")


def test_live_mode_still_requires_the_login_settings():
    with pytest.raises(ConfigError, match="VBOT_USERNAME is not set"):
        load_config({"VBOT_HOST": "127.0.0.1"})  # with Twitch, the login comes from the token
    with pytest.raises(ConfigError, match="VBOT_CHANNEL is not set"):
        load_config({})
    config = load_config({}, console=True)
    assert (config.username, config.token, config.channels) == ("", None, ())


# --- in process: the console shares the dispatcher and the outbox's rules -------------------------


class FakeTime:
    """A monotonic clock and the matching sleep: sleeping advances the clock."""

    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def in_process(lines: str, limits: Limits | None = None, time: FakeTime | None = None):
    time = time or FakeTime()
    config = load_config({}, console=True)
    outbox = Outbox(limits, clock=time.clock)
    stdout, notes = io.StringIO(), io.StringIO()
    host = Console(config, Dispatcher(builtin_table()), outbox, io.StringIO(lines), stdout, notes,
                   sleep=time.sleep)
    return host.run(), stdout.getvalue(), notes.getvalue(), time


def test_replies_wait_for_the_rate_window_before_reading_on():
    limits = Limits(window=30.0, messages=1, privileged_messages=2)
    lines = "/join a\n!count_viewers\n/join b\n!count_viewers\n/join c\n!count_viewers\n"
    code, stdout, _, time = in_process(lines, limits)
    assert code == 0
    assert stdout == "vbot: Viewer count: 1\nvbot: Viewer count: 2\nvbot: Viewer count: 3\n"
    assert sum(time.slept) == pytest.approx(30.0)  # the privileged limit (2), not the normal one (1)


def test_identical_reply_is_skipped_like_on_twitch():
    code, stdout, notes, _ = in_process("!version\n!version\n")
    assert stdout == f"vbot: Version: {__version__}\n"
    assert "skipped" in notes


def test_long_reply_is_cut_by_the_outbox_as_on_twitch(tmp_path):
    (tmp_path / "commands.toml").write_text('[say]\nreply = "{args}"\n')
    result = console("!say " + "a" * 600 + "\n", cwd=tmp_path)
    assert result.stdout == "vbot: " + fit("a" * 600, "#console") + "\n"
    assert result.stdout.endswith("…\n")
