"""SIGINT, SIGTERM and SIGHUP, handled from the first moment of the process.

``vbot.__main__`` installs these handlers before it imports anything else of vbot, so a
signal that arrives during start-up (reading settings, opening files, importing the irc
library) is recorded instead of killing the process with the default action, which
systemd's ``Restart=on-failure`` would take for a clean exit.
"""

from __future__ import annotations

import signal
from typing import Protocol


class Stoppable(Protocol):
    """What ``Signals`` drives: the bot (``vbot.bot.VBot``)."""

    def request_stop(self, exit_code: int = 0) -> None: ...

    def stop_from_signal(self, exit_code: int = 0) -> None: ...

    def request_reload(self) -> None: ...


class Signals:
    """SIGINT, SIGTERM and SIGHUP from the very start of ``main``, before any slow start-up work.

    A stop is always recorded (``stop_requested``). While Python imports vbot it does
    nothing more (an exception raised inside a class definition would surface as another
    error); once ``interruptible`` (start-up work: reading files, the token service) it raises
    KeyboardInterrupt, which ends start-up with exit code 0 at once, except for a token renewal
    under way (``vbot.keeper``: it waits for its new pair to be saved). That is done once: a
    stop while that first one winds down is only recorded. SIGHUP is recorded and
    passed on to the bot. Once a bot is attached, SIGINT/SIGTERM call
    ``target.stop_from_signal()`` (which raises to abandon a connect under way, and only then:
    once ``run()`` returned a stop is only recorded) and SIGHUP ``target.request_reload()``.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        self.reload_requested = False
        self.interruptible = False
        self.target: Stoppable | None = None

    def install(self) -> Signals:
        """Install the handlers; returns self."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, self._reload)
        return self

    @staticmethod
    def ignore() -> None:
        """Ignore SIGINT, SIGTERM and SIGHUP from now on (the process is exiting)."""
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_IGN)

    def attach(self, target: Stoppable) -> None:
        """From now on signals go to ``target``; one that came before is passed on now."""
        self.target = target
        if self.stop_requested:
            target.request_stop(0)
        if self.reload_requested:
            target.request_reload()

    def _stop(self, signum, frame) -> None:
        self.stop_requested = True
        if self.target is not None:
            self.target.stop_from_signal(0)
        elif self.interruptible:
            self.interruptible = False  # once: a second stop must not cut short what the first waits for
            raise KeyboardInterrupt  # start-up work (a hanging token service...) is abandoned at once

    def _reload(self, signum, frame) -> None:
        self.reload_requested = self.target is None
        if self.target is not None:
            self.target.request_reload()
