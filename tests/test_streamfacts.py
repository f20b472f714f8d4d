"""StreamFacts (vbot/streamfacts.py) on fake clocks: the cache, replies held for facts, the bucket,
followage's scope and moderator rules, against the scripted Helix (tests/fake_helix.py) with the
real token keeper; calls run at once (``run_now``) or are held (``HeldJobs``) as a hanging Helix."""

from __future__ import annotations

import logging

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fake_auth import CHAT_SCOPES
from tests.fake_helix import FOLLOWERS_SCOPE, FakeHelix
from tests.support import FakeClock
from tests.test_auth import HeldJobs, file_tokens, run_now, service_for
from vbot.facts import (
    CHANNEL,
    FOLLOWAGE,
    FOLLOWERS,
    STREAM,
    ChannelInfo,
    Follow,
    Known,
    Subject,
    uptime_text,
    viewers_text,
)
from vbot.helix import Calls, HelixClient
from vbot.keeper import TokenKeeper
from vbot.streamfacts import FRESH, USABLE_FOR, StreamFacts, read_channels, read_follow, read_streams, read_users

EPOCH = 1_800_000_000.0
UPTIME = 2 * 3600 + 14 * 60  # live for 2h 14m
DAY = 86400


class World:
    """StreamFacts for #test and #other, the scripted Helix and the keeper, on fake clocks.

    Users: test (1001), other (1002), alice (2002), bob (2003), the bot vbot (12345678).
    #test is live with 1,234 viewers since UPTIME seconds; alice follows it since 430 days.
    """

    def __init__(self, fake, tmp_path, scopes=(*CHAT_SCOPES, FOLLOWERS_SCOPE), submit=run_now, **helix_options):
        self.clock, self.wall = FakeClock(), FakeClock(EPOCH)
        tokens, path = file_tokens(fake, tmp_path, self.clock, scopes=scopes)
        self.keeper = TokenKeeper(service_for(fake), tokens, path, clock=self.clock, submit=run_now)
        self.helix = FakeHelix(accept=fake.is_valid, scopes_of=lambda token: fake.access_tokens[token].scopes,
                               clock=self.wall, **helix_options).start()
        for login, user_id in [("test", "1001"), ("other", "1002"), ("alice", "2002"), ("bob", "2003"),
                               ("vbot", "12345678")]:
            self.helix.add_user(login, user_id)
        self.helix.go_live("test", 1234, game="Chess", title="Blitz", started_at=EPOCH - UPTIME)
        self.helix.follow("test", "alice", EPOCH - 430 * DAY)
        self.helix.make_moderator("test", "12345678")
        self.calls = Calls(HelixClient(self.helix.url, deadline=2), self.keeper, clock=self.clock,
                           wall_clock=self.wall, submit=submit)
        self.facts = StreamFacts(self.calls, ["#test", "#other"], clock=self.clock, wall_clock=self.wall)
        self.facts.note_bot_role("#test", True)

    def advance(self, seconds: float) -> list[tuple[str, str]]:
        """Let ``seconds`` pass on both clocks, then one tick; the replies it made."""
        self.clock.advance(seconds)
        self.wall.advance(seconds)
        return self.facts.tick()

    def calls_to(self, path: str) -> int:
        return len(self.helix.calls(path))

    def ask(self, needs, render=None, channel="#test", subject=None) -> str | None:
        return self.facts.answer(channel, frozenset(needs), render or uptime_text, subject)


@pytest.fixture
def world(fake, tmp_path):
    made: list[World] = []

    def make(**options) -> World:
        made.append(World(fake, tmp_path, **options))
        return made[-1]

    yield make
    for each in made:
        each.helix.stop()


def followage(known: Known) -> str:
    return known.followage()


def test_broadcaster_ids_are_looked_up_once_for_all_channels(world):
    w = world()
    assert w.facts.tick() == []
    w.advance(FRESH * 10)
    assert w.helix.requests == ["GET /users?login=other&login=test"]


def test_a_reply_waits_for_get_streams_then_twenty_are_answered_from_the_cache(world):
    w = world()
    w.facts.tick()
    assert w.ask({STREAM}) is None  # the call starts at once; the reply comes from the next tick
    assert w.facts.tick() == [("#test", "Live for 2h 14m")]
    answers = []
    for _ in range(20):  # 20 !uptime in 10 s
        answers.append(w.ask({STREAM}))
        w.advance(0.5)
    assert set(answers) == {"Live for 2h 14m"}
    assert w.calls_to("/streams") == 1
    w.advance(FRESH)
    assert w.ask({STREAM}) is None and w.calls_to("/streams") == 2  # a minute later: asked again


def test_count_viewers_live_then_offline_with_the_game_from_channel_information(world):
    w = world()
    w.facts.tick()
    render = lambda known: viewers_text(known.stream, 56) + f" | {known.game()} | {known.title()}"  # noqa: E731
    assert w.ask({STREAM, CHANNEL}, render) is None
    assert w.facts.tick() == [("#test", "Viewer count: 1,234 watching live, 56 in chat | Chess | Blitz")]
    assert w.calls_to("/channels") == 0  # while live, game and title come with the stream
    w.helix.go_offline("test")
    w.advance(FRESH)
    assert w.ask({STREAM, CHANNEL}, render) is None
    w.facts.tick()  # Get Streams said offline; Get Channel Information follows
    assert w.facts.tick() == [("#test", "Viewer count: offline, 56 in chat | Chess | Blitz")]
    assert w.calls_to("/streams") == 2 and w.calls_to("/channels") == 1


def test_one_get_streams_for_several_channels(world):
    w = world()
    w.facts.tick()
    assert w.ask({STREAM}) is None and w.ask({STREAM}, channel="#other") is None
    assert sorted(w.facts.tick()) == [("#other", "Offline"), ("#test", "Live for 2h 14m")]
    assert [call.split("?")[1] for call in w.helix.calls("/streams")] == ["user_id=1001&first=100",
                                                                          "user_id=1002&first=100"]


def test_get_streams_batches_what_is_wanted_together(world):
    held = HeldJobs()
    w = world(submit=held)
    w.facts.tick()  # Get Users, in flight while chat asks
    assert w.ask({STREAM}) is None and w.ask({STREAM}, channel="#other") is None
    held.run()
    w.facts.tick()
    held.run()
    assert sorted(w.facts.tick()) == [("#other", "Offline"), ("#test", "Live for 2h 14m")]
    assert w.helix.calls("/streams") == ["GET /streams?user_id=1001&user_id=1002&first=100"]


def test_a_hanging_helix_answers_when_the_wait_is_over_with_what_is_known(world):
    held = HeldJobs()
    w = world(submit=held)
    w.facts.tick()
    held.run()
    w.facts.tick()
    assert w.ask({STREAM}) is None
    held.run()
    assert w.facts.tick() == [("#test", "Live for 2h 14m")]
    w.advance(FRESH + 30)  # stale but usable; now Helix hangs (the job is never run)
    assert w.ask({STREAM}) is None
    assert w.advance(4.9) == []
    assert w.advance(0.1) == [("#test", "Live for 2h 15m")]  # after the call's 5 s, from the cache
    w.advance(USABLE_FOR)  # too old to show: not available
    assert w.ask({STREAM}) is None  # the hung call still runs: the reply waits for it, as long as it may
    assert w.advance(5) == [("#test", "Uptime not available right now")]


def test_a_failed_call_answers_at_once_and_is_not_repeated_within_the_minute(world):
    w = world()
    w.facts.tick()
    w.helix.fail("/streams", "500")
    assert w.ask({STREAM}) is None
    assert w.facts.tick() == [("#test", "Uptime not available right now")]
    assert w.ask({STREAM}) == "Uptime not available right now" and w.calls_to("/streams") == 1
    w.advance(FRESH)
    assert w.ask({STREAM}) is None and w.facts.tick() == [("#test", "Live for 2h 15m")]


def test_the_bucket_holds_calls_until_its_reset_and_twitch_never_says_429(world):
    w = world(points=2, window=30)  # Twitch's bucket, small: 2 calls per 30 s
    w.facts.tick()  # Get Users: 1 point
    assert w.ask({STREAM}) is None  # Get Streams: the last point
    assert w.facts.tick() == [("#test", "Live for 2h 14m")]
    assert w.ask({FOLLOWERS}, lambda known: known.followers_total()) is None
    assert w.advance(4) == []
    replies = w.advance(1)  # the reply's wait is over: not available, and still no call
    assert replies == [("#test", "(not available)")] and w.calls_to("/channels/followers") == 0
    w.advance(25)  # the bucket's reset: the wanted fact is fetched
    assert w.ask({FOLLOWERS}, lambda known: known.followers_total()) == "1"
    assert w.calls_to("/channels/followers") == 1 and 429 not in w.helix.answered


def test_a_429_does_not_count_and_the_call_is_made_after_the_reset(world):
    w = world()
    w.facts.tick()
    w.helix.fail("/streams", "429")
    assert w.ask({STREAM}) is None
    assert w.facts.tick() == []  # rate limited: the reply keeps waiting
    assert w.advance(1) == []  # the bucket's reset: asked again
    assert w.facts.tick() == [("#test", "Live for 2h 14m")]  # within the reply's wait
    assert w.helix.answered == [200, 429, 200]


def test_followage_of_the_sender_from_the_tags_and_of_a_target_by_login(world):
    w = world()
    w.facts.tick()
    alice = Subject("alice", "2002")
    assert w.ask({FOLLOWAGE}, followage, subject=alice) is None
    assert w.facts.tick() == [("#test", "1 year 2 months")]
    assert w.helix.calls("/channels/followers") == ["GET /channels/followers?broadcaster_id=1001&user_id=2002"]
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("bob")) is None  # a {target}: its ID first
    w.facts.tick()
    assert w.facts.tick() == [("#test", "not following")]
    assert w.helix.calls("/users")[-1] == "GET /users?login=bob"
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("nosuchuser")) is None
    assert w.facts.tick() == [("#test", "not following")]
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("not-a-login!")) == "not following"


def test_followage_needs_the_scope_one_warning_then_not_available(world, caplog):
    w = world(scopes=CHAT_SCOPES)
    w.facts.check_scopes({FOLLOWAGE, STREAM})
    w.facts.tick()
    for _ in range(3):
        assert w.ask({FOLLOWAGE}, followage, subject=Subject("alice", "2002")) == "(not available)"
    assert w.calls_to("/channels/followers") == 0
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ['{followage} needs the token scope moderator:read:followers, which it lacks: '
                        'run "vbot login" again; until then it shows (not available)']


def test_followage_needs_the_bot_to_be_a_moderator(world, caplog):
    w = world()
    w.facts.note_bot_role("#test", False)
    w.facts.tick()
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("alice", "2002")) == "(not available)"
    assert "{followage} in #test needs the bot to be a moderator there (the broadcaster types /mod vbot)" \
        in caplog.text
    w.facts.note_bot_role("#test", True)
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("alice", "2002")) is None
    assert w.facts.tick() == [("#test", "1 year 2 months")]


def test_the_broadcasters_own_bot_may_ask_followage(world):
    w = world()
    w.helix.add_user("vbot", "12345678")
    w.facts = StreamFacts(w.calls, ["#vbot"], clock=w.clock, wall_clock=w.wall)  # the bot's own channel
    w.facts.tick()
    assert w.ask({FOLLOWAGE}, followage, channel="#vbot", subject=Subject("alice", "2002")) is None
    assert w.facts.tick() == [("#vbot", "not following")]


def test_followers_total(world):
    w = world()
    w.facts.tick()
    assert w.ask({FOLLOWERS}, lambda known: known.followers_total()) is None
    assert w.facts.tick() == [("#test", "1")]
    assert w.helix.calls("/channels/followers") == ["GET /channels/followers?broadcaster_id=1001&first=1"]


def test_timers_ask_whether_live_and_wait_while_unknown(world):
    w = world()
    assert w.facts.is_live("#test") is None  # not known yet: asked for
    w.facts.tick()  # broadcaster IDs
    assert w.facts.is_live("#test") is None
    w.facts.tick()  # Get Streams
    assert w.facts.is_live("#test") is True and w.facts.is_live("#other") is None
    w.facts.tick()
    assert w.facts.is_live("#other") is False
    assert w.facts.ready("#test", frozenset({STREAM, CHANNEL})) and not w.facts.ready("#test", frozenset({FOLLOWERS}))


def test_a_reply_that_raises_is_logged_and_the_others_go_on(world, caplog):
    w = world()
    w.facts.tick()

    def boom(known: Known) -> str:
        raise RuntimeError("boom")

    assert w.ask({STREAM}, boom) is None
    assert w.ask({STREAM}) == "Live for 2h 14m"  # the facts have arrived meanwhile
    assert w.facts.tick() == []
    assert "a reply waiting for stream facts in #test failed" in caplog.text and "RuntimeError: boom" in caplog.text
    assert w.ask({STREAM}) == "Live for 2h 14m"


def test_an_unexpected_reply_is_skipped_with_one_warning(world, caplog):
    w = world()
    w.facts.tick()
    w.helix.streams["1001"]["viewer_count"] = "many"
    assert w.ask({STREAM}) is None
    assert w.facts.tick() == [("#test", "Uptime not available right now")]
    assert "Twitch's API answered GET /streams with an unexpected reply" in caplog.text


def test_a_channel_twitch_has_no_user_for_is_one_warning_at_start(world, caplog):
    """Trial: a misspelt VBOT_CHANNEL (mychanel) was silent, and !uptime there "not available" forever."""
    w = world()
    w.facts = StreamFacts(w.calls, ["#test", "#mychanel"], clock=w.clock, wall_clock=w.wall)
    w.facts.note_bot_role("#test", True)
    w.facts.tick()
    assert w.helix.requests == ["GET /users?login=mychanel&login=test"]
    for _ in range(3):
        assert w.ask({STREAM}, channel="#mychanel") == "Uptime not available right now"
        w.advance(FRESH)
    assert w.ask({FOLLOWAGE}, followage, subject=Subject("nosuchuser")) is None  # a chatter: no warning
    assert w.facts.tick() == [("#test", "not following")]
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings == ["Twitch has no user mychanel: is VBOT_CHANNEL misspelt?"]


# --- any reply Helix could send: refused when parsed, or rendered without raising -------------------------

EDGE_TIMES = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59.999999Z",
              "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2024-05-01T12:00:00Z",
              "2024-05-01T12:00:00+25:00", "2024-02-30T00:00:00Z", "2024-05-01T12:00:00", "2024-05-01", ""]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.sampled_from(EDGE_TIMES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
KEYS = ["login", "id", "user_id", "broadcaster_id", "viewer_count", "started_at", "game_name", "title", "followed_at"]
VALUES = st.one_of(JSON, st.sampled_from(EDGE_TIMES), st.sampled_from(["1001", "2002", "test"]),
                   st.integers(-1, 10**13))
ENTRIES = st.lists(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=len(KEYS)), max_size=3)
PARSERS = [read_users, read_streams, read_channels, read_follow]


def render_everything(known: Known) -> list[str]:
    texts = [known.live_viewers(), known.uptime(), known.game(), known.title(), known.followers_total(),
             known.followage(), uptime_text(known)]
    return [*texts, viewers_text(known.stream, 12)]


@settings(max_examples=400, deadline=None)
@given(ENTRIES, st.floats(0, 2**34, allow_nan=False), st.integers(0, 10**30))
@example([{"followed_at": "9999-12-31T23:59:59-23:59"}], 1.8e9, 0)
@example([{"followed_at": "0001-01-01T00:00:00+23:59"}], 1.8e9, 0)
@example([{"followed_at": "9999-12-31T23:59:59.999999Z"}], 1.8e9, 0)
@example([{"user_id": "1001", "viewer_count": 5, "started_at": "9999-12-31T23:59:59-23:59"}], 1.8e9, 0)
def test_any_helix_reply_is_refused_when_parsed_or_renders_without_raising(entries, now, total):
    """Trial: followed_at at the calendar's edge passed the parser, then {followage} raised (no reply)."""
    for parse in PARSERS:
        try:
            parsed = parse(tuple(entries))
        except (KeyError, TypeError, ValueError):  # what StreamFacts catches: one WARNING, the fact unknown
            continue
        if isinstance(parsed, Follow):
            knowns = [Known(now, follow=parsed)]
        else:
            values = list(parsed.values())
            knowns = [Known(now, stream=value) if not isinstance(value, (str, ChannelInfo)) else
                      Known(now, channel=value if isinstance(value, ChannelInfo) else None) for value in values]
        for known in [*knowns, Known(now, followers=total)]:
            assert all(isinstance(text, str) for text in render_everything(known))
