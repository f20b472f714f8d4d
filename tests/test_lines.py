"""The line-length limits and the control characters: defined once in vbot/lines.py, used
everywhere (issue 17: they had drifted apart in outbox, irclib, notify, auth, helix, streamfacts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vbot.lines import CONTROLS, CONTROLS_TO_SPACES, MAX_CHARACTERS, MAX_LINE_BYTES, MAX_RECEIVED_LINE_BYTES, one_line

VBOT = Path(__file__).resolve().parent.parent / "vbot"
ELSEWHERE = sorted(path for path in VBOT.glob("*.py") if path.name != "lines.py")
SECOND_DEFINITIONS = [
    re.compile(r"^\s*[A-Z_]+\s*=\s*(?:512|500|16384|16\s*\*\s*1024)\s*(?:#.*)?$", re.MULTILINE),  # a limit
    re.compile(r"range\(0x20\)|range\(32\)|0x7[fF]\b|0x9[fF]\b|0xA0\b"),  # a control-character set
    re.compile(r"char if char\.isprintable\(\) else"),  # one_line, written out again
]


@pytest.mark.parametrize("path", ELSEWHERE, ids=lambda path: path.name)
def test_no_module_defines_a_limit_or_the_controls_again(path):
    text = path.read_text(encoding="utf-8")
    for pattern in SECOND_DEFINITIONS:
        assert not pattern.search(text), f"{path.name}: {pattern.search(text)[0]!r}; import it from vbot.lines"


def test_the_limits():
    assert (MAX_LINE_BYTES, MAX_CHARACTERS) == (512, 500)  # RFC 1459 section 2.3; Twitch
    assert MAX_RECEIVED_LINE_BYTES == 8192 + 8192  # Twitch's 8 KiB of tags, and more than room for the rest


def test_controls_are_c0_del_and_c1_and_become_spaces():
    assert sorted(map(ord, CONTROLS)) == [*range(0x20), *range(0x7F, 0xA0)]
    assert "a\r\nb\x00c\x7fd\x85e\x1b[2J".translate(CONTROLS_TO_SPACES) == "a  b c d e [2J"
    assert all(not char.isprintable() for char in CONTROLS)  # so one_line removes them too


@pytest.mark.parametrize("text, limit, line", [
    ("Bad Request", None, "Bad Request"),
    ("two\r\nlines\u2028and\u2029more", None, "two lines and more"),
    ("\u202eevil\u200b text\x1b[31m", None, "evil text [31m"),
    ("  spaced\t\tout  ", None, "spaced out"),
    ("x" * 600, MAX_CHARACTERS, "x" * 500),
    ("", 10, ""),
])
def test_one_line(text, limit, line):
    assert one_line(text, limit) == line
