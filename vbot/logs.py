"""Logging to stderr with timestamps and levels, with secrets redacted at the handler.

The ``irc`` library logs every line it sends at DEBUG (``TO SERVER: PASS
oauth:...``), so redaction sits on the handler's formatter: it covers every
logger, formatted arguments and tracebacks alike. It is case-insensitive, masks
any ``oauth:<value>`` whether or not the value is a known secret, masks a run of
characters holding a piece of PIECE_MIN or more characters of a known secret (a
server quoting the first 24 characters of the password), and learns new
secrets at run time (``add_secret``, e.g. a refreshed token before it is used),
keeping the configured ones for good and the last LEARNED_KEPT learned ones (a renewed
access token lives about 4 hours, a refresh token until the next renewal). The same
``redact`` serves what vbot sends to systemd (vbot.notify).
A log argument that should be shortened is wrapped in ``Clipped``, so that it is
redacted whole before it is cut, and a cut never shows the start of a secret.
Control characters (a chatter's ESC, a server's CR) are written as ``\\xNN``, so a log viewed
in a terminal cannot be rewritten by what chat or a server sent.
"""

from __future__ import annotations

import logging
import re
import string
import sys
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple, TextIO

from vbot.lines import CONTROLS_ESCAPED

REDACTED = "[REDACTED]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEARNED_KEPT = 32
"""How many secrets learned at run time (``add_secret``) the redaction keeps, the newest; the
configured ones are always kept. Two a renewal: 16 renewals, about 2.5 days of renewing every 4 hours."""
MAX_PATTERNS = 64
"""Patterns kept, one for each set of secrets found together in a line (usually one secret)."""
ENDS_A_VALUE = "\"'`()[]{}<>,;"
"""Characters that end an unknown ``oauth:`` value: quotes, brackets, a comma, a semicolon (they end a
token in a sentence or a server's message; Twitch's tokens are letters and digits). Spaces and anything
but printable ASCII end it too (a token is printable ASCII without spaces, vbot.auth.TOKEN_SHAPE)."""
_TOKEN_CHARACTERS = string.ascii_letters + string.digits + string.punctuation
"""Printable ASCII without spaces: what a token may hold (vbot.auth.TOKEN_SHAPE)."""
_VALUE_CHARACTER = (
    "[" + re.escape("".join(character for character in _TOKEN_CHARACTERS if character not in ENDS_A_VALUE)) + "]"
)
_OAUTH_VALUE = f"oauth:{_VALUE_CHARACTER}+"
"""``oauth:`` and the value after it (up to a character of ENDS_A_VALUE, a space, or non-ASCII), in any case."""
_OAUTH_PATTERN = re.compile(_OAUTH_VALUE, re.IGNORECASE)
PIECE_MIN = 12
"""The fewest characters of a known secret masked on their own (a piece: a prefix, a suffix, any part); the
whole run of characters holding such a piece (up to a space or a character of ENDS_A_VALUE) is masked. A piece
left shown has at most 11 characters: a Twitch token (30 letters and digits) keeps 19 unknown, 36**19 guesses.
A secret shorter than this (a plain IRC server's password such as ``hunter2``) is masked only whole: masking
shorter pieces would mask ordinary words (``hunter``), and tell a reader of the log, who may also chat, which
words a password holds."""
_GRAM = 8
"""Characters of a line looked up in the index of secrets' pieces at a time."""
_STRIDE = PIECE_MIN - _GRAM + 1
"""A line's runs are looked up every _STRIDE characters: any piece of PIECE_MIN characters holds one of those
_GRAM-character windows whole, so looking up every _STRIDE-th window finds every piece."""
_RUN = re.compile(f"{_VALUE_CHARACTER}{{{PIECE_MIN},}}")
"""A run of characters long enough to hold a piece (the characters of an ``oauth:`` value)."""


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (any case; empty ones skipped) replaced by ``[REDACTED]``: for a
    message quoting what was just sent (a token service's or Helix's error).

    >>> mask_secrets("bad token AbC1 (abc1)", ["abc1", ""])
    'bad token [REDACTED] ([REDACTED])'
    """
    for secret in secrets:
        if secret:
            text = re.sub(re.escape(secret), REDACTED, text, flags=re.IGNORECASE)
    return text


def mask_oauth(text: str) -> str:
    """``text`` with every ``oauth:<value>`` (any case) replaced by ``[REDACTED]``.

    >>> mask_oauth("PASS OAuth:abc123 and oauth: nothing; [bad password oauth:abc123]);")
    'PASS [REDACTED] and oauth: nothing; [bad password [REDACTED]]);'
    """
    return _OAUTH_PATTERN.sub(REDACTED, text)


def _pattern(secrets: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for ``secrets`` (longest first), each with or without ``oauth:``, then any
    ``oauth:<value>``: a known secret is masked whole, whatever characters it holds."""
    known = "|".join(re.escape(secret) for secret in secrets)
    return re.compile(f"(?:oauth:)?(?:{known})|{_OAUTH_VALUE}", re.IGNORECASE)


def _index_pieces(secrets: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Each _GRAM-character window of ``secrets`` (casefolded, PIECE_MIN characters or longer) -> the
    secrets holding it.

    >>> _index_pieces(["abcdefghijkl", "short"])["bcdefghi"]
    ('abcdefghijkl',)
    """
    index: dict[str, tuple[str, ...]] = {}
    for secret in secrets:
        if len(secret) >= PIECE_MIN:
            for start in range(len(secret) - _GRAM + 1):
                window = secret[start : start + _GRAM]
                holders = index.get(window, ())
                if secret not in holders:
                    index[window] = (*holders, secret)
    return index


def _mask_pieces(text: str, index: dict[str, tuple[str, ...]]) -> str:
    """``text`` with each run of value characters that holds a piece of PIECE_MIN or more characters of a
    secret in ``index`` (any case) replaced by ``[REDACTED]``: one lookup every _STRIDE characters of a run,
    and a substring search only where a window of a secret is found."""

    def masked(run: re.Match[str]) -> str:
        folded = run.group().lower()  # the run is ASCII: lower() is casefold()
        for start in range(0, len(folded) - _GRAM + 1, _STRIDE):
            holders = index.get(folded[start : start + _GRAM])
            # a piece of PIECE_MIN characters holding this window starts from start + _GRAM - PIECE_MIN to start
            if holders and any(
                folded[first : first + PIECE_MIN] in secret
                for first in range(max(0, start + _GRAM - PIECE_MIN), min(start, len(folded) - PIECE_MIN) + 1)
                for secret in holders
            ):
                return REDACTED
        return run.group()

    return _RUN.sub(masked, text) if index else text


class Clipped(NamedTuple):
    """A log argument shown as its first ``limit`` characters, redacted before it is cut.

    ``log.debug("skipping %r", Clipped(line, 300))``: a RedactingFormatter redacts
    the whole ``text`` with every secret it knows, then cuts it, so the cut cannot
    end inside a secret and show its first characters. Any other formatter gets the
    cut with ``oauth:`` values masked (``str``/``repr`` of this object).
    """

    text: str
    limit: int

    def cut(self, redact: Callable[[str], str] = mask_oauth) -> str:
        """``redact(text)`` cut to ``limit`` characters."""
        return redact(self.text)[: self.limit]

    def __str__(self) -> str:
        return self.cut()

    def __repr__(self) -> str:
        return repr(self.cut())


class RedactingFormatter(logging.Formatter):
    """A Formatter that replaces every secret in the finished text with ``[REDACTED]``.

    Secrets match in any case, with or without an ``oauth:`` before them; any
    ``oauth:<value>`` is masked even when unknown. A secret is masked wherever it
    appears, so a very short one (a one-letter server password) masks ordinary words too;
    a run of characters holding a piece of PIECE_MIN or more characters of one is masked
    whole. ``secrets`` (the configured ones) are kept for good; of those learned with
    ``add_secret``, the newest ``learned_kept``. Redacting a line costs one pass over it
    per secret kept (a substring search), plus one regular expression when one is there,
    plus one regular expression for the runs of PIECE_MIN characters and a dictionary
    lookup every _STRIDE characters of them.
    """

    def __init__(self, secrets: Iterable[str] = (), fmt: str = FORMAT, learned_kept: int = LEARNED_KEPT):
        super().__init__(fmt)
        self._lock = threading.Lock()
        self._configured = {_bare(secret): None for secret in secrets if secret}
        self._learned: dict[str, None] = {}  # oldest first
        self._learned_kept = learned_kept
        self._secrets: tuple[tuple[str, str], ...] = ()  # (casefolded, as given), longest first
        self._patterns: dict[tuple[str, ...], re.Pattern[str]] = {}  # by the secrets a line holds
        self._pieces: dict[str, tuple[str, ...]] = {}  # _index_pieces of the secrets kept
        self._update()

    def add_secret(self, text: str) -> None:
        """Mask ``text`` too from now on (empty text is ignored); the oldest learned secret beyond
        ``learned_kept`` is forgotten. Thread-safe: call it with a new token before the token is
        used, and no line logged after the call shows it. Costs no more with every secret learned."""
        secret = _bare(text)
        if not secret:
            return
        with self._lock:
            if secret in self._configured:
                return
            self._learned.pop(secret, None)
            self._learned[secret] = None
            while len(self._learned) > self._learned_kept:
                del self._learned[next(iter(self._learned))]
            self._update()

    def _update(self) -> None:
        kept = sorted({*self._configured, *self._learned}, key=len, reverse=True)
        self._secrets = tuple((secret.casefold(), secret) for secret in kept)
        self._patterns = {}
        self._pieces = _index_pieces(key for key, _ in self._secrets)

    def redact(self, text: str) -> str:
        """``text`` with each secret, each ``oauth:<value>``, and each run holding a piece of PIECE_MIN
        or more characters of a secret, replaced by ``[REDACTED]``."""
        folded = text.casefold()
        pieces = self._pieces
        present = tuple(secret for key, secret in self._secrets if key in folded)
        if not present:
            return _mask_pieces(_OAUTH_PATTERN.sub(REDACTED, text), pieces)
        patterns = self._patterns
        pattern = patterns.get(present)
        if pattern is None:
            if len(patterns) >= MAX_PATTERNS:
                patterns.clear()
            pattern = patterns[present] = _pattern(present)
        return _mask_pieces(pattern.sub(REDACTED, text), pieces)

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.args, tuple) and any(isinstance(arg, Clipped) for arg in record.args):
            record = logging.makeLogRecord(record.__dict__)  # the handlers share the record: leave it be
            record.args = tuple(arg.cut(self.redact) if isinstance(arg, Clipped) else arg for arg in record.args or ())
        return self.redact(super().format(record)).translate(CONTROLS_ESCAPED)


class RedactingHandler(logging.StreamHandler):
    """A StreamHandler whose formatter is a RedactingFormatter; ``add_secret`` teaches it one more secret."""

    def __init__(self, stream: TextIO, secrets: Iterable[str]) -> None:
        super().__init__(stream)
        self.redaction = RedactingFormatter(secrets)
        self.setFormatter(self.redaction)

    def add_secret(self, text: str) -> None:
        """See ``RedactingFormatter.add_secret``."""
        self.redaction.add_secret(text)


def _bare(secret: str) -> str:
    """``secret`` without an ``oauth:`` before it (the patterns allow one anyway), unless nothing is left.

    >>> _bare("OAuth:abc"), _bare("oauth:"), _bare("abc")
    ('abc', 'oauth:', 'abc')
    """
    bare = secret[len("oauth:") :] if secret.lower().startswith("oauth:") else secret
    return bare or secret


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None) -> RedactingHandler:
    """Send all log records at ``level`` and above to ``stream`` (stderr), secrets redacted.

    Replaces the root logger's handlers, and ``sys.excepthook`` so that a traceback
    Python would print itself is logged (and redacted) instead; returns the handler
    (``add_secret`` for new tokens).
    """
    handler = RedactingHandler(stream or sys.stderr, secrets)
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    sys.excepthook = _log_uncaught
    return handler


def _log_uncaught(kind, value, traceback) -> None:
    logging.getLogger("vbot").critical("uncaught exception; stopping", exc_info=(kind, value, traceback))
