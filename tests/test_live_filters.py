"""Issue 16, end to end: ``python -m vbot`` as a subprocess with the fake token service
(tests/fake_auth.py), the scripted Helix (tests/fake_helix.py) and the scripted Twitch chat
server, as a streamer runs it: a link, capitals and a blocked term acted on with the exact
Helix calls (path, query, body), escalation, exemptions, ``!permit``, log mode, the bot not a
moderator or its token without the scopes, a reload, 429, 409 and a full queue.

The rules are tested on fake clocks (tests/test_moderation.py, tests/test_enforcer.py); these
tests wait for conditions, never for a time. ``pytest -s`` prints the transcript of the first
test (chat as the server saw it, and the calls Helix saw).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from bench.throughput import FILTERS  # every filter on, at issue 16's settings
from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.fake_helix import BANS_SCOPE, DELETE_SCOPE, FakeHelix
from tests.support import ScriptedServer, Vbot, run_vbot, wait_until
from tests.test_auth import assert_no_secret, bot_env, login_env
from tests.test_enforcer import DELETE, ban
from vbot.tokens import Tokens, load_tokens, save_tokens

SCOPES = (*CHAT_SCOPES, BANS_SCOPE, DELETE_SCOPE)
USERS = {"test": "1001", "alice": "2002", "bob": "2003", "carol": "2004", "vicky": "2005", "moddy": "3003",
         "vbot": "12345678"}
ROLES = {"moddy": "badges=moderator/1;mod=1", "vicky": "badges=vip/1;vip=1", "test": "badges=broadcaster/1"}
_ids = itertools.count(1)


@pytest.fixture
def helix(fake):
    """The scripted Helix, taking the tokens the fake token service deems valid right now, with the
    scopes it issued them with. The bot (vbot, 12345678) is a moderator of #test (1001)."""
    with FakeHelix(accept=fake.is_valid, scopes_of=lambda token: fake.access_tokens[token].scopes) as server:
        populate(server)
        yield server


def populate(server: FakeHelix) -> None:
    for login, user_id in USERS.items():
        server.add_user(login, user_id)
    server.make_moderator("test", USERS["vbot"])


def start(vbots, fake: FakeTwitchAuth, chat: ScriptedServer, helix: FakeHelix, tmp_path: Path,
          commands: str = FILTERS, scopes=SCOPES) -> Vbot:
    """``python -m vbot`` with a token file as ``vbot login`` leaves it and ``commands``; returns once it joined."""
    access, refresh = fake.issue(scopes=scopes)
    save_tokens(tmp_path / "vbot-token.json",
                Tokens(access, refresh, time.time() + 14000, scopes, "vbot", USERS["vbot"], CLIENT_ID))
    (tmp_path / "commands.toml").write_text(commands)
    chat.room_id = USERS["test"]
    vbot = vbots(bot_env(fake, chat, tmp_path, VBOT_HELIX_URL=helix.url), tmp_path)
    wait_until(lambda: vbot.alive() and "JOIN #test" in chat.received, timeout=15, message="the bot to join")
    return vbot


def say(chat: ScriptedServer, login: str, text: str) -> str:
    """``login`` says ``text`` in #test with Twitch's tags (a fresh ``id``); returns that id."""
    message_id = f"00000000-0000-4000-8000-{next(_ids):012x}"
    tags = f"{ROLES.get(login, 'badges=')};display-name={login.capitalize()};id={message_id};user-id={USERS[login]}"
    chat.chat("#test", login, text, f"{tags};room-id={USERS['test']}")
    return message_id


def reply(chat: ScriptedServer, login: str, text: str, pattern: str) -> str:
    """``login`` says ``text``; the text of the bot's next reply matching ``pattern``."""
    start = len(chat.received)
    say(chat, login, text)
    return chat.wait_for(rf"^PRIVMSG #test :{pattern}", start=start).split(" :", 1)[1]


def calls(helix: FakeHelix, count: int) -> list[tuple[str, object]]:
    """The first ``count`` moderation calls, once that many arrived."""
    wait_until(lambda: len(helix.moderation_calls()) >= count, message=f"{count} moderation calls")
    return helix.moderation_calls()


def logged(vbot: Vbot, text: str) -> str:
    """The first log line holding ``text``, once it is there."""
    return wait_until(lambda: next((line for line in vbot.log().splitlines() if text in line), None),
                      message=f"a log line with {text!r}")


def warnings(vbot: Vbot) -> list[str]:
    return [line.split(" WARNING ", 1)[1] for line in vbot.log().splitlines() if " WARNING " in line]


def test_a_link_capitals_and_a_blocked_term_acted_on_a_transcript(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    start_at = len(chat.received)
    said = [("alice", "cheap viewers at example.com/x"), ("bob", "WHY IS NOBODY ANSWERING MY QUESTION"),
            ("alice", "get FREE FOLLOWERS now")]
    link = say(chat, *said[0])
    chat.wait_for(r"^PRIVMSG #test :@Alice, please ask a moderator before posting links \(message deleted\)$")
    caps = say(chat, *said[1])
    say(chat, *said[2])
    assert calls(helix, 3) == [
        (DELETE + link, None),
        (DELETE + caps, None),
        ban(10, 2, "terms"),
    ]
    assert helix.answered[-3:] == [204, 204, 200]
    for line in ("#test: delete alice's message (links), offence 1",
                 "#test: delete bob's message (caps), offence 1",
                 "#test: time out alice for 10 s (terms), offence 2"):
        assert " INFO vbot.enforcer: " + line in logged(vbot, line)
    assert not any("FREE FOLLOWERS" in line for line in vbot.log().splitlines() if " DEBUG " not in line)
    print("\n--- chat: what the chatters said, then what the bot sent (the scripted server's view) ---")
    for login, text in said:
        print(f"<{login}> {text}")
    for line in chat.received[start_at:]:
        print(line)
    print("--- Helix's moderation calls, in order ---")
    for line, body in helix.moderation_calls():
        print(line + (f"  {body}" if body else ""))
    print("--- vbot's log (INFO and up) ---")
    for line in vbot.log().splitlines():
        if " DEBUG " not in line and (" vbot.moderation: " in line or " vbot.enforcer: " in line):
            print(line)
    assert warnings(vbot) == []
    assert_no_secret(fake, vbot.log())


def test_escalation_exemptions_permit_and_no_command_from_a_broken_message(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    first = say(chat, "alice", "see example.com")
    say(chat, "alice", "see example.com")
    say(chat, "alice", "see example.com")
    say(chat, "alice", "!version at example.com")  # broke a filter: never runs a command
    assert calls(helix, 4) == [(DELETE + first, None), ban(10, 2), ban(600, 3), ban(600, 4)]
    for exempt in ("moddy", "vicky", "test"):  # moderators and the broadcaster always, VIPs by exempt = ["vip"]
        assert reply(chat, exempt, "!version see example.com", "Version").startswith("Version: ")
    say(chat, "bob", "clips at clips.twitch.tv/x")  # an allowed domain
    assert reply(chat, "moddy", "!permit bob", "bob may") == "bob may post links for the next 60 s."
    say(chat, "bob", "my site: example.com")
    carol = say(chat, "carol", "\x01ACTION my site: example.com\x01")  # a /me line is checked too
    assert calls(helix, 5)[4] == (DELETE + carol, None)
    logged(vbot, "#test: delete carol's message (links), offence 1")
    assert not [line for line in vbot.log().splitlines() if "bob's message" in line or "out bob" in line]
    assert len([line for line in chat.received if line.startswith("PRIVMSG #test :Version: ")]) == 3


@pytest.mark.parametrize("problem", ["not a moderator", "token without the scopes"])
def test_without_moderator_or_scopes_filters_only_log_with_one_warning(fake, chat, helix, tmp_path, vbots, problem):
    if problem == "not a moderator":
        chat.userstate_badges = ""
        helix.moderators.clear()
        vbot = start(vbots, fake, chat, helix, tmp_path)
        fix = "the bot is not a moderator there: the broadcaster types /mod vbot in that chat"
    else:
        vbot = start(vbots, fake, chat, helix, tmp_path, scopes=CHAT_SCOPES)
        fix = ('the token lacks the moderator:manage:banned_users and moderator:manage:chat_messages scopes: '
               'run "vbot login" again, which asks for the filters\' scopes')
    logged(vbot, "spam filters in #test only log")  # at the JOIN, before any spam
    say(chat, "alice", "see example.com")
    say(chat, "alice", "SEE EXAMPLE.COM NOW EVERYONE HERE")
    logged(vbot, "#test: would time out alice for 10 s (links), offence 2")
    assert reply(chat, "moddy", "!version", "Version").startswith("Version: ")
    assert warnings(vbot) == [f"vbot.enforcer: spam filters in #test only log, as in log mode: {fix}"]
    assert helix.moderation_calls() == []
    assert not [line for line in chat.received if line.startswith("PRIVMSG #test :@Alice")]  # nothing was done


def test_log_mode_calls_nothing_then_a_reload_acts_counting_afresh(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path, commands=FILTERS.replace("[filters]", '[filters]\nmode = "log"'))
    say(chat, "alice", "see example.com")
    say(chat, "alice", "see example.com")
    logged(vbot, "#test: would time out alice for 10 s (links), offence 2")
    (tmp_path / "commands.toml").write_text(FILTERS)
    assert reply(chat, "moddy", "!reload", "Reload") == (
        "Reloaded 0 custom commands and filters: links, terms, emotes, caps, symbols, repeat, length.")
    message = say(chat, "alice", "see example.com")
    assert calls(helix, 1) == [(DELETE + message, None)]  # the first real offence: log mode's never count
    chat.wait_for(r"^PRIVMSG #test :@Alice, please ask a moderator before posting links \(message deleted\)$")
    assert helix.calls("/users") == ["GET /users?login=test"]
    assert warnings(vbot) == []


def test_a_broken_reload_keeps_the_filters_and_the_offences(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    message = say(chat, "alice", "see example.com")
    assert calls(helix, 1) == [(DELETE + message, None)]
    (tmp_path / "commands.toml").write_text(FILTERS + "[filters.nope]\n")
    assert reply(chat, "moddy", "!reload", "Reload").startswith("Reload failed, kept the old commands: commands.toml:")
    say(chat, "alice", "see example.com")
    assert calls(helix, 2)[1] == ban(10, 2)
    assert warnings(vbot) == [line for line in warnings(vbot) if "reload failed" in line]


def test_429_actions_wait_for_the_reset_in_order_and_409_is_no_error(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    helix.fail("/moderation/chat", "429")  # the bucket is said to be empty for a second
    ids = [say(chat, login, "see example.com") for login in ("alice", "bob", "carol")]
    assert calls(helix, 4) == [(DELETE + ids[0], None), (DELETE + ids[0], None), (DELETE + ids[1], None),
                               (DELETE + ids[2], None)]
    assert helix.answered[-4:] == [429, 204, 204, 204]
    helix.fail("/moderation/bans", "409")  # another moderator is timing alice out right now
    say(chat, "alice", "see example.com")
    say(chat, "bob", "see example.com")
    assert calls(helix, 6)[4:] == [ban(10, 2), ban(10, 2, user_id=USERS["bob"])]
    wait_until(lambda: helix.answered[-2:] == [409, 200], message="both answers")
    assert reply(chat, "moddy", "!version", "Version").startswith("Version: ")
    assert [line for line in warnings(vbot) if "vbot.enforcer" in line] == []
    assert len([line for line in warnings(vbot) if "rate limit reached" in line]) == 1


def test_a_full_queue_drops_the_oldest_with_one_warning(fake, chat, tmp_path, vbots):
    """Twitch's bucket, tiny: 2 points a minute, one for the start's Get Users and one for the first
    delete; then 100 actions wait and the 101st and 102nd push out the oldest."""
    with FakeHelix(accept=fake.is_valid, scopes_of=lambda token: fake.access_tokens[token].scopes, points=2,
                   window=60) as helix:
        populate(helix)
        vbot = start(vbots, fake, chat, helix, tmp_path)
        wait_until(lambda: helix.calls("/users"), message="the broadcaster's ID")
        for number in range(103):
            say(chat, ("alice", "bob", "carol")[number % 3], f"see example{number}.com")
            if number == 0:  # the first delete takes the last point; the rest wait, whatever the machine's load
                wait_until(lambda: helix.moderation_calls(), message="the first delete")
        line = logged(vbot, "dropping the oldest")
        assert line.endswith(" WARNING vbot.enforcer: 100 moderation actions wait for Twitch's API: dropping the "
                             "oldest, delete bob's message (links) in #test")
        logged(vbot, "#test: time out carol for 600 s (links), offence 34")
        assert len([line for line in warnings(vbot) if "dropping the oldest" in line]) == 1
        assert len(helix.moderation_calls()) == 1 and 429 not in helix.answered


@pytest.mark.parametrize("commands, scopes", [
    ('[filters]\nmode = "log"\n[x]\nreply = "{followage}"\n',
     (*CHAT_SCOPES, "moderator:read:followers", BANS_SCOPE, DELETE_SCOPE)),
    ('[x]\nreply = "hi"\n', CHAT_SCOPES),
])
def test_vbot_login_asks_for_the_moderation_scopes_when_the_commands_file_has_filters(tmp_path, commands, scopes):
    (tmp_path / "commands.toml").write_text(commands)
    with FakeTwitchAuth(interval=1, pending_polls=0) as fake:
        result = run_vbot(login_env(fake), "login", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_tokens(tmp_path / "vbot-token.json").scopes == scopes
    asked = f"Asking for {BANS_SCOPE} {DELETE_SCOPE} too: the spam filters need them (docs/filters.md)"
    assert (asked in result.stdout) is (len(scopes) > 2)
