"""Join pacing and rejoining (vbot.joins) with a fake clock, and the bot's use of it through the harness."""

from __future__ import annotations

import logging

import pytest

from tests.support import TWITCH_WELCOME, BotHarness, FakeClock, make_config
from vbot.joins import REFUSED_GIVE_UP, Joins
from vbot.outbox import Outbox


def joins_at(clock: FakeClock | None = None) -> tuple[Joins, FakeClock]:
    clock = clock or FakeClock()
    return Joins(clock=clock, rng=lambda: 0.999999), clock


def test_at_most_20_joins_per_10_seconds():
    joins, clock = joins_at()
    channels = [f"#c{i}" for i in range(50)]
    joins.want_all(channels)
    sent = []
    for _ in range(25):  # 25 s in steps of 1 s
        sent.append(len(joins.take_ready()))
        clock.advance(1)
    assert sent[0] == 20 and sum(sent[:10]) == 20
    assert sum(sent[10:20]) == 20 and sum(sent) == 50


def test_wait_time_says_when_the_window_frees():
    joins, clock = joins_at()
    joins.want_all([f"#c{i}" for i in range(21)])
    assert len(joins.take_ready()) == 20
    assert joins.wait_time() == pytest.approx(10.0)
    clock.advance(10)
    assert joins.take_ready() == ["#c20"]
    assert joins.wait_time() is None


def test_the_window_spans_reconnects():
    joins, clock = joins_at()
    joins.want_all([f"#c{i}" for i in range(15)])
    assert len(joins.take_ready()) == 15
    joins.clear_queue()  # dropped; reconnected 2 s later
    clock.advance(2)
    joins.want_all([f"#c{i}" for i in range(15)])
    assert len(joins.take_ready()) == 5


def test_kicked_channel_is_rejoined_with_growing_delay():
    joins, clock = joins_at()
    joins.want("#c")
    assert joins.take_ready() == ["#c"]
    joins.joined("#c")
    delays = []
    for _ in range(4):
        delays.append(joins.rejoin_later("#c"))
        assert joins.take_ready() == []
        clock.advance(delays[-1])
        assert joins.take_ready() == ["#c"]
        joins.joined("#c")
    assert delays == pytest.approx([5.0, 10.0, 20.0, 40.0], rel=1e-5)
    clock.advance(300)  # kept for 5 minutes: the next kick starts over
    assert joins.rejoin_later("#c") == pytest.approx(5.0, rel=1e-5)


def test_refused_join_is_given_up_after_a_few():
    joins, clock = joins_at()
    joins.want("#locked")
    delays = [joins.rejoin_later("#locked", refused=True) for _ in range(REFUSED_GIVE_UP)]
    assert None not in delays[:-1] and delays[-1] is None
    assert "#locked" not in joins
    clock.advance(1000)
    assert joins.take_ready() == []


def test_forgotten_channel_is_never_joined():
    joins, clock = joins_at()
    joins.want("#a")
    joins.forget("#a")
    assert joins.take_ready() == [] and "#a" not in joins


# --- the bot ---------------------------------------------------------------------------------


def joins_sent(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("JOIN ")]


def test_bot_with_50_channels_sends_20_joins_in_the_first_10_seconds(caplog):
    channels = tuple(f"#c{i:02}" for i in range(50))
    harness = BotHarness(make_config(6667, channels=channels))
    harness.feed(*(line.format(nick="vbot") for line in TWITCH_WELCOME))
    counts = [len(joins_sent(harness.sent()))]
    for _ in range(29):
        harness.advance(1)
        counts.append(len(joins_sent(harness.sent())))
    assert sum(counts[:10]) == 20 and sum(counts[:20]) == 40 and sum(counts) == 50


def test_more_than_100_channels_gets_a_warning(caplog):
    BotHarness(make_config(6667, channels=tuple(f"#c{i}" for i in range(101))))
    assert any("channels configured" in record.getMessage() for record in caplog.records
               if record.levelno == logging.WARNING)


@pytest.mark.parametrize("line, why", [
    (":mod!mod@mod.tmi.twitch.tv KICK #test vbot :spam", "kicked by mod (spam)"),
    (":vbot!vbot@vbot.tmi.twitch.tv PART #test", "parted by the server"),
])
def test_kicked_or_parted_bot_warns_and_rejoins(line, why, caplog):
    """Issue 9 item 5: the bot does not go deaf silently."""
    harness = BotHarness().welcome()
    harness.sent()
    harness.feed(line)
    assert any(why in record.getMessage() and "#test" in record.getMessage()
               for record in caplog.records if record.levelno == logging.WARNING)
    harness.say("alice", "!version")
    assert harness.replies() == []  # not in the channel any more
    harness.advance(1)
    assert joins_sent(harness.sent()) == []
    harness.advance(10)  # the first rejoin waits 2.5 to 5 s
    assert joins_sent(harness.sent()) == ["JOIN #test"]
    harness.feed(":vbot!vbot@vbot.tmi.twitch.tv JOIN #test")
    harness.say("alice", "!version")
    assert harness.replies()


def test_the_bots_own_joins_are_logged_once_each(caplog):
    """Trial: the log never said the bot had joined; someone else's JOIN is not the bot's."""
    harness = BotHarness(make_config(6667, channels=("#test", "#other")))
    with caplog.at_level(logging.INFO, logger="vbot.joins"):
        harness.welcome()
        harness.feed(":alice!alice@alice.tmi.twitch.tv JOIN #test")
    assert [record.getMessage() for record in caplog.records if record.name == "vbot.joins"] == [
        "joined #test", "joined #other"]


def test_drop_in_the_middle_of_joining_is_an_ordinary_drop(caplog):
    channels = tuple(f"#c{i:02}" for i in range(30))
    harness = BotHarness(make_config(6667, channels=channels))
    harness.server.close()  # the server is gone before the welcome's JOINs go out
    harness.bot.connection._process_line(":tmi.twitch.tv 001 vbot :Welcome, GLHF!")
    assert not [record for record in caplog.records if record.exc_info]
    assert not harness.bot.connection.is_connected()


def test_off_twitch_joins_share_the_flood_rule_with_replies():
    """A JOIN costs 2 penalty seconds (InspIRCd charges it so): three at once, then one every 2 s,
    and replies sent meanwhile take their share of the same pace."""
    clock = FakeClock()
    outbox = Outbox(clock=clock)
    joins, _ = joins_at(clock)
    joins.pace = outbox.use_line_pace(True)
    joins.want_all([f"#c{i}" for i in range(6)])
    assert joins.take_ready() == ["#c0", "#c1", "#c2"]
    assert joins.wait_time() == pytest.approx(1.0)
    clock.advance(1)
    assert joins.take_ready() == ["#c3"]
    outbox.submit("#c0", "a reply")
    assert outbox.take_ready() == []  # the JOINs used the budget
    clock.advance(1)
    assert outbox.take_ready() == [("#c0", "a reply")]
    assert joins.take_ready() == [] and joins.wait_time() == pytest.approx(2.0)


def test_a_join_of_the_bot_it_did_not_ask_for_is_ignored_with_one_info_line(caplog):
    """Attack: a server forging the bot's JOIN to thousands of channels made every JOIN cost a step
    per channel (quadratic) and kept them all; only channels the bot asked for count."""
    harness = BotHarness(make_config(6667, channels=("#test",)))
    with caplog.at_level(logging.DEBUG, logger="vbot.joins"):
        harness.welcome()
        harness.feed(":vbot!vbot@vbot.tmi.twitch.tv JOIN #test")
        for i in range(3000):
            harness.feed(f":vbot!vbot@vbot.tmi.twitch.tv JOIN #c{i}")
        harness.feed(":mallory!m@h JOIN #c1")  # a chatter in a channel the bot is not in: nothing kept
    assert list(harness.bot.channels) == ["#test"]
    assert joins_sent(harness.sent()) == ["JOIN #test"]  # and never a PART or rejoin for them
    ignored = [record for record in caplog.records if record.getMessage().startswith("ignoring")]
    assert len(ignored) == 3000 and [record.levelname for record in ignored[:2]] == ["INFO", "DEBUG"]
    assert ignored[0].getMessage() == ("ignoring the server's JOIN of the bot to #c0, a channel it did not ask"
                                       " to join (more on this connection: DEBUG)")
    harness.say("alice", "!version")
    assert harness.replies()


def test_joins_accepts_only_wanted_channels_in_any_case():
    joins = Joins(clock=FakeClock())
    joins.want("#test")
    assert joins.accepts("#Test") and joins.accepts("#test") and not joins.accepts("#other")
    joins.want("#kk")  # attack: a Kelvin sign (U+212A) lowers to k, so 2**n spellings were all "joined"
    assert joins.accepts("#KK") and not joins.accepts("#\u212ak") and not joins.accepts("#k\u212a")
