"""Stream facts as chat sees them (vbot/facts.py): VBOT_HELIX_URL, the texts of !count_viewers,
!uptime and the fact variables, timers' live_only, the console's /live and /offline, and the
scopes ``vbot login`` asks for. Helix itself: tests/test_helix.py, tests/test_streamfacts.py,
and end to end tests/test_live_facts.py."""

from __future__ import annotations

import pytest

from tests.fake_auth import FakeTwitchAuth
from tests.support import FakeClock, run_vbot
from tests.test_auth import login_env
from tests.test_config import settings
from tests.test_console import console, in_process_console
from tests.test_custom import Host, dispatcher_for, write
from vbot.chat import ChatMessage, Role
from vbot.commands import builtin_table
from vbot.config import ConfigError, load_config
from vbot.custom import CommandsFileError, file_needs, read_file
from vbot.dispatch import Dispatcher
from vbot.facts import CHANNEL, FOLLOWAGE, FOLLOWERS, STREAM, ConsoleFacts, NoFacts
from vbot.state import CountStore
from vbot.timers import Timer, TimerSchedule
from vbot.tokens import load_tokens

# --- VBOT_HELIX_URL ---------------------------------------------------------------------------------

LOOPBACK = {"VBOT_HOST": "127.0.0.1", "VBOT_AUTH_URL": "http://127.0.0.1:8080/oauth2"}


@pytest.mark.parametrize("overrides, uses", [
    ({}, True),  # Twitch's host
    ({"VBOT_HOST": "irc.example.net"}, False),  # a plain IRC server: nothing changes
    (LOOPBACK, False),  # a token service alone does not turn stream facts on
    ({**LOOPBACK, "VBOT_HELIX_URL": "http://127.0.0.1:8081/helix/"}, True),
    ({"VBOT_USERNAME": "justinfan123", "VBOT_TOKEN": None}, False),  # anonymous: no token for the API
])
def test_helix_is_used_on_twitch_or_when_set(overrides, uses):
    config = load_config(settings(**overrides))
    assert config.uses_helix is uses
    assert config.helix_url == overrides.get("VBOT_HELIX_URL", "https://api.twitch.tv/helix").rstrip("/")


@pytest.mark.parametrize("url", ["http://api.example.test/helix", "api.twitch.tv/helix", "https://x/h?a=1",
                                 "ftp://127.0.0.1/helix"])
def test_helix_url_must_be_https_or_loopback(url):
    with pytest.raises(ConfigError) as caught:
        load_config(settings(VBOT_HELIX_URL=url))
    assert str(caught.value).startswith("VBOT_HELIX_URL must be an https:// URL") and "\n" not in str(caught.value)


def test_helix_url_off_twitch_needs_a_token_service():
    with pytest.raises(ConfigError, match=r"^VBOT_HELIX_URL needs a token vbot checks with a token service"):
        load_config(settings(VBOT_HOST="127.0.0.1", VBOT_HELIX_URL="http://127.0.0.1:8081/helix"))


# --- what commands say -----------------------------------------------------------------------------


def ask(facts, text: str, viewers: int = 3, login: str = "alice", tags=None, dispatcher=None) -> str | None:
    """``text`` from ``login``, a moderator (no cooldowns), in #test with ``viewers`` chatters."""
    host = Host(viewers, facts=facts)
    message = ChatMessage("#test", login, text, Role.MODERATOR, tags=tags or {"user-id": "2002"})
    return (dispatcher or Dispatcher(builtin_table(), "!", cooldowns=None)).handle(message, host)


def test_without_facts_count_viewers_answers_as_before_and_uptime_says_not_available():
    assert ask(NoFacts(), "!count_viewers") == "Viewer count: 3"
    assert ask(NoFacts(), "!uptime") == "Uptime not available right now"


def test_count_viewers_and_uptime_live_and_offline():
    clock = FakeClock()
    facts = ConsoleFacts(clock)
    facts.go_live(1234, "Chess")
    clock.advance(2 * 3600 + 14 * 60 + 59)
    assert ask(facts, "!count_viewers", viewers=56) == "Viewer count: 1,234 watching live, 56 in chat"
    assert ask(facts, "!uptime") == "Live for 2h 14m"
    facts.go_offline()
    assert ask(facts, "!count_viewers", viewers=12) == "Viewer count: offline, 12 in chat"
    assert ask(facts, "!uptime") == "Offline"


VARIABLES_FILE = """
[stream]
reply = "{game}: {title} | up {uptime} | {live_viewers} live, {viewers} in chat | {followers} followers"
[followage]
reply = "{target} has followed for {followage}"
"""


def test_fact_variables_live_offline_and_not_available(tmp_path):
    dispatcher = dispatcher_for(tmp_path, VARIABLES_FILE)
    clock = FakeClock()
    facts = ConsoleFacts(clock)
    assert ask(facts, "!stream", dispatcher=dispatcher) == (
        "(not available): (not available) | up (not available) | (not available) live, 3 in chat "
        "| (not available) followers")
    facts.go_live(1234, "Chess")
    clock.advance(3660)
    assert ask(facts, "!stream", dispatcher=dispatcher) == (
        "Chess:  | up 1h 1m | 1,234 live, 3 in chat | (not available) followers")
    facts.go_offline()
    assert ask(facts, "!stream", dispatcher=dispatcher).startswith("Chess:  | up offline | 0 live")
    assert ask(facts, "!followage @Bob", dispatcher=dispatcher) == "Bob has followed for (not available)"


def test_the_needs_of_commands_and_timers(tmp_path):
    path = write(tmp_path, VARIABLES_FILE + '[timers.t]\nmessage = "{uptime}"\ninterval = 60\n'
                                            '[timers.live]\nmessage = "hi"\ninterval = 60\nlive_only = true\n')
    loaded = read_file(path, True, builtin_table(), CountStore(tmp_path / "s"))
    assert file_needs(loaded.commands, ()) == {STREAM, CHANNEL, FOLLOWERS, FOLLOWAGE}
    assert [(timer.needs, timer.live_only) for timer in loaded.timers] == [({STREAM}, False), ({STREAM}, True)]


@pytest.mark.parametrize("entry, problem", [
    ('message = "{followage}"\ninterval = 60', "{followage} has no value in a timer"),
    ('message = "hi"\ninterval = 60\nlive_only = "yes"', "live_only: must be true or false"),
])
def test_timer_fact_errors(tmp_path, entry, problem):
    path = write(tmp_path, f"[timers.t]\n{entry}\n")
    with pytest.raises(CommandsFileError) as caught:
        read_file(path, True, builtin_table(), CountStore(tmp_path / "s"))
    assert problem in str(caught.value)


def test_a_custom_command_cannot_take_the_name_uptime(tmp_path):
    with pytest.raises(CommandsFileError, match=r"\[uptime\]: 'uptime' is already a built-in command"):
        dispatcher_for(tmp_path, '[uptime]\nreply = "mine"\n')


def test_a_custom_reply_with_followage_uses_the_senders_id_or_the_target(tmp_path):
    asked = []

    class Recording(NoFacts):
        def answer(self, channel, needs, render, subject=None):
            asked.append((channel, set(needs), subject))
            return super().answer(channel, needs, render, subject)

    dispatcher = dispatcher_for(tmp_path, VARIABLES_FILE)
    ask(Recording(), "!followage", dispatcher=dispatcher)
    ask(Recording(), "!followage @Bob extra", login="carol", dispatcher=dispatcher)
    ask(Recording(), "!followage \u3164", login="dave", dispatcher=dispatcher)  # a blank-looking target: the sender
    assert [(entry[1], entry[2].login, entry[2].user_id) for entry in asked] == [
        ({FOLLOWAGE}, "alice", "2002"), ({FOLLOWAGE}, "bob", ""), ({FOLLOWAGE}, "dave", "2002")]


# --- timers ------------------------------------------------------------------------------------------


def test_a_live_only_timer_waits_while_unknown_or_offline_and_posts_once_live():
    clock = FakeClock()
    facts = ConsoleFacts(clock)
    timer = Timer("live", ("We are live!",), 60.0, min_lines=0, live_only=True, needs=frozenset({STREAM}))
    plain = Timer("plain", ("hello",), 60.0, min_lines=0)
    schedule = TimerSchedule([timer, plain], ["#test"], clock=clock, gap=0)
    schedule.facts = facts
    clock.advance(60)
    assert [post.timer.name for post in schedule.take_due()] == ["plain"]
    assert schedule.wait_time() == 60  # the held timer does not make the loop spin; it is asked every second
    clock.advance(60)
    facts.go_offline()
    assert [post.timer.name for post in schedule.take_due()] == ["plain"]
    facts.go_live(10)
    assert [post.timer.name for post in schedule.take_due()] == ["live"]  # at once, without a new interval
    assert "only while live" in schedule.states()[0].describe()


def test_a_timer_with_fact_variables_waits_for_the_facts():
    clock = FakeClock()
    facts = ConsoleFacts(clock)
    timer = Timer("t", ("{game}",), 60.0, min_lines=0, needs=frozenset({CHANNEL}))
    schedule = TimerSchedule([timer], ["#test"], clock=clock)
    clock.advance(60)
    assert schedule.take_due() == []  # no facts at all: waits
    schedule.facts = facts
    assert schedule.take_due() == []
    facts.go_offline()
    assert len(schedule.take_due()) == 1


# --- the console -------------------------------------------------------------------------------------


def test_console_live_and_offline(tmp_path):
    lines = ("!count_viewers\n!uptime\n/join alice\n/live 1234 Just Chatting\n!count_viewers\n/wait 8040\n"
             "!uptime\n/offline\n!uptime\n/live\n/live many\n")
    result = console(lines, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "vbot: Viewer count: 0",
        "vbot: Uptime not available right now",
        "vbot: Viewer count: 1,234 watching live, 1 in chat",
        "vbot: Live for 2h 14m",
        "vbot: Offline",
    ]
    assert "* #console is live from now with 1,234 viewers, in Just Chatting" in result.stderr
    assert "* #console is offline" in result.stderr
    assert result.stderr.count("usage: /live <viewers> [game]") == 2


def test_console_live_only_timer(tmp_path):
    host, stdout, _ = in_process_console(
        tmp_path, '[timers.live]\nmessage = "Live in {game} for {uptime}!"\ninterval = 60\nmin_lines = 0\n'
                  'live_only = true\n')
    host.handle_line("/wait 120")
    assert stdout.getvalue() == ""
    host.handle_line("/live 5 Chess")  # due since long: posts at once
    assert stdout.getvalue() == "vbot: Live in Chess for 0s!\n"


# --- vbot login asks for the scopes the commands need -------------------------------------------------


@pytest.mark.parametrize("reply, scopes", [
    ("{followage}", ("chat:read", "chat:edit", "moderator:read:followers")),
    ("{uptime} {followers}", ("chat:read", "chat:edit")),
])
def test_vbot_login_asks_for_the_scopes_of_the_commands_file(tmp_path, reply, scopes):
    (tmp_path / "commands.toml").write_text(f'[x]\nreply = "{reply}"\n')
    with FakeTwitchAuth(interval=1, pending_polls=0) as fake:
        result = run_vbot(login_env(fake), "login", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_tokens(tmp_path / "vbot-token.json").scopes == scopes
    assert ("Asking for moderator:read:followers too: commands.toml needs it" in result.stdout) is (len(scopes) > 2)
    assert not (tmp_path / "vbot-state.sqlite3").exists()


def test_vbot_login_with_a_broken_commands_file_stops(tmp_path):
    (tmp_path / "commands.toml").write_text("[x]\nreply = 1\n")
    with FakeTwitchAuth(interval=1, pending_polls=0) as fake:
        result = run_vbot(login_env(fake), "login", cwd=tmp_path)
        assert fake.requests == []
    assert result.returncode == 2 and "commands.toml: [x] reply: must be a non-empty string" in result.stderr
