"""The outbox: Twitch's send limits, the duplicate rule, cleaning and cutting, with an injected clock.

Limits from Twitch's docs ("Chat & Chatbots" > Rate limits): 20 PRIVMSGs per 30 s per
account, 100 per 30 s where the bot is broadcaster, moderator or VIP, and where it is none
of those at most 1 per second per channel; a message identical to the previous one within
30 s is dropped by Twitch (vbot varies it with an invisible suffix). No test here sleeps:
time is a FakeClock.
"""

from __future__ import annotations

import math

import irc.client
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support import FakeClock
from vbot.lines import MAX_CHARACTERS, MAX_LINE_BYTES
from vbot.outbox import (
    ELLIPSIS,
    INVISIBLE_SUFFIX,
    Limits,
    LinePace,
    Outbox,
    clean,
    fit,
)

CONNECTION = irc.client.Reactor().server()  # never connected: only its _prep_message is used


def send_line(channel: str, text: str) -> bytes:
    """The bytes the library would send for ``privmsg(channel, text)``; raises as the library does."""
    return CONNECTION._prep_message(f"PRIVMSG {channel} :{text}")


def outbox(**limits) -> tuple[Outbox, FakeClock]:
    """An Outbox on a fake clock; without the window's safety margin unless asked (it has its own test)."""
    clock = FakeClock()
    return Outbox(Limits(**{"margin": 0.0, **limits}), clock), clock


# --- limits ------------------------------------------------------------------


def test_the_numbers_live_in_limits():
    limits = Limits()
    assert (limits.window, limits.messages, limits.privileged_messages) == (30.0, 20, 100)
    assert (limits.channel_interval, limits.duplicate_window, limits.ratelimit_pause) == (1.0, 30.0, 30.0)
    assert limits.margin == 1.0


def test_a_slot_frees_a_second_after_the_window_so_jitter_never_makes_21():
    """Attack (third round): the 21st reply left exactly 30 s after the first; had the first been slower
    on the network than the 21st, Twitch would have counted 21 in its 30 s."""
    box, clock = outbox(margin=1.0)
    for i in range(21):
        box.submit(f"#c{i}", "hi")
    assert len(box.take_ready()) == 20 and box.wait_time() == pytest.approx(31)
    clock.advance(30.99)
    assert box.take_ready() == []
    clock.advance(0.01)
    assert box.take_ready() == [("#c20", "hi")]


def test_a_reply_within_the_limits_goes_out_at_once():
    box, _ = outbox()
    assert box.wait_time() is None
    assert box.submit("#a", "hello")
    assert box.wait_time() == 0
    assert box.take_ready() == [("#a", "hello")]
    assert len(box) == 0 and box.wait_time() is None


def test_twenty_per_thirty_seconds_per_account():
    box, clock = outbox()
    channels = [f"#c{i}" for i in range(25)]  # one message each: the per-channel 1/s does not bind
    for channel in channels:
        box.submit(channel, "hi")
    assert [channel for channel, _ in box.take_ready()] == channels[:20]
    assert len(box) == 5
    assert box.wait_time() == pytest.approx(30)
    clock.advance(29.99)
    assert box.take_ready() == []
    clock.advance(0.01)
    assert [channel for channel, _ in box.take_ready()] == channels[20:]


def test_the_window_slides():
    box, clock = outbox()
    for i in range(10):
        box.submit(f"#early{i}", "x")
    assert len(box.take_ready()) == 10  # t = 0
    clock.advance(10)
    for i in range(15):
        box.submit(f"#late{i}", "x")
    assert len(box.take_ready()) == 10  # t = 10: 20 in the window
    assert box.wait_time() == pytest.approx(20)  # the t=0 ones leave the window at t=30
    clock.advance(20)
    assert len(box.take_ready()) == 5
    for i in range(20):
        box.submit(f"#more{i}", "x")
    assert len(box.take_ready()) == 5  # t = 30: the 10 of t=10 and 5 of t=30 fill it...
    assert box.wait_time() == pytest.approx(10)  # ...until the t=10 ones leave at t=40
    clock.advance(10)
    assert len(box.take_ready()) == 10


def test_one_per_second_per_channel_where_not_privileged():
    box, clock = outbox()
    for text in ("one", "two", "three"):
        box.submit("#a", text)
    box.submit("#b", "other channel")
    assert box.take_ready() == [("#a", "one"), ("#b", "other channel")]
    assert box.wait_time() == pytest.approx(1)
    clock.advance(0.999)
    assert box.take_ready() == []
    clock.advance(0.001)
    assert box.take_ready() == [("#a", "two")]
    clock.advance(1)
    assert box.take_ready() == [("#a", "three")]


def test_a_hundred_per_thirty_seconds_where_privileged():
    box, clock = outbox(queue_size=200)
    box.set_privileged("#mod", True)
    for i in range(105):
        box.submit("#mod", f"reply {i}")
    assert len(box.take_ready()) == 100  # no 1/s rule in a privileged channel
    assert box.wait_time() == pytest.approx(30)
    clock.advance(30)
    assert [text for _, text in box.take_ready()] == [f"reply {i}" for i in range(100, 105)]


def test_privilege_can_be_lost():
    box, _ = outbox()
    box.set_privileged("#mod", True)
    box.set_privileged("#mod", False)
    box.submit("#mod", "one")
    box.submit("#mod", "two")
    assert box.take_ready() == [("#mod", "one")]


def test_twenty_limit_counts_messages_to_privileged_channels_too():
    """Where the bot is not privileged only 20 may be in the window, whatever their channel."""
    box, clock = outbox()
    box.set_privileged("#mod", True)
    for i in range(30):  # t = 0 .. 29, one a second, to a channel where the bot is moderator
        box.submit("#mod", f"m{i}")
        assert len(box.take_ready()) == 1
        clock.advance(1)
    clock.advance(-1)
    box.submit("#plain", "waits")
    assert box.take_ready() == []
    assert box.wait_time() == pytest.approx(11)  # at t = 40 the ones of t = 0..10 have left: 19 remain
    clock.advance(10.99)
    assert box.take_ready() == []
    clock.advance(0.01)
    assert box.take_ready() == [("#plain", "waits")]


def test_limits_can_be_raised_for_verified_bots():
    box, _ = outbox(messages=50)
    for i in range(60):
        box.submit(f"#c{i}", "hi")
    assert len(box.take_ready()) == 50


# --- queue ---------------------------------------------------------------------


def test_queued_messages_keep_their_order_per_channel():
    box, clock = outbox()
    for i in range(5):
        box.submit("#a", f"m{i}")
    released = []
    for _ in range(5):
        released += box.take_ready()
        clock.advance(box.wait_time() or 0)
    assert released == [("#a", f"m{i}") for i in range(5)]


def test_full_queue_drops_the_oldest_and_counts_them():
    box, clock = outbox(queue_size=3)
    box.submit("#a", "sent")
    assert box.take_ready() == [("#a", "sent")]
    for i in range(5):
        assert box.submit("#a", f"m{i}")
    assert len(box) == 3
    assert box.report_dropped() == 2
    assert box.report_dropped() == 0
    assert box.dropped == 2
    released = []
    while len(box):
        clock.advance(1)
        released += box.take_ready()
    assert released == [("#a", "m2"), ("#a", "m3"), ("#a", "m4")]


# --- duplicates ------------------------------------------------------------------


def sent_texts(box: Outbox, clock: FakeClock, channel: str, texts: list[str], gap: float = 1.0) -> list[str]:
    """Submit ``texts`` to ``channel`` one every ``gap`` seconds; the texts as sent."""
    sent = []
    for text in texts:
        assert box.submit(channel, text)
        sent += [released for _, released in box.take_ready()]
        clock.advance(gap)
    return sent


def test_the_suffix_is_a_space_and_the_first_tag_code_point():
    assert INVISIBLE_SUFFIX == " \U000e0000"


def test_a_reply_equal_to_the_previous_one_gets_the_invisible_suffix():
    """The second chatter asking !version gets an answer that Twitch will not drop as a duplicate."""
    box, clock = outbox()
    version = "Version: 1"
    assert sent_texts(box, clock, "#a", [version] * 5) == [
        version, version + INVISIBLE_SUFFIX, version, version + INVISIBLE_SUFFIX, version]


def test_a_text_sent_before_the_previous_message_is_not_a_duplicate():
    box, clock = outbox()
    assert sent_texts(box, clock, "#a", ["hello", "other", "hello", "other"]) == ["hello", "other", "hello", "other"]


def test_the_previous_message_counts_for_30_s():
    box, clock = outbox()
    assert sent_texts(box, clock, "#a", ["hi", "hi"], gap=29.99) == ["hi", "hi" + INVISIBLE_SUFFIX]
    box, clock = outbox()
    assert sent_texts(box, clock, "#a", ["hi", "hi"], gap=30) == ["hi", "hi"]


def test_the_previous_message_is_per_channel():
    box, clock = outbox()
    assert sent_texts(box, clock, "#a", ["hi"]) == ["hi"]
    assert sent_texts(box, clock, "#b", ["hi"]) == ["hi"]
    assert sent_texts(box, clock, "#a", ["hi"]) == ["hi" + INVISIBLE_SUFFIX]


def test_privileged_channels_send_repeats_as_they_are():
    """Twitch does not apply msg_duplicate to a broadcaster, moderator or VIP."""
    box, clock = outbox()
    box.set_privileged("#mod", True)
    assert sent_texts(box, clock, "#mod", ["hi"] * 3, gap=0) == ["hi"] * 3


def test_queued_repeats_all_arrive_alternating():
    box, clock = outbox()
    for _ in range(3):
        assert box.submit("#a", "same")
    released = []
    for _ in range(3):
        released += box.take_ready()
        clock.advance(1)
    assert released == [("#a", "same"), ("#a", "same" + INVISIBLE_SUFFIX), ("#a", "same")]


def test_repeats_compare_the_text_as_sent():
    box, clock = outbox()
    assert sent_texts(box, clock, "#a", ["hi\r\nthere", "hi  there "]) == ["hi  there", "hi  there" + INVISIBLE_SUFFIX]


@pytest.mark.parametrize("channel", ["#c", "#" + "a" * 25])
@pytest.mark.parametrize("unit", ["a", "é", "😀"])
def test_a_repeated_reply_of_full_length_still_fits_with_its_suffix(channel, unit):
    box, clock = outbox()
    text = unit * 600
    first, second, third = sent_texts(box, clock, channel, [text] * 3)
    assert first == third == fit(text, channel) and first.endswith(ELLIPSIS)
    assert second.endswith(ELLIPSIS + INVISIBLE_SUFFIX) and second != first
    for sent in (first, second):
        line = send_line(channel, sent)
        assert len(line) <= MAX_LINE_BYTES and len(sent) <= MAX_CHARACTERS
        line.decode("utf-8")


def test_a_reply_that_just_fits_gets_cut_to_make_room_for_the_suffix():
    channel = "#test"
    room = MAX_LINE_BYTES - len(f"PRIVMSG {channel} :\r\n")
    text = "b" * room
    assert fit(text, channel) == text
    box, clock = outbox()
    first, second = sent_texts(box, clock, channel, [text, text])
    assert first == text
    assert second.endswith(ELLIPSIS + INVISIBLE_SUFFIX) and len(send_line(channel, second)) <= MAX_LINE_BYTES


# --- msg_ratelimit pause ----------------------------------------------------------


def test_pause_stops_one_channel_for_thirty_seconds():
    box, clock = outbox()
    box.pause("#a")
    box.submit("#a", "held")
    box.submit("#b", "free")
    assert box.take_ready() == [("#b", "free")]
    assert box.wait_time() == pytest.approx(30)
    clock.advance(29.99)
    assert box.take_ready() == []
    clock.advance(0.01)
    assert box.take_ready() == [("#a", "held")]


def test_pause_applies_to_privileged_channels_too():
    box, clock = outbox(ratelimit_pause=5)
    box.set_privileged("#a", True)
    box.pause("#a")
    box.submit("#a", "held")
    assert box.take_ready() == []
    clock.advance(5)
    assert box.take_ready() == [("#a", "held")]


# --- cleaning and cutting -----------------------------------------------------------


def test_clean_turns_cr_lf_and_nul_into_spaces():
    assert clean("hi\r\nQUIT :bye\x00now") == "hi  QUIT :bye now"
    assert clean("  \r\n ") == ""


@pytest.mark.parametrize("text, expected", [
    ("\x01ACTION dances\x01", "ACTION dances"),  # a CTCP ACTION smuggled in through {args}
    ("red\x1b[31mtext\x07", "red [31mtext"),  # ESC and BEL: terminal escapes in the console
    ("a\tb\x7fc", "a b c"),
])
def test_clean_turns_every_control_character_into_a_space(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("hi\u2028moderator_bob: go to evil.example\u2029ok", "hi moderator_bob: go to evil.example ok"),
    ("\u2028\u2029", ""),
])
def test_clean_turns_the_line_and_paragraph_separators_into_spaces(text, expected):
    assert clean(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.text())
@example("a\u2028b\u2029c\x85d\x1ce\x0bf\x0cg\r\nh")
def test_a_cleaned_text_is_one_line_to_every_reader_of_unicode(text):
    assert len(clean(text).splitlines()) <= 1  # str.splitlines breaks at every line boundary Unicode has


@pytest.mark.parametrize("text, expected", [
    ("next\u0085line", "next line"),  # NEL (C1): a line break to some terminals and clients
    ("\u009b31mred", "31mred"),  # CSI (C1): a terminal escape in one character
    ("\u0080a\u009fb", "a b"),
])
def test_clean_turns_c1_control_characters_into_spaces(text, expected):
    assert clean(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("twitch.tv/\u202eevil\u202c", "twitch.tv/evil"),  # RIGHT-TO-LEFT OVERRIDE and POP: reorder what is shown
    ("a\u2066b\u2067c\u2068d\u2069e\u200ef\u200fg\u061ch", "abcdefgh"),  # isolates and marks
    ("ad\u200bmin", "admin"),  # ZERO WIDTH SPACE
    ("ad\u200cmin\u2060", "admin"),  # ZERO WIDTH NON-JOINER, WORD JOINER
    ("\ufeffsoft\u00adware", "software"),  # BOM, SOFT HYPHEN
    ("hi\U000e0000 \U000e0041", "hi"),  # tag characters outside a flag (U+E0000 is the suffix of chat clients)
    ("a\u200db", "ab"),  # a ZWJ between letters joins nothing
    ("\U0001f600\u200d", "\U0001f600"),  # nor one at the end
])
def test_clean_removes_bidi_controls_and_zero_width_characters(text, expected):
    assert clean(text) == expected


ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize("emoji", [
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # family: man, woman, girl
    "\U0001f3f3\ufe0f\u200d\U0001f308",  # rainbow flag: white flag, VS-16, ZWJ, rainbow
    "\u2764\ufe0f\u200d\U0001f525",  # heart on fire
    "\U0001f469\U0001f3fd\u200d\U0001f4bb",  # woman technologist: medium skin tone
    "\U0001f9d1\u200d\U0001faef",  # a ZWJ to an emoji newer than Python's Unicode tables
    ENGLAND,  # the flag of England: black flag, tags "gbeng", CANCEL TAG
    "1\ufe0f\u20e3",  # keycap one: nothing to remove
])
def test_clean_keeps_what_emoji_sequences_need(emoji):
    assert clean(f"hype {emoji}!") == f"hype {emoji}!"


def test_clean_keeps_tags_only_in_a_whole_flag():
    assert clean("\U0001f3f4\U000e0067\U000e0062 x") == "\U0001f3f4 x"  # no CANCEL TAG: not a flag
    assert clean("x\U000e0067\U000e007f") == "x"  # no black flag before them


def test_a_slash_me_reply_goes_out_as_text():
    """vbot never sends a CTCP frame; ``/me`` is text that Twitch turns into an action."""
    box, _ = outbox()
    box.submit("#a", "/me waves\u200b at \u0085chat")
    assert box.take_ready() == [("#a", "/me waves at  chat")]


def test_the_outbox_cleans_before_it_adds_its_own_invisible_suffix():
    box, clock = outbox()
    box.submit("#a", "same\U000e0000")  # as sent by Chatterino: its own invisible suffix
    assert box.take_ready() == [("#a", "same")]
    clock.advance(1)
    box.submit("#a", "same\U000e0000")
    assert box.take_ready() == [("#a", "same" + INVISIBLE_SUFFIX)]


def test_injection_attempt_becomes_one_line():
    box, _ = outbox()
    box.submit("#a", "ok\r\nPRIVMSG #other :pwned\nJOIN #x\0")
    [(channel, text)] = box.take_ready()
    assert send_line(channel, text).count(b"\n") == 1


def test_empty_text_is_not_sent():
    box, _ = outbox()
    assert not box.submit("#a", " \n ")
    assert box.take_ready() == []


def test_a_496_character_ascii_reply_is_cut_to_fit_the_line():
    text = "a" * 496
    with pytest.raises(irc.client.MessageTooLong):
        send_line("#test", text)  # what the library does with it uncut
    cut = fit(text, "#test")
    assert cut.endswith(ELLIPSIS) and text.startswith(cut[:-1])
    assert len(send_line("#test", cut)) <= MAX_LINE_BYTES
    assert len(send_line("#test", cut)) >= MAX_LINE_BYTES - 2  # cut as late as possible


def test_short_text_is_left_alone():
    assert fit("hello", "#test") == "hello"
    assert fit("é" * 200, "#c") == "é" * 200


def test_500_characters_at_most():
    text = "é" * 600  # 2 bytes each
    cut = fit(text, "#c")
    assert len(cut) <= MAX_CHARACTERS and cut.endswith(ELLIPSIS)
    send_line("#c", cut)


@pytest.mark.parametrize("channel", ["#c", "#test", "#" + "a" * 25])
@pytest.mark.parametrize("unit", ["😀", "é", "漢", "a", "👩‍👩‍👧"])
def test_cut_at_a_utf8_boundary(channel, unit):
    text = unit * 600
    cut = fit(text, channel)
    line = send_line(channel, cut)  # raises MessageTooLong or InvalidCharacters if wrong
    assert len(line) <= MAX_LINE_BYTES and len(cut) <= MAX_CHARACTERS
    assert cut.endswith(ELLIPSIS) and text.startswith(cut[:-1])
    line.decode("utf-8")  # strict: no half character


def test_emoji_reply_fills_the_line():
    cut = fit("😀" * 124, "#test")  # 496 bytes of emoji: too long by the docs' count
    assert cut.endswith(ELLIPSIS)
    room = MAX_LINE_BYTES - len(b"PRIVMSG #test :\r\n")
    assert room - 4 < len(cut.encode()) <= room  # less than one emoji wasted


def test_a_channel_name_too_long_for_any_text_gets_nothing():
    channel = "#" + "a" * 600
    assert fit("hello", channel) == ""
    box, _ = outbox()
    assert not box.submit(channel, "hello")


def test_text_that_cannot_be_encoded_does_not_raise():
    box, _ = outbox()
    assert box.submit("#a", "broken \ud800 surrogate")
    [(channel, text)] = box.take_ready()
    send_line(channel, text)


CHANNELS = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=25).map(lambda name: "#" + name)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=st.text(st.characters(blacklist_categories=()), max_size=700), channel=CHANNELS)
def test_anything_submitted_can_be_sent(text, channel):
    """Whatever the text, what the outbox releases is one valid line of at most 512 bytes."""
    box, _ = outbox()
    box.set_privileged(channel, True)
    box.submit(channel, text)
    for target, sent in box.take_ready():
        line = send_line(target, sent)
        assert len(line) <= MAX_LINE_BYTES and len(sent) <= MAX_CHARACTERS
        assert not set(sent) & {"\r", "\n", "\0"}
        assert sent == clean(sent)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(text=st.text(max_size=700), channel=CHANNELS)
def test_fit_is_a_prefix_with_an_ellipsis(text, channel):
    text = clean(text)
    cut = fit(text, channel)
    if cut == text:
        assert len(text) <= MAX_CHARACTERS
    else:
        assert cut.endswith(ELLIPSIS) and text.startswith(cut[:-1])
    assert len(send_line(channel, cut)) <= MAX_LINE_BYTES


# --- the relay prefix on a non-Twitch server --------------------------------------

BOT_SOURCE = "vbot!~vbot@192.0.2.10"


def relayed_line(source: str, channel: str, text: str) -> bytes:
    """The line a server relays to the other members: ``:<source> PRIVMSG <channel> :<text>\\r\\n``."""
    return f":{source} PRIVMSG {channel} :{text}\r\n".encode()


def test_a_reply_fits_512_bytes_with_the_relay_prefix():
    box, _ = outbox()
    box.set_relay_prefix(BOT_SOURCE)
    box.submit("#test", "a" * 600)
    [(channel, text)] = box.take_ready()
    assert text.endswith(ELLIPSIS)
    assert len(relayed_line(BOT_SOURCE, channel, text)) == MAX_LINE_BYTES  # the whole room, no more


def test_without_a_relay_prefix_only_the_sent_line_counts():
    box, _ = outbox()
    box.submit("#test", "a" * 600)
    [(channel, text)] = box.take_ready()
    assert box.relay_reserve == 0 and len(send_line(channel, text)) == MAX_LINE_BYTES


def test_until_user_and_host_are_known_the_margin_covers_the_longest_usual_ones():
    longest = "vbot!" + "u" * 10 + "@" + "h" * 63  # USERLEN 10, HOSTLEN 63
    box, clock = outbox()
    box.set_relay_prefix("vbot")
    assert box.relay_reserve == len(f":{longest} ")
    box.submit("#test", "é" * 300)
    [(channel, text)] = box.take_ready()
    assert len(relayed_line(longest, channel, text)) <= MAX_LINE_BYTES
    box.set_relay_prefix(BOT_SOURCE)  # the JOIN echo shows the real one: more room
    box.submit("#test", "ü" * 300)
    clock.advance(1)
    [(channel, longer)] = box.take_ready()
    assert len(longer) > len(text) and len(relayed_line(BOT_SOURCE, channel, longer)) <= MAX_LINE_BYTES


def test_a_short_reply_is_not_cut_for_the_relay_prefix():
    box, _ = outbox()
    box.set_relay_prefix("vbot")
    box.submit("#test", "Version: 1.0")
    assert box.take_ready() == [("#test", "Version: 1.0")]


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(max_size=700), channel=CHANNELS,
       source=st.text("abcdefghijklmnopqrstuvwxyz0123456789.~-", min_size=1, max_size=60)
       .map(lambda tail: f"n!{tail}@h"))
def test_fit_with_a_reserve_fits_the_relayed_line(text, channel, source):
    reserve = len(f":{source} ".encode())
    cut = fit(clean(text), channel, reserve=reserve)
    assert len(relayed_line(source, channel, cut)) <= MAX_LINE_BYTES
    assert cut == clean(text) or cut.endswith(ELLIPSIS)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(st.characters(blacklist_categories=()), max_size=700), channel=CHANNELS)
def test_anything_repeated_can_be_sent(text, channel):
    """Sent twice where the bot is not privileged, the repeat (with its suffix) is a valid line too."""
    box, clock = outbox()
    for _ in range(2):
        box.submit(channel, text)
        for target, sent in box.take_ready():
            line = send_line(target, sent)
            assert len(line) <= MAX_LINE_BYTES and len(sent) <= MAX_CHARACTERS
            assert not set(sent) & {"\r", "\n", "\0"}
        clock.advance(1)


# --- off Twitch: the flood rule (issue 18 item 8) -------------------------------------------


def test_line_pace_is_a_burst_then_one_penalty_second_per_second():
    clock = FakeClock()
    pace = LinePace(clock=clock)
    assert pace.room() == 7 and pace.wait_time() == 0
    for line in ("CAP REQ :twitch.tv/membership", "PASS secret", "NICK vbot", "USER vbot 0 * :vbot", "PONG :x"):
        pace.sent(line)  # PASS, NICK and PONG cost nothing
    pace.sent("JOIN #a")  # charged when the join pacing released it, not again
    pace.sent("PRIVMSG #a :hi")
    assert pace.room() == 5
    pace.charge(LinePace.PENALTIES["JOIN"])
    pace.charge()
    pace.charge()
    assert pace.room() == 1 and pace.wait_time() == 0
    assert pace.wait_time(LinePace.PENALTIES["JOIN"]) == pytest.approx(1.0)
    clock.advance(0.5)
    assert pace.wait_time(2) == pytest.approx(0.5)
    clock.advance(60)
    assert pace.room() == 7  # drained, never below nothing
    pace.charge(5)
    pace.reset()
    assert pace.room() == 7


def test_off_twitch_the_flood_rule_replaces_twitchs_limits():
    """A plain server has no per-channel 1 s rule, no 20 per 30 s and no msg_duplicate: seven
    replies go at once, then one per second, the same text included (no invisible suffix)."""
    box, clock = outbox()
    box.use_line_pace(True)
    for _ in range(10):
        box.submit("#a", "same")
    assert box.take_ready() == [("#a", "same")] * 7
    assert box.wait_time() == pytest.approx(1.0)
    clock.advance(0.99)
    assert box.take_ready() == []
    clock.advance(0.01)
    assert box.take_ready() == [("#a", "same")]
    box.use_line_pace(False)  # Twitch again (a new login): its limits, and the suffix
    assert box.pace is None and box.vary_repeats


def test_a_budget_of_infinity_paces_nothing():
    box, _ = outbox(line_budget=math.inf)
    box.use_line_pace(True)
    for number in range(40):
        box.submit("#a", f"reply {number}")
    assert len(box.take_ready()) == 40 and box.wait_time() is None


# --- per-channel queues: the same decisions as one queue scanned on every call (issue 19) ------


class OneQueueOutbox(Outbox):
    """The outbox as it was before per-channel queues (0.2): one queue in arrival order, scanned
    whole by ``take_ready`` and ``wait_time`` (each channel's own rules are the real one's).
    The reference the real one must match."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.queue: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.queue)

    def submit(self, channel: str, text: str) -> bool:
        text = clean(text)[: MAX_CHARACTERS + 1]
        if not fit(text, channel, reserve=self.relay_reserve):
            return False
        if len(self.queue) >= self.limits.queue_size:
            self.queue.pop(0)
            self.dropped += 1
        self.queue.append((channel, text))
        return True

    def take_ready(self) -> list[tuple[str, str]]:
        now, ready, kept, blocked = self._clock(), [], [], set()
        for channel, text in self.queue:
            if channel in blocked or not self._may_send(channel, now):
                blocked.add(channel)
                kept.append((channel, text))
            else:
                sent = self._as_sent(channel, text, now)
                self._record(channel, sent, now)
                ready.append((channel, sent))
        self.queue = kept
        return ready

    def wait_time(self) -> float | None:
        if not self.queue:
            return None
        if self.pace is not None:
            return self.pace.wait_time()
        now = self._clock()
        return max(min(self._ready_at(channel, now) for channel in {channel for channel, _ in self.queue}) - now, 0.0)


STEPS = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(["#a", "#b", "#c"]), st.sampled_from(["hi", "hi", "yo", " "])),
    st.tuples(st.just("advance"), st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0, 31.0])),
    st.tuples(st.just("take_ready")),
    st.tuples(st.just("privileged"), st.sampled_from(["#a", "#b"]), st.booleans()),
    st.tuples(st.just("pause"), st.sampled_from(["#a", "#b"]), st.sampled_from([0.5, 2.0, 30.0])),
    st.tuples(st.just("line_pace"), st.booleans()),
)


# #b waits (paused) while #a sends its first reply and keeps its second (1 s rule): #a came first,
# but its oldest reply is now younger than #b's, which goes first, or is the one a full queue drops.
NEWER_HEAD_FIRST = [("submit", "#a", "hi"), ("submit", "#b", "yo"), ("submit", "#a", " hi "), ("pause", "#b", 2.0),
                    ("take_ready",), ("advance", 3.0), ("take_ready",)]
DROP_AFTER_IT = [*NEWER_HEAD_FIRST[:5], ("submit", "#c", "hi"), ("submit", "#c", "yo"), ("advance", 3.0),
                 ("take_ready",)]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(steps=st.lists(STEPS, max_size=80), queue_size=st.integers(1, 6), messages=st.integers(1, 5))
@example(steps=NEWER_HEAD_FIRST, queue_size=5, messages=5)
@example(steps=DROP_AFTER_IT, queue_size=3, messages=5)
def test_per_channel_queues_decide_as_one_scanned_queue(steps, queue_size, messages):
    """Any mix of replies to three channels, privilege, pauses, the flood rule and time: every
    release, wait and drop is the one scanning a single queue gives."""
    limits = Limits(queue_size=queue_size, messages=messages, privileged_messages=messages + 2)
    clock = FakeClock()
    boxes = Outbox(limits, clock), OneQueueOutbox(limits, clock)
    for step in steps:
        if step[0] == "advance":
            clock.advance(step[1])
            continue
        answers = []
        for box in boxes:
            if step[0] == "submit":
                answers.append(box.submit(step[1], step[2]))
            elif step[0] == "take_ready":
                answers.append(box.take_ready())
            elif step[0] == "privileged":
                box.set_privileged(step[1], step[2])
            elif step[0] == "pause":
                box.pause(step[1], step[2])
            else:
                box.use_line_pace(step[1])
            answers.append((len(box), box.dropped, box.wait_time()))
        assert answers[: len(answers) // 2] == answers[len(answers) // 2 :], step
