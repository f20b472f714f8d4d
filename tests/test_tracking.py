"""The lean membership tracking and handler dispatch that the benchmark (bench/) asked for:
they must behave like the library's IRCDict, Channel and Reactor."""

from __future__ import annotations

import irc.client

from tests.support import make_config
from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.dispatch import Dispatcher
from vbot.irclib import GuardedReactor


def feed(bot: VBot, *lines: str) -> None:
    """Run server lines through the bot's real connection, as if read from the socket."""
    for line in lines:
        bot.connection._process_line(line)


def test_tracking_from_join_names_part_and_disconnect():
    bot = VBot(make_config(6667), Dispatcher(builtin_table()))
    connection = bot.connection
    connection.handlers, connection.real_server_name, connection.real_nickname = {}, "", "vbot"
    bot.joins.want("#test")  # as the welcome would: only a JOIN the bot asked for counts
    feed(bot, ":vbot!vbot@vbot.tmi.twitch.tv JOIN #test",
         ":vbot.tmi.twitch.tv 353 vbot = #test :vbot alice Bob",
         ":carol!carol@carol.tmi.twitch.tv JOIN #TEST",
         ":alice!alice@alice.tmi.twitch.tv PART #test",
         ":ghost!ghost@ghost.tmi.twitch.tv PART #test")
    assert set(bot.membership.members("#Test").nicks()) == {"vbot", "bob", "carol"}
    assert bot.viewer_count("#TEST") == 2
    connection._handle_event(irc.client.Event("disconnect", None, None, []))
    assert bot.channels == {} and bot.membership.members("#test") is None


def test_reactor_handlers_run_in_priority_order_and_see_later_additions():
    reactor = GuardedReactor()
    calls = []
    reactor.add_global_handler("join", lambda connection, event: calls.append("join 0"))
    reactor.add_global_handler("all_events", lambda connection, event: calls.append("all -5"), -5)
    event = irc.client.Event("join", None, "#test")
    reactor._handle_event(None, event)
    reactor.add_global_handler("join", lambda connection, event: calls.append("join -10"), -10)
    reactor._handle_event(None, event)
    assert calls == ["all -5", "join 0", "join -10", "all -5", "join 0"]
    first = reactor.handlers["join"][0].callback
    reactor.remove_global_handler("join", first)
    calls.clear()
    reactor._handle_event(None, event)
    assert calls == ["all -5", "join 0"]
