"""Timers: messages posted every so often in a channel, only while its chat is active.

Pure logic with an injected clock, like ``vbot.outbox``: the driver (the bot, or
the console) reports chat lines (``note_line``) and the joined channels (``follow``
each own JOIN or leaving, ``set_channels`` all at once), asks ``take_due()`` for the
posts that may go now and ``wait_time()`` for when to ask again, and sends each post
through the outbox.

The rules, from what Nightbot and StreamElements users ask for:

* a timer posts in a channel when its ``interval`` has passed since it last
  posted there (or since it started there: loaded, or the channel joined) **and**
  at least ``min_lines`` chat lines from others have arrived in that channel
  since then, as soon as both hold (never "skipped until the next interval");
* in one channel, two timer posts are at least ``gap`` seconds apart (1 s: never
  in the same second); when several are due, the one due longest goes first,
  then the one first in the file;
* a timer's ``messages`` are posted in turn, separately in each channel;
* the bot's own lines never count;
* a reload keeps the clock, line count and turn of each timer whose name stays;
* a timer with ``live_only`` posts only while the stream is live, and a timer whose
  messages use stream facts only once they are known (``facts``, vbot.facts): when
  they are not, the timer waits, due, and posts as soon as they are.

Each post is logged at INFO; why a timer waits is logged at DEBUG when it
changes (interval still running, or chat lines missing).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from vbot.config import ConfigError
from vbot.health import format_duration

if TYPE_CHECKING:
    from vbot.dispatch import Chat
    from vbot.facts import Facts
    from vbot.modes import Own

log = logging.getLogger(__name__)

DEFAULT_MIN_LINES = 5
"""Chat lines from others needed between two posts of one timer in one channel."""
MIN_INTERVAL = 60.0
"""Seconds: the shortest interval a timer may have."""
MAX_INTERVAL = 86400.0
"""Seconds: the longest interval a timer may have (one day)."""
GAP = 1.0
"""Seconds between two timer posts in one channel: never two in the same second."""

Fill = Callable[[str, str, "Chat"], str]
"""``fill(message, channel, chat) -> text``: a timer message with its variables filled in."""


@dataclasses.dataclass(frozen=True)
class Timer:
    """One timer: ``messages`` (one or more, posted in turn) every ``interval`` seconds
    once ``min_lines`` chat lines from others have arrived.

    ``channels`` are lowercase with ``#``; empty means every joined channel.
    ``fill`` fills in a message's variables (``vbot.custom`` builds it); None
    posts the messages as written. ``live_only``: post only while the stream is
    live; ``needs``: the stream facts the messages use (vbot.facts).
    """

    name: str
    messages: tuple[str, ...]
    interval: float
    min_lines: int = DEFAULT_MIN_LINES
    channels: tuple[str, ...] = ()
    fill: Fill | None = dataclasses.field(default=None, repr=False, compare=False)
    live_only: bool = False
    needs: frozenset[str] = frozenset()


class Post(NamedTuple):
    """A timer post that may go now: ``message`` (the template, in turn) for ``channel``."""

    timer: Timer
    channel: str
    message: str

    def text(self, chat: Chat) -> str:
        """The message with its variables filled in (``{count}`` counts this post)."""
        if self.timer.fill is None:
            return self.message
        return self.timer.fill(self.message, self.channel, chat)


class TimerState(NamedTuple):
    """Where one timer stands in one channel: for the console's ``/timers`` and for logs.

    ``remaining``: seconds until the interval has passed (0 when it has);
    ``lines``: chat lines counted since the last post; ``joined``: whether the
    bot is in the channel (a timer posts only there).
    """

    timer: Timer
    channel: str
    remaining: float
    lines: int
    turn: int
    joined: bool

    @property
    def is_due(self) -> bool:
        """True when both conditions hold (the post may still wait ``gap`` seconds)."""
        return self.joined and self.remaining <= 0 and self.lines >= self.timer.min_lines

    def describe(self) -> str:
        """One line, e.g. ``"hydrate in #chan: waiting for 12m 3s and 3 more chat lines (2/5); message 1 of 2"``."""
        where = f"{self.timer.name} in {self.channel}"
        if not self.joined:
            return f"{where}: not joined"
        waits = []
        if self.remaining > 0:
            waits.append(format_duration(math.ceil(self.remaining)))
        missing = self.timer.min_lines - self.lines
        if missing > 0:
            waits.append(f"{missing} more chat line{'' if missing == 1 else 's'} ({self.lines}/{self.timer.min_lines})")
        state = f"waiting for {' and '.join(waits)}" if waits else "due now"
        if self.timer.live_only:
            state += ", only while live"
        count = len(self.timer.messages)
        if count > 1:
            state += f"; message {self.turn % count + 1} of {count}"
        return f"{where}: {state}"


class _Slot:
    """The mutable state of one timer in one channel: since when it waits (clock seconds), the
    chat lines counted since, the message whose turn it is, and why it waits (for the log)."""

    __slots__ = ("since", "lines", "turn", "reason")

    def __init__(self, since: float) -> None:
        self.since, self.lines, self.turn, self.reason = since, 0, 0, ""


class TimerSchedule:
    """Decides which timer may post where, now.

    ``clock()`` returns monotonic seconds; ``bot_login`` is the bot's own login,
    whose lines never count; ``channels`` the joined channels (lowercase, with
    ``#``). ``facts`` (set by the driver; None: none known) say whether the stream
    is live. Nothing here raises on odd input; the driver calls it from one thread.
    """

    def __init__(
        self,
        timers: Iterable[Timer] = (),
        channels: Iterable[str] = (),
        bot_login: str = "",
        clock: Callable[[], float] = time.monotonic,
        gap: float = GAP,
    ):
        self._clock = clock
        self.bot_login = bot_login.lower()
        self.gap = gap
        self._timers: tuple[Timer, ...] = ()
        self._joined: dict[str, None] = {}  # the joined channels, in order (a set that keeps it)
        self._slots: dict[tuple[str, str], _Slot] = {}  # (timer name, channel) -> state
        self._posted_at: dict[str, float] = {}  # channel -> time of the last timer post there
        self._held: set[tuple[str, str]] = set()  # (timer name, channel) due but waiting for stream facts
        self.facts: Facts | None = None
        self.set_channels(channels)
        self.set_timers(timers)

    @property
    def timers(self) -> tuple[Timer, ...]:
        """The timers in use, in file order."""
        return self._timers

    def set_timers(self, timers: Iterable[Timer]) -> None:
        """Use ``timers`` from now on (a reload): a timer whose name stays keeps its
        clock, line count and turn; a new one starts now."""
        self._timers = tuple(timers)
        names = {timer.name: timer for timer in self._timers}
        self._slots = {
            key: slot
            for key, slot in self._slots.items()
            if key[0] in names and (not names[key[0]].channels or key[1] in names[key[0]].channels)
        }
        self._start_slots(self._joined)

    def set_channels(self, channels: Iterable[str]) -> None:
        """The channels the bot is in now, all at once (none on a disconnect; the console's one).

        A timer starts its first interval in a channel when the channel is first
        joined; leaving and rejoining (a reconnect) keeps its clock and line count.
        """
        self._joined = dict.fromkeys(channel.lower() for channel in channels)
        self._start_slots(self._joined)

    def follow(self, own: Own) -> None:
        """The bot joined or left ``own.channel`` (``vbot.modes.Membership``), as ``set_channels``
        would say; costs one step per timer, however many channels the bot is in."""
        channel = own.channel.lower()
        if own.joined:
            self._joined[channel] = None
            self._start_slots((channel,))
        else:
            self._joined.pop(channel, None)

    def note_line(self, channel: str, login: str) -> bool:
        """A chat line from ``login`` in ``channel``; the bot's own lines are ignored.

        True when a timer in ``channel`` has its lines and its interval now: call
        ``take_due()`` then, so that it posts at once rather than at the next tick.
        """
        if login.lower() == self.bot_login:
            return False
        channel = channel.lower()
        now = None
        due = False
        for timer in self._timers:
            slot = self._slots.get((timer.name, channel))
            if slot is not None:
                slot.lines += 1
                if slot.lines >= timer.min_lines and not due:
                    now = self._clock() if now is None else now
                    due = now >= slot.since + timer.interval
        return due

    def take_due(self) -> list[Post]:
        """The posts that may go now, at most one per channel; each restarts its timer's
        interval and line count in that channel and moves to its next message."""
        now = self._clock()
        posts = []
        self._held = set()
        for channel in self._joined:
            candidates = []
            for index, timer in enumerate(self._timers):
                slot = self._slots.get((timer.name, channel))
                if slot is None:
                    continue
                due_at = slot.since + timer.interval
                if now < due_at or slot.lines < timer.min_lines:
                    self._explain(timer, channel, slot, now)
                elif self._facts_allow(timer, channel):
                    candidates.append((due_at, index, timer, slot))
                else:
                    self._held.add((timer.name, channel))
                    self._explain(timer, channel, slot, now)
            if not candidates or now < self._posted_at.get(channel, -math.inf) + self.gap:
                continue
            _, _, timer, slot = min(candidates, key=lambda candidate: candidate[:2])
            message = timer.messages[slot.turn % len(timer.messages)]
            log.info(
                "timer %r posts in %s (message %d of %d)",
                timer.name,
                channel,
                slot.turn % len(timer.messages) + 1,
                len(timer.messages),
            )
            posts.append(Post(timer, channel, message))
            slot.since, slot.lines, slot.reason = now, 0, ""
            slot.turn = (slot.turn + 1) % len(timer.messages)
            self._posted_at[channel] = now
        return posts

    def post_due(self, chat: Chat, say: Callable[[str, str], None]) -> int:
        """Post what ``take_due`` gives: ``say(channel, text)``, its variables filled in for
        ``chat``; one that cannot be filled (``{count}``'s state file) is a WARNING and skipped.
        Returns how many were posted."""
        posted = 0
        for post in self.take_due():
            try:
                text = post.text(chat)
            except ConfigError as error:  # the state file's StateError, for {count}
                log.warning("timer %r in %s not posted: %s", post.timer.name, post.channel, error)
                continue
            say(post.channel, text)
            posted += 1
        return posted

    def wait_time(self) -> float | None:
        """Seconds until ``take_due`` may return something by time alone; None when every
        timer still needs chat lines (ask again after ``note_line``), waits for stream facts
        (ask again within a second), or there is none."""
        now = self._clock()
        waits = []
        for channel in self._joined:
            for timer in self._timers:
                slot = self._slots.get((timer.name, channel))
                if slot is not None and slot.lines >= timer.min_lines and (timer.name, channel) not in self._held:
                    at = max(slot.since + timer.interval, self._posted_at.get(channel, -math.inf) + self.gap)
                    waits.append(at - now)
        return max(min(waits), 0.0) if waits else None

    def states(self) -> list[TimerState]:
        """Each timer's state in each channel it posts in (or names), in file order."""
        now = self._clock()
        states = []
        for timer in self._timers:
            for channel in timer.channels or self._joined:
                slot = self._slots.get((timer.name, channel))
                if slot is None:
                    states.append(TimerState(timer, channel, timer.interval, 0, 0, False))
                else:
                    remaining = max(slot.since + timer.interval - now, 0.0)
                    states.append(TimerState(timer, channel, remaining, slot.lines, slot.turn, channel in self._joined))
        return states

    def _facts_allow(self, timer: Timer, channel: str) -> bool:
        """True when ``timer`` may post in ``channel`` as far as stream facts go."""
        if not timer.needs:
            return True
        if self.facts is None or not self.facts.ready(channel, timer.needs):
            return False
        return not timer.live_only or self.facts.is_live(channel) is True

    def _start_slots(self, channels: Iterable[str]) -> None:
        """A new slot, starting now, for each timer that posts in one of ``channels`` and has none there."""
        now = self._clock()
        for timer in self._timers:
            for channel in channels:
                if (not timer.channels or channel in timer.channels) and (timer.name, channel) not in self._slots:
                    self._slots[(timer.name, channel)] = _Slot(since=now)

    def _explain(self, timer: Timer, channel: str, slot: _Slot, now: float) -> None:
        """Log at DEBUG why ``timer`` waits in ``channel``, once per change of reason."""
        if (timer.name, channel) in self._held:
            reason = "facts"
            if slot.reason != reason:
                log.debug(
                    "timer %r in %s: due, waiting for %s",
                    timer.name,
                    channel,
                    "the stream to be live" if timer.live_only else "stream facts",
                )
        elif now < slot.since + timer.interval:
            reason = "interval"
            if slot.reason != reason:
                log.debug(
                    "timer %r in %s: next post in %s at the earliest, after %d chat line(s) from others",
                    timer.name,
                    channel,
                    format_duration(math.ceil(slot.since + timer.interval - now)),
                    timer.min_lines,
                )
        else:
            reason = "lines"
            if slot.reason != reason:
                log.debug(
                    "timer %r in %s: interval passed, waiting for %d more chat line(s) (%d/%d)",
                    timer.name,
                    channel,
                    timer.min_lines - slot.lines,
                    slot.lines,
                    timer.min_lines,
                )
        slot.reason = reason
