"""vbot on a plain IRC server (not Twitch), end to end: issue 12's cases.

Each case runs against a real server: ``real_ircd()`` (ngircd, or miniircd where ngircd is
missing) for what every server does, ``Ngircd(...)`` with the options the case needs for what
only ngircd has (marked ``needs_ngircd``), or, for what ngircd cannot do either (custom prefixes
and CHANMODES, 417), ``PlainIrcServer``;
pacing and giving up run in-process (``BotHarness``, fake clock). Every test checks
what chatters see and what the log says.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import socket

import pytest

from tests.support import (
    BotHarness,
    BotThread,
    IrcClient,
    IrcServer,
    Ngircd,
    PlainIrcServer,
    make_config,
    needs_ngircd,
    real_ircd,
    registered_client,
    wait_until,
)
from vbot.chat import Role
from vbot.commands import builtin_table
from vbot.config import Config, load_config
from vbot.dispatch import CommandTable, Dispatcher, command
from vbot.joins import REFUSED_GIVE_UP
from vbot.outbox import Limits, Outbox
from vbot.session import Backoff

CHANNEL = "#test"
OPERATOR = ("boss", "bosspw")
CUSTOM_ISUPPORT = "PREFIX=(qaohv)~&@%+ CHANMODES=beI,kfL,lj,imnpstz"
"""Founder ``~``, admin ``&``, halfop ``%``; ``f`` and ``L`` take an argument even when
unset (type B), ``j`` only when set (type C), ``z`` never: RFC 1459's defaults would
read all four wrongly."""
LONG_TEXT = {"ascii": "x" * 490, "utf8": "é" * 490}
"""Replies longer than one IRC line once relayed (490 characters, 490 or 980 bytes)."""
PROBE = itertools.count(1)


@command("vip", role=Role.VIP, cooldown=0, user_cooldown=0)
def vip(ctx) -> str:
    """For VIPs and up: its reply shows that the bot counts the sender as VIP."""
    return f"vip ok {ctx.message.login} {ctx.args}"


@command("ping", cooldown=0, user_cooldown=0)
def ping(ctx) -> str:
    """For everyone: a reply that marks the end of a probe."""
    return f"pong {ctx.message.login} {ctx.args}"


@command("long", cooldown=0, user_cooldown=0)
def long(ctx) -> str:
    """A reply too long for one line: ``!long ascii`` or ``!long utf8``."""
    return LONG_TEXT[ctx.args.strip() or "ascii"]


def dispatcher(config: Config) -> Dispatcher:
    """The built-in commands (``!reload`` for moderators, ``!exit`` for the broadcaster) and the three above."""
    table = CommandTable([*builtin_table(), vip.vbot_command, ping.vbot_command, long.vbot_command])
    return Dispatcher(table, config.prefix, config.owners)


@pytest.fixture
def run_bot():
    """``run_bot(config)`` starts a BotThread with the commands above and no send pacing, so a
    probe's replies come at once; ``joined=True`` (default) waits until it is in #test."""
    bots: list[BotThread] = []

    def start(config: Config, joined: bool = True, **options) -> BotThread:
        unpaced = Limits(messages=10_000, channel_interval=0, duplicate_window=0, line_budget=math.inf)
        options.setdefault("outbox", Outbox(unpaced))
        bot = BotThread(config, dispatcher(config), **options).start()
        bots.append(bot)
        if joined:
            wait_until(lambda: bot.bot.membership.members(CHANNEL) is not None, message="the bot to join #test")
        return bot

    yield start
    for bot in bots:
        bot.stop()


@pytest.fixture
def clients():
    """``clients(server, nick, channel)``: registered clients, all closed after the test."""
    made: list[IrcClient] = []

    def make(server: IrcServer, nick: str, channel: str | None = CHANNEL, oper: bool = False) -> IrcClient:
        client = registered_client(server, nick, channel, oper)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def records(caplog, level: int, text: str = "") -> list[str]:
    """Messages of vbot's log records at exactly ``level`` that contain ``text``."""
    return [r.getMessage() for r in list(caplog.records)
            if r.levelno == level and r.name.startswith("vbot") and text in r.getMessage()]


def bot_texts(lines: list[str]) -> list[str]:
    """The texts of the bot's PRIVMSGs to #test among a client's received ``lines``."""
    return [line.split(" :", 1)[1] for line in lines if re.match(rf"^:vbot!\S+ PRIVMSG {CHANNEL} :", line)]


def role_from_replies(texts: list[str]) -> str:
    """What a probe's replies say: ``!reload`` answered → moderator, ``!vip`` → vip, else everyone."""
    if any("custom commands" in text for text in texts):
        return "moderator"
    if any(text.startswith("vip ok") for text in texts):
        return "vip"
    return "everyone"


def since_last_probe(texts: list[str], pong: str) -> list[str]:
    """The replies up to ``pong`` that came after the previous probe's ``pong``: a client
    reads the replies to other chatters' probes too, maybe only now."""
    texts = texts[: texts.index(pong)]
    earlier = [index for index, text in enumerate(texts) if text.startswith("pong ")]
    return texts[earlier[-1] + 1 :] if earlier else texts


def role_on_ngircd(client: IrcClient) -> str:
    """Send ``!reload`` (moderators and up), ``!vip`` (VIPs and up) and a closing ``!ping``
    as ``client``; the role the bot's answers show."""
    number = next(PROBE)
    start = client.say(CHANNEL, "!reload")
    client.say(CHANNEL, f"!vip {number}")
    client.say(CHANNEL, f"!ping {number}")
    client.wait_for_reply(CHANNEL, f"pong {client.nick} {number}$", start)
    return role_from_replies(since_last_probe(bot_texts(client.lines[start:]), f"pong {client.nick} {number}"))


def role_on_scripted(server: PlainIrcServer, nick: str) -> str:
    """``role_on_ngircd`` on a PlainIrcServer: the chatter's lines come from the server."""
    number = next(PROBE)
    start = len(server.received)
    for text in ("!reload", f"!vip {number}", f"!ping {number}"):
        server.send(f":{server.source(nick)} PRIVMSG {CHANNEL} :{text}")
    server.wait_for(rf"^PRIVMSG {CHANNEL} :pong {nick} {number}$", start=start)
    replies = [line.split(" :", 1)[1] for line in server.received[start:] if line.startswith(f"PRIVMSG {CHANNEL} :")]
    return role_from_replies(since_last_probe(replies, f"pong {nick} {number}"))


def plain_settings(port: int, **settings: str) -> dict[str, str]:
    """VBOT_* settings for a loopback plain IRC server, as a user writes them in .env."""
    return {"VBOT_USERNAME": "vbot", "VBOT_CHANNEL": CHANNEL, "VBOT_HOST": "127.0.0.1",
            "VBOT_PORT": str(port), "VBOT_TLS": "false", **settings}


# --- identity: a nick proves nothing ------------------------------------------------------------


def test_a_chatter_named_like_the_channel_is_not_the_broadcaster(servers, clients, run_bot, caplog):
    """Issue 12: anyone who took the nick ``test`` in ``#test`` could ``!exit`` the bot."""
    caplog.set_level(logging.DEBUG, logger="vbot.dispatch")
    server = servers(real_ircd())
    bot = run_bot(make_config(server.port, owners=frozenset({"boss"})))
    mallory = clients(server, "mallory")
    mallory.send("NICK test")
    mallory.wait_for(r"^:mallory!\S+ NICK :?test$")
    mallory.nick = "test"
    start = mallory.say(CHANNEL, "!exit")
    mallory.say(CHANNEL, "!ping after-exit")
    mallory.wait_for_reply(CHANNEL, "pong test after-exit$", start)
    assert bot.thread.is_alive() and bot.bot.exit_code is None
    assert records(caplog, logging.DEBUG, "test may not use 'exit' in #test")
    assert role_on_ngircd(mallory) == "everyone"

    boss = clients(server, "boss")  # VBOT_OWNERS still stops the bot
    boss.say(CHANNEL, "!exit")
    bot.thread.join(10)
    assert bot.exit_code == 0
    mallory.wait_for(r"^:vbot!\S+ QUIT ")


# --- roles from the server's prefixes -----------------------------------------------------------

NGIRCD_STEPS: list[tuple[str | None, dict[str, str]]] = [
    # (MODE line the IRC operator sends, roles every chatter has afterwards)
    ("+qaohv fiona adam olga hal val", {"fiona": "moderator", "adam": "moderator", "olga": "moderator",
                                        "hal": "moderator", "val": "vip", "pat": "everyone"}),
    ("-l+o pat", {"pat": "moderator"}),
    ("+l 50", {}),
    ("-l-o pat", {"pat": "everyone"}),  # issue 12: pat stayed a moderator
    ("+b-o *!*@banned.example olga", {"olga": "everyone"}),
    ("+ov pat hal", {"pat": "moderator", "hal": "moderator"}),
    ("-q+v fiona fiona", {"fiona": "vip"}),
    ("-ah adam hal", {"adam": "everyone", "hal": "vip"}),  # hal keeps the voice of "+ov"
]


@needs_ngircd("miniircd has no IRC operators and no channel modes but +k")
def test_roles_from_ngircds_prefixes_and_combined_mode_lines(servers, clients, run_bot, caplog):
    """Founder ~, admin &, op @, halfop % are moderators, voice + is VIP, on a real server;
    combined mode lines (-l+o, -l-o, +b-o, +ov) leave every role right."""
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(operator=OPERATOR, channels={CHANNEL: "+l 50"}))
    run_bot(make_config(server.port))
    chatters = {nick: clients(server, nick) for nick in ("fiona", "adam", "olga", "hal", "val", "pat")}
    boss = clients(server, "boss", oper=True)
    expected = dict.fromkeys(chatters, "everyone")
    assert {nick: role_on_ngircd(client) for nick, client in chatters.items()} == expected
    for mode_line, roles in NGIRCD_STEPS:
        start = len(chatters["pat"].lines)
        boss.send(f"MODE {CHANNEL} {mode_line}")
        echo = chatters["pat"].wait_for(rf"^:boss!\S+ MODE {CHANNEL} ", start=start)
        expected.update(roles)
        seen = {nick: role_on_ngircd(client) for nick, client in chatters.items()}
        assert seen == expected, f"after {echo!r}"
    assert not records(caplog, logging.WARNING)


SCRIPTED_STEPS: list[tuple[str, dict[str, str]]] = [
    ("-l+o pat", {"pat": "moderator"}),
    ("-l-o pat", {"pat": "everyone"}),
    ("+ov pat val", {"pat": "moderator", "val": "vip"}),
    ("+b-o *!*@x pat", {"pat": "everyone"}),
    ("+f-o 3:5 olga", {"olga": "everyone"}),        # f: type B, takes "3:5"
    ("-L+h #overflow pat", {"pat": "moderator"}),   # L: type B, takes an argument even when unset
    ("+j-h 3:5 pat", {"pat": "everyone"}),          # j: type C, takes one when set
    ("-j+v pat", {"pat": "vip"}),                   # ... and none when unset
    ("+z-v pat", {"pat": "everyone"}),              # z: type D, never
    ("+e-q *!*@y fiona", {"fiona": "everyone"}),    # e: type A, a list
    ("+I+a *!*@z pat", {"pat": "moderator"}),
    ("-a+v adam adam", {"adam": "vip"}),
    ("-h hal", {"hal": "everyone"}),
]


def test_roles_from_custom_prefixes_and_unusual_chanmodes(servers, run_bot, caplog):
    """A server's own PREFIX (~&@%+) and CHANMODES decide roles and how mode lines parse."""
    caplog.set_level(logging.INFO)
    server = servers(PlainIrcServer(isupport=CUSTOM_ISUPPORT, names="~fiona &adam @olga %hal +val pat"))
    run_bot(make_config(server.port, token=None))
    expected = {"fiona": "moderator", "adam": "moderator", "olga": "moderator", "hal": "moderator",
                "val": "vip", "pat": "everyone"}
    assert {nick: role_on_scripted(server, nick) for nick in expected} == expected
    for mode_line, roles in SCRIPTED_STEPS:
        server.mode(CHANNEL, mode_line)
        expected.update(roles)
        assert {nick: role_on_scripted(server, nick) for nick in expected} == expected, f"after {mode_line!r}"
    assert not records(caplog, logging.WARNING)


# --- password ------------------------------------------------------------------------------------


def test_server_without_password_gets_no_pass(servers, clients, run_bot, caplog):
    """VBOT_TOKEN unset: no PASS (ngircd without a password refuses any), and the bot joins."""
    caplog.set_level(logging.INFO)
    server = servers(real_ircd(token=None))
    config = load_config(plain_settings(server.port))
    assert config.password is None
    bot = run_bot(config)
    alice = clients(server, "alice")
    start = alice.say(CHANNEL, "!ping nopass")
    assert alice.wait_for_reply(CHANNEL, "pong alice nopass$", start)
    assert bot.bot.session.logins == 1
    assert records(caplog, logging.INFO, f"logged in to 127.0.0.1:{server.port} as vbot")
    assert not records(caplog, logging.WARNING)


def test_plain_server_password_is_sent_as_given(servers, clients, run_bot, caplog):
    """VBOT_TOKEN=plain on a server whose password is ``plain``: sent as is, no ``oauth:``."""
    caplog.set_level(logging.INFO)
    server = servers(real_ircd(password="plain"))
    config = load_config(plain_settings(server.port, VBOT_TOKEN="plain"))
    assert config.password == "plain"
    bot = run_bot(config)
    alice = clients(server, "alice")
    start = alice.say(CHANNEL, "!ping plain")
    assert alice.wait_for_reply(CHANNEL, "pong alice plain$", start)
    assert bot.bot.session.logins == 1
    assert not records(caplog, logging.WARNING)


@needs_ngircd("miniircd answers a wrong PASS with 464 and stays connected")
def test_wrong_password_gives_one_warning_with_the_servers_reason(servers, run_bot, caplog):
    """ngircd's ERROR, then its close: one line per attempt naming the reason, no "Connection reset"."""
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(password="plain"))
    config = load_config(plain_settings(server.port, VBOT_TOKEN="oauth:plain"))
    run_bot(config, joined=False)
    wait_until(lambda: len(records(caplog, logging.WARNING)) >= 3, message="three failed attempts")
    warnings = records(caplog, logging.WARNING)
    assert all(f"not connected to 127.0.0.1:{server.port}: server closed the connection: "
               "Access denied: Bad password?; next attempt in" in line for line in warnings), warnings
    assert not [line for line in records(caplog, logging.INFO) if "reset" in line.lower()]


# --- line length ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(LONG_TEXT))
def test_long_reply_relayed_by_ngircd_arrives_whole(servers, clients, run_bot, kind):
    """ngircd cuts a relayed line at 512 bytes (ending it with ``[CUT]``; miniircd relays it
    whole): vbot's reply leaves room for ``:vbot!~vbot@127.0.0.1 `` and arrives with its ``…``."""
    server = servers(real_ircd())
    run_bot(make_config(server.port))
    alice = clients(server, "alice")
    start = alice.say(CHANNEL, f"!long {kind}")
    text = alice.wait_for_reply(CHANNEL, ".*", start)
    line = next(line for line in alice.lines[start:] if " PRIVMSG " in line)
    assert len(line.encode()) + 2 <= 512
    assert text.endswith("…") and "[CUT]" not in line
    assert LONG_TEXT[kind].startswith(text[:-1])
    assert len(text.encode()) > 400  # cut to what fits, not to a fixed short length


@pytest.mark.parametrize("kind", sorted(LONG_TEXT))
@pytest.mark.parametrize("hidden_host", [None, "a-rather-long-cloak-given-after-welcome.users.vbot.example"])
def test_server_that_refuses_long_lines_gets_none_from_vbot(servers, run_bot, caplog, kind, hidden_host):
    """A server that answers 417 to a line over 512 bytes once relayed (as Ergo does) never
    refuses vbot's reply, with the client's host, or a longer one given by 396 after the welcome."""
    caplog.set_level(logging.INFO)
    server = servers(PlainIrcServer(relay_limit=512, hidden_host=hidden_host))
    run_bot(make_config(server.port, token=None))
    start = len(server.received)
    server.send(f":{server.source('alice')} PRIVMSG {CHANNEL} :!long {kind}")
    server.send(f":{server.source('alice')} PRIVMSG {CHANNEL} :!ping after")
    server.wait_for(rf"^PRIVMSG {CHANNEL} :pong alice after$", start=start)
    line = server.wait_for(rf"^PRIVMSG {CHANNEL} :", start=start)
    assert line.endswith("…")
    assert len(f":{server.source('vbot')} {line}\r\n".encode()) <= 512
    assert not records(caplog, logging.WARNING)


def test_host_changed_after_joining_leaves_more_room(servers, run_bot, caplog):
    """A 396 after the JOIN (services cloak the host once the nick is identified) moves the cut."""
    caplog.set_level(logging.INFO)
    server = servers(PlainIrcServer(relay_limit=512))
    run_bot(make_config(server.port, token=None))
    cloak = "a-rather-long-cloak-given-after-joining.users.vbot.example"
    server.host = cloak  # what the server puts in front of the bot's lines from now on
    server.send(f":irc.vbot.test 396 vbot {cloak} :is now your displayed host")
    start = len(server.received)
    server.send(f":{server.source('alice')} PRIVMSG {CHANNEL} :!long")
    server.send(f":{server.source('alice')} PRIVMSG {CHANNEL} :!ping after")
    server.wait_for(rf"^PRIVMSG {CHANNEL} :pong alice after$", start=start)
    line = server.wait_for(rf"^PRIVMSG {CHANNEL} :x", start=start)
    assert len(f":vbot!~vbot@{cloak} {line}\r\n".encode()) <= 512
    assert not records(caplog, logging.WARNING)


def test_every_refused_reply_is_a_warning(servers, run_bot, caplog):
    """417 (ERR_INPUTTOOLONG) for each reply: one WARNING each, with the server's reason; the bot goes on."""
    caplog.set_level(logging.INFO)
    server = servers(PlainIrcServer(relay_limit=0))
    bot = run_bot(make_config(server.port, token=None))
    for number in range(3):
        server.send(f":{server.source('alice')} PRIVMSG {CHANNEL} :!ping {number}")
    wait_until(lambda: len(records(caplog, logging.WARNING)) >= 3, message="three warnings")
    warnings = records(caplog, logging.WARNING)
    assert warnings == ["the server refused a reply: Input line was too long"] * 3
    assert bot.thread.is_alive() and bot.bot.session.logins == 1


@needs_ngircd("miniircd has no moderated channels and no IRC operators")
def test_reply_to_a_moderated_channel_is_refused_with_a_warning(servers, clients, run_bot, caplog):
    """ngircd answers 404 to a PRIVMSG in a +m channel from someone without voice: a WARNING naming
    the channel; once voiced, the bot's replies arrive."""
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(operator=OPERATOR, channels={CHANNEL: "+m"}))
    run_bot(make_config(server.port))
    alice, boss = clients(server, "alice"), clients(server, "boss", oper=True)
    boss.send(f"MODE {CHANNEL} +v alice")
    alice.wait_for(rf"^:boss!\S+ MODE {CHANNEL} \+v alice")
    alice.say(CHANNEL, "!ping muted")
    warning = wait_until(lambda: records(caplog, logging.WARNING), message="the refusal in the log")
    assert warning == ["the server refused a reply to #test: Cannot send to channel"]
    boss.send(f"MODE {CHANNEL} +v vbot")
    alice.wait_for(rf"^:boss!\S+ MODE {CHANNEL} \+v vbot")
    start = alice.say(CHANNEL, "!ping voiced")
    assert alice.wait_for_reply(CHANNEL, "pong alice voiced$", start)
    assert len(records(caplog, logging.WARNING)) == 1


# --- refusals: nick in use, JOIN refused ---------------------------------------------------------


def test_nick_in_use_is_warned_retried_paced_and_taken_once_free(servers, clients, run_bot, caplog):
    """Each refused attempt is one WARNING naming the nick, the server's reason and the wait."""
    caplog.set_level(logging.INFO)
    server = servers(real_ircd())
    holder = clients(server, "vbot", channel=None)
    bot = run_bot(make_config(server.port), joined=False)
    wait_until(lambda: len(records(caplog, logging.WARNING, "refused the nick")) >= 2, message="two refusals")
    holder.send("QUIT :making room")
    wait_until(lambda: bot.bot.membership.members(CHANNEL) is not None, message="the bot to log in and join")
    warnings = records(caplog, logging.WARNING)
    pattern = (rf"not connected to 127\.0\.0\.1:{server.port}: the server refused the nick vbot: "
               r"Nickname (?:is )?already in use; next attempt in ([\d.]+) s")
    matches = [re.fullmatch(pattern, line) for line in warnings]
    assert all(matches), warnings
    assert all(float(match[1]) > 0 for match in matches if match)
    assert records(caplog, logging.INFO, "logged in to")


def test_nick_in_use_retries_wait_longer_each_time(caplog):
    """The pacing, on a fake clock: no attempt before the backoff's delay, and the delay doubles."""
    caplog.set_level(logging.INFO)
    harness = BotHarness(reconnect=Backoff(first=2.0, cap=60.0, rng=lambda: 0.0))  # 1, 2, 4, 8 s
    assert harness.connects == 1
    for delay in (1.0, 2.0, 4.0, 8.0):
        harness.feed(":irc.vbot.test 433 * vbot :Nickname already in use")
        assert records(caplog, logging.WARNING)[-1] == (
            "not connected to 127.0.0.1:6667: the server refused the nick vbot: Nickname already in use; "
            f"next attempt in {delay:.1f} s")
        attempts = harness.connects
        harness.advance(delay - 0.01)
        assert harness.connects == attempts, "retried before the delay"
        harness.advance(0.02)
        assert harness.connects == attempts + 1
    harness.feed(":irc.vbot.test 001 vbot :Welcome", f":vbot!~vbot@127.0.0.1 JOIN {CHANNEL}")
    assert harness.bot.membership.members(CHANNEL) is not None


JOIN_REFUSALS = [  # (channel modes on ngircd, the reason's mark, as a server sends the refusal)
    ("+i", "(+i)", ":irc.vbot.test 473 vbot #test :Cannot join channel (+i) -- Invited users only"),
    ("+k sesame", "(+k)", ":irc.vbot.test 475 vbot #test :Cannot join channel (+k) -- Bad channel key"),
    ("+l 1", "(+l)", ":irc.vbot.test 471 vbot #test :Cannot join channel (+l) -- Channel is full, try later"),
]


@needs_ngircd("miniircd cannot preset channel modes")
@pytest.mark.parametrize(("modes", "reason", "_"), JOIN_REFUSALS)
def test_join_refused_by_ngircd_is_a_warning_naming_channel_and_reason(servers, clients, run_bot, caplog,
                                                                      modes, reason, _):
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(channels={CHANNEL: modes}))
    if modes.startswith("+l"):
        clients(server, "filler")  # takes the one place
    bot = run_bot(make_config(server.port), joined=False)
    warning = wait_until(lambda: records(caplog, logging.WARNING, "refused to let the bot join"),
                         message="the refusal in the log")[0]
    assert re.fullmatch(rf"the server refused to let the bot join #test: Cannot join channel {re.escape(reason)}"
                        r" -- .+; trying again in \d+ s", warning)
    assert bot.bot.membership.members(CHANNEL) is None and bot.bot.session.logins == 1


@needs_ngircd("miniircd has no IRC operators and no channel modes but +k")
def test_join_refused_is_retried_and_succeeds_once_allowed(servers, clients, run_bot, caplog):
    """Invite-only, then opened by an operator: the bot's paced retry gets in (a real wait of 2.5 to 5 s)."""
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(operator=OPERATOR, channels={CHANNEL: "+i"}))
    boss = clients(server, "boss", oper=True)
    bot = run_bot(make_config(server.port), joined=False)
    wait_until(lambda: records(caplog, logging.WARNING, "refused to let the bot join #test"), message="a refusal")
    boss.send(f"MODE {CHANNEL} -i")
    boss.wait_for(rf"^:boss!\S+ MODE {CHANNEL} -i")
    boss.wait_for(rf"^:vbot!\S+ JOIN :?{CHANNEL}$")
    start = boss.say(CHANNEL, "!ping in")
    assert boss.wait_for_reply(CHANNEL, "pong boss in$", start)
    assert len(records(caplog, logging.WARNING, "refused to let the bot join")) == 1
    assert bot.bot.session.logins == 1 and not records(caplog, logging.ERROR)


def plain_welcome(harness: BotHarness) -> None:
    """Welcome the harness's bot as a plain IRC server would (no Twitch capabilities, no JOIN echo)."""
    harness.feed(":irc.vbot.test CAP * NAK :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
                 ":irc.vbot.test 001 vbot :Welcome to the vbot test network vbot!~vbot@127.0.0.1",
                 ":irc.vbot.test 005 vbot PREFIX=(qaohv)~&@%+ CHANMODES=beI,k,l,imnst :are supported",
                 ":irc.vbot.test 376 vbot :End of MOTD command")


def joins_sent(harness: BotHarness) -> list[str]:
    return [line for line in harness.sent() if line.startswith("JOIN ")]


@pytest.mark.parametrize(("_", "reason", "refusal"), JOIN_REFUSALS)
def test_join_refused_is_retried_ever_later_then_given_up(caplog, _, reason, refusal):
    """On a fake clock: each refusal is a WARNING and a JOIN after a doubling delay (never
    before it); the fifth (REFUSED_GIVE_UP) is an ERROR, and no JOIN follows."""
    caplog.set_level(logging.INFO)
    harness = BotHarness()
    plain_welcome(harness)
    assert joins_sent(harness) == [f"JOIN {CHANNEL}"]
    delays: list[float] = []
    for refusals in range(1, REFUSED_GIVE_UP):
        harness.feed(refusal)
        assert len(records(caplog, logging.WARNING, f"join #test: Cannot join channel {reason}")) == refusals
        delays.append(harness.bot.joins.wait_time())
        harness.advance(delays[-1] - 0.01)
        assert joins_sent(harness) == [], "retried before the delay"
        harness.advance(0.02)
        assert joins_sent(harness) == [f"JOIN {CHANNEL}"]
    assert delays[0] >= 2.5 and all(later > earlier for earlier, later in itertools.pairwise(delays)), delays
    harness.feed(refusal)
    assert records(caplog, logging.ERROR) == [
        f"giving up joining #test after {REFUSED_GIVE_UP} refusals: {refusal.split(' :', 1)[1]}"]
    harness.advance(300)
    assert joins_sent(harness) == [] and harness.bot.joins.wait_time() is None


def test_a_channel_given_up_is_tried_again_after_the_next_login(caplog):
    caplog.set_level(logging.INFO)
    harness = BotHarness(reconnect=Backoff(first=2.0, rng=lambda: 0.0))
    plain_welcome(harness)
    for _ in range(REFUSED_GIVE_UP):
        harness.feed(JOIN_REFUSALS[0][2])
        harness.advance(harness.bot.joins.wait_time() or 0)
    assert records(caplog, logging.ERROR) and harness.bot.joins.wait_time() is None
    harness.sent()
    harness.drop()
    harness.advance(1.0)
    assert harness.connects == 2
    plain_welcome(harness)
    assert joins_sent(harness) == [f"JOIN {CHANNEL}"]


def test_a_join_that_succeeds_starts_the_refusal_count_over(caplog):
    caplog.set_level(logging.INFO)
    harness = BotHarness()
    plain_welcome(harness)
    refusal = JOIN_REFUSALS[0][2]
    for _ in range(REFUSED_GIVE_UP - 1):
        harness.feed(refusal)
        harness.advance(harness.bot.joins.wait_time())
    harness.feed(f":vbot!~vbot@127.0.0.1 JOIN {CHANNEL}")
    assert harness.bot.membership.members(CHANNEL) is not None
    harness.feed(f":op!~op@127.0.0.1 KICK {CHANNEL} vbot :out", refusal)  # kicked, and the rejoin refused
    assert not records(caplog, logging.ERROR)
    assert harness.bot.joins.wait_time() is not None


# --- quiet logs ----------------------------------------------------------------------------------


@needs_ngircd("miniircd has no IRC operators to KILL")
def test_kill_by_an_operator_is_one_warning_with_the_reason_then_a_new_login(servers, clients, run_bot, caplog):
    """ngircd sends ERROR with the KILL's reason and closes: one line says so, then vbot logs in again."""
    caplog.set_level(logging.INFO)
    server = servers(Ngircd(operator=OPERATOR))
    bot = run_bot(make_config(server.port))
    boss = clients(server, "boss", oper=True)
    boss.send("KILL vbot :enough of you")
    boss.wait_for(r"^:vbot!\S+ QUIT :KILLed by boss: enough of you")
    boss.wait_for(rf"^:vbot!\S+ JOIN :?{CHANNEL}$")
    assert bot.bot.session.logins == 2
    assert records(caplog, logging.WARNING) == [
        f"disconnected from 127.0.0.1:{server.port}: server closed the connection: KILLed by boss: enough of you; "
        + records(caplog, logging.WARNING)[0].rsplit("; ", 1)[1]]


def test_clean_login_to_a_real_server_logs_no_warning(servers, run_bot, caplog):
    """ngircd and miniircd refuse Twitch's capabilities (CAP NAK): that is INFO there, and nothing else warns."""
    caplog.set_level(logging.INFO)
    server = servers(real_ircd())
    run_bot(make_config(server.port))
    refusal = records(caplog, logging.INFO, "server refused capabilities")
    assert refusal and "twitch.tv/membership" in refusal[0]
    assert not records(caplog, logging.WARNING)


@pytest.mark.parametrize(("host", "level"), [("irc.chat.twitch.tv", logging.WARNING), ("127.0.0.1", logging.INFO)])
def test_capability_refusal_is_a_warning_only_on_twitch(caplog, host, level):
    """On Twitch a refused capability means broken membership tracking: there it stays a WARNING."""
    caplog.set_level(logging.INFO)
    harness = BotHarness(make_config(6697, host=host, tls=True))
    harness.feed(":tmi.twitch.tv CAP * NAK :twitch.tv/membership")
    assert records(caplog, level, "server refused capabilities: twitch.tv/membership")
    assert "CAP END" in harness.sent()


def test_a_repeated_reply_on_a_plain_server_has_no_invisible_suffix():
    """Trial: U+E0000 is for Twitch's msg_duplicate rule; elsewhere it is junk characters."""
    harness = BotHarness(make_config(6667))
    harness.feed(":irc.vbot.test 001 vbot :Welcome", ":vbot!~vbot@127.0.0.1 JOIN #test")
    harness.sent()
    harness.say("alice", "!version")
    harness.advance(5)
    harness.say("bob", "!version")
    harness.advance(5)
    replies = harness.replies()
    assert len(replies) == 2 and replies[0] == replies[1] and "\U000e0000" not in replies[1]


# --- issue 18 item 8: plain servers' own rules --------------------------------------------------

INSPIRCD_PENALTIES = {"JOIN": 2, "PASS": 0, "NICK": 0, "PONG": 0}
"""Seconds of penalty InspIRCd charges a line (``Penalty`` of its commands; 1 for any other);
the total drains by 1 at each whole second, and at 10 (``<connect threshold>``'s default)
a client without fakelag is killed for Excess Flood."""


def inspircd_peak(timed_lines: list[tuple[float, str]]) -> float:
    """The highest penalty InspIRCd would hold for these ``(clock time, line)`` pairs."""
    penalty, peak, second = 0.0, 0.0, None
    for at, line in timed_lines:
        if second is not None:
            penalty = max(penalty - (int(at) - second), 0.0)
        second = int(at)
        penalty += INSPIRCD_PENALTIES.get(line.split(" ", 1)[0], 1)
        peak = max(peak, penalty)
    return peak


def test_joins_and_replies_stay_under_inspircds_excess_flood_limit():
    """Issue 18: InspIRCd without fakelag killed vbot right after a login with 5 or more channels
    (Twitch's 20 JOINs per 10 s), and under a burst of commands."""
    channels = tuple(f"#c{number}" for number in range(8))
    config = make_config(6667, channels=channels)
    harness = BotHarness(config, dispatcher(config))
    timed = [(harness.clock(), line) for line in harness.sent()]
    plain_welcome(harness)
    joined = 0
    for _ in range(80):  # 40 s: each JOIN echoed; once in, ten chatters ask at once
        for line in harness.sent():
            timed.append((harness.clock(), line))
            if line.startswith("JOIN "):
                harness.feed(f":vbot!~vbot@127.0.0.1 {line}")
                joined += 1
                if joined == len(channels):
                    harness.feed(*(f":u{n}!~u{n}@127.0.0.1 PRIVMSG #c0 :!ping {n}" for n in range(10)))
        harness.advance(0.5)
    timed += [(harness.clock(), line) for line in harness.sent()]
    assert sorted(line for _, line in timed if line.startswith("JOIN ")) == [f"JOIN {name}" for name in channels]
    assert len([line for _, line in timed if line.startswith("PRIVMSG #c0 :pong")]) == 10
    assert inspircd_peak(timed) < 10


@pytest.mark.parametrize(("host", "asked"), [
    ("127.0.0.1", ["CAP REQ multi-prefix", "CAP REQ chghost", "CAP END"]),
    ("irc.chat.twitch.tv", ["CAP END"]),
])
def test_a_plain_server_is_asked_for_multi_prefix_and_chghost_each_in_its_own_request(host, asked):
    """A REQ is granted or refused whole: one capability a server lacks must not cost the
    other, and Twitch's never share a REQ with them (Twitch, which grants its own, never sees these)."""
    harness = BotHarness(make_config(6697, host=host, tls=True))
    harness.sent()
    harness.feed(":irc.vbot.test CAP * NAK :twitch.tv/membership twitch.tv/tags twitch.tv/commands")
    assert harness.sent() == asked
    harness.feed(":irc.vbot.test CAP * NAK :multi-prefix")  # refusing one of them asks nothing more
    assert harness.sent() == []


@needs_ngircd("miniircd has no IRC operators, no preset channel modes and no multi-prefix")
def test_a_moderator_who_loses_one_of_two_modes_keeps_the_other(servers, clients, run_bot):
    """With multi-prefix the bot sees both of gina's @ and +: losing @ leaves her a VIP, not nobody."""
    server = servers(Ngircd(operator=OPERATOR, channels={CHANNEL: "+l 50"}))
    gina, boss = clients(server, "gina"), clients(server, "boss", oper=True)
    boss.send(f"MODE {CHANNEL} +ov gina gina")
    gina.wait_for(rf"^:boss!\S+ MODE {CHANNEL} \+ov gina gina")
    run_bot(make_config(server.port))  # joins after: its NAMES shows gina's modes
    assert role_on_ngircd(gina) == "moderator"
    start = len(gina.lines)
    boss.send(f"MODE {CHANNEL} -o gina")
    gina.wait_for(rf"^:boss!\S+ MODE {CHANNEL} -o gina", start=start)
    assert role_on_ngircd(gina) == "vip"


RENAMES = [  # (what the server sends about the bot after its JOIN echo, the source it relays the bot's lines with)
    (":vbot!~vbot@127.0.0.1 NICK :vbot_renamed_by_the_services_of_this_network",
     "vbot_renamed_by_the_services_of_this_network!~vbot@127.0.0.1"),
    (":vbot!~vbot@127.0.0.1 CHGHOST ~vbot a-rather-long-cloak-given-after-joining.users.vbot.example",
     "vbot!~vbot@a-rather-long-cloak-given-after-joining.users.vbot.example"),
    (":irc.vbot.test 396 vbot identified@a-rather-long-cloak.users.vbot.example :is now your displayed host",
     "vbot!identified@a-rather-long-cloak.users.vbot.example"),
]


@pytest.mark.parametrize(("line", "source"), RENAMES, ids=["NICK", "CHGHOST", "396 user@host"])
def test_a_reply_fits_the_relayed_line_after_the_bots_own_nick_or_host_changes(line, source):
    """The reply budget follows the bot's own NICK, CHGHOST and 396, or the server refuses (417) or cuts it."""
    config = make_config(6667)
    harness = BotHarness(config, dispatcher(config))
    plain_welcome(harness)
    harness.feed(f":vbot!~vbot@127.0.0.1 JOIN {CHANNEL}", line)
    harness.sent()
    harness.feed(f":alice!~alice@127.0.0.1 PRIVMSG {CHANNEL} :!long")
    harness.advance(2)  # the login's lines and the JOIN used the flood rule's budget
    [reply] = harness.replies()
    assert reply.endswith("…") and len(f":{source} {reply}\r\n".encode()) <= 512


def test_the_servers_reason_is_kept_when_its_close_races_a_write(caplog):
    """The server sends ERROR and closes while the bot writes (a PING here): the drop names the
    server's reason, not the failed write's "Connection reset by peer"."""
    caplog.set_level(logging.INFO)
    harness = BotHarness()
    plain_welcome(harness)
    harness.feed(f":vbot!~vbot@127.0.0.1 JOIN {CHANNEL}")
    harness.server.sendall(b"ERROR :Closing link: (vbot@127.0.0.1) [Excess Flood]\r\n")
    harness.server.close()
    harness.advance(harness.config.ping_interval)  # the PING is written before the ERROR is read
    assert records(caplog, logging.WARNING) == [
        "disconnected from 127.0.0.1:6667: server closed the connection: Closing link: (vbot@127.0.0.1) "
        f"[Excess Flood]; next attempt in {records(caplog, logging.WARNING)[0].rsplit(' in ', 1)[1]}"]


def test_the_servers_reason_is_kept_when_a_reply_in_the_same_read_fails(caplog):
    """A chat line, the ERROR, then the close, all in one read: the reply's write fails first."""
    caplog.set_level(logging.INFO)
    config = make_config(6667)
    harness = BotHarness(config, dispatcher(config))
    plain_welcome(harness)
    harness.feed(f":vbot!~vbot@127.0.0.1 JOIN {CHANNEL}")
    harness.advance(10)  # the flood rule lets a reply go at once
    harness.bot.connection.socket.shutdown(socket.SHUT_WR)  # as the server's close: the writes fail
    harness.feed(f":alice!~alice@127.0.0.1 PRIVMSG {CHANNEL} :!ping 1", "ERROR :Closing link: KILLed by boss: bye")
    assert not harness.bot.connection.is_connected()
    [warning] = records(caplog, logging.WARNING)
    assert warning.startswith("disconnected from 127.0.0.1:6667: server closed the connection: Closing link: "
                              "KILLed by boss: bye; next attempt in ")
    assert harness.bot.closing_reason == ""  # used for this drop, not left for the next one


def test_ordinary_irc_nicks_as_the_bots_nick_and_an_owner(servers, clients, run_bot):
    """Issue 18: VBOT_USERNAME=Frank[x] and VBOT_OWNERS=my-owner were refused off Twitch."""
    server = servers(real_ircd(token=None))
    bot = run_bot(load_config(plain_settings(server.port, VBOT_USERNAME="Frank[x]", VBOT_OWNERS="My-Owner")))
    owner = clients(server, "my-owner")
    start = owner.say(CHANNEL, "!ping nick")
    assert owner.wait_for_reply(CHANNEL, "pong my-owner nick$", start)
    owner.say(CHANNEL, "!exit")
    bot.thread.join(10)
    assert bot.exit_code == 0
    owner.wait_for(r"^:frank\[x\]!~?frankx@\S+ QUIT ")  # the USER name without what servers refuse
