"""The connection life cycle, as one pure object with an injected clock.

::

    waiting --(retry time reached)--> connecting --(socket up)--> registering --(001)--> welcomed
       ^                                  |                            |                    |
       +------- backoff (connect failed) -+------ dropped: backoff, or at once after -------+
                                                  RECONNECT (at most once per 30 s)

The bot asks ``check(last_received)`` on every turn of its loop and does what the
returned Step says (connect, PING, disconnect); it reports what happened with
``connecting()``, ``connected()``, ``connect_failed()``, ``welcomed()``,
``reconnect_requested()`` and ``dropped()``. Nothing here touches a socket or reads
the time itself, so reconnect logic is tested with a fake clock.

Every login attempt goes through ``check()``, whatever caused it: a drop, a refused login
(a drop like any other: the backoff paces it), a RECONNECT, a token renewal that kept the
bot waiting. On top of the backoff a hard sliding window allows at most LOGIN_LIMIT
attempts per LOGIN_WINDOW seconds, so no bug elsewhere can make the bot hammer the server.

"Before connecting" (fresh credentials) is the bot's job when ``check()`` says CONNECT: when
the credentials are not ready yet it simply does not connect, and ``check()`` says CONNECT
again on the next turn.
"""

from __future__ import annotations

import collections
import enum
import math
import random
import time
from collections.abc import Callable
from typing import NamedTuple

STABLE_AFTER = 60.0
"""Seconds a welcomed connection must last before its drop starts the backoff over: a server
that accepts the login and then closes (flood kill, ban, broken proxy) is retried ever slower."""
RECONNECT_AT_ONCE_EVERY = 30.0
"""Seconds: at most one RECONNECT per this time is followed at once; Twitch allows 20
login attempts per 10 s per account (Twitch docs, "Chat & Chatbots" > Rate limits)."""
LOGIN_LIMIT = 20
LOGIN_WINDOW = 10.0
"""At most LOGIN_LIMIT connect attempts in any LOGIN_WINDOW seconds, whatever else decides:
Twitch's limit of 20 authentication attempts per 10 s per account (twitch-auth.md)."""


class Backoff:
    """Exponential backoff with jitter, one instance per bot.

    The n-th retry after a failure waits ``min(cap, first * 2**n)`` seconds times a
    random factor in [0.5, 1); ``reset()`` starts over. ``rng()`` returns a float in [0, 1).
    """

    def __init__(self, first: float = 2.0, cap: float = 60.0, rng: Callable[[], float] = random.random):
        self.first, self.cap, self.rng = first, cap, rng
        self.attempt = 0

    def reset(self) -> None:
        """Start the next failure's retries from ``first`` again."""
        self.attempt = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; advances the attempt counter."""
        delay = min(self.cap, self.first * 2**self.attempt) * (0.5 + self.rng() / 2)
        self.attempt = min(self.attempt + 1, 16)
        return delay


class Phase(enum.Enum):
    """Where the connection is in its life cycle."""

    WAITING = "waiting"  # not connected; the next attempt is due at ``retry_at``
    CONNECTING = "connecting"  # TCP connect and TLS handshake under way (blocking)
    REGISTERING = "registering"  # connected; CAP, PASS, NICK sent; no welcome (001) yet
    WELCOMED = "welcomed"  # logged in


class Action(enum.Enum):
    """What ``Session.check`` asks the bot to do now."""

    NOTHING = "nothing"
    CONNECT = "connect"
    PING = "ping"
    DISCONNECT = "disconnect"


class Step(NamedTuple):
    """An Action, and for DISCONNECT the QUIT message and a log line saying why."""

    action: Action
    quit_message: str = ""
    why: str = ""


NOTHING = Step(Action.NOTHING)


class Drop(NamedTuple):
    """What ``Session.dropped`` decided: ``delay`` seconds until the next attempt
    (0 after a RECONNECT followed at once), ``planned`` for that RECONNECT, and whether
    the connection had been welcomed (worth a warning) or not."""

    delay: float
    planned: bool
    was_welcomed: bool


class Session:
    """Decides when to connect, PING, give up on a connection, and wait; times in seconds.

    ``ping_interval``: silence from the server before a PING; ``ping_timeout``: more
    silence after it before the connection counts as dead. A connection not welcomed
    within ``ping_interval + ping_timeout`` is left too. ``clock()`` returns monotonic
    seconds. ``logins`` counts welcomes since start. The backoff starts over only after a
    connection that lasted ``stable_after`` seconds. At most ``login_limit`` connect attempts
    start in any ``login_window`` seconds.
    """

    def __init__(
        self,
        ping_interval: float,
        ping_timeout: float,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        reconnect_at_once_every: float = RECONNECT_AT_ONCE_EVERY,
        stable_after: float = STABLE_AFTER,
        login_limit: int = LOGIN_LIMIT,
        login_window: float = LOGIN_WINDOW,
    ):
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.backoff = backoff or Backoff()
        self.clock = clock
        self.reconnect_at_once_every = reconnect_at_once_every
        self.stable_after = stable_after
        self.phase = Phase.WAITING
        self.retry_at = clock()
        self.connected_at = 0.0
        self.welcomed_at: float | None = None
        self.logins = 0
        self._pinged_for = math.nan  # the last_received value a PING was sent for
        self._reconnect_at_once = False
        self._reconnected_at = -math.inf
        self.login_window = login_window
        self._attempts: collections.deque[float] = collections.deque(maxlen=max(login_limit, 1))

    @property
    def deadline(self) -> float:
        """Seconds of silence (or without a welcome) after which a connection is dropped."""
        return self.ping_interval + self.ping_timeout

    def check(self, last_received: float) -> Step:
        """What to do now; ``last_received`` is the clock time of the last data from the server."""
        now = self.clock()
        if self.phase is Phase.WAITING:
            return Step(Action.CONNECT) if now >= self.retry_at and not self._window_full(now) else NOTHING
        if self.phase is Phase.CONNECTING:
            return NOTHING
        idle = now - last_received
        if idle >= self.deadline:
            return Step(Action.DISCONNECT, "Ping timeout", f"no data from the server for {idle:.0f} s")
        if self.phase is Phase.REGISTERING and now - self.connected_at >= self.deadline:
            return Step(
                Action.DISCONNECT,
                "Login timeout",
                f"no welcome from the server within {self.deadline:.0f} s of connecting",
            )
        if idle >= self.ping_interval and self._pinged_for != last_received:
            self._pinged_for = last_received
            return Step(Action.PING)
        return NOTHING

    def connecting(self) -> None:
        """The bot starts a TCP connect (and TLS handshake): one login attempt, counted in the window."""
        self.phase = Phase.CONNECTING
        self._attempts.append(self.clock())

    def wait_time(self) -> float:
        """While WAITING: seconds until ``check()`` may say CONNECT (the backoff's retry time, or
        the login window opening), 0 when it may now."""
        now = self.clock()
        opens = self._attempts[0] + self.login_window if self._window_full(now) else now
        return max(self.retry_at - now, opens - now, 0.0)

    def _window_full(self, now: float) -> bool:
        """True while ``login_limit`` attempts started within the last ``login_window`` seconds."""
        attempts = self._attempts
        return len(attempts) == attempts.maxlen and now - attempts[0] < self.login_window

    def connected(self) -> None:
        """The socket is up and the login lines are sent: the login deadline starts."""
        self.phase = Phase.REGISTERING
        self.connected_at = self.clock()

    def connect_failed(self) -> float:
        """The connect failed; returns the seconds until the next attempt."""
        return self._wait(self.backoff.next_delay())

    def welcomed(self) -> None:
        """The server sent its welcome (001): logged in."""
        self.phase = Phase.WELCOMED
        self.welcomed_at = self.clock()
        self.logins += 1

    def reconnect_requested(self) -> None:
        """The server asked for a reconnect (Twitch's RECONNECT); the bot then disconnects.

        The drop that follows is retried at once, unless an earlier RECONNECT was followed at
        once within ``reconnect_at_once_every`` seconds: then it waits like any other drop,
        so a server that keeps asking cannot make the bot exceed Twitch's login limit.
        """
        now = self.clock()
        self._reconnect_at_once = now - self._reconnected_at >= self.reconnect_at_once_every
        if self._reconnect_at_once:
            self._reconnected_at = now

    def dropped(self) -> Drop:
        """The connection closed, for whatever reason; decides when to try again."""
        was_welcomed = self.phase is Phase.WELCOMED
        if self.welcomed_at is not None and self.clock() - self.welcomed_at >= self.stable_after:
            self.backoff.reset()
        planned, self._reconnect_at_once = self._reconnect_at_once, False
        self.welcomed_at = None
        delay = self._wait(0.0 if planned else self.backoff.next_delay())
        return Drop(delay, planned, was_welcomed)

    def _wait(self, delay: float) -> float:
        self.phase = Phase.WAITING
        self.retry_at = self.clock() + delay
        return delay
