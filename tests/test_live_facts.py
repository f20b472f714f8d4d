"""Issue 15, end to end: ``python -m vbot`` as a subprocess with the fake token service
(tests/fake_auth.py), the scripted Helix (tests/fake_helix.py) and the scripted Twitch chat
server, as a streamer runs it: live and offline answers, the cache, the rate-limit bucket, a
hanging Helix, a 401 renewed once, a missing scope.

The rules themselves are tested on fake clocks (tests/test_streamfacts.py); these tests wait
for conditions and check the order of lines, never how long something took. ``pytest -s``
prints the transcript of the first test (chat as the server saw it, and Helix's calls).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.fake_helix import FOLLOWERS_SCOPE, FakeHelix
from tests.support import ScriptedServer, Vbot, wait_until
from tests.test_auth import assert_no_secret, bot_env
from vbot.tokens import Tokens, save_tokens

DAY = 86400
ALICE = "display-name=Alice;user-id=2002"
MOD = "badges=moderator/1;mod=1;display-name=Moddy;user-id=3003"
COMMANDS = """
[followage]
reply = "Followage of {target}: {followage}"
user_cooldown = 0
cooldown = 0

[stream]
reply = "{channel} plays {game}: {title} ({followers} followers)"
"""


@pytest.fixture
def helix(fake):
    """The scripted Helix, accepting the tokens the fake token service deems valid right now.

    #test (1001) is live with 1,234 viewers since 2h 14m; alice (2002) follows it since 430 days;
    the bot (vbot, 12345678) is one of its moderators.
    """
    with FakeHelix(accept=fake.is_valid, scopes_of=lambda token: fake.access_tokens[token].scopes) as server:
        for login, user_id in [("test", "1001"), ("alice", "2002"), ("bob", "2003"), ("moddy", "3003"),
                               ("vbot", "12345678")]:
            server.add_user(login, user_id)
        server.go_live("test", 1234, game="Chess", title="Blitz", started_at=time.time() - (2 * 3600 + 14 * 60))
        server.follow("test", "alice", time.time() - 430 * DAY)
        server.make_moderator("test", "12345678")
        yield server


def start(vbots, fake: FakeTwitchAuth, chat: ScriptedServer, helix: FakeHelix, tmp_path: Path,
          scopes=(*CHAT_SCOPES, FOLLOWERS_SCOPE)) -> Vbot:
    """``python -m vbot`` with a token file as ``vbot login`` leaves it and COMMANDS; returns once it joined."""
    access, refresh = fake.issue(scopes=scopes)
    save_tokens(tmp_path / "vbot-token.json",
                Tokens(access, refresh, time.time() + 14000, scopes, "vbot", "12345678", CLIENT_ID))
    (tmp_path / "commands.toml").write_text(COMMANDS)
    vbot = vbots(bot_env(fake, chat, tmp_path, VBOT_HELIX_URL=helix.url), tmp_path)
    wait_until(lambda: vbot.alive() and "JOIN #test" in chat.received, timeout=15, message="the bot to join")
    return vbot


def ask(chat: ScriptedServer, text: str, pattern: str, tags: str = ALICE, login: str = "alice") -> str:
    """Say ``text`` in #test; the text of the bot's next reply matching ``pattern``."""
    start = len(chat.received)
    chat.chat("#test", login, text, tags)
    return chat.wait_for(rf"^PRIVMSG #test :{pattern}", start=start).split(" :", 1)[1]


def test_live_then_offline_a_transcript(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    chat.send(":alice!alice@alice.tmi.twitch.tv JOIN #test")
    transcript = [
        ("alice", "!count_viewers", ask(chat, "!count_viewers", "Viewer count")),
        ("alice", "!uptime", ask(chat, "!uptime", "Live|Offline|Uptime")),
        ("alice", "!followage", ask(chat, "!followage", "Followage")),
        ("Moddy", "!followage @bob", ask(chat, "!followage @bob", "Followage of bob", MOD, "moddy")),
        ("Moddy", "!stream", ask(chat, "!stream", "test plays", MOD, "moddy")),
    ]
    assert [reply for _, _, reply in transcript] == [
        "Viewer count: 1,234 watching live, 1 in chat",
        "Live for 2h 14m",
        "Followage of Alice: 1 year 2 months",
        "Followage of bob: not following",
        "test plays Chess: Blitz (1 followers)",
    ]
    helix.go_offline("test")  # the cache keeps facts a minute: a new run of the bot shows offline at once
    vbot.stop()
    chat.received.clear()
    start(vbots, fake, chat, helix, tmp_path)
    offline = [("Moddy", text, ask(chat, text, "Viewer|Offline|Live", MOD, "moddy"))
               for text in ("!count_viewers", "!uptime")]
    assert [reply for _, _, reply in offline] == ["Viewer count: offline, 0 in chat", "Offline"]
    print("\n--- chat (the scripted server's view) ---")
    for name, text, reply in transcript + offline:
        print(f"<{name}> {text}\n<vbot> {reply}")
    print("--- Helix calls, in order ---\n" + "\n".join(helix.requests))
    assert_no_secret(fake, vbot.log())


def test_twenty_uptimes_in_ten_seconds_make_one_get_streams(fake, chat, helix, tmp_path, vbots):
    start(vbots, fake, chat, helix, tmp_path)
    replies = []
    for _ in range(20):
        replies.append(ask(chat, "!uptime", "Live for", MOD, "moddy"))  # a moderator: no cooldown
        time.sleep(0.1)
    assert set(replies) <= {"Live for 2h 14m", "Live for 2h 15m"} and len(replies) == 20
    assert helix.calls("/streams") == ["GET /streams?user_id=1001&first=100"]
    assert helix.calls("/users") == ["GET /users?login=test"]  # the broadcaster's ID, once, at start


def test_an_empty_bucket_holds_the_next_call_until_its_reset(fake, chat, tmp_path, vbots):
    """Twitch's bucket, small: 2 points per 2 s. The third call waits for the reset; Twitch never says 429."""
    with FakeHelix(accept=fake.is_valid, points=2, window=2) as helix:
        helix.add_user("test", "1001")
        helix.go_live("test", 5)
        start(vbots, fake, chat, helix, tmp_path)  # Get Users: 1 point
        assert ask(chat, "!uptime", "Live for", MOD, "moddy").startswith("Live for")  # Get Streams: the last
        assert ask(chat, "!stream", "test plays", MOD, "moddy") == "test plays Just Chatting: Hello chat (0 followers)"
        assert len(helix.calls("/channels/followers")) == 1
        assert 429 not in helix.answered


def test_a_hanging_helix_never_delays_pong_or_other_replies(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    helix.hang_for = 30
    helix.fail("/streams", "hang")
    start_at = len(chat.received)
    chat.chat("#test", "alice", "!uptime", ALICE)
    wait_until(lambda: helix.calls("/streams"), message="the bot to call Get Streams")
    chat.send("PING :tmi.twitch.tv")
    chat.chat("#test", "moddy", "!version", MOD)
    chat.wait_for(r"^PRIVMSG #test :Uptime not available right now$", start=start_at)
    lines = chat.received[start_at:]
    pong = next(index for index, line in enumerate(lines) if line.startswith("PONG"))
    version = next(index for index, line in enumerate(lines) if line.startswith("PRIVMSG #test :Version: "))
    uptime = lines.index("PRIVMSG #test :Uptime not available right now")
    assert pong < uptime and version < uptime  # answered while the call hung
    assert "Twitch's API is not answering (GET /streams: no complete answer within 5 s)" in vbot.log()


def test_a_401_renews_the_token_once_and_the_reply_comes(fake, chat, helix, tmp_path, vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path)
    wait_until(lambda: helix.calls("/users"), message="the broadcaster's ID")
    fake.expire(next(iter(fake.access_tokens)))  # Twitch no longer takes the token (e.g. it expired early)
    assert ask(chat, "!uptime", "Live for|Uptime") == "Live for 2h 14m"
    assert fake.count("token:refresh") == 1
    assert helix.answered[-2:] == [401, 200]
    assert "Twitch's API refused the token (GET /streams: HTTP 401: Invalid OAuth token); renewing it" in vbot.log()
    assert_no_secret(fake, vbot.log())


def test_a_missing_scope_warns_once_at_start_and_followage_is_not_available(fake, chat, helix, tmp_path,
                                                                             vbots):
    vbot = start(vbots, fake, chat, helix, tmp_path, scopes=CHAT_SCOPES)
    assert ask(chat, "!followage", "Followage") == "Followage of Alice: (not available)"
    assert ask(chat, "!uptime", "Live for") == "Live for 2h 14m"  # nothing else changes
    warnings = [line for line in vbot.log().splitlines() if " WARNING " in line]
    assert len(warnings) == 1 and warnings[0].endswith(
        '{followage} needs the token scope moderator:read:followers, which it lacks: run "vbot login" again; '
        'until then it shows (not available)')
    assert helix.calls("/channels/followers") == []
