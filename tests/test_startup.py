"""Start-up imports only what the path in use needs (timed by ``python -m bench``, never here).

The token service's and Twitch API's code (vbot.auth, keeper, tokens, login, http, helix,
streamfacts, and with them json and concurrent.futures) loads only when a token is checked:
Twitch's host, a token file, or VBOT_AUTH_URL. The console's code loads only with
``--console``; argparse only for a command line with options; python-dotenv only for an env
file; vbot.custom and tomllib only for a commands file (or a reload); difflib only for a
mistyped setting; sqlite3 only when a ``{count}`` is read or written.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import PASSWORD, FakeClock, make_config
from vbot.cli import NO_ARGUMENTS, argument_parser, build_dispatcher
from vbot.custom import RELOAD_INTERVAL
from vbot.state import CountStore

LOADED_AT_EXIT = (
    "import atexit, gc, runpy, sys; "
    "atexit.register(lambda: print(gc.isenabled(), gc.get_freeze_count() > 0, *sorted(sys.modules), file=sys.stderr)); "
    "runpy.run_module('vbot', run_name='__main__', alter_sys=True)"
)
"""``python -m vbot`` that prints, when it exits, whether cyclic garbage is collected, whether
start-up's objects were frozen out of collections, and the names of every module it loaded."""
ON_DEMAND = ("vbot.auth", "vbot.keeper", "vbot.tokens", "vbot.login", "vbot.http", "vbot.helix", "vbot.streamfacts",
             "vbot.console", "vbot.custom", "argparse", "dotenv", "tomllib", "difflib", "json", "concurrent.futures",
             "sqlite3")


def run_until_exit(twitch, tmp_path, **settings: str) -> set[str]:
    """Start vbot on the scripted server, have the broadcaster say ``!exit``; the modules it loaded."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("VBOT_")}
    env.update(VBOT_USERNAME="vbot", VBOT_TOKEN=PASSWORD, VBOT_CHANNEL="test", VBOT_HOST="127.0.0.1",
               VBOT_PORT=str(twitch.port), VBOT_TLS="false", VBOT_STATE_FILE=str(tmp_path / "state.sqlite3"),
               **settings)
    process = subprocess.Popen([sys.executable, "-c", LOADED_AT_EXIT], env=env, cwd=tmp_path, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        twitch.wait_for(r"^JOIN #test$", timeout=15)
        twitch.chat("#test", "alice", "!version")
        twitch.wait_for(r"^PRIVMSG #test :Version: ")
        twitch.chat("#test", "test", "!exit")  # the broadcaster of #test
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    collected, frozen, *modules = stderr.splitlines()[-1].split()
    assert (collected, frozen) == ("True", "True")  # collection is off during start-up only (vbot.cli.started)
    return set(modules)


def test_a_plain_start_loads_no_token_console_or_option_code(twitch, tmp_path):
    loaded = run_until_exit(twitch, tmp_path)
    assert "vbot.bot" in loaded and "vbot.chatline" in loaded
    assert not loaded.intersection(ON_DEMAND)


def test_an_env_file_a_commands_file_and_a_typo_load_their_readers(twitch, tmp_path):
    (tmp_path / ".env").write_text("VBOT_PREFIX=!\n")
    (tmp_path / "commands.toml").write_text('[hi]\nreply = "hello"\n')
    loaded = run_until_exit(twitch, tmp_path, VBOT_CHANEL="typo")
    assert {"dotenv", "vbot.custom", "tomllib", "difflib"} <= loaded
    assert not loaded.intersection({"vbot.auth", "vbot.keeper", "vbot.tokens", "vbot.console", "argparse"})


def test_no_arguments_are_what_the_parser_gives_for_none():
    parser, _ = argument_parser()
    assert vars(parser.parse_args([])) == NO_ARGUMENTS


def test_without_a_commands_file_the_first_reload_reads_one_created_since(tmp_path):
    path = tmp_path / "commands.toml"
    config = make_config(6667, commands_file=path, state_file=tmp_path / "state.sqlite3")
    clock = FakeClock()
    dispatcher, timers, reload = build_dispatcher(config, CountStore(config.state_file), clock)
    assert reload() == "Reloaded: no commands.toml, built-in commands only."
    path.write_text('[hi]\nreply = "hello"\n\n[timers.water]\nmessages = ["drink"]\ninterval = 600\n')
    assert reload() == "Last reload 0 s ago; try again in 5 s."  # the same Reloader: at most one reload per 5 s
    clock.advance(RELOAD_INTERVAL)
    assert reload().startswith("Reloaded 1 custom command")
    assert dispatcher.table.find("hi") is not None and [timer.name for timer in timers.timers] == ["water"]
