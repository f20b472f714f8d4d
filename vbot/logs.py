"""Logging to stderr with timestamps and levels, with secrets redacted at the handler.

The ``irc`` library logs every line it sends at DEBUG (``TO SERVER: PASS
oauth:...``), so redaction sits on the handler's formatter: it covers every
logger, formatted arguments and tracebacks alike.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

REDACTED = "[REDACTED]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """A Formatter that replaces every secret in the finished text with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT):
        super().__init__(fmt)
        self.secrets = sorted({secret for secret in secrets if secret}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with each secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def setup_logging(level: str = "INFO", secrets: Iterable[str] = (), stream: TextIO | None = None) -> logging.Handler:
    """Send all log records at ``level`` and above to ``stream`` (stderr), secrets redacted.

    Replaces the root logger's handlers, and ``sys.excepthook`` so that a traceback
    Python would print itself is logged (and redacted) instead; returns the handler.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    sys.excepthook = _log_uncaught
    return handler


def _log_uncaught(kind, value, traceback) -> None:
    logging.getLogger("vbot").critical("uncaught exception; stopping", exc_info=(kind, value, traceback))
