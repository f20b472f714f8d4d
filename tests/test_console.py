"""Console mode: stdin lines are chat, replies go to stdout through the same dispatcher and outbox."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from tests.support import run_vbot
from vbot import __version__
from vbot.cli import build_dispatcher
from vbot.commands import builtin_table
from vbot.config import ConfigError, load_config
from vbot.console import Console, ConsoleClock
from vbot.dispatch import Dispatcher
from vbot.outbox import Limits, Outbox, fit
from vbot.state import ConsoleCounts, CountStore


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


def test_one_reload_per_five_seconds_on_the_consoles_clock(tmp_path):
    """The first refusal answers; later ones until the next reload are silent (vbot.custom.Reloader)."""
    result = console("!reload\n!reload\n/wait 4.5\n!reload\n/wait 0.5\n!reload\n!reload\n", cwd=tmp_path)
    assert result.stdout.splitlines() == [
        "vbot: Reloaded: no commands.toml, built-in commands only.", "vbot: Last reload 0 s ago; try again in 5 s.",
        "vbot: Reloaded: no commands.toml, built-in commands only.", "vbot: Last reload 0 s ago; try again in 5 s."]


def test_typist_is_the_broadcaster_by_default(tmp_path):
    result = console("!help\n!exit\n!version\n", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1  # nothing after !exit
    assert result.stdout.startswith("vbot: Commands: !version,") and result.stdout.endswith(", !exit\n")


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


def test_count_starts_from_the_live_bots_and_never_changes_its_file(tmp_path):
    (tmp_path / "commands.toml").write_text('[deaths]\nreply = "Deaths: {count}"\n')
    with CountStore(tmp_path / "vbot-state.sqlite3") as live:
        for _ in range(41):
            live.increment("deaths")
    result = console("!deaths\n/wait 11\n!deaths\n!reload\n/wait 11\n!deaths\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "vbot: Deaths: 42", "vbot: Deaths: 43", "vbot: Reloaded 1 custom command.",
        "vbot: Deaths: 44",  # a reload keeps the console's counts
    ]
    with CountStore(tmp_path / "vbot-state.sqlite3") as live:
        assert live.get("deaths") == 41


def test_count_without_a_state_file_starts_at_0_and_creates_none(tmp_path):
    (tmp_path / "commands.toml").write_text('[deaths]\nreply = "Deaths: {count}"\n')
    result = console("!deaths\n/wait 11\n!deaths\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "vbot: Deaths: 1\nvbot: Deaths: 2\n"), result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["commands.toml"]


def test_count_with_a_broken_state_file_is_the_live_bots_error(tmp_path):
    (tmp_path / "commands.toml").write_text('[deaths]\nreply = "Deaths: {count}"\n')
    (tmp_path / "vbot-state.sqlite3").write_text("not a database " * 100)
    result = console("!deaths\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("vbot: configuration error: VBOT_STATE_FILE=vbot-state.sqlite3: cannot use it")


def test_console_counts_see_the_file_once_and_write_nothing(tmp_path):
    path = tmp_path / "state.sqlite3"
    live = CountStore(path)
    live.increment("hug")
    trial = ConsoleCounts(path)
    assert [trial.increment("hug"), trial.increment("hug"), trial.increment("new")] == [2, 3, 1]
    live.increment("hug")  # the live bot counts on meanwhile; the console keeps its own
    assert (trial.open().increment("hug"), live.get("hug")) == (4, 2)
    live.close()
    (tmp_path / "empty.sqlite3").write_bytes(b"")  # a database without the table yet
    assert ConsoleCounts(tmp_path / "empty.sqlite3").increment("hug") == 1


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
    assert sum(time.slept) == pytest.approx(31.0)  # the privileged limit (2), not the normal one (1); 1 s margin


def test_identical_replies_both_arrive_as_on_twitch_for_a_moderator():
    """The console's bot counts as a moderator, whom Twitch's duplicate rule spares: no suffix."""
    _, stdout, notes, _ = in_process("!version\n!version\n")
    assert stdout == f"vbot: Version: {__version__}\n" * 2
    assert "skipped" not in notes


def test_long_reply_is_cut_by_the_outbox_as_on_twitch(tmp_path):
    (tmp_path / "commands.toml").write_text('[say]\nreply = "{args}"\n')
    result = console("!say " + "a" * 600 + "\n", cwd=tmp_path)
    assert result.stdout == "vbot: " + fit("a" * 600, "#console") + "\n"
    assert result.stdout.endswith("…\n")


def test_console_imports_nothing_from_the_irc_library(tmp_path):
    """``vbot --console`` is the no-network mode: the irc library is never imported."""
    script = ("import sys, io; sys.stdin = io.StringIO('!version\\n'); from vbot.cli import main; "
              "code = main(['--console']); "
              "print(sorted(name for name in sys.modules if name == 'irc' or name.startswith('irc.'))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


# --- timers and !botstatus ---------------------------------------------------------------------------

TIMER_FILE = """
[timers.hydrate]
messages = ["Drink water! Reminder {count} in {channel}, {viewers} here.", "Stretch!"]
interval = 900
min_lines = 2
"""


def test_timers_fire_after_wait_once_chat_has_spoken(tmp_path):
    (tmp_path / "commands.toml").write_text(TIMER_FILE)
    lines = ("/timers\n/wait 900\nhello\n/as vbot\nmy own line\n/timers\n/as alice\nhi\n/timers\n"
             "a\nb\n/wait 899\n/wait 1\n")
    result = console(lines, {"VBOT_STATE_FILE": str(tmp_path / "s.sqlite3")}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "vbot: Drink water! Reminder 1 in console, 0 here.\nvbot: Stretch!\n"
    notes = [line for line in result.stderr.splitlines() if line.startswith("* hydrate")]
    assert notes == [
        "* hydrate in #console: waiting for 15m and 2 more chat lines (0/2); message 1 of 2",
        "* hydrate in #console: waiting for 1 more chat line (1/2); message 1 of 2",  # the bot's line did not count
        "* hydrate in #console: waiting for 15m and 2 more chat lines (0/2); message 2 of 2",  # posted on "hi"
    ]
    assert "* 900 s passed (15m)" in result.stderr
    assert "timer 'hydrate' posts in #console (message 1 of 2)" in result.stderr


def test_timers_without_a_commands_file_and_bad_waits(tmp_path):
    result = console("/timers\n/wait\n/wait soon\n/wait -5\n/wait 1e9\n/wait nan\n", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")
    assert "no timers: add [timers.<name>] tables" in result.stderr
    assert result.stderr.count("usage: /wait <seconds>") == 5


def test_botstatus_in_the_console(tmp_path):
    result = console("!version\n/wait 7500\n!botstatus\n/as bob\n!botstatus\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    status = result.stdout.splitlines()[1]
    assert status.startswith("vbot: Up 2h 5m | connection: console | reconnects 0 | ")
    assert "replies sent 1, dropped 0, waiting 0" in status
    assert len(result.stdout.splitlines()) == 2  # bob is no moderator


def in_process_console(tmp_path, text: str, time: FakeTime | None = None) -> tuple[Console, io.StringIO, FakeTime]:
    """A console built as ``vbot --console`` builds it, on a fake clock, fed one line at a time."""
    time = time or FakeTime()
    (tmp_path / "commands.toml").write_text(text)
    config = load_config({"VBOT_COMMANDS_FILE": str(tmp_path / "commands.toml"),
                          "VBOT_STATE_FILE": str(tmp_path / "s.sqlite3")}, console=True)
    clock = ConsoleClock(time.clock)
    dispatcher, timers, reload = build_dispatcher(config, CountStore(config.state_file), clock)
    stdout = io.StringIO()
    host = Console(config, dispatcher, Outbox(clock=clock), io.StringIO(), stdout, io.StringIO(), reload=reload,
                   sleep=time.sleep, timers=timers, clock=clock)
    return host, stdout, time


def test_wait_moves_cooldowns_and_timers_on_the_same_clock(tmp_path):
    host, stdout, _ = in_process_console(tmp_path, '[hi]\nreply = "hi {user} {1}"\n' + TIMER_FILE)
    host.handle_line("/as alice")
    for line in ["!hi 1", "!hi 2", "/wait 10", "!hi 3"]:
        host.handle_line(line)
    assert stdout.getvalue() == "vbot: hi alice 1\nvbot: hi alice 3\n"  # !hi 2 was cooling down
    host.handle_line("/wait 880")  # 3 lines so far, 890 s since start
    assert stdout.getvalue().count("\n") == 2
    host.handle_line("/wait 10")
    assert stdout.getvalue().endswith("vbot: Drink water! Reminder 1 in console, 0 here.\n")


def test_reload_in_the_console_swaps_the_timers(tmp_path):
    host, stdout, _ = in_process_console(tmp_path, TIMER_FILE)
    host.handle_line("hello")
    (tmp_path / "commands.toml").write_text(TIMER_FILE.replace("900", "60") + '[timers.new]\nmessage = "new"\n'
                                                                               'interval = 60\nmin_lines = 0\n')
    host.handle_line("!reload")
    assert stdout.getvalue() == "vbot: Reloaded 0 custom commands and 2 timers.\n"
    host.handle_line("/wait 61")  # hydrate kept its 2 lines (hello, !reload) and its start; new: 1 s later
    assert stdout.getvalue().splitlines()[1:] == ["vbot: Drink water! Reminder 1 in console, 0 here.", "vbot: new"]


def test_as_alone_makes_the_typist_the_broadcaster_again(tmp_path):
    """Trial: after /as alice, only /as <the channel's login> gave the broadcaster back, and README did not say so."""
    result = console("/as alice\n/as\n", {"VBOT_CHANNEL": "test"}, cwd=tmp_path)
    notes = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("* you are")]
    assert notes == ["* you are now alice (everyone)", "* you are now test (broadcaster)"]
