"""Stream facts as chat sees them: the records, their texts, and the ``Facts`` a command asks.

A fact is what Twitch's API says about a channel: its stream (live or offline, live
viewers, start, game, title), its follower total, and how long someone has followed
it. Commands and templates ask the chat's ``Facts`` (``Chat.facts``) with the needs
of their text (``STREAM``, ``CHANNEL``, ``FOLLOWERS``, ``FOLLOWAGE``) and a
``render(known) -> str``; the answer is the text now, or None when the facts must
first be fetched: the text then comes from ``tick()`` once they arrive or the
reply's wait is over, with what is known by then (docs/stream-facts.md).

Three Facts: ``vbot.streamfacts.StreamFacts`` (Twitch's API, in the background),
``ConsoleFacts`` (what ``/live`` and ``/offline`` pretend), and ``NoFacts`` (a plain
IRC server, or no Twitch API): nothing is known, so every text says so.
"""

from __future__ import annotations

import calendar
import datetime
import time
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple, Protocol

from vbot.health import format_duration

STREAM, CHANNEL, FOLLOWERS, FOLLOWAGE = "stream", "channel", "followers", "followage"
"""The needs of a text: the stream (live, viewers, start), the channel's game and title,
the follower total, and a chatter's follow."""
FACT_VARIABLES: Mapping[str, str] = {
    "live_viewers": STREAM,
    "uptime": STREAM,
    "game": CHANNEL,
    "title": CHANNEL,
    "followers": FOLLOWERS,
    "followage": FOLLOWAGE,
}
"""Each template variable backed by a fact, and what it needs."""
SCOPES: Mapping[str, str] = {FOLLOWAGE: "moderator:read:followers"}
"""The token scope each need requires beyond the chat scopes (Twitch's API reference,
Get Channel Followers with ``user_id``); the others need none."""
NOT_AVAILABLE = "(not available)"
"""What a variable shows when its fact is not known (no Twitch API, API down, scope missing)."""
NOT_FOLLOWING = "not following"

Render = Callable[["Known"], str]


class Stream(NamedTuple):
    """A channel's stream: ``live``; while live, ``viewers`` (Get Streams ``viewer_count``),
    ``started_at`` (epoch seconds), ``game`` and ``title``."""

    live: bool
    viewers: int = 0
    started_at: float | None = None
    game: str = ""
    title: str = ""


class ChannelInfo(NamedTuple):
    """A channel's game (category) and title, live or not (Get Channel Information)."""

    game: str
    title: str


class Follow(NamedTuple):
    """Whether and since when (epoch seconds) someone follows a channel; ``since`` None: not following."""

    since: float | None


class Subject(NamedTuple):
    """Whose follow ``{followage}`` asks about: a ``login``, and the user ID when chat gave it
    (the ``user-id`` tag of the sender's message); ``''`` when a lookup is needed."""

    login: str
    user_id: str = ""


class Known(NamedTuple):
    """What is known for one text: each fact None when not known. ``now`` is epoch seconds
    (the console's own clock there), for uptime and followage."""

    now: float = 0.0
    stream: Stream | None = None
    channel: ChannelInfo | None = None
    followers: int | None = None
    follow: Follow | None = None

    def has(self, need: str) -> bool:
        """True when the fact ``need`` (STREAM, CHANNEL, FOLLOWERS, FOLLOWAGE) is known."""
        value = {STREAM: self.stream, CHANNEL: self.channel, FOLLOWERS: self.followers, FOLLOWAGE: self.follow}
        return value[need] is not None

    def live_viewers(self) -> str:
        """``{live_viewers}``: ``1,234`` while live, ``0`` when offline."""
        if self.stream is None:
            return NOT_AVAILABLE
        return f"{self.stream.viewers:,}" if self.stream.live else "0"

    def uptime(self) -> str:
        """``{uptime}``: ``2h 14m`` while live (``!botstatus``'s format), ``offline`` when offline."""
        if self.stream is None or (self.stream.live and self.stream.started_at is None):
            return NOT_AVAILABLE
        if not self.stream.live:
            return "offline"
        assert self.stream.started_at is not None
        return format_duration(self.now - self.stream.started_at)

    def game(self) -> str:
        """``{game}``: the channel's category, as Twitch names it (empty when none is set)."""
        return NOT_AVAILABLE if self.channel is None else self.channel.game

    def title(self) -> str:
        """``{title}``: the stream's title."""
        return NOT_AVAILABLE if self.channel is None else self.channel.title

    def followers_total(self) -> str:
        """``{followers}``: ``5,678``."""
        return NOT_AVAILABLE if self.followers is None else f"{self.followers:,}"

    def followage(self) -> str:
        """``{followage}``: ``1 year 2 months``, or ``not following``."""
        if self.follow is None:
            return NOT_AVAILABLE
        if self.follow.since is None:
            return NOT_FOLLOWING
        return format_followage(self.follow.since, self.now)


def viewers_text(stream: Stream | None, chatters: int) -> str:
    """The ``!count_viewers`` reply: the chatters alone when the stream is not known (as before
    vbot knew stream facts), else which number is which.

    >>> viewers_text(Stream(True, 1234), 56), viewers_text(Stream(False), 12), viewers_text(None, 12)
    ('Viewer count: 1,234 watching live, 56 in chat', 'Viewer count: offline, 12 in chat', 'Viewer count: 12')
    """
    if stream is None:
        return f"Viewer count: {chatters}"
    if not stream.live:
        return f"Viewer count: offline, {chatters:,} in chat"
    return f"Viewer count: {stream.viewers:,} watching live, {chatters:,} in chat"


def uptime_text(known: Known) -> str:
    """The ``!uptime`` reply.

    >>> uptime_text(Known(10000.0, Stream(True, 5, 1960.0))), uptime_text(Known(0.0, Stream(False)))
    ('Live for 2h 14m', 'Offline')
    >>> uptime_text(Known())
    'Uptime not available right now'
    """
    uptime = known.uptime()
    if uptime == NOT_AVAILABLE:
        return "Uptime not available right now"
    return "Offline" if uptime == "offline" else f"Live for {uptime}"


def format_followage(since: float, now: float) -> str:
    """How long from ``since`` to ``now`` (epoch seconds), by the calendar, in at most two
    units: ``'1 year 2 months'``, ``'3 months 5 days'``, ``'2 days 4 hours'``, ``'1 minute'``.

    >>> day = 86400
    >>> start = datetime.datetime(2023, 1, 15, tzinfo=datetime.UTC).timestamp()
    >>> [format_followage(start, start + d * day) for d in (430, 365, 31, 45, 1.25, 0)]
    ['1 year 2 months', '1 year', '1 month', '1 month 14 days', '1 day 6 hours', 'less than a minute']
    >>> end = datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC).timestamp()
    >>> format_followage(datetime.datetime(2024, 1, 31, tzinfo=datetime.UTC).timestamp(), end)
    '1 month 1 day'
    """
    start = datetime.datetime.fromtimestamp(since, datetime.UTC)
    end = datetime.datetime.fromtimestamp(max(now, since), datetime.UTC)
    months = (end.year - start.year) * 12 + end.month - start.month
    if _months_after(start, months) > end:
        months -= 1
    rest = end - _months_after(start, months)
    years, months = divmod(months, 12)
    hours, seconds = divmod(rest.seconds, 3600)
    units = [(years, "year"), (months, "month"), (rest.days, "day"), (hours, "hour"), (seconds // 60, "minute")]
    for index, (count, name) in enumerate(units):
        if count:
            parts = [(count, name)]
            if index + 1 < len(units) and units[index + 1][0]:
                parts.append(units[index + 1])
            return " ".join(f"{number} {unit}{'' if number == 1 else 's'}" for number, unit in parts)
    return "less than a minute"


def _months_after(moment: datetime.datetime, months: int) -> datetime.datetime:
    """``moment`` plus whole calendar ``months``, the day clamped to the month's length."""
    year, month = divmod(moment.month - 1 + months, 12)
    year += moment.year
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def needs_of(names: Iterable[str]) -> frozenset[str]:
    """The needs of a text using the variables ``names``."""
    return frozenset(FACT_VARIABLES[name] for name in names if name in FACT_VARIABLES)


def login_scopes(needs: Iterable[str]) -> tuple[str, ...]:
    """The scopes ``vbot login`` asks for: the chat scopes, then those of ``needs`` (SCOPES).

    >>> login_scopes({FOLLOWAGE, STREAM}), login_scopes(())
    (('chat:read', 'chat:edit', 'moderator:read:followers'), ('chat:read', 'chat:edit'))
    """
    from vbot.auth import CHAT_SCOPES  # here: the token code loads only with a token or for `vbot login`

    return CHAT_SCOPES + tuple(sorted({SCOPES[need] for need in needs if need in SCOPES}))


def scope_warnings(needs: Iterable[str], granted: Iterable[str]) -> list[str]:
    """One line per feature of ``needs`` whose scope is not among ``granted``, for a WARNING at start.

    >>> for line in scope_warnings({FOLLOWAGE}, ["chat:read", "chat:edit"])[0].split(": "):
    ...     print(line)
    {followage} needs the token scope moderator:read:followers, which it lacks
    run "vbot login" again; until then it shows (not available)
    """
    granted = set(granted)
    return [
        f'{{{need}}} needs the token scope {SCOPES[need]}, which it lacks: run "vbot login" again; '
        f"until then it shows {NOT_AVAILABLE}"
        for need in sorted(needs)
        if need in SCOPES and SCOPES[need] not in granted
    ]


class Facts(Protocol):
    """Stream facts for chat (``Chat.facts``); channels are lowercase with ``#``."""

    def answer(self, channel: str, needs: frozenset[str], render: Render, subject: Subject | None = None) -> str | None:
        """``render(known)`` now when the facts of ``needs`` are known; else None, and the text
        comes from ``tick()`` later (within the reply's wait), with what is known by then.
        ``subject`` says whose follow ``FOLLOWAGE`` means."""

    def known(self, channel: str, needs: frozenset[str], subject: Subject | None = None) -> Known:
        """What is known now, without waiting."""

    def ready(self, channel: str, needs: frozenset[str]) -> bool:
        """True when every fact of ``needs`` is known; asks for the missing ones (timers wait meanwhile)."""

    def is_live(self, channel: str) -> bool | None:
        """Whether the stream is live; None when not known (asks for it)."""

    def tick(self) -> list[tuple[str, str]]:
        """Call on every turn of the event loop; the (channel, text) replies ready now. Never blocks."""

    def note_bot_role(self, channel: str, is_moderator: bool) -> None:
        """The bot is (or is not) a moderator or the broadcaster in ``channel`` (Twitch's USERSTATE)."""


class NoFacts:
    """Facts where there are none (a plain IRC server, Twitch's API not used): nothing is known,
    every text is made at once, and nothing waits for facts."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock

    def answer(self, channel: str, needs: frozenset[str], render: Render, subject: Subject | None = None) -> str | None:
        return render(self.known(channel, needs, subject))

    def known(self, channel: str, needs: frozenset[str], subject: Subject | None = None) -> Known:
        return Known(self._clock())

    def ready(self, channel: str, needs: frozenset[str]) -> bool:
        return not needs

    def is_live(self, channel: str) -> bool | None:
        return None

    def tick(self) -> list[tuple[str, str]]:
        return []

    def note_bot_role(self, channel: str, is_moderator: bool) -> None:
        pass


class ConsoleFacts(NoFacts):
    """The facts the console pretends Twitch gave (``/live <viewers> [game]``, ``/offline``),
    the same for any channel; unknown until the first of them. Follows are never known.
    ``clock()`` is the console's clock (``/wait`` moves it), so uptime grows with it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__(clock)
        self.stream: Stream | None = None
        self.channel: ChannelInfo | None = None

    def go_live(self, viewers: int, game: str = "") -> None:
        """The stream is live from now, with ``viewers`` watching, in ``game``."""
        self.stream = Stream(True, viewers, self._clock(), game)
        self.channel = ChannelInfo(game, self.channel.title if self.channel else "")

    def go_offline(self) -> None:
        """The stream is offline; the game stays as it was (as on Twitch)."""
        self.stream = Stream(False)
        self.channel = self.channel or ChannelInfo("", "")

    def known(self, channel: str, needs: frozenset[str], subject: Subject | None = None) -> Known:
        return Known(self._clock(), self.stream, self.channel)

    def ready(self, channel: str, needs: frozenset[str]) -> bool:
        known = self.known(channel, needs)
        return all(known.has(need) for need in needs)

    def is_live(self, channel: str) -> bool | None:
        return None if self.stream is None else self.stream.live
