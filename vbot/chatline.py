"""Chat lines the quick way: a server line's bytes to text, and a PRIVMSG to a channel in one split.

On a busy Twitch channel more than 90% of the lines are PRIVMSGs, and for most of them vbot needs
only the channel, the chatter and the text (the prefix check, the timers' line count). The ``irc``
library reads each line with a regular expression, turns every IRCv3 tag into a dict of its own
(about 16 per Twitch line) and makes two Event objects. ``parse_chat_line`` splits the line once
and keeps the tags as text until something reads them (``LazyTags``).

It claims a line only when the library would read it the same way: the same channel, nick, text,
tags and CTCP ACTION. Any other line (another command, a private message, an odd spacing, a line
without a source) gives None and goes through the library as before. ``tests/test_chatline.py``
checks this line by line against the library.

One departure, on both paths (``vbot.irclib.TwitchConnection._handle_message`` for the library's):
a channel PRIVMSG framed as CTCP other than one plain ACTION (``\x01VERSION visit evil.com\x01``,
``\x01X\x01 visit evil.com``: ``is_other_ctcp``) is one line with its whole text, read as a /me
line is: the spam filters check it, it never runs a command. The library splits it into ``ctcp``
events, which vbot ignores, so it would skip the filters while Twitch shows the text in chat.

Sources: RFC 1459 section 2.3.1 (message format), IRCv3 "Message Tags" (tag syntax and value
escaping, https://ircv3.net/specs/extensions/message-tags), the CTCP spec (ACTION), and the
``irc`` library's ``client.ServerConnection._process_line``, ``message.Tag`` and ``ctcp.dequote``,
whose results this module reproduces.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping

from irc.message import Tag

CHANNEL_PREFIXES = "#&+!"
"""A target starting with one of these is a channel (``irc.client.is_channel``; RFC 2811 section 2.1)."""
ACTION_START = "\x01ACTION "
"""The start of a CTCP ACTION (``/me``), which ends with ``\\x01``."""

ChatLine = tuple[str, str, str, "LazyTags", bool]
"""``(channel, nick, text, tags, is_action)``, what ``parse_chat_line`` gives: the channel as the
server wrote it (``#`` included, case kept), the sender's nick, the text (for ``/me``, without
the CTCP frame), the tags, and whether it was a CTCP ACTION, or other CTCP framing (the whole
text, ``is_other_ctcp``): never a command."""


def is_other_ctcp(text: str) -> bool:
    r"""True when a PRIVMSG's ``text`` holds CTCP framing (````) other than one plain ACTION
    (``ACTION …``, nothing around it).

    >>> [is_other_ctcp(text) for text in ("hi", "ACTION waves", "VERSION x", "X hi")]
    [False, False, True, True]
    """
    return "\x01" in text and not (text.startswith(ACTION_START) and text.endswith("\x01") and text.count("\x01") == 2)


def decode_line(raw: bytes) -> str:
    r"""One line from the server as text: UTF-8; a character cut short at the end of the line
    (a server cutting a long line mid-character) becomes U+FFFD; Latin-1 for a line that is not
    UTF-8 at all.

    A line of ASCII ending in one Latin-1 letter such as ``é`` (``\xe9``, also the first byte of
    a three-byte UTF-8 character) reads as UTF-8 cut short: both are possible, and a cut is the
    commoner on today's servers (Twitch sends UTF-8 only).

    >>> decode_line('Olé 😂'.encode())
    'Olé 😂'
    >>> decode_line('Olé 😂'.encode()[:-1])
    'Olé \ufffd'
    >>> decode_line('Olé 😂'.encode('latin-1', 'replace'))
    'Olé ?'
    >>> decode_line(b'Ol\xe9!')
    'Olé!'
    """
    try:
        return raw.decode()
    except UnicodeDecodeError:
        pass
    try:  # an incremental decoder holds back an unfinished last character instead of raising
        text = codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
    except UnicodeDecodeError:
        return raw.decode("latin-1")
    return text + "\ufffd"


def parse_tags(text: str) -> dict[str, str]:
    r"""IRCv3 tags (the text between ``@`` and the first space) as ``{key: value}``, exactly as
    ``vbot.chat.tags_to_dict(irc.message.Tag.from_group(text))`` gives them: a tag without a
    value, or with an empty one, is ``''``; the last of two equal keys wins; escaped values are
    unescaped by the library's ``Tag.parse`` (which keeps a lone ``\`` at the end of a value,
    where IRCv3 drops it).

    >>> parse_tags(r'badges=moderator/1,subscriber/12;mod=1;flags;msg=hi\sthere\:)')
    {'badges': 'moderator/1,subscriber/12', 'mod': '1', 'flags': '', 'msg': 'hi there;)'}
    >>> parse_tags('')
    {}
    """
    tags: dict[str, str] = {}
    if not text:
        return tags
    escaped = "\\" in text  # rare in chat: a reply's reply-parent-msg-body, say
    for item in text.split(";"):
        key, _, value = item.partition("=")
        if escaped and "\\" in value:
            value = Tag.parse(item)["value"] or ""
        tags[key] = value
    return tags


def find_tag(text: str, key: str) -> str | None:
    r"""The value of the tag ``key`` in IRCv3 tags text, as ``parse_tags(text).get(key)`` gives it, found
    without parsing the other tags: one search from the end, since the last of two equal keys wins.
    None when there is no such tag (a key holding ``;`` or ``=`` never is one).

    >>> text = r'badges=moderator/1;emotes=25:0-4;flags;emotes=;msg=a\sb'
    >>> find_tag(text, 'emotes'), find_tag(text, 'flags'), find_tag(text, 'msg'), find_tag(text, 'mod')
    ('', '', 'a b', None)
    """
    if not text or ";" in key or "=" in key:
        return None
    end = len(text)
    while (at := text.rfind(key, 0, end)) >= 0:
        after = at + len(key)
        if (at == 0 or text[at - 1] == ";") and text[after : after + 1] in ("", ";", "="):  # a whole key
            if text[after : after + 1] != "=":
                return ""
            stop = text.find(";", after)
            value = text[after + 1 : stop if stop >= 0 else len(text)]
            if "\\" in value:  # escaped, as in parse_tags
                value = Tag.parse(f"{key}={value}")["value"] or ""
            return value
        if at == 0:
            break
        end = after - 1  # the next search ends before this match starts
    return None


class LazyTags(Mapping[str, str]):
    """A line's IRCv3 tags, read-only, kept as their text until read.

    The first tag read (``get``, ``[]``, ``in``) is found in the text (``find_tag``); a second
    read, or going through them all, parses the text once (``parse_tags``, about what four finds
    cost). Most chat lines are never asked for a tag, and the spam filters ask one (``emotes``):
    those pay for one object and at most one search, not for ~16 dicts.

    >>> tags = LazyTags('display-name=Ann;mod=0')
    >>> tags['display-name'], tags.get('vip', ''), len(tags), dict(tags) == {'display-name': 'Ann', 'mod': '0'}
    ('Ann', '', 2, True)
    """

    __slots__ = ("_text", "_tags", "_found_one")

    def __init__(self, text: str) -> None:
        self._text = text
        self._tags: dict[str, str] | None = None
        self._found_one = False

    def _parsed(self) -> dict[str, str]:
        tags = self._tags
        if tags is None:
            tags = self._tags = parse_tags(self._text)
        return tags

    def get(self, key: str, default=None):
        tags = self._tags
        if tags is None:
            if not self._found_one:
                self._found_one = True
                value = find_tag(self._text, key)
                return default if value is None else value
            tags = self._parsed()
        return tags.get(key, default)

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._parsed())

    def __len__(self) -> int:
        return len(self._parsed())

    def __repr__(self) -> str:
        return f"LazyTags({self._parsed()!r})"


def parse_chat_line(line: str) -> ChatLine | None:
    r"""``(channel, nick, text, tags, is_action)`` for a PRIVMSG to a channel written the usual way,
    ``[@tags ]:source PRIVMSG <channel> :<text>``; None for any other line, which the library then
    reads (a line the library would read differently is never claimed here).

    >>> channel, nick, text, tags, is_action = parse_chat_line(
    ...     '@badges=;mod=1 :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :!hug bob')
    >>> channel, nick, text, dict(tags), is_action
    ('#chan', 'ann', '!hug bob', {'badges': '', 'mod': '1'}, False)
    >>> parse_chat_line(':ann!ann@host PRIVMSG #chan :\x01ACTION waves\x01')[2:]
    ('waves', LazyTags({}), True)
    >>> parse_chat_line(':ann!ann@host PRIVMSG #chan :\x01VERSION visit evil.com\x01')[2:]  # for the filters
    ('\x01VERSION visit evil.com\x01', LazyTags({}), True)
    >>> parse_chat_line(':ann!ann@host PRIVMSG bot :hello') is None  # not to a channel
    True
    >>> parse_chat_line(':tmi.twitch.tv NOTICE #chan :hello') is None
    True
    """
    if line[:1] == "@":
        parts = line.split(" ", 4)
        if len(parts) != 5:
            return None
        tags, source, command, channel, text = parts
        tags = tags[1:]
    else:
        parts = line.split(" ", 3)
        if len(parts) != 4:
            return None
        source, command, channel, text = parts
        tags = ""
    if (
        command != "PRIVMSG"
        or len(source) < 2
        or source[0] != ":"
        or text[:1] != ":"
        or not channel
        or channel[0] not in CHANNEL_PREFIXES
        or not channel.isprintable()  # the library splits arguments on any white space, not only " "
    ):
        return None
    text = text[1:]
    is_action = False
    if "\x01" in text or "\x10" in text:  # CTCP
        if is_other_ctcp(text):
            is_action = True  # the whole text, as the library path gives it (irclib): filters, never a command
        elif "\x10" in text:
            return None  # CTCP quoting: the library unquotes it
        else:
            text, is_action = text[len(ACTION_START) : -1], True
    nick_end = source.find("!")
    nick = source[1:nick_end] if nick_end > 0 else source[1:]
    return channel, nick, text, LazyTags(tags), is_action
