"""Which channels to JOIN, and when: Twitch's join limit, and rejoining with a backoff.

Pure logic with an injected clock, like ``vbot.outbox``: the bot tells ``Joins`` which
channels it wants (``want``), which it joined (``joined``) and which it lost
(``rejoin_later``), and asks ``take_ready()`` for the channels it may JOIN now and
``wait_time()`` for when to ask again.

Twitch allows 20 JOIN attempts per 10 s per account, a JOIN naming several channels
counting once per channel (Twitch docs, "Chat & Chatbots" > Rate limits); the window
spans reconnects, since the limit is per account, not per connection. Off Twitch that
limit does not hold: ``pace`` (the outbox's ``LinePace``, shared with the replies)
replaces it.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from collections.abc import Callable

from vbot.modes import Own
from vbot.outbox import LinePace
from vbot.session import Backoff

log = logging.getLogger(__name__)

JOIN_LIMIT = 20
"""JOIN attempts per JOIN_WINDOW seconds (Twitch, per account)."""
JOIN_WINDOW = 10.0
"""Seconds."""
MAX_CHANNELS_WARNING = 100
"""Twitch caps the channels an account may have joined (those where it is broadcaster or
moderator do not count); more configured channels than this gets a warning at start."""
REFUSED_GIVE_UP = 5
"""A channel whose JOIN the server refused this many times in a row is given up."""


class _Channel:
    """The join state of one channel the bot wants to be in."""

    __slots__ = ("due_at", "queued", "refusals", "joined_at", "backoff")

    def __init__(self) -> None:
        self.due_at = 0.0  # clock time from which a JOIN may go
        self.queued = False  # a JOIN is wanted
        self.refusals = 0  # JOINs refused in a row (plain IRC: 471, 473, 474...)
        self.joined_at: float | None = None
        self.backoff = Backoff(first=5.0, cap=300.0)


class Joins:
    """The channels the bot wants to be in, paced to ``limit`` JOINs per ``window`` seconds.

    ``clock()`` returns monotonic seconds; ``rng()`` a float in [0, 1) for the rejoin
    backoff's jitter. Channel names are lowercase with ``#``.
    """

    def __init__(
        self,
        limit: int = JOIN_LIMIT,
        window: float = JOIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] | None = None,
    ):
        self.limit, self.window = limit, window
        self._clock = clock
        self._rng = rng
        self._channels: dict[str, _Channel] = {}
        self._sent_at: collections.deque[float] = collections.deque()
        self._next_check = -math.inf  # take_ready returns [] at once before this clock time
        self._told_forced = False  # a JOIN the bot did not ask for was logged at INFO on this connection
        self.pace: LinePace | None = None  # off Twitch: the flood rule instead of the join limit

    def __contains__(self, channel: str) -> bool:
        """True while ``channel`` is wanted (not forgotten)."""
        return channel in self._channels

    def _get(self, channel: str) -> _Channel:
        if channel not in self._channels:
            state = _Channel()
            if self._rng is not None:
                state.backoff.rng = self._rng
            self._channels[channel] = state
        return self._channels[channel]

    def want(self, channel: str, delay: float = 0.0) -> None:
        """Queue a JOIN of ``channel``, to go no earlier than ``delay`` seconds from now."""
        state = self._get(channel)
        state.queued = True
        state.due_at = self._clock() + delay
        self._next_check = min(self._next_check, state.due_at)

    def want_all(self, channels: list[str] | tuple[str, ...]) -> None:
        """After a welcome: queue every channel wanted (configured ones, and any lost and not given up)."""
        for channel in channels:
            self.want(channel)
        for channel, state in self._channels.items():
            if channel not in channels and not state.queued:
                state.queued = True
                self._next_check = min(self._next_check, state.due_at)

    def forget(self, channel: str) -> None:
        """Never JOIN ``channel`` again (left on purpose, or given up)."""
        self._channels.pop(channel, None)

    def joined(self, channel: str) -> None:
        """The server confirmed the bot's JOIN of ``channel``."""
        state = self._get(channel)
        state.queued = False
        state.refusals = 0
        state.joined_at = self._clock()

    def rejoin_later(self, channel: str, refused: bool = False) -> float | None:
        """The bot lost ``channel`` (kicked, parted by the server) or its JOIN was ``refused``;
        queue a JOIN after a per-channel backoff (5 s doubling to 300 s, reset once the
        channel had been kept for 300 s) and return its delay in seconds. Returns None, and
        forgets the channel, after REFUSED_GIVE_UP refusals in a row."""
        now = self._clock()
        state = self._get(channel)
        if state.joined_at is not None and now - state.joined_at >= 300.0:
            state.backoff.reset()
        state.joined_at = None
        if refused:
            state.refusals += 1
            if state.refusals >= REFUSED_GIVE_UP:
                self.forget(channel)
                return None
        delay = state.backoff.next_delay()
        self.want(channel, delay)
        return delay

    def accepts(self, channel: str) -> bool:
        """Whether the bot takes the server's word that it joined ``channel`` (in any ASCII case): only
        for a channel it wants. A server may force a JOIN on the bot, or forge thousands; each is ignored
        (not a channel the bot is in, not one it rejoins), the first on a connection logged at INFO.
        Channel names are ASCII (``vbot.config``): ``str.lower`` alone would also take ``#\u212ak`` (a
        Kelvin sign), 2**n spellings of a name with n k's that the server's CASEMAPPING keeps apart."""
        if channel.isascii() and channel.lower() in self._channels:
            return True
        log.log(
            logging.DEBUG if self._told_forced else logging.INFO,
            "ignoring the server's JOIN of the bot to %s, a channel it did not ask to join%s",
            channel,
            "" if self._told_forced else " (more on this connection: DEBUG)",
        )
        self._told_forced = True
        return False

    def follow(self, own: Own) -> None:
        """What the server said about the bot itself (``vbot.modes.Membership``): it joined a
        channel (INFO), or lost one it wants (kicked, parted by the server: a WARNING, and a rejoin
        after ``rejoin_later``'s delay), or left one it no longer wants (INFO)."""
        if own.joined:
            self.joined(own.channel)
            log.info("joined %s", own.channel)
        elif own.channel not in self:
            log.info("left %s", own.channel)
        else:
            delay = self.rejoin_later(own.channel)
            log.warning("the bot was %s in %s; rejoining in %.0f s", own.why, own.channel, delay)

    def refused(self, channel: str, reason: str) -> None:
        """The server refused the bot's JOIN of ``channel`` for ``reason``: a WARNING and a JOIN
        after ``rejoin_later``'s delay, or after REFUSED_GIVE_UP refusals an ERROR and no more."""
        delay = self.rejoin_later(channel, refused=True)
        if delay is None:
            log.error("giving up joining %s after %d refusals: %s", channel, REFUSED_GIVE_UP, reason)
        else:
            log.warning("the server refused to let the bot join %s: %s; trying again in %.0f s", channel, reason, delay)

    def take_ready(self) -> list[str]:
        """Remove from the queue and return the channels to JOIN now, in the order wanted."""
        now = self._clock()
        if now < self._next_check:
            return []
        while self._sent_at and self._sent_at[0] <= now - self.window:
            self._sent_at.popleft()
        ready = []
        for channel, state in self._channels.items():
            if not self._may_join():
                break
            if state.queued and state.due_at <= now:
                state.queued = False
                self._sent_at.append(now)
                if self.pace is not None:
                    self.pace.charge(LinePace.PENALTIES["JOIN"])
                ready.append(channel)
        wait = self.wait_time()
        self._next_check = math.inf if wait is None else now + wait
        return ready

    def wait_time(self) -> float | None:
        """Seconds until ``take_ready`` may return something; None when nothing is queued."""
        due = [state.due_at for state in self._channels.values() if state.queued]
        if not due:
            return None
        now = self._clock()
        at = min(due)
        if self.pace is not None:
            at = max(at, now + self.pace.wait_time(LinePace.PENALTIES["JOIN"]))
        elif len(self._sent_at) >= self.limit:
            at = max(at, self._sent_at[len(self._sent_at) - self.limit] + self.window)
        return max(at - now, 0.0)

    def _may_join(self) -> bool:
        if self.pace is not None:
            return self.pace.room() >= LinePace.PENALTIES["JOIN"]
        return len(self._sent_at) < self.limit

    def clear_queue(self) -> None:
        """On a drop: nothing is sent until the next welcome (``want_all``)."""
        self._told_forced = False
        for state in self._channels.values():
            state.queued = False
            state.joined_at = None
