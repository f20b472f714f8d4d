"""What one line of text may be and hold, defined once: IRC's and Twitch's length limits, the
bound on a line vbot receives, the control characters (and line separators) that never leave
vbot, and the letters that show as nothing.

Control characters would split or forge a line wherever text crosses a boundary: CR LF end
an IRC line, LF a systemd notify variable, ESC starts a terminal's escape sequence, and
``\\x01`` frames CTCP. So every text vbot sends or shows that it did not write itself
(replies, systemd's STATUS, a service's error message) has them made spaces first.
"""

from __future__ import annotations

import re

MAX_LINE_BYTES = 512
"""RFC 1459 section 2.3 (and RFC 2812 section 2.3): a whole IRC line, CR LF included, in bytes."""
MAX_CHARACTERS = 500
"""Twitch's limit on one chat message, in characters (Twitch docs, "Chat & Chatbots")."""
MAX_RECEIVED_LINE_BYTES = 16384
"""A received line longer than this is skipped as it arrives: Twitch allows 8 KiB of tags
(IRCv3 message-tags) plus a MAX_LINE_BYTES message."""
CONTROLS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
"""The C0 controls (NUL, CR, LF, ESC, CTCP's ``\\x01``...), DEL and the C1 controls (U+0080 to
U+009F: NEL, CSI...)."""
LINE_SEPARATORS = frozenset("\u2028\u2029")
"""U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR: not controls, but a line break wherever
Unicode's line breaking is followed (chat clients, browsers, terminals)."""
CONTROLS_TO_SPACES = str.maketrans(dict.fromkeys(CONTROLS | LINE_SEPARATORS, " "))
"""A ``str.translate`` table that makes each of CONTROLS and LINE_SEPARATORS a space."""
BLANK = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e0fff]"
)
"""The characters that show as nothing whatever their category (letters, marks, format characters):
Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt; soft hyphen, combining grapheme
joiner U+034F, Hangul fillers, Khmer inherent vowels U+17B4/U+17B5, variation selectors, zero-width
and bidi format characters, tags), and BRAILLE PATTERN BLANK U+2800. A name made of them looks blank."""
CONTROLS_ESCAPED = str.maketrans({char: f"\\x{ord(char):02x}" for char in CONTROLS if char != "\n"})
"""A ``str.translate`` table that writes each of CONTROLS but LF as ``\\xNN``: for log lines, where
a chatter's ESC must not reach the terminal, and line breaks only come from tracebacks."""
MAX_MESSAGE_CHARS = 200
"""A message from a service (Twitch's token service or API, a network error) is cut to this
many characters before it reaches a log line or an exception."""


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` as one line (of at most ``limit`` characters), for a log line or chat: each character
    that is not printable (CONTROLS, and also line and paragraph separators, format characters,
    spaces other than U+0020) becomes a space, and each run of spaces one space.

    >>> one_line("Bad\\r\\nRequest\\x1b[2J\\u2028!  ok ", 20)
    'Bad Request [2J ! ok'
    """
    if not text.isprintable():
        text = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(text.split())[:limit]
