"""Logging to stderr with timestamps and levels, with secrets redacted at the handler.

The ``irc`` library logs every line it sends at DEBUG (``TO SERVER: PASS
oauth:...``), so redaction sits on the handler's formatter: it covers every
logger, formatted arguments and tracebacks alike. It is case-insensitive, masks
any ``oauth:<value>`` whether or not the value is a known secret, and learns new
secrets at run time (``add_secret``, e.g. a refreshed token before it is used).
A log argument that should be shortened is wrapped in ``Clipped``, so that it is
redacted whole before it is cut, and a cut never shows the start of a secret.
Control characters (a chatter's ESC, a server's CR) are written as ``\\xNN``, so a log viewed
in a terminal cannot be rewritten by what chat or a server sent.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import NamedTuple, TextIO

from vbot.lines import CONTROLS_ESCAPED

REDACTED = "[REDACTED]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OAUTH_VALUE = r"oauth:[^\s'\"]+"
"""``oauth:`` and the value after it (up to a space or a quote), in any case."""
_OAUTH_PATTERN = re.compile(_OAUTH_VALUE, re.IGNORECASE)


def mask_oauth(text: str) -> str:
    """``text`` with every ``oauth:<value>`` (any case) replaced by ``[REDACTED]``.

    >>> mask_oauth("PASS OAuth:abc123 and oauth: nothing")
    'PASS [REDACTED] and oauth: nothing'
    """
    return _OAUTH_PATTERN.sub(REDACTED, text)


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

    Secrets match in any case; a secret given as ``oauth:<token>`` is masked with
    and without its prefix; any ``oauth:<value>`` is masked even when unknown.
    A secret is masked wherever it appears, so a very short one (a one-letter
    server password) masks ordinary words too.
    """

    def __init__(self, secrets: Iterable[str] = (), fmt: str = FORMAT):
        super().__init__(fmt)
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()
        self._pattern = _OAUTH_PATTERN
        self._learn(secrets)

    def add_secret(self, text: str) -> None:
        """Mask ``text`` too from now on (empty text is ignored). Thread-safe: call it with a new
        token before the token is used, and no line logged after the call shows it."""
        self._learn((text,))

    def _learn(self, secrets: Iterable[str]) -> None:
        found = set()
        for secret in secrets:
            if secret:
                found.add(secret.lower())
                if secret.lower().startswith("oauth:") and len(secret) > len("oauth:"):
                    found.add(secret[len("oauth:") :].lower())
        with self._lock:
            if found <= self._secrets:
                return
            self._secrets |= found
            alternatives = [re.escape(secret) for secret in sorted(self._secrets, key=len, reverse=True)]
            self._pattern = re.compile("|".join([_OAUTH_VALUE, *alternatives]), re.IGNORECASE)

    def redact(self, text: str) -> str:
        """``text`` with each secret, and each ``oauth:<value>``, replaced by ``[REDACTED]``."""
        return self._pattern.sub(REDACTED, text)

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
