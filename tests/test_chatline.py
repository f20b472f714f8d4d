"""The chat fast path reads every line as the ``irc`` library does: a differential test.

The same lines go through two readers. The reference is the library's own parsing, a plain
``irc.client.ServerConnection`` on a plain ``Reactor``, whose ``pubmsg`` and ``action`` events
are turned into what vbot takes from them (``VBot.on_pubmsg``/``on_action``), with vbot's one
departure (``LibraryConnection``: CTCP framing other than a plain ACTION is one line, whole). The other is
vbot's ``irclib.TwitchConnection`` with the fast path on (``vbot.chatline.parse_chat_line``),
whose lines that are not claimed still go through the library. Both must give the same
``(channel, nick, text, tags, is_action, role)`` for every line, in order.

Where the library raises (a PRIVMSG without text), vbot skips the line, before and after: the
fast path gives nothing for it either. Where the library is wrong (a server line whose command is
one of its own event names, ``PUBMSG``, fires that event), vbot skips the line, before and after.
Where the library departs from IRCv3 (a lone
``\\`` at the end of a tag value is kept), the fast path keeps the library's reading, so that
no role or display name changes with this path (see ``LIBRARY_TAG_DEPARTURES``).

Lines: a generated Twitch firehose (bench/chat.py), every vector of the ``irc-parser-tests``
package, Twitch's sample lines, and Hypothesis lines: chat-shaped lines built from near-miss
parts, mutated firehose lines, any text; then bytes (invalid UTF-8, characters cut at the end
of a line, over-long lines) through the line buffer, in any chunking.
"""

from __future__ import annotations

import logging
import socket

import irc.client
import irc.events
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from irc.message import Tag
from jaraco.stream.buffer import LineBuffer
from parser_tests import data as vectors

from bench.chat import ChatStream, encode
from tests.support import BotHarness, FakeClock
from tests.test_fuzz import TWITCH_SAMPLES, parser_test_lines
from vbot.chat import role_from_tags, tags_to_dict
from vbot.chatline import LazyTags, decode_line, find_tag, parse_chat_line, parse_tags
from vbot.dispatch import CommandTable, Context, Cooldowns, Dispatcher, command
from vbot.irclib import LIBRARY_EVENTS, ChatLineBuffer, GuardedReactor
from vbot.lines import MAX_RECEIVED_LINE_BYTES

WELCOME = ":tmi.twitch.tv 001 vbot :Welcome, GLHF!"
"""Sent first to both readers: the library takes the first source it sees as the server's name."""
CHECK = settings(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


def outcome(channel, nick, text, tags, is_action) -> tuple:
    """What the bot gets from one chat line, tags as a plain dict, and the Twitch role they give."""
    tags = dict(tags)
    return channel, nick, text, tags, is_action, role_from_tags(tags, nick.lower(), channel.lower())


class LibraryConnection(irc.client.ServerConnection):
    """The library's reading, but for vbot's departure (vbot.chatline, vbot.irclib): a PRIVMSG to a
    channel whose text holds ``\x01`` other than as one ``\x01ACTION …\x01`` is one /me-like line with
    its whole text, where the library makes ``ctcp`` events of it, which vbot ignores: a spam
    filter must see that text (Twitch shows it), and it must never run a command."""

    def _handle_message(self, arguments, command, source, tags):
        text = arguments[1] if len(arguments) > 1 else ""
        plain_action = text.startswith("\x01ACTION ") and text.endswith("\x01") and text.count("\x01") == 2
        if command == "privmsg" and irc.client.is_channel(arguments[0]) and "\x01" in text and not plain_action:
            self._handle_event(irc.client.Event("action", source, arguments[0], [text], tags))
        else:
            super()._handle_message(arguments, command, source, tags)


class LibraryReactor(irc.client.Reactor):
    connection_class = LibraryConnection


class Reader:
    """One reader of server lines; ``read(line)`` returns the chat outcomes of that line.

    ``fast=False``: the library alone (``irc.client.Reactor``, ``ServerConnection``, but for
    ``LibraryConnection``'s departure), its exception reported as ``("raises", name)``.
    ``fast=True``: vbot's TwitchConnection with the fast path; ``claimed`` holds the outcomes of
    the lines it took without the library.
    The connection is connected to a loopback listener that never answers (``close()`` closes
    both): lines are fed to it as its ``process_data`` does, one decoded line at a time.
    """

    def __init__(self, fast: bool, welcome: bool = True):
        self.reactor = GuardedReactor() if fast else LibraryReactor()
        self.connection = self.reactor.server()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connection.connect("127.0.0.1", self.listener.getsockname()[1], "vbot")
        self.outcomes: list[tuple] = []
        self.claimed: list[tuple] = []  # the outcomes of lines the fast path took
        if fast:
            self.connection.chat_handler = self.fast_chat
        self.reactor.add_global_handler("pubmsg", self.on_pubmsg)
        self.reactor.add_global_handler("action", self.on_action)
        if welcome:
            self.read(WELCOME)

    def fast_chat(self, channel, nick, text, tags, is_action) -> None:
        assert isinstance(tags, LazyTags)
        self.outcomes.append(outcome(channel, nick, text, tags, is_action))
        self.claimed.append(self.outcomes[-1])

    def on_pubmsg(self, connection, event) -> None:  # as VBot.on_pubmsg
        if event.source is not None:
            self.outcomes.append(outcome(event.target, event.source.nick, event.arguments[0],
                                         tags_to_dict(event.tags), False))

    def on_action(self, connection, event) -> None:  # as VBot.on_action
        if event.source is not None and irc.client.is_channel(event.target or ""):
            text = event.arguments[0] if event.arguments else ""
            self.outcomes.append(outcome(event.target, event.source.nick, text, tags_to_dict(event.tags), True))

    def close(self) -> None:
        self.connection.socket.close()
        self.listener.close()

    def read(self, line: str) -> list[tuple]:
        start = len(self.outcomes)
        try:
            self.connection._process_line(line)
        except Exception as error:  # only the library alone raises; vbot logs and skips the rest of the line
            return [*self.outcomes[start:], ("raises", type(error).__name__)]
        return self.outcomes[start:]


def library_command(line: str) -> str | None:
    """The command as the library reads it (lowercased, or named: ``PRIVMSG`` -> ``privmsg``)."""
    match = irc.client._rfc_1459_command_regexp.match(line)
    return irc.events.Command.lookup(match.group("command")) if match else None


@pytest.fixture
def make_reader():
    """``make_reader(fast, welcome=True)``: a new Reader, closed after the test."""
    made: list[Reader] = []

    def make(fast: bool, welcome: bool = True) -> Reader:
        made.append(Reader(fast, welcome))
        return made[-1]

    yield make
    for reader in made:
        reader.close()


@pytest.fixture
def readers(make_reader) -> tuple[Reader, Reader]:
    """The library alone, and vbot's connection with the fast path."""
    return make_reader(fast=False), make_reader(fast=True)


def assert_read_alike(lines, library: Reader, fast: Reader) -> None:
    """Every line gives the same outcomes on both readers; nothing from vbot where vbot skips the
    line, before and after: where the library raises, for a line over MAX_RECEIVED_LINE_BYTES, and for a
    line whose command is one of the library's own event names (``PUBMSG``: the library would
    fire that event)."""
    for line in lines:
        expected = library.read(line)
        if expected and expected[-1][0] == "raises":
            expected = expected[:-1]
        if len(line) > MAX_RECEIVED_LINE_BYTES or library_command(line) in LIBRARY_EVENTS:
            expected = []
        assert fast.read(line) == expected, f"read differently: {line!r}"


# --- lines from real chat and from the parser test vectors --------------------------------------


def test_a_twitch_firehose_is_read_alike_and_all_its_chat_takes_the_fast_path(readers):
    lines = ChatStream("#test", users=500, seed=19).lines(20_000)
    chat = [line for line in lines if " PRIVMSG #test :" in line]
    ends = ["\x01", " \x01", "\x01 ", "\x01\x01", "", "\x10n\x01", "\x01", "\x01"]
    ctcp = [  # each CTCP shape the fast path takes or leaves, in real Twitch lines
        line.replace(" PRIVMSG #test :", " PRIVMSG #test :\x01ACTION ")[:-1] + end
        for line, end in zip(chat, ends, strict=False)
    ]
    assert_read_alike(lines + ctcp, *readers)
    fast = readers[1]
    assert len(chat) > 18_000
    assert len(fast.claimed) == len(chat) + 7  # every chat line and every CTCP line but the one quoted (\x10)
    assert sum(outcome[4] for outcome in fast.claimed) == 7
    assert sum(outcome[4] and "\x01" in outcome[2] for outcome in fast.claimed) == 3  # read whole, for the filters


def test_twitch_samples_and_every_parser_test_vector_are_read_alike(readers):
    lines = TWITCH_SAMPLES + parser_test_lines()
    tagged = [test["input"].split(" ", 1)[0] for test in vectors.msg_split["tests"] if test["input"][:1] == "@"]
    lines += [f"{tags} :ann!ann@host PRIVMSG #test :hello" for tags in tagged]
    lines += [f"{tags} :ann!ann@host PRIVMSG #test :\x01ACTION waves\x01" for tags in tagged]
    assert_read_alike(lines, *readers)
    assert len(readers[1].claimed) > 60


LIBRARY_TAG_DEPARTURES = {"@tag1=value1\\ COMMAND": {"tag1": "value1\\"}}
"""msg-split vectors whose tags the library (and so vbot) reads otherwise than IRCv3 says:
a lone ``\\`` at the end of a value is kept, where IRCv3 drops it (the vector expects
``value1``). Harmless for Twitch, which never ends a value so."""


def test_tags_as_the_parser_test_vectors_expect_except_where_the_library_departs():
    for test in vectors.msg_split["tests"]:
        if test["input"][:1] != "@":
            continue
        text = test["input"].split(" ", 1)[0][1:]
        expected = LIBRARY_TAG_DEPARTURES.get(test["input"], test["atoms"]["tags"])
        assert parse_tags(text) == dict(LazyTags(text)) == expected, test["input"]
        assert parse_tags(text) == tags_to_dict(Tag.from_group(text))


# --- generated lines ---------------------------------------------------------------------------

TAG_TEXT = st.text(alphabet="ab=;\\:srn\r\x00é😂-/+ ", max_size=24)
SOURCES = st.sampled_from([":ann!ann@ann.tmi.twitch.tv", ":Ann", ":tmi.twitch.tv", ":!ann@host", "::a!a@h", ":a!b!c@d"])
ODD_SOURCES = st.one_of(st.just(":"), st.just(""), st.text(alphabet=":!@.a~\x00é", max_size=12))
ODD_COMMANDS = st.sampled_from(["privmsg", "Privmsg", "NOTICE", "PRIVMSGX", "PRIV", "001", "JOIN", "PUBMSG", "ACTION"])
CHANNELS = st.sampled_from(["#chan", "#Chan", "&chan", "+chan", "!chan", "#", "#a:b", "#é😂", "#a!b@c"])
ODD_TARGETS = st.one_of(
    st.sampled_from(["bot", "", ":#chan", "#\xa0x", "#\u3000x", "#\tx", "#x\x85", "#x\u2028", "#x\x00", "#x\r"]),
    st.text(alphabet="#&+!:ab\t\xa0\x85\u2028\x01", max_size=6),
)
TEXTS = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "!version", ":", "::x", " ", "hi ", "a :b", "\x01ACTION waves\x01", "\x01ACTION \x01",
                     "\x01ACTION\x01", "\x01ACTION waves", "\x01VERSION\x01", "x\x01ACTION waves\x01",
                     "\x01ACTION waves\x01 x", "\x01ACTION a\x01b\x01", "\x01ACTION \x10n\x01", "\x10", "\x01"]),
    st.text(alphabet="\x01\x10ACTION :ab", max_size=16),
)
ODD_GAPS = st.sampled_from(["  ", "", "\t", "\xa0", " : "])


@st.composite
def chat_shaped(draw) -> str:
    """``[@tags ]:source PRIVMSG <channel> :<text>``, each part right nine times in ten, else a near miss."""

    def part(right: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> str:
        return draw(odd if draw(st.integers(0, 9)) == 0 else right)

    gap = st.just(" ")
    parts = ["@" + draw(TAG_TEXT), part(gap, ODD_GAPS)] if draw(st.booleans()) else []
    parts += [part(SOURCES, ODD_SOURCES), part(gap, ODD_GAPS), part(st.just("PRIVMSG"), ODD_COMMANDS)]
    parts += [part(gap, ODD_GAPS), part(CHANNELS, ODD_TARGETS), part(gap, ODD_GAPS)]
    parts += [part(st.just(":"), st.sampled_from(["", "::", ": "])), draw(TEXTS)]
    return "".join(parts).replace("\n", " ")


FIREHOSE = ChatStream("#chan", users=50, seed=7).lines(200)
SPECIAL = [" ", "  ", ":", "@", ";", "=", "!", "#", "\\", "\\s", "\x00", "\x01", "\x10", "\r", "\t", "\xa0",
           "é", "😂", "PRIVMSG", "NOTICE", "ACTION ", "\x01ACTION ", "#chan", ":#chan"]


@st.composite
def mutated_firehose(draw) -> str:
    """A real Twitch line with a few characters deleted, replaced or inserted anywhere."""
    line = draw(st.sampled_from(FIREHOSE))
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(line)))
        end = draw(st.integers(start, min(len(line), start + 3)))
        line = line[:start] + draw(st.sampled_from(SPECIAL) | st.text(max_size=2)) + line[end:]
    return line.replace("\n", " ")


ANY_LINE = st.text(min_size=1, max_size=80).map(lambda line: line.replace("\n", " "))


@pytest.mark.parametrize("lines", [chat_shaped(), mutated_firehose(), ANY_LINE],
                         ids=["chat-shaped", "mutated-firehose", "any-text"])
def test_generated_lines_are_read_alike(lines, readers):
    @settings(CHECK, max_examples=400)
    @given(st.lists(lines, min_size=1, max_size=20))
    def check(batch):
        assert_read_alike(batch, *readers)
        seen.extend(batch)

    seen: list[str] = []
    check()
    print(f"{len(seen)} lines, {len(readers[1].claimed)} taken by the fast path")


@CHECK
@given(TAG_TEXT | st.text(max_size=40))
def test_tags_are_the_librarys(text):
    expected = tags_to_dict(Tag.from_group(text))
    tags = LazyTags(text)
    assert parse_tags(text) == dict(tags) == expected
    assert len(tags) == len(expected) and list(tags) == list(expected)
    for key in [*expected, "absent"]:
        assert tags.get(key) == expected.get(key) and (key in tags) == (key in expected)


def test_a_long_line_is_read_alike_up_to_the_limit_and_skipped_beyond_it(readers):
    tags = "k=" + "v" * (MAX_RECEIVED_LINE_BYTES - 60)
    fits = f"@{tags} :ann!ann@host PRIVMSG #chan :!version"
    beyond = f"@{tags}{'v' * 100} :ann!ann@host PRIVMSG #chan :!version"
    assert_read_alike([fits, beyond], *readers)
    assert len(fits) <= MAX_RECEIVED_LINE_BYTES < len(beyond) and len(readers[1].claimed) == 1


# --- bytes: decoding and the line buffer -------------------------------------------------------


def reference_decode(raw: bytes) -> str:
    """The rule, written otherwise: UTF-8; a last character cut short is U+FFFD; else Latin-1."""
    try:
        return raw.decode()
    except UnicodeDecodeError as error:
        if error.reason == "unexpected end of data":  # the bytes from error.start on begin a character
            return raw[: error.start].decode() + "\ufffd"
        return raw.decode("latin-1")


@pytest.mark.parametrize(("raw", "text"), [
    (b"hello", "hello"),
    ("Olé ありがとう 😂".encode(), "Olé ありがとう 😂"),
    ("ありがとう".encode()[:-1], "ありがと\ufffd"),  # cut by the server at its length limit
    ("ありがとう".encode()[:-2], "ありがと\ufffd"),
    ("😂".encode()[:3], "\ufffd"),
    ("😂".encode()[:1], "\ufffd"),
    (b"caf\xe9 au lait", "café au lait"),  # Latin-1: not UTF-8 at all
    (b"\xe9t\xe9", "été"),
    ("Olé".encode() + b" caf\xe9 ok", "OlÃ© café ok"),  # UTF-8 and Latin-1 mixed: not UTF-8
    (b"caf\xe9", "caf\ufffd"),  # a Latin-1 letter last reads as a character cut short (see decode_line)
    (b"\xff", "ÿ"),  # never a UTF-8 byte
    (b"\xed\xa0\x80", "í\xa0\x80"),  # an encoded surrogate is not UTF-8
    (b"ab" + "😂".encode()[:2] + b"c", "ab\xf0\x9fc"),  # cut in the middle: not UTF-8
])
def test_decode_line(raw, text):
    assert decode_line(raw) == text == reference_decode(raw)


@CHECK
@given(st.binary(max_size=40) | st.text(max_size=20).map(lambda text: text.encode()[: len(text)]))
def test_decode_line_is_the_rule(raw):
    assert decode_line(raw) == reference_decode(raw)


LINE_BYTES = st.one_of(
    st.sampled_from(FIREHOSE).map(str.encode),
    st.sampled_from(FIREHOSE).map(lambda line: line.encode()[: len(line.encode()) - 1]),  # cut at the end
    st.sampled_from(FIREHOSE).map(lambda line: line.encode("latin-1", "replace")),
    st.binary(max_size=60),
    st.integers(MAX_RECEIVED_LINE_BYTES - 50, MAX_RECEIVED_LINE_BYTES + 50).map(
        lambda n: b"@k=" + b"v" * n + b" :a!a@a PRIVMSG #c :hi"),
)


@CHECK
@given(lines=st.lists(LINE_BYTES, min_size=1, max_size=12),
       ends=st.lists(st.sampled_from([b"\r\n", b"\n"]), min_size=12, max_size=12),
       rng=st.randoms(use_true_random=False))
def test_bytes_in_any_chunking_are_split_and_decoded_by_the_rule_and_read_alike(readers, lines, ends, rng):
    data = b"".join(raw.replace(b"\n", b" ") + end for raw, end in zip(lines, ends, strict=False))
    expected_buffer = LineBuffer()  # the library's splitting, bytes only
    expected_buffer.feed(data)
    expected = [reference_decode(raw) for raw in expected_buffer.lines()]
    buffer, got, at = ChatLineBuffer(), [], 0
    while at < len(data):  # the socket gives any number of bytes at a time
        size = rng.choice([1, 2, 7, 100, 4096, 16384])
        buffer.feed(data[at : at + size])
        got += buffer.lines()
        at += size

    def short(line: str) -> bool:  # well within the limit, whatever the chunking (a decoded line is never shorter)
        return len(line.encode()) <= MAX_RECEIVED_LINE_BYTES - 2

    assert list(filter(short, got)) == list(filter(short, expected))
    assert_read_alike([line for line in got if line], *readers)


def test_an_over_long_line_is_discarded_as_it_arrives_and_the_next_is_kept(caplog):
    buffer = ChatLineBuffer()
    buffer.feed(b":a!a@a PRIVMSG #c :" + b"x" * (MAX_RECEIVED_LINE_BYTES + 100))  # 16,503 bytes
    assert len(buffer) <= MAX_RECEIVED_LINE_BYTES and buffer.lines() == []
    for _ in range(100):
        buffer.feed(b"x" * 16384)
    assert len(buffer) == 0
    buffer.feed(b"x\r\n:b!b@b PRIVMSG #c :next\r\n")
    assert buffer.lines() == [":b!b@b PRIVMSG #c :next"]
    assert "discarded a line of 1654906 bytes" in caplog.text  # 16,503 + 100 × 16,384 + 3


# --- the fast path in the connection -----------------------------------------------------------


def test_a_chat_handler_that_raises_is_logged_and_the_next_line_goes_on(make_reader, caplog):
    reader = make_reader(fast=True)
    outcomes = []

    def chat(channel, nick, text, tags, is_action):
        if text == "boom":
            raise RuntimeError("handler bug")
        outcomes.append(text)

    reader.connection.chat_handler = chat
    for text in ["one", "boom", "two"]:
        reader.read(f":ann!ann@host PRIVMSG #chan :{text}")
    assert outcomes == ["one", "two"]
    assert [record.levelno for record in caplog.records if "chat handler chat failed" in record.getMessage()] == [
        logging.ERROR]


def test_before_the_server_has_a_name_chat_goes_through_the_library(make_reader):
    """The library names the server after the first source it sees; until then no line is claimed."""
    reader, library = make_reader(fast=True, welcome=False), make_reader(fast=False, welcome=False)
    line = ":ann!ann@host PRIVMSG #chan :first"
    assert reader.read(line) == library.read(line) and not reader.claimed
    assert reader.connection.get_server_name() == library.connection.get_server_name() == "ann!ann@host"
    reader.read(":ann!ann@host PRIVMSG #chan :second")
    assert len(reader.claimed) == 1


TAG_KEYS = st.sampled_from(["badges", "user-id", "room-id", "mod", "vip", "subscriber", "display-name", "emotes",
                            "id", "a", "b", "ab", "", "s", "=", ";", "a=b", "é"])
FIREHOSE_TAGS = [line[1:].split(" ", 1)[0] for line in FIREHOSE if line.startswith("@")]


@CHECK
@given(TAG_TEXT | st.text(max_size=40) | st.sampled_from(FIREHOSE_TAGS), st.lists(TAG_KEYS | st.text(max_size=3)))
@example(r"a=x\sy;b=\\;ab=\:;a;=a;b=c=d;é", [])
def test_one_tag_found_in_the_text_is_the_librarys(text, keys):
    """Before the tags are parsed, a tag read alone is found in their text: the same value (or
    absence) as the library's parse, the same role from them, for any tags text and key."""
    expected = tags_to_dict(Tag.from_group(text))
    for key in [*keys, *expected]:
        tags = LazyTags(text)
        assert find_tag(text, key) == tags.get(key) == expected.get(key), key
        assert (key in tags) == (key in expected) and tags.get(key, "none") == expected.get(key, "none")
        if key in expected:
            assert tags[key] == expected[key]
        else:
            with pytest.raises(KeyError):
                tags[key]
    for login, channel in [("ann", "#chan"), ("chan", "#chan")]:
        assert role_from_tags(LazyTags(text), login, channel) == role_from_tags(expected, login, channel)


def test_tags_are_a_read_only_mapping():
    tags = parse_chat_line("@badges=vip/1;display-name=Ann :ann!a@h PRIVMSG #c :hi")[3]
    assert tags == {"badges": "vip/1", "display-name": "Ann"} and tags["display-name"] == "Ann"
    assert "badges" in tags and "mod" not in tags and tags.get("mod", "0") == "0"
    assert repr(tags) == "LazyTags({'badges': 'vip/1', 'display-name': 'Ann'})"
    with pytest.raises(TypeError):
        tags["mod"] = "1"  # type: ignore[index]
    with pytest.raises(KeyError):
        tags["mod"]


def test_encode_round_trip_of_the_firehose_is_what_the_buffer_reads():
    lines = ChatStream("#chan", users=20, seed=3).lines(300)
    buffer = ChatLineBuffer()
    buffer.feed(encode(lines))
    assert buffer.lines() == lines


# --- the bot on the fast path ------------------------------------------------------------------


@command("echo", cooldown=0, user_cooldown=0)
def echo(ctx: Context) -> str:
    return f"{ctx.message.name} ({ctx.message.role.label}) said {ctx.args}"


def echo_bot() -> BotHarness:
    dispatcher = Dispatcher(CommandTable.collect([echo]), "!", cooldowns=Cooldowns(FakeClock()))
    return BotHarness(dispatcher=dispatcher).welcome()


def test_a_line_cut_mid_character_is_answered_without_mojibake():
    """Issue 18 item 8: a server cutting a chatter's line mid-character made the whole line Latin-1."""
    harness = echo_bot()
    harness.feed(":ann!ann@host PRIVMSG #test :!echo ありがとう 😂".encode()[:-2])
    assert harness.replies() == ["PRIVMSG #test :ann (everyone) said ありがとう \ufffd"]
    harness.advance(1)  # Twitch's pace: a message per second in a channel where the bot is no moderator
    harness.feed(b":ann!ann@host PRIVMSG #test :!echo caf\xe9 cr\xe8me")  # a Latin-1 client
    assert harness.replies() == ["PRIVMSG #test :ann (everyone) said café crème"]


def test_the_bot_answers_chat_from_the_fast_path_with_roles_and_names_from_the_tags():
    harness = echo_bot()
    harness.say("bob", "!echo hi", tags="badges=moderator/1;display-name=Bob\\sB;mod=1")
    harness.say("bob", "\x01ACTION !echo waves\x01")  # a /me is chat, never a command
    harness.say("cy", "!echo x", channel="#elsewhere")  # a channel the bot is not in
    assert harness.replies() == ["PRIVMSG #test :Bob B (moderator) said hi"]
