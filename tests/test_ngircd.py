"""The bot against a real IRC server (ngircd, or miniircd where ngircd is missing: ``support.real_ircd``),
talked to through real client sockets; what only ngircd has is marked ``needs_ngircd``."""

from __future__ import annotations

import logging
import re
import signal

import pytest

from tests.support import TOKEN, BotThread, IrcClient, make_config, needs_ngircd, start_vbot, wait_until
from vbot import __version__

CHANNEL = "#test"
PASSWORD = f"oauth:{TOKEN}"


@pytest.fixture
def clients(ircd):
    """Make registered IRC clients on the server: ``clients("alice", join=True)``; all closed after."""
    made: list[IrcClient] = []

    def make(nick: str, join: bool = True) -> IrcClient:
        client = IrcClient(ircd.port, nick, PASSWORD)
        made.append(client)
        if join:
            client.join(CHANNEL)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def start_bot(ircd):
    """Start a BotThread on the server and wait until it is in #test; stopped after the test."""
    bots: list[BotThread] = []

    def start(**config) -> BotThread:
        bot = BotThread(make_config(ircd.port, **config)).start()
        bots.append(bot)
        wait_until(lambda: CHANNEL in bot.bot.channels, message="the bot to join #test")
        return bot

    yield start
    for bot in bots:
        bot.stop()


def bot_replies(client: IrcClient, start: int = 0) -> list[str]:
    """Texts of the bot's PRIVMSGs to #test that ``client`` received from index ``start`` on."""
    return [line.split(" :", 1)[1] for line in client.lines[start:]
            if re.match(rf"^:vbot!\S+ PRIVMSG {CHANNEL} :", line)]


def test_version(start_bot, clients, caplog):
    caplog.set_level(logging.INFO)
    start_bot()
    alice = clients("alice")
    start = alice.say(CHANNEL, "!version")
    assert alice.wait_for_reply(CHANNEL, "Version: .*", start) == f"Version: {__version__}"
    # the server does not know Twitch's capabilities: INFO on a plain IRC server (issue 12 item 6)
    refusals = [record for record in caplog.records if "twitch.tv/membership" in record.getMessage()]
    assert refusals and all(record.levelno == logging.INFO for record in refusals)


def test_count_viewers_after_three_join_and_one_parts(start_bot, clients):
    bot = start_bot()
    alice, bob, carol = clients("alice"), clients("bob"), clients("carol")
    wait_until(lambda: bot.bot.viewer_count(CHANNEL) == 3, message="three viewers")
    bob.part(CHANNEL)
    alice.wait_for(rf"^:bob!\S+ PART {CHANNEL}")
    wait_until(lambda: bot.bot.viewer_count(CHANNEL) == 2, message="two viewers")
    start = carol.say(CHANNEL, "!count_viewers")
    assert carol.wait_for_reply(CHANNEL, "Viewer count: .*", start) == "Viewer count: 2"


def test_count_excludes_the_bot_whatever_the_case_of_its_nick(start_bot, clients):
    bot = start_bot(username="VBot")
    alice = clients("alice")
    wait_until(lambda: "alice" in bot.bot.membership.members(CHANNEL), message="alice in the bot's list")
    assert bot.bot.connection.get_nickname() == "VBot"
    assert bot.bot.viewer_count(CHANNEL) == 1
    start = alice.say(CHANNEL, "!count_viewers")
    assert alice.wait_for_reply(CHANNEL, "Viewer count: .*", start) == "Viewer count: 1"


def test_viewer_who_quits_is_no_longer_counted(start_bot, clients):
    bot = start_bot()
    alice, bob = clients("alice"), clients("bob")
    wait_until(lambda: bot.bot.viewer_count(CHANNEL) == 2, message="two viewers")
    bob.send("QUIT :bye")
    alice.wait_for(r"^:bob!\S+ QUIT")
    wait_until(lambda: bot.bot.viewer_count(CHANNEL) == 1, message="one viewer")
    assert set(bot.bot.membership.members(CHANNEL).nicks()) == {"vbot", "alice"}


def test_non_owner_exit_is_ignored(start_bot, clients):
    bot = start_bot(owners=frozenset({"boss"}))
    alice = clients("alice")
    start = alice.say(CHANNEL, "!exit")
    alice.say(CHANNEL, "!version")
    alice.wait_for_reply(CHANNEL, "Version: .*", start)
    assert bot_replies(alice, start) == [f"Version: {__version__}"]
    assert bot.thread.is_alive() and bot.exit_code is None and bot.bot.exit_code is None
    assert not [line for line in alice.lines if re.match(r"^:vbot!\S+ QUIT", line)]


def test_bare_prefix_and_unknown_command_do_nothing(start_bot, clients):
    start_bot()
    alice = clients("alice")
    start = alice.say(CHANNEL, "!")
    alice.say(CHANNEL, "!nosuchcommand")
    alice.say(CHANNEL, "! version")
    alice.say(CHANNEL, "just chatting")
    alice.say(CHANNEL, "!count_viewers")
    alice.wait_for_reply(CHANNEL, "Viewer count: .*", start)
    assert bot_replies(alice, start) == ["Viewer count: 1"]


@needs_ngircd("miniircd has no channel operators")
def test_channel_operator_counts_as_moderator(start_bot, clients):
    chanop = clients("chanop")  # first in the channel: ngircd makes them operator
    bot = start_bot()
    wait_until(lambda: bot.bot.membership.members(CHANNEL).modes("chanop") == "o", message="the bot to see chanop's @")
    start = chanop.say(CHANNEL, "!exit")  # moderator is not enough for !exit
    chanop.say(CHANNEL, "!reload")        # moderators only
    chanop.wait_for_reply(CHANNEL, ".*custom commands.*", start)
    assert len(bot_replies(chanop, start)) == 1
    assert bot.bot.exit_code is None


def test_owner_exit_stops_with_quit(start_bot, clients):
    bot = start_bot(owners=frozenset({"boss"}))
    alice, boss = clients("alice"), clients("boss")
    wait_until(lambda: bot.bot.viewer_count(CHANNEL) == 2, message="two viewers")
    boss.say(CHANNEL, "!exit")
    bot.thread.join(10)
    assert not bot.thread.is_alive()
    assert bot.exit_code == 0
    assert re.match(r"^:vbot!\S+ QUIT :", alice.wait_for(r"^:vbot!\S+ QUIT"))
    assert not bot_replies(alice)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_answers_version_and_stops_on_signal(ircd, clients, tmp_path, signum):
    alice = clients("alice")
    env = {"VBOT_USERNAME": "VBot", "VBOT_TOKEN": PASSWORD, "VBOT_CHANNEL": "#Test", "VBOT_HOST": "127.0.0.1",
           "VBOT_PORT": str(ircd.port), "VBOT_TLS": "false", "VBOT_LOG_LEVEL": "DEBUG"}
    process = start_vbot(env, cwd=tmp_path)
    try:
        alice.wait_for(rf"^:vbot!\S+ JOIN :?{CHANNEL}$")
        start = alice.say(CHANNEL, "!version")
        assert alice.wait_for_reply(CHANNEL, "Version: .*", start) == f"Version: {__version__}"
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    alice.wait_for(r"^:vbot!\S+ QUIT")
    assert "INFO" in stderr and "logged in" in stderr
    assert "DEBUG" in stderr and "[REDACTED]" in stderr  # the library logs PASS at DEBUG
    assert TOKEN not in stderr and TOKEN not in stdout
    assert "Traceback" not in stderr


@needs_ngircd("miniircd answers a wrong PASS with 464 and stays connected")
def test_server_error_line_is_logged_with_its_reason(ircd, caplog):
    """ngircd refuses a wrong PASS with ERROR and closes: the log says why, then retries."""
    bot = BotThread(make_config(ircd.port, token="wrongtoken")).start()
    try:
        wait_until(lambda: any("server closed the connection: Access denied" in r.getMessage()
                               for r in caplog.records if r.levelno == logging.WARNING),
                   message="the ERROR reason in the log")
    finally:
        assert bot.stop() == 0
