"""Custom text commands: variables, aliases, roles, cooldowns, validation, reload, {count}, outbox rules."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import subprocess
import sys
import textwrap

import irc.client
import pytest

from tests.support import BotThread, TOKEN, free_port, make_config, run_vbot, start_vbot, wait_until
from vbot.chat import ChatMessage, Role
from vbot.commands import builtin_table
from vbot.custom import CommandsFileError, Reloader, load_table, read_commands, render
from vbot.dispatch import Cooldowns, Dispatcher
from vbot.state import CountStore, StateError


class Clock:
    """A fake monotonic clock: seconds, advanced by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Host:
    """A ChatHost for in-process tests."""

    def __init__(self, viewers: int = 0, reload=None):
        self.viewers = viewers
        self.reload = reload
        self.stopped = False

    def viewer_count(self, channel: str) -> int:
        return self.viewers

    def request_stop(self) -> None:
        self.stopped = True

    def reload_commands(self) -> str:
        return self.reload()


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
])
def test_variables(tmp_path, reply, typed, expected):
    dispatcher = dispatcher_for(tmp_path, f"[hug]\nreply = {json.dumps(reply)}\n")
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
    values = {"a": lambda: calls.append("a") or "{b}", "b": lambda: calls.append("b") or "B"}
    assert render("{a} {a}", values) == "{b} {b}"
    assert calls == ["a"]


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
    assert everyone == "Commands: !version, !count_viewers, !help, !discord"
    moderator = say(dispatcher, "!commands", login="mod", role=Role.MODERATOR)
    assert moderator == "Commands: !version, !count_viewers, !help, !reload, !discord, !modonly"


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
    ('[hug]\nreply = "x"\ncooldown = -1\n', "commands.toml: [hug] cooldown: must be a number of seconds, 0 or more", ""),
    ('[hug]\nreply = "x"\nuser_cooldown = -0.5\n', "commands.toml: [hug] user_cooldown: must be a number", "0 or more"),
    ('[hug]\nreply = "x"\ncooldown = inf\n', "commands.toml: [hug] cooldown: must be a number", ""),
    ('[hug]\nreply = "x"\ncooldown = nan\n', "commands.toml: [hug] cooldown: must be a number", ""),
    # unknown field
    ('[hug]\nreply = "x"\ncooldwon = 5\n', "commands.toml: [hug] cooldwon: unknown field", "reply, aliases, role"),
    ('[hug]\nreply = "x"\n[hug.extra]\nreply = "y"\n', "commands.toml: [hug] extra: unknown field", ""),
    # names that cannot be typed
    ('["my hug"]\nreply = "x"\n', "commands.toml: [my hug]: 'my hug' cannot be typed as a command", ""),
    ('[hug]\nreply = "x"\naliases = [""]\n', "commands.toml: [hug] aliases: '' cannot be typed", ""),
    # built-in clashes, by name and by alias, in any case
    ('[help]\nreply = "x"\n', "commands.toml: [help]: 'help' is the built-in command; choose another name", ""),
    ('[Version]\nreply = "x"\n', "commands.toml: [Version]: 'version' is the built-in command", ""),
    ('[commands]\nreply = "x"\n', "commands.toml: [commands]: 'commands' is an alias of the built-in command 'help'", ""),
    ('[hug]\nreply = "x"\naliases = ["reload"]\n', "commands.toml: [hug] aliases: 'reload' is the built-in command", ""),
    ('[hug]\nreply = "x"\naliases = ["Commands"]\n', "commands.toml: [hug] aliases: 'commands' is an alias of the built-in", ""),
    # clashes between custom commands
    ('[discord]\nreply = "x"\naliases = ["dc"]\n[dc]\nreply = "y"\n',
     "commands.toml: [dc]: 'dc' is already used by [discord]; choose another name", ""),
    ('[a]\nreply = "x"\naliases = ["same"]\n[b]\nreply = "y"\naliases = ["same"]\n',
     "commands.toml: [b] aliases: 'same' is already used by [a]", ""),
    ('[hug]\nreply = "x"\n[HUG]\nreply = "y"\n', "commands.toml: [HUG]: 'hug' is already used by [hug]", ""),
    ('[hug]\nreply = "x"\naliases = ["hug"]\n', "commands.toml: [hug] aliases: 'hug' is already used by [hug]", ""),
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
        read_commands(path, False, builtin_table(), CountStore(tmp_path / "state.sqlite3"))


def test_required_file_missing(tmp_path):
    with pytest.raises(CommandsFileError, match=r"missing\.toml: no such file \(VBOT_COMMANDS_FILE\)"):
        read_commands(tmp_path / "missing.toml", True, builtin_table(), CountStore(tmp_path / "state.sqlite3"))


def test_default_file_missing_means_builtins_only(tmp_path):
    table = load_table(tmp_path / "commands.toml", False, builtin_table(), CountStore(tmp_path / "state.sqlite3"))
    assert [entry.name for entry in table] == [entry.name for entry in builtin_table()]


def test_empty_file_is_fine(tmp_path):
    assert read_commands(write(tmp_path, ""), True, builtin_table(), CountStore(tmp_path / "s.sqlite3")) == []


def test_unusable_state_file_is_an_error_only_when_count_is_used(tmp_path):
    (tmp_path / "state.sqlite3").write_text("this is not a database, " * 100)
    store = CountStore(tmp_path / "state.sqlite3")
    assert read_commands(write(tmp_path, '[a]\nreply = "x"\n'), True, builtin_table(), store)
    with pytest.raises(StateError, match=r"VBOT_STATE_FILE=.*state\.sqlite3: cannot use it"):
        read_commands(write(tmp_path, '[a]\nreply = "{count}"\n'), True, builtin_table(), store)


@pytest.mark.parametrize(("text", "expected"), [
    ('[hug]\nreply = "x"\nrole = "admin"\n', "[hug] role: unknown role 'admin'"),
    ('[help]\nreply = "x"\n', "[help]: 'help' is the built-in command"),
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
    from pathlib import Path
    example = Path(__file__).resolve().parent.parent / "commands.example.toml"
    names = [entry.name for entry in read_commands(example, True, builtin_table(), CountStore(tmp_path / "s"))]
    assert {"discord", "socials", "rules", "hug"} <= set(names)


# --- reload ----------------------------------------------------------------------------------


def reloadable(tmp_path, text: str, required: bool = True):
    path = write(tmp_path, text)
    store = CountStore(tmp_path / "state.sqlite3")
    builtins = builtin_table()
    dispatcher = Dispatcher(load_table(path, required, builtins, store), "!")
    reloader = Reloader(dispatcher, builtins, path, required, store)
    return path, dispatcher, Host(reload=reloader)


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
    ('[discord]\nreply = "new"\n[help]\nreply = "x"\n', "commands.toml: [help]: 'help' is the built-in command"),
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
    assert "reloaded 2 custom command(s) from" in stderr


# --- {count} storage -----------------------------------------------------------------------------


def test_count_survives_a_restart(tmp_path):
    write(tmp_path, '[hydrate]\nreply = "Hydration check {count}"\n')
    env = {"VBOT_STATE_FILE": str(tmp_path / "counts.sqlite3")}
    first = run_vbot(env, "--console", input="!hydrate\n", cwd=tmp_path, timeout=20)
    second = run_vbot(env, "--console", input="!hydrate\n", cwd=tmp_path, timeout=20)
    assert (first.returncode, first.stdout) == (0, "vbot: Hydration check 1\n"), first.stderr
    assert (second.returncode, second.stdout) == (0, "vbot: Hydration check 2\n"), second.stderr


def test_count_store_two_instances(tmp_path):
    with CountStore(tmp_path / "s.sqlite3") as first:
        assert [first.increment("a"), first.increment("a"), first.increment("b")] == [1, 2, 1]
    with CountStore(tmp_path / "s.sqlite3") as second, CountStore(tmp_path / "s.sqlite3") as third:
        assert second.increment("a") == 3
        assert third.increment("a") == 4
        assert (second.get("a"), second.get("b"), second.get("never")) == (4, 1, 0)


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
