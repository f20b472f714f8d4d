"""Custom text commands: variables, aliases, roles, cooldowns, validation, reload, {count}, outbox rules."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import irc.client
import pytest

from tests.support import TOKEN, BotThread, FakeClock, free_port, make_config, run_vbot, start_vbot, wait_until
from vbot.chat import ChatMessage, Role
from vbot.commands import builtin_table
from vbot.custom import (
    RELOAD_INTERVAL,
    TIMER_VARIABLES,
    VARIABLES,
    CommandsFileError,
    Reloader,
    Scope,
    load_file,
    load_table,
    read_file,
    render,
)
from vbot.dispatch import Cooldowns, Dispatcher
from vbot.facts import ChannelInfo, Known, NoFacts, Stream
from vbot.moderation import Moderation
from vbot.state import BUSY_TIMEOUT, CountStore, StateError
from vbot.timers import TimerSchedule

EXAMPLE = Path(__file__).resolve().parent.parent / "commands.example.toml"


class Clock:
    """A fake monotonic clock: seconds, advanced by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Host:
    """A Chat for in-process tests."""

    def __init__(self, viewers: int = 0, reload=None, facts=None):
        self.viewers = viewers
        self.reload = reload
        self.stopped = False
        self.facts = facts or NoFacts()

    def viewer_count(self, channel: str) -> int:
        return self.viewers

    def request_stop(self) -> None:
        self.stopped = True


def write(tmp_path, text: str | bytes, name: str = "commands.toml"):
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def dispatcher_for(tmp_path, text: str, clock=None, store=None) -> Dispatcher:
    path = write(tmp_path, text)
    store = store or CountStore(tmp_path / "state.sqlite3")
    table = load_table(path, True, builtin_table(), store)
    return Dispatcher(table, "!", cooldowns=Cooldowns(clock) if clock else None)


def say(dispatcher: Dispatcher, text: str, login: str = "alice", role: Role = Role.EVERYONE,
        display_name: str = "Alice", channel: str = "#test", host: Host | None = None) -> str | None:
    message = ChatMessage(channel, login, text, role, display_name)
    return dispatcher.handle(message, host or Host())


# --- variables ------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "typed", "expected"), [
    ("{user} hugs {args}!", "!hug bob and carol", "Alice hugs bob and carol!"),
    ("Hi {user}", "!hug", "Hi Alice"),
    ("[{args}]", "!hug", "[]"),
    ("[{args}]", "!hug   spaced out  ", "[spaced out]"),
    ("Welcome to {channel}'s chat", "!hug", "Welcome to test's chat"),
    ("{viewers} in chat", "!hug", "7 in chat"),
    ("{unknown} {USER} {user", "!hug", "{unknown} {USER} {user"),
    ("{user} says {args}", "!hug {user} {count} {0} {args}", "Alice says {user} {count} {0} {args}"),
    ("{user}{user}", "!hug", "AliceAlice"),
    # {target}: the first word with one leading @ removed, else the sender
    ("https://twitch.tv/{target}", "!so @Bob", "https://twitch.tv/Bob"),
    ("https://twitch.tv/{target}", "!so Bob and more words", "https://twitch.tv/Bob"),
    ("https://twitch.tv/{target}", "!so", "https://twitch.tv/Alice"),
    ("https://twitch.tv/{target}", "!so   ", "https://twitch.tv/Alice"),
    ("https://twitch.tv/{target}", "!so @", "https://twitch.tv/Alice"),
    ("[{target}]", "!so @@Bob", "[@Bob]"),
    ("[{target}]", "!so {user}", "[{user}]"),
    # {1}..{9}: single words, empty when missing; {0} and {10} are not variables
    ("{1} gives {2} to {3}", "!give Bob  a   cookie", "Bob gives a to cookie"),
    ("[{1}][{2}]", "!give", "[][]"),
    ("{9}", "!give 1 2 3 4 5 6 7 8 9 10", "9"),
    ("{0} {10}", "!give a b", "{0} {10}"),
])
def test_variables(tmp_path, reply, typed, expected):
    dispatcher = dispatcher_for(tmp_path, f"[{typed.split()[0][1:]}]\nreply = {json.dumps(reply)}\n")
    assert say(dispatcher, typed, host=Host(viewers=7)) == expected


def test_user_falls_back_to_login_without_display_name(tmp_path):
    dispatcher = dispatcher_for(tmp_path, '[hi]\nreply = "Hi {user}"\n')
    assert say(dispatcher, "!hi", display_name="") == "Hi alice"


def test_count_counts_runs_of_that_command(tmp_path):
    dispatcher = dispatcher_for(tmp_path, """
        [hydrate]
        reply = "Hydration check {count}, again {count}"
        cooldown = 0
        user_cooldown = 0
        [other]
        reply = "Other {count}"
    """)
    assert say(dispatcher, "!hydrate") == "Hydration check 1, again 1"
    assert say(dispatcher, "!hydrate", login="bob") == "Hydration check 2, again 2"
    assert say(dispatcher, "!other") == "Other 1"


def test_render_substitutes_once_and_lazily():
    calls = []
    scope = Scope("#test", Host(), lambda: calls.append("count") or 7, "Alice", "{count}")
    assert render("{count} {count} {args}", scope) == "7 7 {count}"
    assert calls == ["count"]
    assert render("{user}", scope) == "Alice"
    assert calls == ["count"]


def test_count_is_not_touched_by_replies_without_it(tmp_path):
    store = CountStore(tmp_path / "state.sqlite3")
    dispatcher = dispatcher_for(tmp_path, '[discord]\nreply = "https://discord.gg/example"\n', store=store)
    assert say(dispatcher, "!discord") == "https://discord.gg/example"
    assert not (tmp_path / "state.sqlite3").exists()


# --- aliases, roles, help --------------------------------------------------------------------


def test_aliases_and_case(tmp_path):
    dispatcher = dispatcher_for(tmp_path, """
        [Discord]
        reply = "Join the Discord"
        aliases = ["dc", "DISC"]
        cooldown = 0
        user_cooldown = 0
    """)
    for typed in ("!discord", "!DISCORD", "!dc", "!Dc", "!disc"):
        assert say(dispatcher, typed) == "Join the Discord", typed


@pytest.mark.parametrize(("required", "speaker", "allowed"), [
    ("everyone", Role.EVERYONE, True),
    ("subscriber", Role.EVERYONE, False),
    ("subscriber", Role.SUBSCRIBER, True),
    ("vip", Role.SUBSCRIBER, False),
    ("vip", Role.VIP, True),
    ("moderator", Role.VIP, False),
    ("moderator", Role.MODERATOR, True),
    ("broadcaster", Role.MODERATOR, False),
    ("broadcaster", Role.BROADCASTER, True),
    ("Moderator", Role.BROADCASTER, True),
])
def test_roles(tmp_path, required, speaker, allowed):
    dispatcher = dispatcher_for(tmp_path, f'[secret]\nreply = "ok"\nrole = "{required}"\n')
    assert say(dispatcher, "!secret", role=speaker) == ("ok" if allowed else None)


def test_help_lists_custom_commands_the_chatter_may_use(tmp_path):
    dispatcher = dispatcher_for(tmp_path, """
        [discord]
        reply = "d"
        aliases = ["dc"]
        [modonly]
        reply = "m"
        role = "moderator"
    """)
    everyone = say(dispatcher, "!help")
    assert "!discord" in everyone and "!modonly" not in everyone and "!dc" not in everyone
    moderator = say(dispatcher, "!commands", login="mod", role=Role.MODERATOR)
    assert moderator.endswith("!discord, !modonly")  # custom commands after the built-in ones


# --- cooldowns (injected clock) ----------------------------------------------------------------


def test_channel_cooldown(tmp_path):
    clock = Clock()
    dispatcher = dispatcher_for(tmp_path, '[hug]\nreply = "hug {user}"\ncooldown = 10\nuser_cooldown = 0\n', clock)
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") == "hug Alice"
    clock.now += 9.9
    assert say(dispatcher, "!hug", login="bob", display_name="Bob") is None
    assert say(dispatcher, "!hug", login="bob", display_name="Bob", channel="#other") == "hug Bob"
    assert say(dispatcher, "!hug", login="mod", display_name="Mod", role=Role.MODERATOR) == "hug Mod"
    clock.now += 0.1
    assert say(dispatcher, "!hug", login="bob", display_name="Bob") == "hug Bob"


def test_user_cooldown(tmp_path):
    clock = Clock()
    dispatcher = dispatcher_for(tmp_path, '[hug]\nreply = "hug {user}"\ncooldown = 0\nuser_cooldown = 30\n', clock)
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") == "hug Alice"
    clock.now += 29
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") is None
    assert say(dispatcher, "!hug", login="bob", display_name="Bob") == "hug Bob"
    clock.now += 1
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") == "hug Alice"


def test_default_cooldowns_match_built_ins(tmp_path):
    clock = Clock()
    dispatcher = dispatcher_for(tmp_path, '[hug]\nreply = "hug {user}"\n', clock)
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") == "hug Alice"
    clock.now += 2.9
    assert say(dispatcher, "!hug", login="bob", display_name="Bob") is None
    clock.now += 0.1
    assert say(dispatcher, "!hug", login="bob", display_name="Bob") == "hug Bob"
    clock.now += 6.9
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") is None
    clock.now += 0.1
    assert say(dispatcher, "!hug", login="alice", display_name="Alice") == "hug Alice"


# --- validation --------------------------------------------------------------------------------

INVALID = [
    # TOML syntax
    ('[hug\nreply = "x"\n', "commands.toml: invalid TOML: ", "line 1"),
    ('[hug]\nreply = "x"\n[hug]\nreply = "y"\n', "commands.toml: invalid TOML: ", ""),
    # not a table
    ('hug = "x"\n', "commands.toml: [hug]: must be a table", "[hug]"),
    # missing reply
    ('[hug]\nrole = "vip"\n', "commands.toml: [hug] reply: missing", 'reply = "'),
    # wrong types
    ("[hug]\nreply = 3\n", "commands.toml: [hug] reply: must be a non-empty string", ""),
    ('[hug]\nreply = "  "\n', "commands.toml: [hug] reply: must be a non-empty string", ""),
    ('[hug]\nreply = "x"\naliases = "dc"\n', "commands.toml: [hug] aliases: must be a list of strings", ""),
    ('[hug]\nreply = "x"\naliases = ["dc", 2]\n', "commands.toml: [hug] aliases: must be a list of strings", ""),
    ('[hug]\nreply = "x"\nrole = 3\n', "commands.toml: [hug] role: must be a string", ""),
    ('[hug]\nreply = "x"\ncooldown = "10"\n', "commands.toml: [hug] cooldown: must be a number of seconds", ""),
    ('[hug]\nreply = "x"\ncooldown = true\n', "commands.toml: [hug] cooldown: must be a number of seconds", ""),
    ('[hug]\nreply = "x"\nuser_cooldown = [1]\n', "commands.toml: [hug] user_cooldown: must be a number", ""),
    # unknown role
    ('[hug]\nreply = "x"\nrole = "admin"\n', "commands.toml: [hug] role: unknown role 'admin'",
     "everyone, subscriber, vip, moderator, broadcaster"),
    # negative (or not finite) cooldowns
    ('[hug]\nreply = "x"\ncooldown = -1\n',
     "commands.toml: [hug] cooldown: must be a number of seconds, 0 or more", ""),
    ('[hug]\nreply = "x"\nuser_cooldown = -0.5\n', "commands.toml: [hug] user_cooldown: must be a number", "0 or more"),
    ('[hug]\nreply = "x"\ncooldown = inf\n', "commands.toml: [hug] cooldown: must be a number", ""),
    ('[hug]\nreply = "x"\ncooldown = nan\n', "commands.toml: [hug] cooldown: must be a number", ""),
    # unknown field
    ('[hug]\nreply = "x"\ncooldwon = 5\n', "commands.toml: [hug] cooldwon: unknown field", "reply, aliases, role"),
    ('[hug]\nreply = "x"\n[hug.extra]\nreply = "y"\n', "commands.toml: [hug] extra: unknown field", ""),
    # names that cannot be typed
    ('["my hug"]\nreply = "x"\n', "commands.toml: [my hug]: 'my hug' cannot be typed as a command", ""),
    ('[hug]\nreply = "x"\naliases = [""]\n', "commands.toml: [hug] aliases: '' cannot be typed", ""),
    # the prefix is typed, not written (trial: ["!so"] made !!so)
    ('["!so"]\nreply = "x"\n', "commands.toml: [!so]: write [so], without the prefix !: chat types !so", ""),
    ('[so]\nreply = "x"\naliases = ["!Shoutout"]\n',
     'commands.toml: [so] aliases: write "shoutout", without the prefix !: chat types !shoutout', ""),
    # built-in clashes, by name and by alias, in any case
    ('[help]\nreply = "x"\n',
     "commands.toml: [help]: 'help' is already a built-in command (vbot/commands.py); choose another name", ""),
    ('[Version]\nreply = "x"\n', "commands.toml: [Version]: 'version' is already a built-in command", ""),
    ('[commands]\nreply = "x"\n',
     "commands.toml: [commands]: 'commands' is already an alias of the built-in 'help'", ""),
    ('[hug]\nreply = "x"\naliases = ["reload"]\n',
     "commands.toml: [hug] aliases: 'reload' is already a built-in command", ""),
    ('[hug]\nreply = "x"\naliases = ["Commands"]\n',
     "commands.toml: [hug] aliases: 'commands' is already an alias of the built-in 'help'", ""),
    # clashes between custom commands
    ('[discord]\nreply = "x"\naliases = ["dc"]\n[dc]\nreply = "y"\n',
     "commands.toml: [dc]: 'dc' is already used by [discord]; choose another name", ""),
    ('[a]\nreply = "x"\naliases = ["same"]\n[b]\nreply = "y"\naliases = ["same"]\n',
     "commands.toml: [b] aliases: 'same' is already used by [a]", ""),
    ('[hug]\nreply = "x"\n[HUG]\nreply = "y"\n', "commands.toml: [HUG]: 'hug' is already used by [hug]", ""),
    ('[hug]\nreply = "x"\naliases = ["hug"]\n', "commands.toml: [hug] aliases: 'hug' is already used by [hug]", ""),
    # the key "timers" holds timers: a command of that name, in any case, is an error saying so
    ('[timers]\nreply = "x"\n', "commands.toml: [timers]: 'timers' is reserved for timers", "[timers.<name>]"),
    ('[Timers]\nreply = "x"\n', "commands.toml: [Timers]: 'timers' is reserved for timers", "choose another"),
    ('timers = "x"\n', "commands.toml: [timers]: 'timers' is reserved for timers", ""),
    ('[timers]\nx = 1\n[timers.ok]\nmessage = "m"\ninterval = 60\n', "commands.toml: [timers]: 'timers' is reserved",
     ""),
    # timers
    ('[timers.x]\ninterval = 900\n', "commands.toml: [timers.x] message: missing", "messages = [...]"),
    ('[timers.x]\nmessage = "m"\nmessages = ["n"]\ninterval = 900\n', "commands.toml: [timers.x] messages: give",
     "either message or messages"),
    ('[timers.x]\nmessage = 3\ninterval = 900\n', "commands.toml: [timers.x] message: must be a non-empty string", ""),
    ('[timers.x]\nmessage = " "\ninterval = 900\n', "commands.toml: [timers.x] message: must be a non-empty", ""),
    ('[timers.x]\nmessages = []\ninterval = 900\n', "commands.toml: [timers.x] messages: must be a non-empty list", ""),
    ('[timers.x]\nmessages = "m"\ninterval = 900\n', "commands.toml: [timers.x] messages: must be a non-empty list",
     ""),
    ('[timers.x]\nmessages = ["m", 2]\ninterval = 900\n', "commands.toml: [timers.x] messages: must be a",
     "non-empty string"),
    ('[timers.x]\nmessage = "Hi {user}"\ninterval = 900\n', "commands.toml: [timers.x] message: {user} has no value",
     "in a timer (no chatter typed a command); a timer may use {channel}, {viewers}, {count}"),
    ('[timers.x]\nmessages = ["ok", "so {target}"]\ninterval = 900\n', "commands.toml: [timers.x] messages:",
     "{target} has no value in a timer"),
    ('[timers.x]\nmessage = "{1}"\ninterval = 900\n', "commands.toml: [timers.x] message: {1} has no value", ""),
    ('[timers.x]\nmessage = "m"\n', "commands.toml: [timers.x] interval: missing", "interval = 900 (15 minutes)"),
    ('[timers.x]\nmessage = "m"\ninterval = 59\n', "commands.toml: [timers.x] interval: must be a number",
     "of seconds from 60 to 86400, e.g. interval = 900"),
    ('[timers.x]\nmessage = "m"\ninterval = 86401\n', "commands.toml: [timers.x] interval: must be a number", ""),
    ('[timers.x]\nmessage = "m"\ninterval = "900"\n', "commands.toml: [timers.x] interval: must be a number", ""),
    ('[timers.x]\nmessage = "m"\ninterval = true\n', "commands.toml: [timers.x] interval: must be a number", ""),
    ('[timers.x]\nmessage = "m"\ninterval = nan\n', "commands.toml: [timers.x] interval: must be a number", ""),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nmin_lines = -1\n', "commands.toml: [timers.x] min_lines: must be",
     "a whole number of chat lines, 0 or more"),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nmin_lines = 2.5\n', "commands.toml: [timers.x] min_lines: must be",
     ""),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nmin_lines = false\n', "commands.toml: [timers.x] min_lines:", ""),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nchannels = "a"\n', "commands.toml: [timers.x] channels: must be",
     "a non-empty list of channel names, e.g. channels = [\"mychannel\"]; "
     "leave it out to post in every joined channel"),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nchannels = []\n', "commands.toml: [timers.x] channels: must be", ""),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nchannels = ["my channel"]\n', "commands.toml: [timers.x] channels:",
     "'my channel' is not a channel name"),
    ('[timers.x]\nmessage = "m"\ninterval = 900\nreply = "r"\n', "commands.toml: [timers.x] reply: unknown field",
     "message, messages, interval, min_lines, channels"),
    ('[timers.x]\nmessage = "m"\ninterval = 900\n[timers.x.y]\nmessage = "n"\n', "commands.toml: [timers.x] y:",
     "unknown field"),
]


@pytest.mark.parametrize(("text", "start", "also"), INVALID)
def test_invalid_files(tmp_path, text, start, also):
    path = write(tmp_path, text)
    with pytest.raises(CommandsFileError) as caught:
        load_table(path, False, builtin_table(), CountStore(tmp_path / "state.sqlite3"))
    message = str(caught.value)
    assert message.startswith(str(tmp_path / start)), message
    assert also in message
    assert "\n" not in message


def test_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path, b'[hug]\nreply = "caf\xe9"\n')
    with pytest.raises(CommandsFileError, match=r"commands\.toml: not UTF-8 text"):
        read_file(path, False, builtin_table(), CountStore(tmp_path / "state.sqlite3"))


def test_required_file_missing(tmp_path):
    with pytest.raises(CommandsFileError, match=r"missing\.toml: no such file \(VBOT_COMMANDS_FILE\)"):
        read_file(tmp_path / "missing.toml", True, builtin_table(), CountStore(tmp_path / "state.sqlite3"))


def test_default_file_missing_means_builtins_only(tmp_path):
    table = load_table(tmp_path / "commands.toml", False, builtin_table(), CountStore(tmp_path / "state.sqlite3"))
    assert [entry.name for entry in table] == [entry.name for entry in builtin_table()]


def test_empty_file_is_fine(tmp_path):
    assert read_file(write(tmp_path, ""), True, builtin_table(), CountStore(tmp_path / "s.sqlite3")).commands == ()


def test_unusable_state_file_is_an_error_only_when_count_is_used(tmp_path):
    (tmp_path / "state.sqlite3").write_text("this is not a database, " * 100)
    store = CountStore(tmp_path / "state.sqlite3")
    assert read_file(write(tmp_path, '[a]\nreply = "x"\n'), True, builtin_table(), store).commands
    with pytest.raises(StateError, match=r"VBOT_STATE_FILE=.*state\.sqlite3: cannot use it"):
        read_file(write(tmp_path, '[a]\nreply = "{count}"\n'), True, builtin_table(), store)


@pytest.mark.parametrize(("text", "expected"), [
    ('[hug]\nreply = "x"\nrole = "admin"\n', "[hug] role: unknown role 'admin'"),
    ('[help]\nreply = "x"\n', "[help]: 'help' is already a built-in command"),
    ('[hug\n', "invalid TOML"),
])
def test_invalid_file_stops_start_up_with_exit_2(tmp_path, text, expected):
    write(tmp_path, text)
    result = run_vbot({}, "--console", input="!version\n", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"vbot: configuration error: commands.toml: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_invalid_file_stops_the_live_bot_before_it_connects(tmp_path):
    write(tmp_path, '[hug]\nreply = "x"\ncooldown = -1\n')
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": TOKEN, "VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1",
           "VBOT_PORT": str(free_port()), "VBOT_TLS": "false"}
    result = run_vbot(env, cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert "commands.toml: [hug] cooldown: must be a number of seconds, 0 or more" in result.stderr


def test_named_commands_file_missing_stops_with_exit_2(tmp_path):
    result = run_vbot({"VBOT_COMMANDS_FILE": str(tmp_path / "nope.toml")}, "--console", input="", cwd=tmp_path,
                      timeout=20)
    assert result.returncode == 2
    assert f"{tmp_path / 'nope.toml'}: no such file (VBOT_COMMANDS_FILE)" in result.stderr


def test_example_file_is_valid(tmp_path):
    loaded = read_file(EXAMPLE, True, builtin_table(), CountStore(tmp_path / "s"))
    assert {"discord", "socials", "rules", "hug", "so"} <= {entry.name for entry in loaded.commands}
    assert loaded.timers


class Facts(NoFacts):
    """Stream facts as Twitch would give them: ``stream`` and the channel's game and title, 5,678 followers."""

    def __init__(self, stream: Stream, game: str = "Chess", title: str = "Blitz"):
        super().__init__(lambda: 10_000.0)
        self.stream, self.info = stream, ChannelInfo(game, title)

    def known(self, channel, needs, subject=None) -> Known:
        return Known(10_000.0, self.stream, self.info, 5678)


@pytest.mark.parametrize("stream, game, says", [
    (Stream(True, 1234, 10_000.0 - 2 * 3600 - 14 * 60, "Chess", "Blitz"), "Chess", "2h 14m"),
    (Stream(False), "Chess", "offline"),
    (Stream(False), "", "offline"),  # no category set
])
def test_example_stream_command_reads_well_live_and_offline(tmp_path, stream, game, says):
    """Trial: offline it read "mychannel is playing :  (live for offline, 0 watching, 0 followers)"."""
    table = read_file(EXAMPLE, True, builtin_table(), CountStore(tmp_path / "s")).table(builtin_table())
    text = say(Dispatcher(table, "!"), "!stream", host=Host(facts=Facts(stream, game)))
    assert says in text and "5,678" in text and "{" not in text
    assert "for offline" not in text and " :" not in text and "offline," not in text, text


def test_example_shout_out_works(tmp_path):
    table = read_file(EXAMPLE, True, builtin_table(), CountStore(tmp_path / "s")).table(builtin_table())
    dispatcher = Dispatcher(table, "!")
    shout_out = say(dispatcher, "!so @CoolStreamer", role=Role.MODERATOR)
    assert "https://twitch.tv/CoolStreamer" in shout_out
    assert "@" not in shout_out.replace("https://twitch.tv/CoolStreamer", "")


@pytest.mark.parametrize("typed", [
    "!so @Cool\u202eremaertS",  # RIGHT-TO-LEFT OVERRIDE: would show another name
    "!so @\u2067CoolStreamer\u2069",  # an isolate around the name
    "!so Cool\u200bStreamer",  # ZERO WIDTH SPACE
    "!so Cool\u200dStreamer\U000e0000",  # ZERO WIDTH JOINER, a tag character
    "!so \u200b@CoolStreamer",  # before the @
])
def test_target_carries_no_bidi_control_or_zero_width_character(tmp_path, typed):
    dispatcher = dispatcher_for(tmp_path, '[so]\nreply = "Follow {target}: https://twitch.tv/{target}"\n')
    expected = "CoolStreamer" if "remaert" not in typed else "CoolremaertS"
    assert say(dispatcher, typed) == f"Follow {expected}: https://twitch.tv/{expected}"


@pytest.mark.parametrize("typed", [
    "!so \u3164",  # HANGUL FILLER
    "!so @\u3164\u3164",
    "!so \u115f\u1160",  # HANGUL CHOSEONG and JUNGSEONG FILLER
    "!so \uffa0 more words",  # HALFWIDTH HANGUL FILLER
    "!so \u2800\u2800",  # BRAILLE PATTERN BLANK
    "!so \u200b\u3164\u2800",
    "!so \u034f",  # COMBINING GRAPHEME JOINER: a mark, not a letter (attack, third round)
    "!so \u17b4\u17b5",  # KHMER VOWEL INHERENT AQ and AA
    "!so \u180b\ufe00\U000e0100",  # variation selectors: Mongolian, VS1, VS17
    "!so \u2800\u034f",
])
def test_a_target_that_looks_blank_falls_back_to_the_sender(tmp_path, typed):
    dispatcher = dispatcher_for(tmp_path, '[so]\nreply = "Follow {target}: https://twitch.tv/{target}"\n')
    assert say(dispatcher, typed) == "Follow Alice: https://twitch.tv/Alice"


def test_blank_looking_letters_are_dropped_from_a_target():
    assert render("[{target}]", Scope("#test", None, lambda: 1, "Alice", "Bob\u3164\u2800 more")) == "[Bob]"


def test_the_variables_the_renderer_uses_are_documented():
    readme = (EXAMPLE.parent / "README.md").read_text()
    example = EXAMPLE.read_text()
    for name in VARIABLES:
        shown = name if not name.isdigit() else ("1" if name == "1" else "9")
        assert f"`{{{shown}}}`" in readme, name
        assert f"{{{shown}}}" in example, name
    assert all(name in VARIABLES for name in TIMER_VARIABLES)


# --- timers in the file -----------------------------------------------------------------------------


def test_timers_are_read_with_their_defaults(tmp_path):
    path = write(tmp_path, """
        [discord]
        reply = "d"

        [timers.hydrate]
        message = "Drink water"
        interval = 900  # 15 minutes

        [timers.tips]
        messages = ["one", "two"]
        interval = 60.5
        min_lines = 0
        channels = ["#Main", "other", "main"]
    """)
    loaded = read_file(path, True, builtin_table(), CountStore(tmp_path / "s"))
    assert [entry.name for entry in loaded.commands] == ["discord"]
    hydrate, tips = loaded.timers
    assert (hydrate.name, hydrate.messages, hydrate.interval, hydrate.min_lines, hydrate.channels) == \
        ("hydrate", ("Drink water",), 900.0, 5, ())
    assert (tips.name, tips.messages, tips.interval, tips.min_lines, tips.channels) == \
        ("tips", ("one", "two"), 60.5, 0, ("#main", "#other"))
    assert "timers" not in loaded.table(builtin_table())


def test_timer_messages_fill_channel_viewers_and_their_own_count(tmp_path):
    store = CountStore(tmp_path / "s.sqlite3")
    path = write(tmp_path, """
        [hydrate]
        reply = "command {count}"
        [timers.hydrate]
        message = "{channel}: {viewers} here, reminder {count}; {unknown}"
        interval = 600
        min_lines = 0
    """)
    loaded = read_file(path, True, builtin_table(), store)
    timers = TimerSchedule(loaded.timers, ["#test"], "vbot", FakeClock())
    host = Host(viewers=7)
    texts = []
    for _ in range(2):
        timers._clock.advance(600)
        texts += [post.text(host) for post in timers.take_due()]
    assert texts == ["test: 7 here, reminder 1; {unknown}", "test: 7 here, reminder 2; {unknown}"]
    assert say(Dispatcher(loaded.table(builtin_table())), "!hydrate") == "command 1"  # a count of its own


def test_a_timer_using_count_opens_the_state_file_at_load(tmp_path):
    (tmp_path / "state.sqlite3").write_text("this is not a database, " * 100)
    path = write(tmp_path, '[timers.t]\nmessage = "{count}"\ninterval = 60\n')
    with pytest.raises(StateError):
        read_file(path, True, builtin_table(), CountStore(tmp_path / "state.sqlite3"))


# --- reload ----------------------------------------------------------------------------------


def reloadable(tmp_path, text: str, required: bool = True, timers: TimerSchedule | None = None):
    path = write(tmp_path, text)
    store = CountStore(tmp_path / "state.sqlite3")
    builtins = builtin_table()
    dispatcher = Dispatcher(load_table(path, required, builtins, store), "!")
    reloader = Reloader(dispatcher, builtins, path, required, store, timers.set_timers if timers else None, interval=0)
    return path, dispatcher, Host(reload=reloader)


TIMER_FILE = '[discord]\nreply = "old"\n[timers.hydrate]\nmessage = "old water"\ninterval = 600\n'


def paced(tmp_path, text: str = '[hi]\nreply = "hi"\n'):
    """A Reloader at RELOAD_INTERVAL on a FakeClock, its Host, and what !reload says (None: silent)."""
    clock = FakeClock()
    path = write(tmp_path, text)
    store = CountStore(tmp_path / "state.sqlite3")
    dispatcher = Dispatcher(load_table(path, True, builtin_table(), store), "!")
    reloader = Reloader(dispatcher, builtin_table(), path, True, store, clock=clock)
    host = Host(reload=reloader)
    return clock, path, dispatcher, reloader, host


def test_reloads_run_at_most_once_per_interval_whoever_asks(tmp_path, caplog):
    """Trial: 30 !reload from a moderator with a 1 MiB file held the loop 19 s (PONG that late)."""
    clock, path, dispatcher, reloader, host = paced(tmp_path)
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 1 custom command."
    path.write_text('[hi]\nreply = "hi"\n[ho]\nreply = "ho"\n')
    clock.advance(RELOAD_INTERVAL - 2.8)
    with caplog.at_level(logging.INFO, logger="vbot.custom"):
        assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Last reload 2 s ago; try again in 3 s."
    assert say(dispatcher, "!ho", host=host) is None  # the file was not read again
    assert caplog.messages[-1] == "not reloading: Last reload 2 s ago; try again in 3 s. (at most one reload per 5 s)"
    clock.advance(2.8)
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 2 custom commands."
    assert say(dispatcher, "!ho", host=host) == "ho"
    path.write_text("[broken")
    clock.advance(RELOAD_INTERVAL)
    assert reloader().startswith("Reload failed")
    assert reloader() == "Last reload 0 s ago; try again in 5 s."  # a failed reload read the file too


def test_a_crowd_of_reloads_gets_one_refusal_per_interval(tmp_path, caplog):
    """Trial: 50 moderators sending !reload (2,000 in 40 s) each got a refusal: the moderator send
    budget went to them and the outbox dropped 13-37 other replies per burst."""
    clock, path, dispatcher, reloader, host = paced(tmp_path)
    assert reloader() == "Reloaded 1 custom command."
    clock.advance(1.2)
    with caplog.at_level(logging.DEBUG, logger="vbot.custom"):
        replies = [say(dispatcher, "!reload", role=role, host=host) for role in (Role.MODERATOR, Role.BROADCASTER) * 25]
        clock.advance(2.0)
        replies.append(reloader())
    assert replies == ["Last reload 1 s ago; try again in 4 s.", *[None] * 50]  # the first answers, for all
    assert [record.levelname for record in caplog.records] == ["INFO", *["DEBUG"] * 50]
    assert caplog.messages[-1] == (
        "not reloading, not answering: Last reload 3 s ago; try again in 2 s. (one answer per 5 s)")
    clock.advance(1.8)
    assert reloader() == "Reloaded 1 custom command."  # a new interval: the first refusal answers again
    assert [reloader(), reloader()] == ["Last reload 0 s ago; try again in 5 s.", None]


def test_a_sighup_inside_the_interval_reloads_once_at_its_end(tmp_path, caplog):
    """Trial: a moderator's !reload, then 1 s later the operator's edit and `systemctl reload`:
    the SIGHUP was refused (systemd said it worked) and the edit stayed off."""
    clock, path, dispatcher, reloader, host = paced(tmp_path)
    assert reloader.tick() is None  # nothing asked
    assert reloader() == "Reloaded 1 custom command."
    clock.advance(1.0)
    path.write_text('[hi]\nreply = "hi"\n[ho]\nreply = "ho"\n')
    with caplog.at_level(logging.DEBUG, logger="vbot.custom"):
        for _ in range(3):  # several SIGHUPs inside one interval: one reload
            reloader.request()
            assert reloader.tick() == RELOAD_INTERVAL - 1.0
    assert caplog.messages == ["reloading in 4 s: at most one reload per 5 s"] * 3
    assert [record.levelname for record in caplog.records] == ["INFO", "DEBUG", "DEBUG"]  # the first says when
    assert say(dispatcher, "!ho", host=host) is None
    clock.advance(2.5)  # a moderator is told it comes
    assert reloader() == "Last reload 3 s ago; reloading in 2 s."
    assert reloader.tick() == pytest.approx(1.5)
    clock.advance(1.5)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="vbot.custom"):
        assert reloader.tick() is None  # ran: the usual log line
    assert caplog.messages == [f"reloaded 2 custom command(s) and 0 timer(s) from {path}; filters: none"]
    assert say(dispatcher, "!ho", host=host) == "ho"
    assert reloader.tick() is None and reloader() == "Last reload 0 s ago; try again in 5 s."  # once


def test_a_sighup_outside_the_interval_reloads_at_the_next_tick_and_a_reload_before_it_counts(tmp_path, caplog):
    clock, path, dispatcher, reloader, host = paced(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="vbot.custom"):
        reloader.request()  # the first ever: nothing to wait for, nothing logged
    assert caplog.messages == []
    assert reloader.tick() is None and say(dispatcher, "!hi", host=host) == "hi"
    clock.advance(0.5)
    reloader.request()
    clock.advance(RELOAD_INTERVAL)
    path.write_text('[hi]\nreply = "hi"\n[ho]\nreply = "ho"\n')
    assert reloader() == "Reloaded 2 custom commands."  # read after the SIGHUP: it satisfies it
    assert reloader.tick() is None
    clock.advance(RELOAD_INTERVAL)
    assert reloader.tick() is None  # nothing left to run


def test_reload_swaps_commands_and_timers_together(tmp_path):
    timers = TimerSchedule(clock=FakeClock())
    path, dispatcher, host = reloadable(tmp_path, "", timers=timers)
    path.write_text(TIMER_FILE)
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 1 custom command and 1 timer."
    assert [timer.messages for timer in timers.timers] == [("old water",)]
    path.write_text(TIMER_FILE.replace("old", "new") + '[timers.tips]\nmessage = "tip"\ninterval = 60\n')
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 1 custom command and 2 timers."
    assert say(dispatcher, "!discord", host=host) == "new"
    assert [timer.messages for timer in timers.timers] == [("new water",), ("tip",)]


@pytest.mark.parametrize("broken", [
    TIMER_FILE.replace("old", "new").replace("600", "30"),  # the commands part is valid, the timer is not
    TIMER_FILE.replace("old", "new").replace('[discord]\nreply = "new"', '[discord]\nrole = "vip"'),
])
def test_reload_with_errors_keeps_the_old_commands_and_the_old_timers(tmp_path, broken):
    timers = TimerSchedule(clock=FakeClock())
    path, dispatcher, host = reloadable(tmp_path, "", timers=timers)
    path.write_text(TIMER_FILE)
    say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    old_table, old_timers = dispatcher.table, timers.timers
    path.write_text(broken)
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host).startswith("Reload failed, kept the old commands")
    assert dispatcher.table is old_table and timers.timers == old_timers


def test_reload_failing_on_the_state_file_names_only_its_base_name_in_chat(tmp_path, caplog):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n')
    (tmp_path / "state.sqlite3").write_text("this is not a database, " * 100)
    path.write_text('[discord]\nreply = "visit {count}"\n')
    with caplog.at_level(logging.WARNING, logger="vbot.custom"):
        reply = say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    assert reply.startswith("Reload failed, kept the old commands: state.sqlite3: cannot use it"), reply
    assert str(tmp_path) not in reply and "/" not in reply
    assert f"VBOT_STATE_FILE={tmp_path / 'state.sqlite3'}: cannot use it" in caplog.text  # the log: the whole story
    assert say(dispatcher, "!discord", host=host) == "old"


def test_reload_installs_the_new_file(tmp_path):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n')
    path.write_text('[discord]\nreply = "new"\n[rules]\nreply = "be kind"\n')
    assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 2 custom commands."
    assert say(dispatcher, "!discord", host=host) == "new"
    assert say(dispatcher, "!rules", host=host) == "be kind"


def test_reload_is_for_moderators_and_up(tmp_path):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n')
    path.write_text('[discord]\nreply = "new"\n')
    assert say(dispatcher, "!reload", role=Role.VIP, host=host) is None
    assert say(dispatcher, "!discord", host=host) == "old"


@pytest.mark.parametrize(("broken", "reason"), [
    ('[discord]\nreply = "new"\nrole = "admin"\n', "commands.toml: [discord] role: unknown role 'admin'"),
    ('[discord]\nreply = "new"\n[help]\nreply = "x"\n', "commands.toml: [help]: 'help' is already a built-in command"),
    ('[discord\n', "commands.toml: invalid TOML"),
])
def test_reload_with_errors_keeps_the_old_table_and_says_why(tmp_path, caplog, broken, reason):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n')
    old_table = dispatcher.table
    path.write_text(broken)
    with caplog.at_level(logging.WARNING, logger="vbot.custom"):
        reply = say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    assert reply.startswith(f"Reload failed, kept the old commands: {reason}")
    assert str(tmp_path) not in reply  # chat gets the file name, the log the full path
    assert dispatcher.table is old_table
    assert say(dispatcher, "!discord", host=host) == "old"
    assert any(str(tmp_path / reason) in record.getMessage() for record in caplog.records)


def test_reload_after_the_required_file_vanished_keeps_the_old_table(tmp_path):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n')
    path.unlink()
    reply = say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    assert reply.startswith("Reload failed, kept the old commands: commands.toml: no such file")
    assert say(dispatcher, "!discord", host=host) == "old"


def test_reload_after_the_default_file_vanished_means_builtins_only(tmp_path):
    path, dispatcher, host = reloadable(tmp_path, '[discord]\nreply = "old"\n', required=False)
    path.unlink()
    reply = say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    assert reply == "Reloaded: no commands.toml, built-in commands only."
    assert say(dispatcher, "!discord", host=host) is None


def test_reload_in_chat_on_the_wire(twitch, tmp_path):
    path = write(tmp_path, '[discord]\nreply = "Join the Discord"\n')
    store = CountStore(tmp_path / "state.sqlite3")
    builtins = builtin_table()
    config = make_config(twitch.port)
    dispatcher = Dispatcher(load_table(path, True, builtins, store), config.prefix)
    bot = BotThread(config, dispatcher, reload=Reloader(dispatcher, builtins, path, True, store)).start()
    try:
        twitch.wait_for(r"^JOIN #test$")
        path.write_text('[discord]\nreply = "x"\nrole = "admin"\n')
        twitch.chat("#test", "moddy", "!reload", "badges=moderator/1;mod=1;display-name=Moddy")
        line = twitch.wait_for(r"^PRIVMSG #test :Reload failed")
        assert line == ("PRIVMSG #test :Reload failed, kept the old commands: commands.toml: [discord] role: "
                        "unknown role 'admin'; use one of everyone, subscriber, vip, moderator, broadcaster")
        twitch.chat("#test", "ronni", "!discord", "badges=;mod=0")
        twitch.wait_for(r"^PRIVMSG #test :Join the Discord$")
    finally:
        assert bot.stop() == 0


def test_sighup_reloads_the_live_bot(twitch, tmp_path):
    path = write(tmp_path, '[discord]\nreply = "Join the Discord"\n')
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{TOKEN}", "VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1",
           "VBOT_PORT": str(twitch.port), "VBOT_TLS": "false", "VBOT_COMMANDS_FILE": str(path),
           "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3")}
    process = start_vbot(env, cwd=tmp_path)
    try:
        twitch.wait_for(r"^JOIN #test$")
        twitch.chat("#test", "ronni", "!discord", "badges=;mod=0")
        twitch.wait_for(r"^PRIVMSG #test :Join the Discord$")
        path.write_text('[discord]\nreply = "Join the Discord"\n[rules]\nreply = "Be kind"\n')
        process.send_signal(signal.SIGHUP)

        def rules_answered():
            assert process.poll() is None, "vbot exited"
            twitch.chat("#test", "mod", "!rules", "badges=moderator/1;mod=1")
            return "PRIVMSG #test :Be kind" in twitch.received

        wait_until(rules_answered, message="!rules after SIGHUP")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "reloaded 2 custom command(s) and 0 timer(s) from" in stderr


# --- {count} storage -----------------------------------------------------------------------------


def test_count_survives_a_restart(tmp_path):
    """Each start of the bot opens the state file anew and counts on (the console only reads it:
    tests/test_console.py)."""
    for expected in ("Hydration check 1", "Hydration check 2"):
        with CountStore(tmp_path / "counts.sqlite3") as store:
            assert say(dispatcher_for(tmp_path, '[hydrate]\nreply = "Hydration check {count}"\n', store=store),
                       "!hydrate") == expected


def test_count_store_two_instances(tmp_path):
    with CountStore(tmp_path / "s.sqlite3") as first:
        assert [first.increment("a"), first.increment("a"), first.increment("b")] == [1, 2, 1]
    with CountStore(tmp_path / "s.sqlite3") as second, CountStore(tmp_path / "s.sqlite3") as third:
        assert second.increment("a") == 3
        assert third.increment("a") == 4
        assert (second.get("a"), second.get("b"), second.get("never")) == (4, 1, 0)


def test_a_count_that_cannot_be_written_or_read_is_a_state_error(tmp_path):
    """A state file broken under a running bot (another process dropped the table): the increment
    and the read fail as StateError, naming the file (a reply or a timer's post shows (not available))."""
    path = tmp_path / "s.sqlite3"
    with CountStore(path) as store:
        assert store.increment("a") == 1
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("DROP TABLE counts")
            other.commit()
        with pytest.raises(StateError, match=r"VBOT_STATE_FILE=.*s\.sqlite3: .*no such table: counts"):
            store.increment("a")
        with pytest.raises(StateError, match="no such table"):
            store.get("a")


def test_a_count_while_another_process_holds_the_lock_is_skipped_and_the_reply_says_so(tmp_path, caplog):
    """An operator's ``sqlite3`` shell with a transaction open held each ``{count}`` reply 5 s in the
    event loop, then lost it with a traceback (u1 of the attack trial): now the write gives up after
    BUSY_TIMEOUT (0.1 s), the reply goes out with the count marked unavailable, with one WARNING."""
    path = tmp_path / "state.sqlite3"
    dispatcher = dispatcher_for(tmp_path, '[deaths]\nreply = "Deaths: {count}"\ncooldown = 0\nuser_cooldown = 0\n')
    assert say(dispatcher, "!deaths") == "Deaths: 1"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # the operator's shell
        assert say(dispatcher, "!deaths") == "Deaths: (not available)"
        other.execute("ROLLBACK")
    assert say(dispatcher, "!deaths") == "Deaths: 2"
    [warning] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warning.levelno == logging.WARNING and warning.exc_info is None
    assert warning.getMessage() == (
        f"{{count}} not counted: VBOT_STATE_FILE={path}: cannot use it as vbot's state database (database is "
        f"locked: another process held it for more than {BUSY_TIMEOUT:g} s); end that process's transaction "
        "(a sqlite3 shell, a backup?); the reply shows (not available)"
    )


def test_count_store_survives_kill(tmp_path):
    path = tmp_path / "s.sqlite3"
    script = ("import sys\nfrom vbot.state import CountStore\nstore = CountStore(sys.argv[1])\n"
              "while True:\n    print(store.increment('hydrate'), flush=True)\n")
    child = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        seen = [int(child.stdout.readline()) for _ in range(30)]
    finally:
        child.kill()
        child.wait(10)
    assert seen == list(range(1, 31))
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with CountStore(path) as store:
        assert store.get("hydrate") >= 30
        before = store.get("hydrate")
        assert store.increment("hydrate") == before + 1


# --- chat text in a reply obeys the outbox rules --------------------------------------------------


def test_args_with_crlf_quit_is_sent_as_one_harmless_line(twitch, tmp_path):
    path = write(tmp_path, '[hug]\nreply = "{user} hugs {args}!"\ncooldown = 0\nuser_cooldown = 0\n')
    config = make_config(twitch.port)
    dispatcher = Dispatcher(load_table(path, True, builtin_table(), CountStore(tmp_path / "s")), config.prefix)
    bot = BotThread(config, dispatcher).start()
    try:
        twitch.wait_for(r"^JOIN #test$")
        wait_until(lambda: "#test" in bot.bot.channels, message="the bot's own JOIN handled")
        start = len(twitch.received)
        # Twitch's line protocol cannot carry CR LF inside a message, so hand the bot the
        # library's event directly, under the reactor's lock, as the event loop would.
        event = irc.client.Event("pubmsg", irc.client.NickMask("ronni!ronni@ronni.tmi.twitch.tv"), "#test",
                                 ["!hug chat\r\nQUIT :bye"], [])
        with bot.bot.reactor.mutex:
            bot.bot.on_pubmsg(bot.bot.connection, event)
        # On the wire: {user} from a tag escaped as \r\n (the library unescapes it), {args} with a bare CR.
        twitch.chat("#test", "evil", "!hug you", r"display-name=Evil\r\nQUIT\s:bye;badges=")
        twitch.chat("#test", "ronni", "!hug a\rQUIT :bye", "badges=")
        twitch.chat("#test", "ronni", "!version", "badges=")
        twitch.wait_for(r"^PRIVMSG #test :Version: ", start=start)
        sent = twitch.received[start:]
        assert sent == [
            "PRIVMSG #test :ronni hugs chat  QUIT :bye!",
            "PRIVMSG #test :Evil  QUIT :bye hugs you!",
            "PRIVMSG #test :ronni hugs a QUIT :bye!",
            sent[-1],
        ]
    finally:
        assert bot.stop() == 0


@pytest.mark.parametrize("make, problem", [
    (lambda path: path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n"), "nested too deeply"),
    (lambda path: path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n"), "larger than 1024 KiB"),
])
def test_a_pathological_file_is_a_one_line_error(tmp_path, make, problem):
    """Trial: a deeply nested array crashed start-up (RecursionError); /dev/zero filled the memory."""
    path = tmp_path / "commands.toml"
    make(path)
    with pytest.raises(CommandsFileError) as caught:
        read_file(path, True, builtin_table(), CountStore(tmp_path / "state.sqlite3"))
    assert problem in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_commands_file_that_is_not_a_regular_file_is_refused(tmp_path, special):
    """Trial: /dev/zero filled the memory; a FIFO froze start-up, and the live bot on !reload."""
    if special == "fifo":
        special = str(tmp_path / "commands.toml")
        os.mkfifo(special)
    result = run_vbot({"VBOT_COMMANDS_FILE": special}, "--console", input="", cwd=tmp_path, timeout=20)
    assert result.returncode == 2 and "not a regular file" in result.stderr


@pytest.mark.parametrize("text", ['["a\\nb"]\nreply = "x"\n', '[timers."a\\nb c"]\nmessage = "m"\ninterval = 60\n',
                                  '[hug]\nreply = "x"\naliases = ["a\\nb"]\n'])
def test_a_name_with_a_line_break_keeps_the_error_on_one_line(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(CommandsFileError) as caught:
        read_file(path, True, builtin_table(), CountStore(tmp_path / "state.sqlite3"))
    assert "\n" not in str(caught.value) and "\n" not in caught.value.brief()


def filtered(tmp_path, text: str, required: bool = True):
    """``reloadable``, with the file's spam filters on from the start (as vbot.cli builds them)."""
    path = write(tmp_path, text)
    store = CountStore(tmp_path / "state.sqlite3")
    builtins = builtin_table()
    loaded = load_file(path, required, builtins, store)
    dispatcher = Dispatcher(loaded.table(builtins), moderation=Moderation(loaded.filters, FakeClock()))
    return path, dispatcher, Host(reload=Reloader(dispatcher, builtins, path, required, store, interval=0))


def test_start_and_reload_log_which_filters_are_on_and_when_none_are(tmp_path, caplog):
    """Trial: a reload that removed [filters] did not say the filters were off."""
    with caplog.at_level(logging.INFO, logger="vbot.custom"):
        path, dispatcher, host = filtered(tmp_path, '[hi]\nreply = "hi"\n[filters.links]\n')
        path.write_text('[hi]\nreply = "hi"\n')
        assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == \
            "Reloaded 1 custom command and filters: none."
        assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == "Reloaded 1 custom command."
        path.unlink()
        assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host).startswith("Reload failed")
    assert [record.getMessage() for record in caplog.records][:3] == [
        f"loaded 1 custom command(s) and 0 timer(s) from {path}; filters: links",
        f"reloaded 1 custom command(s) and 0 timer(s) from {path}; filters: none",
        f"reloaded 1 custom command(s) and 0 timer(s) from {path}; filters: none",
    ]


def test_a_reload_removing_the_file_says_the_filters_went_off_too(tmp_path, caplog):
    path, dispatcher, host = filtered(tmp_path, "[filters.links]\n", required=False)
    path.unlink()
    with caplog.at_level(logging.INFO, logger="vbot.custom"):
        assert say(dispatcher, "!reload", role=Role.MODERATOR, host=host) == \
            "Reloaded: no commands.toml, built-in commands only, no filters."
    assert not dispatcher.moderation.is_on
    assert caplog.records[-1].getMessage() == f"reloaded: no {path}, built-in commands only; filters: none"


def test_the_prefix_is_vbot_prefix_at_start_and_at_reload(tmp_path):
    write(tmp_path, '["?so"]\nreply = "x"\n')
    result = run_vbot({"VBOT_PREFIX": "?"}, "--console", input="", cwd=tmp_path, timeout=20)
    assert result.returncode == 2
    assert result.stderr == "vbot: configuration error: commands.toml: [?so]: write [so], without the prefix ?: " \
                            "chat types ?so\n"
    path = write(tmp_path, '["!so"]\nreply = "bang so"\n')  # with the prefix ?, a name like any other
    store = CountStore(tmp_path / "state.sqlite3")
    dispatcher = Dispatcher(load_table(path, True, builtin_table(), store, prefix="?"), "?")
    host = Host(reload=Reloader(dispatcher, builtin_table(), path, True, store, interval=0))
    assert say(dispatcher, "?!so") == "bang so"
    path.write_text('["?so"]\nreply = "x"\n')
    assert say(dispatcher, "?reload", role=Role.MODERATOR, host=host) == (
        "Reload failed, kept the old commands: commands.toml: [?so]: write [so], without the prefix ?: chat types ?so")


def test_a_variable_name_close_to_a_known_one_is_a_warning_at_start_and_at_reload(tmp_path, caplog):
    """Trial: {followag} went to chat as typed, silently. Names far from any variable stay silent."""
    text = ('[fa]\nreply = "{user} follows since {followag} {Followage} {xyz} {10}"\n'
            '[fb]\nreply = "{followag}"\n[timers.t]\nmessage = "{gam}"\ninterval = 60\n')
    with caplog.at_level(logging.WARNING, logger="vbot.custom"):
        path, dispatcher, host = reloadable(tmp_path, text)
        say(dispatcher, "!reload", role=Role.MODERATOR, host=host)
    warnings = [f"{path}: [fa], [fb] {{followag}} is not a variable and is sent as typed; did you mean {{followage}}?",
                f"{path}: [fa] {{Followage}} is not a variable and is sent as typed; did you mean {{followage}}?",
                f"{path}: [timers.t] {{gam}} is not a variable and is sent as typed; did you mean {{game}}?"]
    assert [record.getMessage() for record in caplog.records] == warnings * 2
    assert say(dispatcher, "!fb") == "{followag}"  # still sent as typed
