"""systemd's notify protocol and watchdog, standard library only.

Under a unit with ``Type=notify``, systemd sets ``NOTIFY_SOCKET`` and waits for
``READY=1`` before it counts the service as started; ``STATUS=...`` is shown by
``systemctl status``; ``STOPPING=1`` says a stop has begun. With ``WatchdogSec=``
it also sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``) and kills and restarts the
service when no ``WATCHDOG=1`` arrives within that time; sending every half of it
is the documented practice.

Protocol (sd_notify(3), sd_watchdog_enabled(3)): each message is one datagram of
newline-separated ``VARIABLE=value`` lines, sent to the ``AF_UNIX`` datagram
socket named by ``NOTIFY_SOCKET``: a file system path, or, when it starts with
``@``, a Linux abstract socket name (the ``@`` stands for a NUL byte).

Without ``NOTIFY_SOCKET`` (not under systemd, or another ``Type=``) every method
does nothing. No method raises into the caller: a failed send is logged and the
bot goes on. Every datagram passes through the log's redaction first (``redact``):
``systemctl status`` shows STATUS to any local user, and a status may quote a
server's message, which may quote the token.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from vbot.lines import CONTROLS_TO_SPACES
from vbot.logs import mask_oauth

log = logging.getLogger(__name__)

MAX_WATCHDOG_USEC = 2**64 - 2
"""systemd's largest finite timeout in microseconds (``UINT64_MAX`` means infinity, no watchdog)."""


def _microseconds(value: str) -> int | None:
    """``WATCHDOG_USEC`` as an int from 1 to MAX_WATCHDOG_USEC, else None (never raises, even for
    400 digits: they are not converted at all).

    >>> _microseconds("30000000"), _microseconds("0"), _microseconds("9" * 400), _microseconds("1e6")
    (30000000, None, None, None)
    """
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_WATCHDOG_USEC)):
        return None
    number = int(value)
    return number if 1 <= number <= MAX_WATCHDOG_USEC else None


class Notifier:
    """Sends sd_notify messages to ``address`` (None: disabled).

    ``address`` is a socket path, or bytes starting with NUL for an abstract
    name; ``watchdog_interval`` is the seconds between two ``WATCHDOG=1`` (None:
    no watchdog); ``clock()`` returns monotonic seconds; ``redact(text)`` masks every
    secret in what is sent (the log's: ``RedactingFormatter.redact``; by default only
    ``oauth:`` values).
    """

    def __init__(
        self,
        address: str | bytes | None = None,
        watchdog_interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        redact: Callable[[str], str] = mask_oauth,
    ):
        self.address = address
        self.watchdog_interval = watchdog_interval
        self._clock = clock
        self._redact = redact
        self._watchdog_sent_at: float | None = None
        self._failing = False

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        redact: Callable[[str], str] = mask_oauth,
    ) -> Notifier:
        """A Notifier set up from systemd's variables in ``environ`` (pass ``os.environ``), sending
        what ``redact`` leaves of each message.

        ``NOTIFY_SOCKET``: absolute path or ``@name``; anything else (unset,
        empty, another address family such as ``vsock:``) disables notifying,
        with a WARNING when it is set but unusable. ``WATCHDOG_USEC``:
        microseconds (1 to MAX_WATCHDOG_USEC), the watchdog interval is half of
        it; ignored unless ``WATCHDOG_PID`` is unset or equals ``pid`` (default:
        this process); any other value is a WARNING and no watchdog pings.
        Never raises.
        """
        pid = os.getpid() if pid is None else pid
        value = environ.get("NOTIFY_SOCKET", "")
        address: str | bytes | None = None
        if value.startswith("@"):
            address = b"\0" + value[1:].encode("utf-8", "surrogateescape")
        elif value.startswith("/"):
            address = value
        elif value:
            log.warning("NOTIFY_SOCKET=%s is not a socket path or @name; not notifying systemd", value)
        interval = None
        usec, watchdog_pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        ours = not watchdog_pid or (watchdog_pid.isascii() and watchdog_pid.isdigit() and int(watchdog_pid) == pid)
        if address is not None and ours and usec:
            microseconds = _microseconds(usec)
            if microseconds is None:
                log.warning(
                    "WATCHDOG_USEC=%s is not a number of microseconds from 1 to %d; no watchdog pings",
                    usec[:30] + ("..." if len(usec) > 30 else ""),
                    MAX_WATCHDOG_USEC,
                )
            else:
                interval = microseconds / 1_000_000 / 2
        return cls(address, interval, clock, redact)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``VARIABLE=value`` lines as one datagram, secrets redacted; True when it was sent.

        Control characters in a value (a newline would start another variable)
        become spaces. An error is logged (WARNING the first time, then DEBUG
        until a send works again) and False returned.
        """
        if self.address is None:
            return False
        lines = [self._redact(assignment).translate(CONTROLS_TO_SPACES) for assignment in assignments]
        data = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue must not stall the event loop
                sock.sendto(data, self.address)
        except (OSError, ValueError) as error:
            (log.debug if self._failing else log.warning)(
                "could not notify systemd (%s): %s", " ".join(lines)[:100], error
            )
            self._failing = True
            return False
        self._failing = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1`` (after the first welcome), with an optional ``STATUS=``."""
        return self.send("READY=1", *([f"STATUS={status}"] if status is not None else []))

    def status(self, text: str) -> bool:
        """``STATUS=<text>``: one line for ``systemctl status``, e.g. ``logged in as mybot, 2 channels``."""
        return self.send(f"STATUS={text}")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1`` (on shutdown), with an optional ``STATUS=``."""
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status is not None else []))

    def watchdog(self) -> bool:
        """``WATCHDOG=1`` now: the event loop is alive."""
        self._watchdog_sent_at = self._clock()
        return self.send("WATCHDOG=1")

    def keep_alive(self) -> bool:
        """Call on every tick of the event loop: sends ``WATCHDOG=1`` when ``watchdog_interval``
        seconds have passed since the last one (the first call sends). True when it sent."""
        if self.watchdog_interval is None or self.address is None:
            return False
        last = self._watchdog_sent_at
        if last is not None and self._clock() - last < self.watchdog_interval:
            return False
        return self.watchdog()

    def watchdog_wait(self) -> float | None:
        """Seconds until ``keep_alive`` will send again (0 when due), None without a watchdog."""
        if self.watchdog_interval is None or self.address is None:
            return None
        if self._watchdog_sent_at is None:
            return 0.0
        return max(self._watchdog_sent_at + self.watchdog_interval - self._clock(), 0.0)


def waiting_status(delay: float, reason: str, logins: int) -> str:
    """The STATUS line while the bot waits to connect again: ``connecting`` with the reason
    of the failed try before its first login (``logins`` is 0), ``reconnecting`` after one;
    ``delay`` is the seconds until the next attempt.

    >>> waiting_status(2.04, "[Errno 111] Connection refused", 0)
    'connecting in 2.0 s (the last try: [Errno 111] Connection refused)'
    >>> waiting_status(1.5, "server closed the connection: Excess Flood", 3)
    'reconnecting in 1.5 s'
    """
    if logins:
        return f"reconnecting in {delay:.1f} s"
    return f"connecting in {delay:.1f} s (the last try: {reason})"
