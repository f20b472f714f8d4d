"""Timers: which timer may post where, now, with an injected clock (no test here waits).

The rules under test (vbot/timers.py): a timer posts in a channel once its interval has
passed and enough chat lines from others have arrived there since its last post, as soon
as both hold; never two timer posts in one channel in the same second; messages in turn;
the bot's own lines never count.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support import FakeClock
from vbot.modes import Own
from vbot.timers import GAP, Timer, TimerSchedule

HYDRATE = Timer("hydrate", ("Drink some water!",), 900)  # default min_lines: 5
QUIET = Timer("quiet", ("Quiet chat? Here is a tip.",), 600, min_lines=0)
QUIET2 = Timer("quiet2", ("Another tip.",), 600, min_lines=0)
SLOW = Timer("slow", ("slow",), 600, min_lines=0)
BUSY = Timer("busy", ("busy",), 300, min_lines=5)


def schedule(timers=(HYDRATE,), channels=("#a",), bot="vbot") -> tuple[TimerSchedule, FakeClock]:
    clock = FakeClock()
    return TimerSchedule(timers, channels, bot, clock), clock


def run(script: str, timers=(HYDRATE,), channels=("#a",)) -> None:
    """Play ``script``: ``+S`` advances S seconds, ``lines N #chan login`` notes N chat lines,
    ``=> timer#chan ...`` (or ``=> -``) asks ``take_due()`` and checks what it returns."""
    timers_schedule, clock = schedule(timers, channels)
    for step in script.split(";"):
        word, *rest = step.split()
        if word.startswith("+"):
            clock.advance(float(word[1:]))
        elif word == "lines":
            count, channel, login = rest
            for _ in range(int(count)):
                timers_schedule.note_line(channel, login)
        elif word == "=>":
            posts = [f"{post.timer.name}{post.channel}" for post in timers_schedule.take_due()]
            assert posts == [name for name in rest if name != "-"], f"at {step!r} of {script!r}"
        else:
            raise ValueError(step)


def play(script: str, timers: TimerSchedule, clock) -> None:
    """Run ``script``: ``+60`` advances the clock 60 s, ``lines 4`` is 4 chat lines from alice in #a."""
    for step in filter(None, script.split("; ")):
        if step.startswith("+"):
            clock.advance(float(step[1:]))
        else:
            for _ in range(int(step.split()[1])):
                timers.note_line("#a", "alice")


@pytest.mark.parametrize(("script", "timers", "channels"), [
    # the interval passes first: the timer posts on the line that completes min_lines, not an interval later
    ("+900; => -; lines 4 #a alice; => -; +450; => -; lines 1 #a bob; => hydrate#a", (HYDRATE,), ("#a",)),
    # the lines arrive first: it posts the moment the interval has passed
    ("lines 5 #a alice; => -; +899.9; => -; +0.1; => hydrate#a", (HYDRATE,), ("#a",)),
    # a post restarts both the interval and the line count
    ("lines 9 #a alice; +900; => hydrate#a; +900; => -; lines 4 #a bob; => -; lines 1 #a bob; => hydrate#a",
     (HYDRATE,), ("#a",)),
    ("lines 5 #a alice; +900; => hydrate#a; lines 5 #a alice; +899; => -; +1; => hydrate#a", (HYDRATE,), ("#a",)),
    # the bot's own lines never count, whatever their case
    ("lines 5 #a vbot; lines 5 #a VBot; +900; => -; lines 5 #a alice; => hydrate#a", (HYDRATE,), ("#a",)),
    # lines count in their own channel only; one timer posts in each joined channel
    ("lines 5 #b alice; +900; => hydrate#b; lines 4 #a alice; => -; lines 1 #a x; => hydrate#a", (HYDRATE,),
     ("#a", "#b")),
    # lines from a channel the bot is not in change nothing
    ("lines 5 #elsewhere alice; +900; => -", (HYDRATE,), ("#a",)),
    # min_lines = 0: every interval, chat or not
    ("+599; => -; +1; => quiet#a; +599; => -; +1; => quiet#a", (QUIET,), ("#a",)),
    # two timers due together: never in the same second, file order first
    ("+600; => quiet#a; => -; +0.999; => -; +0.001; => quiet2#a; +599; => quiet#a; +1; => quiet2#a",
     (QUIET, QUIET2), ("#a",)),
    # the gap is per channel: the same timer posts in two channels in the same second
    ("+600; => quiet#a quiet#b; +1; => -", (QUIET,), ("#a", "#b")),
    # several due at once: the one due longest goes first
    ("+600; lines 5 #a alice; => busy#a; +1; => slow#a", (SLOW, BUSY), ("#a",)),
])
def test_when_timers_post(script, timers, channels):
    run(script, timers, channels)


def test_messages_are_posted_in_turn_in_each_channel():
    tips = Timer("tips", ("one", "two", "three"), 600, min_lines=0)
    timers, clock = schedule((tips,), ("#a", "#b"))
    seen = []
    for _ in range(4):
        clock.advance(600)
        seen.append([(post.channel, post.text(None)) for post in timers.take_due()])
    assert seen == [[("#a", "one"), ("#b", "one")], [("#a", "two"), ("#b", "two")],
                    [("#a", "three"), ("#b", "three")], [("#a", "one"), ("#b", "one")]]


def test_fill_renders_the_message_for_its_channel():
    calls = []
    timer = Timer("t", ("hello {channel}",), 600, 0, fill=lambda message, channel, host: (
        calls.append(host) or message.replace("{channel}", channel)))
    timers, clock = schedule((timer,))
    clock.advance(600)
    (post,) = timers.take_due()
    assert post.text("host") == "hello #a"
    assert calls == ["host"]


def test_channels_of_a_timer_limit_where_it_posts():
    only_b = Timer("only_b", ("b",), 600, 0, ("#b",))
    elsewhere = Timer("elsewhere", ("c",), 600, 0, ("#c",))
    timers, clock = schedule((QUIET, only_b, elsewhere), ("#a", "#b"))
    clock.advance(600)
    assert [f"{post.timer.name}{post.channel}" for post in timers.take_due()] == ["quiet#a", "quiet#b"]
    clock.advance(1)
    assert [f"{post.timer.name}{post.channel}" for post in timers.take_due()] == ["only_b#b"]
    described = [state.describe() for state in timers.states() if state.timer is elsewhere]
    assert described == ["elsewhere in #c: not joined"]


def test_a_timer_starts_when_its_channel_is_joined_and_a_reconnect_keeps_its_clock():
    timers, clock = schedule((HYDRATE,), channels=())
    clock.advance(5000)
    timers.set_channels(["#A"])
    timers.note_line("#a", "alice")
    clock.advance(899)
    assert timers.take_due() == []
    timers.set_channels([])  # disconnected
    clock.advance(1)
    assert timers.take_due() == []
    timers.set_channels(["#a"])  # rejoined: clock and lines kept
    for _ in range(4):
        timers.note_line("#a", "bob")
    assert [post.channel for post in timers.take_due()] == ["#a"]


def test_following_own_joins_and_leaves_is_set_channels_one_at_a_time():
    timers, clock = schedule((HYDRATE,), channels=())
    timers.follow(Own("#A", joined=True))
    clock.advance(450)
    timers.follow(Own("#b", joined=True))
    timers.follow(Own("#b", joined=False, why="kicked"))
    timers.follow(Own("#b", joined=True))  # rejoined: its clock started at the first JOIN
    for channel in ("#a", "#b"):
        for _ in range(5):
            timers.note_line(channel, "alice")
    clock.advance(450)
    assert [post.channel for post in timers.take_due()] == ["#a"]
    clock.advance(450)
    assert [post.channel for post in timers.take_due()] == ["#b"]


def test_reload_keeps_the_state_of_timers_that_stay():
    timers, clock = schedule((HYDRATE, QUIET))
    for _ in range(3):
        timers.note_line("#a", "alice")
    clock.advance(500)
    assert [post.timer.name for post in timers.take_due()] == []
    faster = Timer("hydrate", ("Water!", "More water!"), 600)
    fresh = Timer("fresh", ("new",), 600, min_lines=0)
    timers.set_timers([faster, fresh])  # quiet removed
    assert [timer.name for timer in timers.timers] == ["hydrate", "fresh"]
    clock.advance(100)  # hydrate: 600 s since start, with its interval now 600
    timers.note_line("#a", "alice")
    assert timers.take_due() == []  # 4/5 lines
    timers.note_line("#a", "alice")
    assert [(post.timer.name, post.message) for post in timers.take_due()] == [("hydrate", "Water!")]
    clock.advance(499)
    assert timers.take_due() == []  # fresh started at the reload
    clock.advance(1)
    assert [post.timer.name for post in timers.take_due()] == ["fresh"]
    assert {state.timer.name for state in timers.states()} == {"hydrate", "fresh"}


@pytest.mark.parametrize(("script", "expected"), [
    ("", None),  # hydrate needs lines: only a chat line can make it due
    ("lines 5", 900.0),
    ("lines 5; +100", 800.0),
    ("lines 5; +1000", 0.0),
    ("+1000; lines 4", None),
])
def test_wait_time(script, expected):
    timers, clock = schedule()
    play(script, timers, clock)
    assert timers.wait_time() == expected


def test_wait_time_without_timers_and_with_the_gap():
    assert schedule(timers=())[0].wait_time() is None
    timers, clock = schedule((QUIET, QUIET2))
    assert timers.wait_time() == 600
    clock.advance(600)
    assert len(timers.take_due()) == 1
    assert timers.wait_time() == GAP
    clock.advance(GAP)
    assert len(timers.take_due()) == 1
    assert timers.wait_time() == 600 - GAP


@pytest.mark.parametrize(("script", "timer", "expected"), [
    ("", HYDRATE, "hydrate in #a: waiting for 15m and 5 more chat lines (0/5)"),
    ("lines 4; +60.5", HYDRATE, "hydrate in #a: waiting for 14m and 1 more chat line (4/5)"),
    ("lines 5; +899.5", HYDRATE, "hydrate in #a: waiting for 1s"),
    ("lines 2; +900", HYDRATE, "hydrate in #a: waiting for 3 more chat lines (2/5)"),
    ("lines 5; +900", HYDRATE, "hydrate in #a: due now"),
    ("", Timer("tips", ("a", "b"), 600, 0), "tips in #a: waiting for 10m; message 1 of 2"),
])
def test_states_say_what_a_timer_waits_for(script, timer, expected):
    timers, clock = schedule((timer,))
    play(script, timers, clock)
    (state,) = timers.states()
    assert state.describe() == expected
    assert state.is_due == expected.endswith("due now")


def test_posts_log_at_info_and_waiting_at_debug_once_per_reason(caplog):
    timers, clock = schedule()
    with caplog.at_level(logging.DEBUG, logger="vbot.timers"):
        for _ in range(3):
            timers.take_due()
        clock.advance(900)
        for _ in range(3):
            timers.take_due()
        for _ in range(5):
            timers.note_line("#a", "alice")
        timers.take_due()
    messages = [(record.levelname, record.getMessage()) for record in caplog.records]
    assert messages == [
        ("DEBUG", "timer 'hydrate' in #a: next post in 15m at the earliest, after 5 chat line(s) from others"),
        ("DEBUG", "timer 'hydrate' in #a: interval passed, waiting for 5 more chat line(s) (0/5)"),
        ("INFO", "timer 'hydrate' posts in #a (message 1 of 1)"),
    ]


# --- the rules hold for any sequence of events ----------------------------------------------------

EVENTS = st.lists(st.one_of(
    st.tuples(st.just("wait"), st.floats(min_value=0, max_value=400)),
    st.tuples(st.just("line"), st.sampled_from(["#a", "#b"]), st.sampled_from(["alice", "bob", "vbot"])),
), max_size=120)
RULE_TIMERS = (Timer("one", ("1",), 300, 2), Timer("two", ("2",), 300, 0), Timer("three", ("3",), 450, 3, ("#b",)))


@settings(max_examples=200, deadline=None)
@given(EVENTS)
def test_rules_hold_for_any_events(events):
    timers, clock = schedule(RULE_TIMERS, ("#a", "#b"))
    since = {(timer.name, channel): clock() for timer in RULE_TIMERS for channel in ("#a", "#b")}
    lines = dict.fromkeys(since, 0)
    last_post: dict[str, float] = {}

    def due(timer, channel):
        key = (timer.name, channel)
        placed = not timer.channels or channel in timer.channels
        return placed and clock() >= since[key] + timer.interval and lines[key] >= timer.min_lines

    for event in [*events, ("wait", 0.0)]:
        if event[0] == "wait":
            clock.advance(event[1])
        else:
            _, channel, login = event
            timers.note_line(channel, login)
            if login != "vbot":
                for timer in RULE_TIMERS:
                    lines[(timer.name, channel)] += 1
        for post in timers.take_due():
            assert due(post.timer, post.channel), "posted before its interval and lines"
            assert clock() - last_post.get(post.channel, -1e9) >= GAP, "two posts in one channel within a second"
            since[(post.timer.name, post.channel)] = clock()
            lines[(post.timer.name, post.channel)] = 0
            last_post[post.channel] = clock()
        for channel in ("#a", "#b"):
            if any(due(timer, channel) for timer in RULE_TIMERS):
                assert clock() - last_post.get(channel, -1e9) < GAP, "a due timer did not post"
        wait = timers.wait_time()
        assert wait is None or wait >= 0


def test_note_line_says_when_a_timer_became_due():
    timers, clock = schedule((HYDRATE,), ("#a", "#b"))
    assert [timers.note_line("#a", "alice") for _ in range(5)] == [False] * 5  # lines, but no interval yet
    clock.advance(900)
    assert timers.note_line("#a", "vbot") is False  # the bot's own line
    assert timers.note_line("#b", "alice") is False  # #b has 1 line of 5
    assert timers.note_line("#a", "alice") is True
    assert [post.channel for post in timers.take_due()] == ["#a"]
    assert timers.note_line("#a", "alice") is False
