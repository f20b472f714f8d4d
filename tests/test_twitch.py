"""The bot against a scripted server that answers like Twitch chat (lines from Twitch's docs)."""

from __future__ import annotations

import logging
import re
import threading

import pytest

from tests.support import TOKEN, BotHarness, BotThread, ScriptedServer, make_config, run_vbot, wait_until
from vbot import __version__
from vbot.chat import Role
from vbot.commands import builtin_table
from vbot.config import load_config
from vbot.dispatch import DEFAULT_COOLDOWN, CommandTable, Dispatcher, command
from vbot.outbox import INVISIBLE_SUFFIX

CHANNEL = "#test"
MOD = "badges=moderator/1;mod=1;subscriber=0"
PLEB = "badges=;mod=0;subscriber=0"
# Verbatim from Twitch's "IRC Concepts" docs (copied from ../shared/twitch-irc.md), text excepted.
LOVINGT3S = ("@badge-info=;badges=broadcaster/1;client-nonce=459e3142897c7a22b7d275178f2259e0;color=#0000FF;"
             "display-name=lovingt3s;emote-only=1;emotes=62835:0-10;first-msg=0;flags=;"
             "id=885196de-cb67-427a-baa8-82f9b0fcd05f;mod=0;room-id=713936733;subscriber=0;"
             "tmi-sent-ts=1643904084794;turbo=0;user-id=713936733;user-type= "
             ":lovingt3s!lovingt3s@lovingt3s.tmi.twitch.tv PRIVMSG #lovingt3s :{text}")


# --- test commands ----------------------------------------------------------------------------


@command("whoami", cooldown=0, user_cooldown=0)
def whoami(ctx):
    """``<login> is <role>``: shows the role the bot derived from the tags."""
    return f"{ctx.message.login} is {ctx.role.label}"


@command("echo", cooldown=0, user_cooldown=0)
def echo(ctx):
    """Reply with the arguments: a sentinel whose reply proves all earlier lines were handled."""
    return ctx.args or None


@command("vipzone", role=Role.VIP, cooldown=0, user_cooldown=0)
def vipzone(ctx):
    """A command for VIPs and up."""
    return f"vip zone: {ctx.message.login}"


@command("subzone", role=Role.SUBSCRIBER, cooldown=0, user_cooldown=0)
def subzone(ctx):
    """A command for subscribers and up."""
    return f"sub zone: {ctx.message.login}"


def twitch_dispatcher(prefix: str = "!", owners=()) -> Dispatcher:
    """The built-in commands plus whoami, echo, vipzone, subzone and a ``tick`` counter with default cooldowns."""
    runs = []

    @command("tick")
    def tick(ctx):
        runs.append(ctx.message.login)
        return f"tick {len(runs)}"

    extra = (whoami, echo, vipzone, subzone, tick)
    return Dispatcher(CommandTable([*builtin_table(), *(f.vbot_command for f in extra)]), prefix, owners)


# --- fixtures and helpers --------------------------------------------------------------------------


@pytest.fixture
def start_bot(twitch):
    """Start a BotThread on the scripted server; returns once every channel's ROOMSTATE was handled."""
    bots: list[BotThread] = []

    def start(config=None, dispatcher=None) -> BotThread:
        config = config or make_config(twitch.port)
        bot = BotThread(config, dispatcher or twitch_dispatcher(config.prefix, config.owners))
        rooms: set[str] = set()
        bot.bot.connection.add_global_handler("roomstate", lambda connection, event: rooms.add(event.target))
        bots.append(bot.start())
        wait_until(lambda: rooms >= set(config.channels), message="ROOMSTATE for every channel")
        return bot

    yield start
    for bot in bots:
        bot.stop()


def sent(twitch: ScriptedServer, start: int = 0) -> list[str]:
    """Lines the bot sent from index ``start`` on, PINGs left out."""
    return [line for line in twitch.received[start:] if not line.startswith("PING")]


def ask(twitch: ScriptedServer, login: str, text: str, tags: str = PLEB, channel: str = CHANNEL) -> str:
    """Send ``text`` as ``login`` and return the text of the bot's next message to ``channel``."""
    start = len(twitch.received)
    twitch.chat(channel, login, text, tags)
    line = twitch.wait_for(rf"^PRIVMSG {re.escape(channel)} :", start=start)
    return line.split(" :", 1)[1]


def replies_to(twitch: ScriptedServer, login: str, texts: list[str], tags: str = PLEB) -> list[str]:
    """Send ``texts`` as ``login``, then a sentinel; the bot's replies to ``texts`` (maybe none)."""
    start = len(twitch.received)
    for text in texts:
        twitch.chat(CHANNEL, login, text, tags)
    twitch.chat(CHANNEL, "sentinel", f"!echo done {start}", MOD)
    twitch.wait_for(rf"^PRIVMSG {CHANNEL} :done {start}$", start=start)
    replies = [line.split(" :", 1)[1] for line in sent(twitch, start) if line.startswith("PRIVMSG ")]
    assert replies[-1] == f"done {start}"
    return replies[:-1]


# --- what the bot sends ------------------------------------------------------------------------------


def test_first_lines_and_lowercase_join(twitch, start_bot):
    config = load_config({"VBOT_USERNAME": "VBot", "VBOT_TOKEN": f"oauth:{TOKEN}", "VBOT_CHANNEL": "#MyChannel, Second",
                          "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(twitch.port), "VBOT_TLS": "false"})
    bot = start_bot(config)
    assert twitch.received[:4] == [
        "CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
        f"PASS oauth:{TOKEN}",
        "NICK vbot",
        "USER vbot 0 * :vbot",
    ]
    assert [line for line in sent(twitch) if line.startswith("JOIN")] == ["JOIN #mychannel", "JOIN #second"]
    assert bot.bot.viewer_count("#mychannel") == 0  # the bot itself is not counted
    assert ask(twitch, "pleb", "!version", channel="#mychannel") == f"Version: {__version__}"
    assert not [line for line in sent(twitch) if re.match(r"^\S+ vbot\b", line, re.IGNORECASE)
                and not line.startswith(("NICK", "USER"))]  # nothing is ever sent to its own nick


def test_password_is_sent_once_as_configured(twitch, start_bot):
    """Off Twitch's host (here: loopback) VBOT_TOKEN is the password as given; see test_config for
    the ``oauth:`` vbot adds on Twitch's host."""
    start_bot(make_config(twitch.port, token=f"oauth:{TOKEN}"))
    assert [line for line in twitch.received if line.startswith("PASS")] == [f"PASS oauth:{TOKEN}"]


# --- tags to roles, end to end -------------------------------------------------------------------------


@pytest.mark.parametrize("login, tags, role", [
    ("streamer", "badges=broadcaster/1;mod=0;room-id=1;user-id=1", "broadcaster"),
    ("test", "badges=;mod=0", "broadcaster"),                           # login equals the channel
    ("renamed", "badges=;mod=0;room-id=42;user-id=42", "broadcaster"),  # user-id equals room-id
    ("modder", "badges=moderator/1;mod=1;subscriber=0", "moderator"),
    ("modder2", "mod=1", "moderator"),
    ("vippy", "badges=vip/1;mod=0;vip=1", "vip"),
    ("vippy2", "badges=vip/1;mod=0", "vip"),
    ("subby", "badges=subscriber/12;mod=0;subscriber=1", "subscriber"),
    ("founder", "badges=founder/0;mod=0;subscriber=0", "subscriber"),
    ("pleb", PLEB, "everyone"),
    ("untagged", "", "everyone"),
])
def test_roles_from_tags(twitch, start_bot, login, tags, role):
    start_bot()
    assert ask(twitch, login, "!whoami", tags) == f"{login} is {role}"


def test_twitch_doc_sample_broadcaster(twitch, start_bot):
    start_bot(make_config(twitch.port, channels=("#lovingt3s",)))
    start = len(twitch.received)
    twitch.send(LOVINGT3S.format(text="!whoami"))
    assert twitch.wait_for(r"^PRIVMSG #lovingt3s :", start=start) == "PRIVMSG #lovingt3s :lovingt3s is broadcaster"


def test_role_gated_commands(twitch, start_bot):
    start_bot()
    assert replies_to(twitch, "pleb", ["!vipzone", "!subzone"]) == []
    assert replies_to(twitch, "subby", ["!vipzone", "!subzone"], "badges=founder/0;subscriber=0") == ["sub zone: subby"]
    assert replies_to(twitch, "vippy", ["!vipzone"], "badges=vip/1;vip=1") == ["vip zone: vippy"]
    assert replies_to(twitch, "modder", ["!vipzone"], MOD) == ["vip zone: modder"]


def test_moderators_bypass_cooldowns(twitch, start_bot):
    start_bot()
    assert replies_to(twitch, "modder", ["!tick", "!tick", "!tick"], MOD) == ["tick 1", "tick 2", "tick 3"]
    assert replies_to(twitch, "vippy", ["!tick", "!tick"], "badges=vip/1;vip=1") == ["tick 4"]
    assert replies_to(twitch, "pleb", ["!tick"]) == []  # the channel cooldown is running
    assert replies_to(twitch, "modder", ["!tick"], MOD) == ["tick 5"]
    assert replies_to(twitch, "streamer", ["!tick"], "badges=broadcaster/1") == ["tick 6"]


def test_a_second_chatter_is_answered_once_the_channel_cooldown_is_over():
    """README, Commands: within the 3 s channel cooldown the answer already in chat serves
    everyone who asked; after it, the same answer goes out again, made to differ from the
    previous one so that Twitch does not drop it as a duplicate (msg_duplicate)."""
    harness = BotHarness().welcome()
    harness.sent()
    version = f"PRIVMSG {CHANNEL} :Version: {__version__}"
    harness.say("alice", "!version")
    harness.say("bob", "!version")
    harness.advance(DEFAULT_COOLDOWN - 0.1)
    harness.say("carol", "!version")
    assert harness.replies() == [version]
    harness.advance(0.1)
    harness.say("dave", "!version")
    assert harness.replies() == [version + INVISIBLE_SUFFIX]


def test_help_depends_on_role(twitch, start_bot):
    start_bot()
    # one chatter below moderator only: !help has the default 3 s channel cooldown
    for login, tags, shown, hidden in [
        ("subby", "badges=subscriber/3;subscriber=1", ["!version", "!subzone"], ["!reload", "!vipzone", "!exit"]),
        ("modder", MOD, ["!reload", "!botstatus", "!vipzone"], ["!exit"]),
        ("streamer", "badges=broadcaster/1", ["!reload", "!exit", "!tick"], []),
    ]:
        listed = ask(twitch, login, "!commands" if login == "modder" else "!help", tags).split(", ")
        assert all(name in listed or f"Commands: {name}" in listed for name in shown), (login, listed)
        assert not any(name in listed for name in hidden), (login, listed)


def test_broadcaster_exit_works_others_refused(twitch, start_bot):
    bot = start_bot()
    assert replies_to(twitch, "modder", ["!exit"], MOD) == []
    assert replies_to(twitch, "vippy", ["!exit"], "badges=vip/1;vip=1") == []
    assert replies_to(twitch, "subby", ["!exit"], "badges=subscriber/1;subscriber=1") == []
    assert bot.thread.is_alive() and bot.bot.exit_code is None
    twitch.chat(CHANNEL, "streamer", "!exit", "badges=broadcaster/1;mod=0;room-id=1;user-id=1")
    bot.thread.join(10)
    assert bot.exit_code == 0
    twitch.wait_for(r"^QUIT\b")
    assert twitch.connections == 1


def test_owner_exit_works(twitch, start_bot):
    bot = start_bot(make_config(twitch.port, owners=frozenset({"boss"})))
    twitch.chat(CHANNEL, "boss", "!exit", PLEB)
    bot.thread.join(10)
    assert bot.exit_code == 0
    twitch.wait_for(r"^QUIT\b")


# --- login failure -----------------------------------------------------------------------------------


def test_login_failure_exits_3_after_one_attempt(tmp_path):
    server = ScriptedServer(token="a-different-token").start()
    try:
        result = run_vbot({"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{TOKEN}", "VBOT_CHANNEL": "test",
                           "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(server.port), "VBOT_TLS": "false"},
                          cwd=tmp_path, timeout=20)
    finally:
        server.stop()
    assert result.returncode == 3, result.stderr
    assert server.connections == 1
    assert f"PASS oauth:{TOKEN}" in server.received
    told = [line for line in result.stderr.splitlines() if "VBOT_TOKEN" in line]
    assert len(told) == 1, result.stderr
    assert "Login authentication failed" in told[0]
    assert TOKEN not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("notice", ["Login authentication failed", "Login unsuccessful", "Improperly formatted auth"])
def test_every_login_failure_notice_stops_without_reconnecting(notice, caplog):
    harness = BotHarness()
    harness.feed(f":tmi.twitch.tv NOTICE * :{notice}")
    assert harness.bot.exit_code == 3
    assert any("VBOT_TOKEN" in record.getMessage() and notice in record.getMessage()
               for record in caplog.records if record.levelno == logging.ERROR)


@pytest.mark.parametrize("line", [
    ":mallory!mallory@mallory.tmi.twitch.tv NOTICE vbot :Login authentication failed",  # a chatter, before the welcome
    "WELCOMED :tmi.twitch.tv NOTICE * :Login authentication failed",                     # the server, after it
    "WELCOMED :mallory!m@host NOTICE vbot :Login unsuccessful",
])
def test_only_the_server_can_end_the_login_and_only_before_the_welcome(line):
    """Issue 9 item 10: a chatter's NOTICE reading like a login failure is an ordinary notice."""
    harness = BotHarness()
    if line.startswith("WELCOMED "):
        harness.welcome()
        line = line.removeprefix("WELCOMED ")
    harness.feed(line)
    assert harness.bot.exit_code is None
    harness.welcome()
    harness.say("alice", "!version")
    assert harness.replies()


def test_other_notices_do_not_stop_the_bot(twitch, start_bot):
    bot = start_bot()
    twitch.send(":tmi.twitch.tv NOTICE * :Something else happened")
    twitch.send("@msg-id=msg_duplicate :tmi.twitch.tv NOTICE #test :Your message was not sent because it is identical")
    assert replies_to(twitch, "pleb", []) == []
    assert bot.bot.exit_code is None


# --- input that must not hurt ------------------------------------------------------------------------


def test_invalid_utf8_then_version(twitch, start_bot):
    start_bot()
    twitch.send(b"\xff\xfe\xfd")
    twitch.send(b"@badges=;mod=0 :pleb!pleb@pleb.tmi.twitch.tv PRIVMSG #test :caf\xe9 \xc3\x28 \xed\xa0\x80")
    twitch.send(b"@display-name=\xe9\xff;badges= :pleb!pleb@pleb.tmi.twitch.tv PRIVMSG #test :!echo \xff\xfe ok")
    start = len(twitch.received)
    twitch.chat(CHANNEL, "pleb", "!version", PLEB)
    twitch.wait_for(rf"^PRIVMSG {CHANNEL} :Version: ", start=start)
    assert [line for line in twitch.received if line.startswith("PRIVMSG")][-2:] == [
        "PRIVMSG #test :ÿþ ok", f"PRIVMSG #test :Version: {__version__}"]


def edge(name, lines, viewers):
    """One membership/parsing edge case: raw ``lines`` to send, then the expected viewer count."""
    return pytest.param(lines, viewers, id=name)


def user(nick: str) -> str:
    """A Twitch IRC prefix for ``nick``."""
    return f":{nick}!{nick}@{nick}.tmi.twitch.tv"


@pytest.mark.parametrize("lines, viewers", [
    edge("part-of-someone-never-seen", [f"{user('ghost')} PART #test"], 0),
    edge("other-channel", [
        f"{user('bar')} JOIN #elsewhere",
        f"{user('bar')} PART #elsewhere",
        f"{user('ghost')} PART #elsewhere",
        ":vbot.tmi.twitch.tv 353 vbot = #elsewhere :a b c",
        ":vbot.tmi.twitch.tv 366 vbot #elsewhere :End of /NAMES list",
        f"{user('moddy')} KICK #elsewhere bar :bye",
        ":tmi.twitch.tv MODE #elsewhere +o bar",
        f"{user('bar')} JOIN #test",
    ], 1),
    edge("duplicate-joins", [f"{user('bar')} JOIN #test", f"{user('bar')} JOIN #test",
                             ":vbot.tmi.twitch.tv 353 vbot = #test :vbot bar",
                             ":vbot.tmi.twitch.tv 366 vbot #test :End of /NAMES list"], 1),
    edge("own-duplicate-join", [f"{user('bar')} JOIN #test", f"{user('baz')} JOIN #test",
                                f"{user('vbot')} JOIN #test"], 2),
    edge("join-part-without-channel", [f"{user('bar')} JOIN", f"{user('bar')} PART", f"{user('bar')} JOIN :",
                                       f"{user('bar')} PART :", "JOIN #test", "PART #test"], 0),
    edge("ctcp-dcc", [
        f"{user('bar')} PRIVMSG #test :\x01DCC SEND x\x01",
        f"{user('bar')} PRIVMSG #test :\x01DCC\x01",
        f"{user('bar')} PRIVMSG vbot :\x01DCC SEND x 2130706433 1 1\x01",
        f"{user('bar')} PRIVMSG vbot :\x01DCC\x01",
        f"{user('bar')} PRIVMSG vbot :\x01DCC CHAT\x01",
        f"{user('bar')} PRIVMSG #test :\x01VERSION\x01",
        f"{user('bar')} PRIVMSG #test :\x01PING 123\x01",
        f"{user('bar')} PRIVMSG #test :\x01ACTION !version\x01",
        f"{user('bar')} PRIVMSG #test :\x01",
    ], 0),
    edge("privmsg-without-text", [f"{user('bar')} PRIVMSG #test", f"{user('bar')} PRIVMSG #test :",
                                  f"{user('bar')} PRIVMSG", f"{user('bar')} PRIVMSG vbot :"], 0),
    edge("lines-that-do-not-parse", ["@tagsonly", ":prefixonly", "@a=b :prefix", "@", ":", "  ", "",
                                     "@badges=broadcaster/1 ", "\x00\x01\x02"], 0),
    edge("names-quit-and-kick", [
        ":vbot.tmi.twitch.tv 353 vbot = #test :vbot bar baz qux",
        ":vbot.tmi.twitch.tv 353 vbot = #test :quux",
        ":vbot.tmi.twitch.tv 366 vbot #test :End of /NAMES list",
        f"{user('baz')} QUIT :gone",
        f"{user('moddy')} KICK #test qux :bye",
        f"{user('moddy')} KICK #test",
        f"{user('ghost')} QUIT",
    ], 2),
])
def test_edge_cases_are_harmless(twitch, start_bot, caplog, lines, viewers):
    bot = start_bot()
    start = len(twitch.received)
    for line in lines:
        twitch.send(line)
    assert replies_to(twitch, "pleb", ["!version"]) == [f"Version: {__version__}"]
    assert bot.bot.viewer_count(CHANNEL) == viewers
    assert CHANNEL in bot.bot.channels and "#elsewhere" not in bot.bot.channels
    assert bot.bot.viewer_count("#elsewhere") == 0
    assert [line for line in sent(twitch, start) if not line.startswith("PRIVMSG #test :")] == []
    assert not [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def test_count_is_per_channel_and_replies_go_where_the_command_came_from(twitch, start_bot):
    bot = start_bot(make_config(twitch.port, channels=("#one", "#two")))
    for nick, channel in [("bar", "#one"), ("baz", "#one"), ("bar", "#two")]:
        twitch.send(f"{user(nick)} JOIN {channel}")
    start = len(twitch.received)
    twitch.chat("#two", "pleb", "!count_viewers", PLEB)
    twitch.chat("#one", "pleb", "!count_viewers", PLEB)
    twitch.wait_for(r"^PRIVMSG #one :", start=start)
    assert [line for line in sent(twitch, start)] == ["PRIVMSG #two :Viewer count: 1", "PRIVMSG #one :Viewer count: 2"]
    assert (bot.bot.viewer_count("#one"), bot.bot.viewer_count("#two"), bot.bot.viewer_count("#three")) == (2, 1, 0)


def test_count_is_rebuilt_after_a_reconnect(twitch, start_bot):
    bot = start_bot()
    twitch.send(f"{user('bar')} JOIN #test")
    twitch.send(f"{user('baz')} JOIN #test")
    assert replies_to(twitch, "pleb", ["!count_viewers"]) == ["Viewer count: 2"]
    rooms = threading.Event()
    bot.bot.connection.add_global_handler("roomstate", lambda connection, event: rooms.set())
    twitch.drop()
    assert rooms.wait(10), "no ROOMSTATE after the reconnect"
    assert twitch.connections == 2
    assert [line for line in twitch.received if line.startswith(("CAP", "PASS", "NICK", "JOIN"))] == [
        "CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands", f"PASS oauth:{TOKEN}", "NICK vbot",
        "JOIN #test"] * 2
    assert bot.bot.viewer_count(CHANNEL) == 0
    assert replies_to(twitch, "modder", ["!count_viewers"], MOD) == ["Viewer count: 0"]


def test_commands_in_a_channel_the_bot_is_not_in_are_ignored(twitch, start_bot):
    start_bot()
    start = len(twitch.received)
    twitch.chat("#elsewhere", "pleb", "!version", PLEB)
    assert replies_to(twitch, "pleb", ["!count_viewers"]) == ["Viewer count: 0"]
    assert not [line for line in sent(twitch, start) if line.startswith("PRIVMSG #elsewhere")]
