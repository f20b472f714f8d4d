"""Fault tests: the bot against real loopback servers that drop, go silent, go away or flood it.

Each test runs a VBot in a thread (BotThread) against ScriptedServer (Twitch-like) and
measures how long recovery took; the times are printed (``pytest -s`` or ``-rP`` shows
them) and checked against the limits of issue 3. Time-dependent settings are shortened:
ping interval/timeout through the Config, backoff through Backoff(first=..., cap=...).
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time

import pytest

from tests.support import TOKEN, BotHarness, BotThread, FakeClock, ScriptedServer, free_port, make_config, wait_until
from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.config import Config
from vbot.dispatch import CommandTable, Cooldowns, Dispatcher, command
from vbot.irclib import CONNECT_TIMEOUT, make_connect_factory
from vbot.lines import MAX_RECEIVED_LINE_BYTES
from vbot.outbox import Limits, Outbox
from vbot.session import Backoff, Phase

NOT_MOD = ("@badge-info=;badges=;color=;display-name=vbot;emote-sets=0,300374282;mod=0;subscriber=0;"
           "user-type= :tmi.twitch.tv USERSTATE {channel}")
"""Twitch's USERSTATE for a bot that is not broadcaster, moderator or VIP in ``channel``."""
HANDSHAKE = ["CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
             f"PASS oauth:{TOKEN}", "NICK vbot", "USER vbot 0 * :vbot"]


def measured(what: str, seconds: float) -> float:
    print(f"measured: {what}: {seconds:.2f} s")
    return seconds


@command("hi", cooldown=0, user_cooldown=0)
def hi(ctx) -> str:
    """A reply that differs per chatter, so the duplicate rule never hides one."""
    return f"hi {ctx.message.login}"


@command("boom", cooldown=0, user_cooldown=0)
def boom(ctx) -> str:
    raise RuntimeError("boom")


def free_dispatcher() -> Dispatcher:
    """Built-in commands plus !hi and !boom, with cooldowns that never block (clock jumps 1000 s a call)."""
    table = CommandTable([*builtin_table(), hi.vbot_command, boom.vbot_command])
    return Dispatcher(table, "!", cooldowns=Cooldowns(clock=itertools.count(step=1000).__next__))


@pytest.fixture
def run_bot():
    """``run_bot(config, **options)`` starts a BotThread (no cooldowns, no duplicate rule by default)."""
    started: list[BotThread] = []

    def start(config: Config, **options) -> BotThread:
        options.setdefault("outbox", Outbox(Limits(duplicate_window=0)))
        bot = BotThread(config, options.pop("dispatcher", None) or free_dispatcher(), **options)
        started.append(bot.start())
        return bot

    yield start
    for bot in started:
        bot.stop()


def ask(server: ScriptedServer, text: str, reply: str, channel: str = "#test", login: str = "alice",
        tags: str = "", timeout: float = 10) -> str:
    """Chat ``text`` and return the bot's PRIVMSG to ``channel`` whose text matches regex ``reply``."""
    start = len(server.received)
    server.chat(channel, login, text, tags)
    return server.wait_for(rf"^PRIVMSG {channel} :{reply}", timeout, start)


def joined(server: ScriptedServer, start: int = 0, timeout: float = 10) -> None:
    server.wait_for(r"^JOIN #test$", timeout, start)


def handled(server: ScriptedServer, *lines: str) -> None:
    """Send ``lines`` and a PING in one write; return once the bot has answered the PING."""
    start = len(server.received)
    server.send("\r\n".join([*lines, "PING :handled"]))
    server.wait_for(r"^PONG :?handled$", start=start)


def records(caplog, level: int, text: str) -> list[logging.LogRecord]:
    return [r for r in list(caplog.records) if r.levelno == level and text in r.getMessage()]


# --- staying connected --------------------------------------------------------------------


def test_dropped_connection_rejoins_and_answers_again(twitch, run_bot, caplog):
    """The wiring of a drop; when to retry is the session's (tests/test_session.py, fake clock)."""
    bot = run_bot(make_config(twitch.port), reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.5))
    joined(twitch)
    ask(twitch, "!version", "Version: ")
    for drop in (1, 2):
        first, start = twitch.current, len(twitch.received)
        dropped_at = time.monotonic()
        twitch.drop()
        joined(twitch, start)
        measured(f"drop {drop} -> rejoined", time.monotonic() - dropped_at)
        ask(twitch, "!version", "Version: ")
        assert twitch.current is not first and twitch.connections == drop + 1
        assert twitch.current.lines[:4] == HANDSHAKE  # CAP REQ and PASS again, before NICK
    assert records(caplog, logging.WARNING, "disconnected from ")
    assert bot.exit_code is None


def test_reconnect_message_rejoins_at_once(twitch, run_bot, caplog):
    run_bot(make_config(twitch.port), reconnect=Backoff(rng=lambda: 0.5))
    joined(twitch)
    start, asked_at = len(twitch.received), time.monotonic()
    twitch.send(":tmi.twitch.tv RECONNECT")
    joined(twitch, start)
    measured("RECONNECT -> rejoined", time.monotonic() - asked_at)  # at once: tests/test_session.py
    assert twitch.connections == 2
    ask(twitch, "!version", "Version: ")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # planned: no "disconnected"


def test_repeated_reconnect_goes_through_the_backoff(twitch, run_bot, caplog):
    """Only one RECONNECT per 30 s is followed at once: a server that keeps asking cannot
    make vbot log in more often than the backoff allows (Twitch: 20 logins per 10 s)."""
    run_bot(make_config(twitch.port), reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.5))
    joined(twitch)
    start = len(twitch.received)
    twitch.send(":tmi.twitch.tv RECONNECT")
    joined(twitch, start)
    assert not records(caplog, logging.WARNING, "next attempt in")
    start = len(twitch.received)
    twitch.send(":tmi.twitch.tv RECONNECT")
    joined(twitch, start)
    assert twitch.connections == 3
    assert records(caplog, logging.WARNING, "next attempt in")


def test_reconnect_waits_for_the_rest_of_the_read(twitch, run_bot):
    """RECONNECT is acted on after the lines of the same read: the !version after it is
    answered on the old connection, before its QUIT."""
    run_bot(make_config(twitch.port))
    joined(twitch)
    first = twitch.current
    first.send(b":tmi.twitch.tv RECONNECT\r\n:alice!alice@alice.tmi.twitch.tv PRIVMSG #test :!version")
    wait_until(lambda: any(line.startswith("QUIT") for line in first.lines), message="QUIT on the old connection")
    sent = [line for line in first.lines if line.startswith(("PRIVMSG", "QUIT"))]
    assert sent[0].startswith("PRIVMSG #test :Version: ") and sent[-1].startswith("QUIT")
    wait_until(lambda: twitch.connections == 2, message="a new connection")


def test_silent_server_is_detected_by_ping(twitch, run_bot, caplog):
    interval, timeout = 1.0, 0.5
    bot = run_bot(make_config(twitch.port, ping_interval=interval, ping_timeout=timeout),
                  reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.0))
    joined(twitch)
    wait_until(lambda: "#test" in bot.bot.channels, message="the JOIN echo")
    start = len(twitch.received)
    silent_from = time.monotonic()
    twitch.silent = True
    twitch.wait_for(r"^PING ", start=start)
    measured("silence -> PING", time.monotonic() - silent_from)
    wait_until(lambda: twitch.connections == 2, message="a reconnect")
    measured("silence -> reconnect", time.monotonic() - silent_from)
    twitch.silent = False
    joined(twitch, start)  # on the second connection, or a third if the second was answered silently
    # when exactly: the session's keep-alive tests (tests/test_session.py, fake clock)
    assert records(caplog, logging.WARNING, "no data from the server")


def test_server_that_never_welcomes_is_left(twitch, run_bot, caplog):
    """A server that answers PINGs but never sends 001 is left after ping interval + timeout."""
    twitch.silent = True  # the first CAP, PASS and NICK go unanswered...
    run_bot(make_config(twitch.port, ping_interval=0.5, ping_timeout=0.5),
            reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.0))
    twitch.wait_for(r"^USER vbot")
    answering_from = time.monotonic()
    twitch.silent = False  # ...but PINGs are answered from now on
    joined(twitch)
    measured("no welcome -> reconnected and joined", time.monotonic() - answering_from)
    assert twitch.connections == 2
    assert records(caplog, logging.WARNING, "no welcome from the server within 1 s")


def test_live_server_answering_pings_is_not_dropped(twitch, run_bot):
    run_bot(make_config(twitch.port, ping_interval=0.3, ping_timeout=0.3))
    joined(twitch)
    wait_until(lambda: sum(line.startswith("PING") for line in twitch.received) >= 4, message="4 PINGs")
    assert twitch.connections == 1  # 4 pings take longer than interval + timeout


def test_jobs_do_not_stack_across_reconnects(twitch, run_bot):
    bot = run_bot(make_config(twitch.port))
    joined(twitch)
    for _ in range(4):
        start = len(twitch.received)
        twitch.drop()
        joined(twitch, start)
    start = len(twitch.received)
    twitch.send(":tmi.twitch.tv RECONNECT")
    joined(twitch, start)
    with bot.bot.reactor.mutex:
        jobs = list(bot.bot.reactor.scheduler.queue)
    assert len(jobs) <= 1  # at most one flush; the session's checks are no scheduled jobs


def test_server_down_at_start_is_retried_until_it_comes_up(run_bot, caplog):
    port = free_port()  # nothing listens here
    bot = run_bot(make_config(port), reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.5))
    wait_until(lambda: len(records(caplog, logging.WARNING, "could not connect")) >= 3, message="3 failed attempts")
    server = ScriptedServer(port=port).start()
    try:
        up_at = time.monotonic()
        joined(server)
        measured("server up -> connected and joined", time.monotonic() - up_at)
        ask(server, "!version", "Version: ")
    finally:
        bot.stop()
        server.stop()
    failures = records(caplog, logging.WARNING, "could not connect")
    assert all(f"127.0.0.1:{port}" in r.getMessage() for r in failures)
    assert records(caplog, logging.WARNING, "next attempt in")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # nothing raised while disconnected


def test_small_writes_are_not_delayed():
    """TCP_NODELAY: a PONG written right after a reply does not wait for the reply's ACK."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with make_connect_factory(tls=False)(listener.getsockname()) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_connect_attempt_has_a_timeout():
    """A server that accepts TCP but never answers the TLS handshake costs one timeout, not forever."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the TCP handshake; nobody ever answers
        connect = make_connect_factory(tls=True, timeout=0.3)
        with pytest.raises(TimeoutError):  # the handshake's read timed out; nothing else ended it
            connect(listener.getsockname())
    assert 0 < CONNECT_TIMEOUT <= 30


def test_the_connect_in_the_event_loop_holds_one_deadline_with_the_name_resolution(caplog):
    """The attack: a host with three addresses dropping SYNs held the event loop 10 s per address,
    31 s without a WATCHDOG=1, and DNS had no bound at all. The connect is one deadline now
    (tests/test_network.py: every address); here a resolver that hangs, the bot's loop free again
    after the deadline, waiting with backoff."""
    release = threading.Event()

    def hanging(host: str, port: int) -> list[tuple]:
        release.wait(60)
        return []

    factory = make_connect_factory(tls=False, timeout=0.3, resolve=hanging)
    bot = VBot(make_config(6667), free_dispatcher(), clock=FakeClock(), connect_factory=factory)
    try:
        with caplog.at_level(logging.WARNING, logger="vbot.bot"), bot.reactor.mutex:
            bot._step()
    finally:
        release.set()
    assert bot.session.phase is Phase.WAITING
    assert "could not connect to 127.0.0.1:6667: resolving 127.0.0.1 timed out; next attempt in" in caplog.text


def test_a_login_line_the_library_refuses_is_a_failed_connect_with_backoff(caplog):
    """The attack: a 600-character server password (or a 512-character token from the token service) made
    the irc library raise MessageTooLong inside ``connect``, which vbot did not expect: the session stayed
    CONNECTING for good, the socket half open. The settings and the token checks refuse such a token now;
    whatever else fails in the login lines is a failed connect like any other: socket closed, backoff."""
    with caplog.at_level(logging.WARNING, logger="vbot.bot"):
        harness = BotHarness(make_config(6667, token="p" * 600))  # its first step connects
    assert harness.bot.session.phase is Phase.WAITING and not harness.bot.connection.is_connected()
    received = b""
    while chunk := harness.server.recv(4096):  # ends: the bot closed its end
        received += chunk
    assert received.startswith(b"CAP REQ ") and b"PASS" not in received
    assert ("could not connect to 127.0.0.1:6667: could not send the login (MessageTooLong: Messages limited to "
            "512 bytes including CR/LF); next attempt in") in caplog.text
    harness.advance(2)  # the backoff's first wait
    assert harness.connects == 2


def test_a_stop_abandons_a_connect_under_way_and_only_that():
    """The attack: a SIGTERM during a blocking connect left the session CONNECTING, so a second SIGTERM while
    ``keeper.close()`` waited for a renewal raised Stopping out of it: exit 1, a traceback, the renewal
    abandoned. A signal's handler runs in the main thread between two steps of the connect; here the
    connect factory is where the first one lands."""

    def stopped_while_connecting(address: tuple[str, int]) -> socket.socket:
        bot.stop_from_signal()  # SIGTERM's handler, in the middle of the blocking connect
        raise AssertionError("the stop did not abandon the connect")

    bot = VBot(make_config(6667), free_dispatcher(), clock=FakeClock(), connect_factory=stopped_while_connecting)
    assert bot.run(poll=0.01) == 0
    assert bot.session.phase is Phase.WAITING and not bot.connection.connecting
    bot.stop_from_signal()  # the second SIGTERM, once run() returned (during keeper.close()): only recorded
    assert bot.exit_code == 0


def test_reply_queued_while_disconnected_is_sent_after_reconnect(run_bot, caplog):
    first = ScriptedServer().start()
    bot = run_bot(make_config(first.port), reconnect=Backoff(first=0.2, cap=0.5, rng=lambda: 0.5))
    second = None
    try:
        joined(first)
        first.stop()
        wait_until(lambda: not bot.bot.connection.is_connected(), message="the bot to notice")
        said = threading.Event()

        def say_while_away():
            bot.bot.say("#test", "said while away")
            said.set()

        with bot.bot.reactor.mutex:
            bot.bot.reactor.scheduler.execute_after(0, say_while_away)
        wait_until(said.is_set, message="say() to return")
        second = ScriptedServer(port=first.port).start()
        second.wait_for(r"^PRIVMSG #test :said while away$")
        assert second.received.index("PRIVMSG #test :said while away") > second.received.index("JOIN #test")
    finally:
        bot.stop()
        if second:
            second.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_queued_reply_waits_for_the_welcome_of_the_new_connection(twitch, run_bot):
    """A reply released while a new connection is still logging in is held until after 001."""
    run_bot(make_config(twitch.port, ping_interval=1.0, ping_timeout=0.5),
            outbox=Outbox(Limits(ratelimit_pause=0.5)), reconnect=Backoff(first=0.2, cap=1.0, rng=lambda: 0.0))
    joined(twitch)
    handled(twitch, "@msg-id=msg_ratelimit :tmi.twitch.tv NOTICE #test :too quickly",
            ":u1!u1@u1.tmi.twitch.tv PRIVMSG #test :!hi")  # queued until the pause ends in 0.5 s
    start = len(twitch.received)
    twitch.silent = True  # the next connection's login is not answered...
    twitch.drop()
    twitch.wait_for(r"^PING ", start=start)  # ...until well after the pause has ended
    twitch.silent = False
    twitch.wait_for(r"^PRIVMSG #test :hi u1$", start=start)
    sent = twitch.received.index("PRIVMSG #test :hi u1", start)
    login = max(i for i in range(start, sent) if twitch.received[i] == "NICK vbot")
    assert "JOIN #test" in twitch.received[login:sent]  # sent on a logged-in connection


def test_viewer_list_is_rebuilt_after_reconnect(twitch, run_bot):
    bot = run_bot(make_config(twitch.port))
    joined(twitch)
    for login in ("alice", "bob"):
        twitch.send(f":{login}!{login}@{login}.tmi.twitch.tv JOIN #test")
    wait_until(lambda: bot.bot.viewer_count("#test") == 2, message="2 viewers")
    start = len(twitch.received)
    twitch.drop()
    joined(twitch, start)
    twitch.send(":vbot.tmi.twitch.tv 353 vbot = #test :alice dave")
    twitch.send(":vbot.tmi.twitch.tv 366 vbot #test :End of /NAMES list")
    assert ask(twitch, "!count_viewers", r"Viewer count: \d+").endswith("Viewer count: 2")
    assert set(bot.bot.membership.members("#test").nicks()) == {"vbot", "alice", "dave"}  # bob left during the drop


def test_login_failure_is_never_retried(run_bot, caplog):
    server = ScriptedServer(token="someone-elses-token").start()
    try:
        bot = run_bot(make_config(server.port))
        bot.thread.join(10)
        assert bot.exit_code == 3
        assert server.connections == 1
    finally:
        server.stop()
    assert records(caplog, logging.ERROR, "Twitch refused the login")


def test_clear_text_to_twitch_is_warned_about(caplog):
    """Checked at construction, so no connection to Twitch is needed."""
    dispatcher = Dispatcher(builtin_table())
    VBot(Config(username="vbot", token=TOKEN, channels=("#test",), tls=False, port=6667), dispatcher)
    assert records(caplog, logging.WARNING, "clear text")
    caplog.clear()
    VBot(Config(username="vbot", token=TOKEN, channels=("#test",)), dispatcher)  # TLS: fine
    VBot(make_config(6667), dispatcher)  # not Twitch: fine
    assert not records(caplog, logging.WARNING, "clear text")


# --- sending limits -----------------------------------------------------------------------


def test_the_loop_waits_no_longer_than_the_soonest_decision_object_asks():
    """One timing mechanism (issue 17): each tick says when the soonest decision object is due
    again, so a reply held for Twitch's per-channel second goes out then, not a poll later; and
    nothing is scheduled with the library's scheduler."""
    harness = BotHarness().welcome()
    harness.sent()
    harness.say("alice", "!version")
    harness.say("bob", "!help")  # a second reply within the channel's second: held
    assert len(harness.replies()) == 1
    harness.clock.advance(0.7)
    with harness.bot.reactor.mutex:
        assert harness.bot._step() == pytest.approx(0.3)
    harness.advance(0.3)
    assert len(harness.replies()) == 1
    with harness.bot.reactor.mutex:
        assert harness.bot._step() == pytest.approx(1.0)  # the timers: asked at least once a second
    assert not harness.bot.reactor.scheduler.queue


def test_burst_of_60_commands_sends_at_most_20_and_pong_is_not_delayed(twitch, run_bot):
    channels = [f"#c{i:02}" for i in range(20)]  # 20 JOINs: all within Twitch's join limit at once
    run_bot(make_config(twitch.port, channels=channels), outbox=Outbox())
    for channel in channels:
        twitch.wait_for(rf"^JOIN {channel}$")
    start = len(twitch.received)
    lines = [NOT_MOD.format(channel=channel) for channel in channels]
    for i in range(60):
        login = f"user{i:02}"
        lines.append(f":{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channels[i % 20]} :!hi")
        if i == 30:
            lines.append("PING :tmi.twitch.tv")
    burst_at = time.monotonic()
    twitch.send("\r\n".join(lines).encode())
    twitch.wait_for(r"^PONG ", timeout=1, start=start)
    measured("PING during a 60-command burst -> PONG", time.monotonic() - burst_at)

    def sent() -> list[str]:
        return [line for line in twitch.received[start:] if line.startswith("PRIVMSG")]

    wait_until(lambda: len(sent()) >= 20, timeout=5, message="20 replies")
    time.sleep(1.5)  # the one fixed wait: to see that nothing more goes out
    assert len(sent()) == 20
    assert len({line.split()[1] for line in sent()}) == 20  # one per channel: the 1/s rule


def test_where_the_bot_is_moderator_30_replies_go_out_at_once(twitch, run_bot):
    """USERSTATE with mod=1 (the scripted server's default) lifts the 1/s rule and the 20 limit."""
    run_bot(make_config(twitch.port), outbox=Outbox())
    joined(twitch)
    start = len(twitch.received)
    twitch.send("\r\n".join(f":u{i}!u{i}@u{i}.tmi.twitch.tv PRIVMSG #test :!hi" for i in range(30)))
    wait_until(lambda: sum(line.startswith("PRIVMSG") for line in twitch.received[start:]) == 30,
               timeout=3, message="30 replies at once")


def test_full_queue_drops_the_oldest_with_one_warning(twitch, run_bot, caplog):
    run_bot(make_config(twitch.port), outbox=Outbox(Limits(queue_size=5)))
    joined(twitch)
    start = len(twitch.received)
    lines = [NOT_MOD.format(channel="#test")]
    lines += [f":u{i}!u{i}@u{i}.tmi.twitch.tv PRIVMSG #test :!hi" for i in range(10)]
    twitch.send("\r\n".join(lines).encode())
    wait_until(lambda: records(caplog, logging.WARNING, "too many replies waiting"), message="the warning")
    [warning] = records(caplog, logging.WARNING, "too many replies waiting")
    assert "dropped the 4 oldest" in warning.getMessage()
    twitch.wait_for(r"^PRIVMSG #test :hi u5$", start=start)  # the 5 newest survive, in order
    sent = [line for line in twitch.received[start:] if line.startswith("PRIVMSG")]
    assert sent[:2] == ["PRIVMSG #test :hi u0", "PRIVMSG #test :hi u5"]


def test_msg_ratelimit_pauses_the_channel_for_30_s(twitch, run_bot, caplog):
    clock = FakeClock()
    run_bot(make_config(twitch.port, channels=("#test", "#other")), outbox=Outbox(clock=clock))
    joined(twitch)
    twitch.wait_for(r"^JOIN #other$")
    twitch.send("@msg-id=msg_ratelimit :tmi.twitch.tv NOTICE #test :Your message was not sent because "
                "you are sending messages too quickly.")
    twitch.chat("#test", "u1", "!hi")
    ask(twitch, "!hi", "hi u2", channel="#other", login="u2")  # other channels go on
    clock.advance(29.9)
    twitch.chat("#test", "u3", "!hi")
    ask(twitch, "!hi", "hi u4", channel="#other", login="u4")
    assert not [line for line in twitch.received if line.startswith("PRIVMSG #test")]
    clock.advance(0.1)
    ask(twitch, "!hi", "hi u5", login="u5")
    sent = [line for line in twitch.received if line.startswith("PRIVMSG #test")]
    assert sent == ["PRIVMSG #test :hi u1", "PRIVMSG #test :hi u3", "PRIVMSG #test :hi u5"]
    [warning] = records(caplog, logging.WARNING, "msg_ratelimit")
    assert "#test" in warning.getMessage()


def test_every_undelivered_notice_is_a_warning_with_channel(twitch, run_bot, caplog):
    caplog.set_level(logging.INFO)
    run_bot(make_config(twitch.port))
    joined(twitch)
    warned = ["msg_ratelimit", "msg_duplicate", "msg_banned", "msg_timedout", "msg_channel_suspended",
              "msg_requires_verified_phone_number"]
    for msg_id in [*warned, "msg_slowmode"]:
        twitch.send(f"@msg-id={msg_id} :tmi.twitch.tv NOTICE #test :about {msg_id}")
    wait_until(lambda: records(caplog, logging.INFO, "msg_slowmode"), message="the last notice")
    for msg_id in warned:
        [record] = records(caplog, logging.WARNING, msg_id)
        assert "#test" in record.getMessage() and f"about {msg_id}" in record.getMessage()
    assert not records(caplog, logging.WARNING, "msg_slowmode")


# --- never die -------------------------------------------------------------------------------


def test_a_command_that_raises_does_not_stop_the_bot(twitch, run_bot, caplog):
    bot = run_bot(make_config(twitch.port))
    joined(twitch)
    twitch.chat("#test", "alice", "!boom")
    ask(twitch, "!version", "Version: ")
    [failure] = records(caplog, logging.ERROR, "'boom' failed")
    assert failure.exc_info and "RuntimeError" in caplog.text
    assert bot.exit_code is None and bot.thread.is_alive()


def test_a_handler_that_raises_does_not_stop_the_others(twitch, run_bot, caplog):
    bot = run_bot(make_config(twitch.port))

    def explode(connection, event):
        raise ValueError("handler bug")

    # A JOIN goes through the library's events (chat lines skip them: see test_chatline.py).
    bot.bot.reactor.add_global_handler("join", explode, -100)  # runs before the bot's own handler
    joined(twitch)
    handled(twitch, ":bob!bob@bob.tmi.twitch.tv JOIN #test")
    assert records(caplog, logging.ERROR, "handler explode failed on join")
    ask(twitch, "!count_viewers", "Viewer count: 1")  # the bot's own handler still counted bob
    assert bot.exit_code is None


def test_a_scheduled_job_that_raises_is_logged_once_and_not_rerun(twitch, run_bot, caplog):
    bot = run_bot(make_config(twitch.port))
    joined(twitch)
    calls, later = [], threading.Event()

    def failing_job():
        calls.append(time.monotonic())
        raise RuntimeError("job bug")

    with bot.bot.reactor.mutex:
        bot.bot.reactor.scheduler.execute_after(0, failing_job)
        bot.bot.reactor.scheduler.execute_after(0.3, later.set)  # several loop turns later
    wait_until(later.is_set, message="the later job")
    assert len(calls) == 1
    assert len(records(caplog, logging.ERROR, "failing_job")) == 1
    ask(twitch, "!version", "Version: ")


def test_a_line_that_never_ends_is_discarded_as_it_arrives(caplog):
    """Issue 9 item 3: 10 MB without a newline keep the buffer under the limit, then the bot answers."""
    harness = BotHarness().welcome()
    chunk = b"@tag=" + b"x" * 16379  # one read of the library's (16 KiB) per step
    for _ in range(640):  # 10 MiB
        harness.server.sendall(chunk)
        harness.step()
        assert len(harness.bot.connection.buffer) <= MAX_RECEIVED_LINE_BYTES
    harness.feed(b"still the same line\r\nPING :alive")
    assert "PONG alive" in harness.sent()
    assert records(caplog, logging.WARNING, "discarded a line of 10485")
    harness.say("alice", "!version")
    assert harness.replies()
