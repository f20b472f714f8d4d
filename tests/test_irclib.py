"""The contract with the ``irc`` library: every library method vbot overrides, replaces,
copies, reproduces or relies on inside ``vbot/irclib.py``, ``vbot/chatline.py`` and
``vbot/bot.py``, with a digest of its source as vbot was written for it (irc 20.5.0). An
upgrade that changes one fails here, naming the method to re-read before updating its digest."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import re

import pytest

WRITTEN_FOR = {
    "irc.client.ServerConnection.connect": "cd2264662916a5a3",
    "irc.client.ServerConnection.disconnect": "3d8c11315836375e",
    "irc.client.ServerConnection.process_data": "ce2210937e73dbc9",
    "irc.client.ServerConnection._process_line": "d95d2157d4759f34",
    "irc.client.ServerConnection._handle_other": "ac15a3aa21963186",
    "irc.client.ServerConnection.send_raw": "7b835cfa08145cde",
    "irc.client.ServerConnection.pong": "8b19478ca481df6a",
    "irc.client.Reactor.__init__": "04aa3a7ff7cfffd7",
    "irc.client.Reactor.process_once": "2164b96202e1936e",
    "irc.client.Reactor.add_global_handler": "0dd018fab2aadb94",
    "irc.client.Reactor.remove_global_handler": "46730c55bab76033",
    "irc.client.Reactor._handle_event": "c87cbc144e361780",
    "irc.client.SimpleIRCClient.__init__": "fbfc278faa19925c",
    "irc.client.SimpleIRCClient._dispatcher": "a35c144f2d040420",
    "irc.schedule.DefaultScheduler.run": "33ae5bbd66af0690",
    "irc.bot.ServerSpec": "e81121cc750d989e",
    "irc.bot.SingleServerIRCBot.__init__": "45f80df2524aa39f",
    "irc.bot.SingleServerIRCBot._on_disconnect": "0b075fa3b4b18e23",
    "irc.bot.SingleServerIRCBot._on_join": "383c79d0b592f5c2",
    "irc.bot.SingleServerIRCBot._on_kick": "61aabc1c1b020b0d",
    "irc.bot.SingleServerIRCBot._on_mode": "1717252306f3627f",
    "irc.bot.SingleServerIRCBot._on_namreply": "fd356bc9e88c29ef",
    "irc.bot.SingleServerIRCBot._on_nick": "a5397b7388aae65b",
    "irc.bot.SingleServerIRCBot._on_part": "aa2cfb3774b22053",
    "irc.bot.SingleServerIRCBot._on_quit": "fb54e5ffd4dbd8a6",
    # What vbot.chatline's fast path reproduces (tests/test_chatline.py compares them line by line):
    "irc.client._rfc_1459_command_regexp": "9b81f454fa51e878",
    "irc.client.ServerConnection._handle_message": "cfa3e3fd14ccf911",
    "irc.client.NickMask": "8f0e77b895ebade2",
    "irc.client.is_channel": "daa2ddc103bcf6d5",
    "irc.events.Command.lookup": "eb06658d0fd8a6fb",
    "irc.message.Tag": "a6af78254d552db2",
    "irc.message.Arguments": "b0b1c6816c7596c7",
    "irc.ctcp.dequote": "d6f622518e4e4094",
    "irc.ctcp._gen_messages": "99ca0d20e7c70cec",
}


def resolve(dotted: str) -> object:
    """``"irc.client.Reactor.process_once"`` -> that function (module path, then attributes)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            found = getattr(found, attribute)
        return found
    raise LookupError(dotted)


def digest(dotted: str) -> str:
    """Of a function's or class's source, or of a compiled regular expression's pattern."""
    found = resolve(dotted)
    source = found.pattern if isinstance(found, re.Pattern) else inspect.getsource(found)  # type: ignore[arg-type]
    return hashlib.sha256(source.encode()).hexdigest()[:16]


@pytest.mark.parametrize("dotted", sorted(WRITTEN_FOR))
def test_library_code_vbot_depends_on_is_unchanged(dotted):
    assert digest(dotted) == WRITTEN_FOR[dotted], (
        f"{dotted} changed in this version of irc: re-read it against vbot/irclib.py (and the bot's "
        f"handlers copied from it), then update its digest in this file")


def test_every_override_in_irclib_is_listed():
    """A method vbot's subclasses define over a library method must have its digest here."""
    from vbot import irclib

    listed = {name.rsplit(".", 1)[1] for name in WRITTEN_FOR}
    for cls in (irclib.TwitchConnection, irclib.GuardedReactor, irclib.GuardedScheduler):
        for name, value in vars(cls).items():
            overrides = any(hasattr(base, name) for base in cls.__mro__[1:])
            if inspect.isfunction(value) and overrides and name != "__init__":
                assert name in listed, f"{cls.__name__}.{name} overrides the library: add it to WRITTEN_FOR"


SERVER_COMMANDS = {"cap", "chghost", "reconnect", "userstate", "roomstate", "globaluserstate", "clearchat", "clearmsg",
                   "usernotice", "whisper"}
"""Commands the library does not name but passes on, lowercased, as the event type (IRCv3 CAP and
CHGHOST, Twitch's)."""


def test_every_on_method_of_the_bot_names_a_real_event():
    """A misspelt ``on_<event>`` would silently never run."""
    import irc.bot
    import irc.events

    from vbot.bot import VBot

    for name in vars(VBot):
        if name.startswith("on_"):
            event = name.removeprefix("on_")
            known = event in irc.events.all or event in SERVER_COMMANDS or event.isdigit()
            assert known or hasattr(irc.bot.SingleServerIRCBot, name), f"VBot.{name}: no event {event!r}"


def test_every_event_the_twitch_and_plain_irc_handlers_take_is_a_real_event():
    """vbot.twitch and vbot.plainirc register their handlers by event name: a misspelt one would never run."""
    import irc.events

    from tests.support import make_config
    from vbot.bot import VBot
    from vbot.commands import builtin_table
    from vbot.dispatch import Dispatcher

    bot = VBot(make_config(6667), Dispatcher(builtin_table()))
    for event in [*bot.twitch.events, *bot.plain.events]:
        assert event in irc.events.all or event in SERVER_COMMANDS or event.isdigit(), f"no event {event!r}"


def test_the_bot_keeps_the_librarys_server_list_with_the_password_set_before_each_connect():
    """VBot uses SingleServerIRCBot's server list (one ServerSpec); its repr never shows the password."""
    from tests.support import PASSWORD, BotHarness

    harness = BotHarness()
    server = harness.bot.servers.peek()
    assert (server.host, server.port, server.password) == ("127.0.0.1", 6667, PASSWORD)
    assert PASSWORD not in repr(server) and f"PASS {PASSWORD}" in harness.sent()
