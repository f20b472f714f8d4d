"""Every outgoing chat rule in one place: cleaning, cutting, duplicates and rate windows.

Pure logic with an injected clock; the bot (or the console) asks ``take_ready()``
for the messages that may go now and ``wait_time()`` for when to ask again.

Limits, from Twitch's docs ("Chat & Chatbots" > Rate limits): per account 20
PRIVMSGs per 30 s, 100 per 30 s in channels where the bot is broadcaster,
moderator or VIP, and in other channels at most 1 per second per channel. Off
Twitch none of these hold: ``LinePace`` (``Outbox.use_line_pace``) replaces them.

Duplicates: Twitch drops a message identical to the previous one the account sent
to the channel less than 30 s before (``msg_duplicate``), unless the account is
broadcaster, moderator or VIP there. So that every reply arrives (the second
chatter asking ``!version`` gets an answer too), a reply equal to the last message
sent to the channel within 30 s, where the bot is not privileged, goes out with
``INVISIBLE_SUFFIX`` appended; the next identical one is different from that one
and goes out as is, and so on, alternating. This is what established Twitch chat
clients and libraries do (dank-twitch-irc's ``AlternateMessageModifier``,
Chatterino). A text equal to an earlier message, but not to the previous one, is
not a duplicate. Cooldowns (``vbot/dispatch.py``) are the guard against loops.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
import time
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from vbot.lines import BLANK, CONTROLS_TO_SPACES, MAX_CHARACTERS, MAX_LINE_BYTES

log = logging.getLogger(__name__)

ELLIPSIS = "…"
UNKNOWN_USER_HOST_BYTES = 10 + 1 + 63
"""Room kept for ``user@host`` in the relay prefix while the server has not shown it:
USERLEN 10 (a ``~`` for an unconfirmed ident included) and HOSTLEN 63, the limits of
the ircd lineage (ircu, hybrid: ``include/ircd_defs.h``)."""
INVISIBLE_SUFFIX = " \U000e0000"
"""A space and U+E0000 (Tags block, shown as nothing): makes a repeated reply differ from the previous one."""


class Limits(NamedTuple):
    """Send limits; times in seconds. Raise ``messages``/``privileged_messages`` for verified bots."""

    window: float = 30.0
    margin: float = 1.0  # added to the window: a reply sent sooner than another by network jitter keeps Twitch's count
    messages: int = 20
    privileged_messages: int = 100
    channel_interval: float = 1.0
    duplicate_window: float = 30.0
    ratelimit_pause: float = 30.0
    queue_size: int = 50
    line_budget: float = 7.0  # seconds of penalty, off Twitch: see LinePace


ZWJ = "\u200d"
"""ZERO WIDTH JOINER: glues emoji into one (family, rainbow flag); kept only between two emoji."""
BLACK_FLAG = "\U0001f3f4"
"""The base of the subdivision flags (England, Scotland, Wales): U+1F3F4, tags, CANCEL TAG."""
CANCEL_TAG = "\U000e007f"
_EMOJI_MODIFIERS = frozenset(["\ufe0f", *map(chr, range(0x1F3FB, 0x1F400))])
"""VARIATION SELECTOR-16 and the five skin tones: may stand between an emoji and a ZWJ."""


def is_invisible(char: str) -> bool:
    """True for a format character (Unicode category Cf: bidi controls, zero-width space, ZWJ,
    soft hyphen, BOM, ...) or a character of the Tags block (U+E0000-U+E007F).

    >>> [is_invisible(char) for char in "a\\u202e\\u200b\\U000e0000 "]
    [False, True, True, True, False]
    """
    return unicodedata.category(char) == "Cf" or 0xE0000 <= ord(char) <= 0xE007F


def visible(text: str) -> str:
    """``text`` without any invisible character (``is_invisible``), emoji joiners included, nor one
    that shows as nothing (``vbot.lines.BLANK``: Hangul fillers, the braille blank, variation
    selectors...): for a name, which must read as what it is (``{target}``).

    >>> visible("ali\\u202ece\\u200b"), visible("\\u3164\\u2800"), visible("\\u034f\\u17b4\\U000e0100")
    ('alice', '', '')
    """
    if text.isprintable() and BLANK.search(text) is None:
        return text
    return BLANK.sub("", "".join(char for char in text if not is_invisible(char)))


def _is_emoji(char: str) -> bool:
    """A pictographic symbol: category So, or any character of the emoji planes' blocks
    (U+1F000-U+1FAFF), which newer emoji take before Python's Unicode tables know them."""
    return unicodedata.category(char) == "So" or 0x1F000 <= ord(char) <= 0x1FAFF


def _joins_emoji(text: str, index: int) -> bool:
    """Whether the ZWJ at ``text[index]`` joins two emoji (modifiers before it skipped)."""
    before = index - 1
    while before >= 0 and index - before <= 8 and text[before] in _EMOJI_MODIFIERS:
        before -= 1
    return before >= 0 and index + 1 < len(text) and _is_emoji(text[before]) and _is_emoji(text[index + 1])


def _flag_tags_end(text: str, index: int) -> int:
    """When ``text[index:]`` is the tag characters of a flag (U+E0020-U+E007E, then CANCEL TAG)
    right after BLACK_FLAG, the index after CANCEL TAG; else ``index``."""
    if index == 0 or text[index - 1] != BLACK_FLAG:
        return index
    end = index
    while end < len(text) and 0xE0020 <= ord(text[end]) <= 0xE007E:
        end += 1
    if end > index and end < len(text) and text[end] == CANCEL_TAG:
        return end + 1
    return index


def clean(text: str) -> str:
    """Make ``text`` safe and honest to send: control characters (C0 such as CR, LF, NUL and
    CTCP's ``\\x01``, DEL, C1 such as NEL and CSI) and the line and paragraph separators
    (U+2028, U+2029) become spaces; invisible characters
    (``is_invisible``: bidi overrides, zero-width spaces, ...) are removed, except a ZWJ
    between two emoji and the tags of a flag such as England's, which emoji need; what UTF-8
    cannot encode (lone surrogates) becomes ``?``; the ends are trimmed.

    Source: Unicode Technical Standard #51 (emoji ZWJ and tag sequences). IRC's CTCP frame
    (``\\x01ACTION ...\\x01``) is never sent: vbot's ``/me`` is the text ``/me ...``, which
    Twitch turns into an action.

    >>> clean('hi\\r\\nQUIT :bye\\x00'), clean('one\\u2028two\\u2029three')
    ('hi  QUIT :bye', 'one two three')
    >>> clean('\\x01ACTION waves\\x01')
    'ACTION waves'
    >>> clean('\\u202egnp.exe\\u200b \\U0001f469\\u200d\\U0001f4bb') == 'gnp.exe \\U0001f469\\u200d\\U0001f4bb'
    True
    """
    if text.isprintable():  # the common case: nothing to remove (controls and Cf are not printable)
        return text.strip()
    text = text.encode("utf-8", "replace").decode("utf-8").translate(CONTROLS_TO_SPACES)
    kept: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isprintable() or not is_invisible(char) or (char == ZWJ and _joins_emoji(text, index)):
            kept.append(char)
            index += 1
            continue
        end = _flag_tags_end(text, index)
        kept.append(text[index:end])
        index = max(end, index + 1)
    return "".join(kept).strip()


def fit(text: str, channel: str, tail: str = "", reserve: int = 0) -> str:
    """Cut ``text`` so that ``text + tail`` has at most 500 characters and
    ``PRIVMSG <channel> :<text><tail>\\r\\n`` fits in 512 bytes less ``reserve`` bytes (the
    relay prefix, see ``Outbox.set_relay_prefix``), at a UTF-8 character boundary, ending
    with ``…`` when cut; returns the cut text followed by ``tail``.
    ``text`` and ``tail`` must be encodable (see ``clean``). A channel name too long
    for any text gets ``''``.

    >>> fit('a' * 600, '#c')[-3:]
    'aa…'
    >>> len(fit('a' * 600, '#c').encode())  # 512 - len('PRIVMSG #c :\\r\\n')
    498
    >>> len(fit('a' * 600, '#c', INVISIBLE_SUFFIX).encode())
    498
    """
    room = MAX_LINE_BYTES - reserve - len(f"PRIVMSG {channel} :\r\n".encode()) - len(tail.encode())
    characters = MAX_CHARACTERS - len(tail)
    if len(text) <= characters and len(text.encode()) <= room:
        return text + tail if text else ""
    budget = room - len(ELLIPSIS.encode())
    if budget < 0:
        return ""
    cut = text[: characters - 1].encode()[:budget].decode("utf-8", "ignore")
    return cut + ELLIPSIS + tail


class LinePace:
    """How fast lines may go to a plain IRC server (not Twitch): the classic flood rule.

    Every line the bot sends adds its penalty to a total that drains by one per second; a
    PRIVMSG or JOIN may go while the total, with it, stays within ``budget`` (default 7).
    A JOIN costs 2, PASS, NICK and PONG nothing, any other line 1 (``PENALTIES``). After a
    quiet spell 7 replies go at once, then one per second; JOINs, one every 2 s.

    The rule and its numbers are a server's: RFC 1459 section 8.10 (RFC 2813 section 5.8)
    holds a client whose message timer runs more than 10 s ahead, and InspIRCd without
    fakelag kills it ("Excess Flood") once its penalty reaches ``<connect threshold>`` (10 s
    by default), charging these penalties (``Penalty`` of its commands) and draining
    ``commandrate`` (1 s per second by default) once a second. Charging the login's lines
    too (CAP, USER), the budget keeps 3 of those 10 spare: the server drains up to a second
    later than this pace, and a PING may come on top. Twitch's own limits are ``Limits``.

    The outbox and the join pacing ask ``room``/``wait_time`` and ``charge`` what they
    release; the connection reports every other line with ``sent`` (vbot.irclib).
    ``clock()`` returns monotonic seconds; a budget of ``math.inf`` paces nothing.
    """

    PENALTIES = {"JOIN": 2.0, "PASS": 0.0, "NICK": 0.0, "PONG": 0.0}
    """Seconds of penalty a line costs by its command (InspIRCd's ``Penalty``); any other, 1."""
    PACED = frozenset({"PRIVMSG", "JOIN"})
    """Commands charged when released (the outbox, the join pacing), not again when sent."""

    def __init__(self, budget: float = 7.0, clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self._clock = clock
        self._total = 0.0  # seconds of penalty at ``_at``
        self._at = clock()

    def _now_total(self) -> float:
        now = self._clock()
        self._total, self._at = max(self._total - (now - self._at), 0.0), now
        return self._total

    def room(self) -> float:
        """Seconds of penalty that may go now without passing the budget."""
        return self.budget - self._now_total()

    def wait_time(self, penalty: float = 1.0) -> float:
        """Seconds until a line costing ``penalty`` may go (0 when it may go now)."""
        return max(penalty - self.room(), 0.0)

    def charge(self, penalty: float = 1.0) -> None:
        """A line costing ``penalty`` seconds was released now."""
        self._total = self._now_total() + penalty

    def sent(self, line: str) -> None:
        """The connection sent ``line`` (its command first): count it, unless it was charged when
        released (``PACED``)."""
        command = line.split(" ", 1)[0].upper()
        if command not in self.PACED:
            self.charge(self.PENALTIES.get(command, 1.0))

    def reset(self) -> None:
        """A new connection: the server counts from nothing."""
        self._total, self._at = 0.0, self._clock()


class Outbox:
    """A bounded queue of chat messages released within Twitch's limits, or off Twitch within
    the classic flood rule (``use_line_pace``, once the bot knows the server).

    ``clock()`` returns monotonic seconds. Nothing here raises on odd text.
    """

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        self.limits = limits or Limits()
        self._clock = clock
        # Each channel's waiting messages, oldest first, as (arrival number, cleaned text): a reply
        # costs the same however many wait. ``_waiting`` counts them all.
        self._queues: dict[str, collections.deque[tuple[int, str]]] = {}
        self._waiting = 0
        self._arrivals = itertools.count()
        self._sent_at: collections.deque[float] = collections.deque()
        self._last_sent: dict[str, tuple[str, float]] = {}  # channel -> (text as sent, when)
        self._privileged: set[str] = set()
        self._paused_until: dict[str, float] = {}
        self.dropped = 0  # messages dropped since start because the queue was full
        self._unreported = 0  # of those, dropped since the last ``report_dropped``
        self.relay_reserve = 0
        self.vary_repeats = True  # Twitch's msg_duplicate rule; off on other servers (no such rule)
        self.line_pace = LinePace(self.limits.line_budget, clock)  # the connection reports every line to it
        self.pace: LinePace | None = None  # off Twitch: line_pace, instead of Twitch's limits

    def use_line_pace(self, plain: bool) -> LinePace | None:
        """Off Twitch (``plain``) release replies by ``line_pace`` (the flood rule) instead of
        Twitch's limits, without the invisible suffix (Twitch's msg_duplicate rule only), and
        return it, for the join pacing to share; on Twitch return None."""
        self.pace = self.line_pace if plain else None
        self.vary_repeats = not plain
        return self.pace

    def __len__(self) -> int:
        return self._waiting

    def set_privileged(self, channel: str, privileged: bool) -> None:
        """Record whether the bot is broadcaster, moderator or VIP in ``channel`` (from USERSTATE)."""
        if privileged:
            self._privileged.add(channel)
        else:
            self._privileged.discard(channel)

    def set_relay_prefix(self, source: str) -> None:
        """Leave room in every reply for ``:<source> ``, which a non-Twitch server puts in
        front of it when relaying it to the channel (RFC 2812 section 2.3: 512 bytes per
        line, prefix included); otherwise the server refuses (417) or cuts the reply.

        ``source`` is the bot's own ``nick!user@host`` as the server shows it (its JOIN
        echo, a 396 host change), or only the nick while that is unknown: then
        ``UNKNOWN_USER_HOST_BYTES`` more are kept. Not for Twitch: it counts 500
        characters of text, not the relayed line. Sets ``relay_reserve`` (bytes).
        """
        self.relay_reserve = len(f":{source} ".encode())
        if "@" not in source:
            self.relay_reserve += 1 + UNKNOWN_USER_HOST_BYTES

    def pause(self, channel: str, seconds: float | None = None) -> None:
        """Send nothing to ``channel`` for ``seconds`` (default: ``limits.ratelimit_pause``)."""
        pause = self.limits.ratelimit_pause if seconds is None else seconds
        self._paused_until[channel] = self._clock() + pause

    def submit(self, channel: str, text: str) -> bool:
        """Queue ``text`` for ``channel``, cleaned (and cut when sent); False when nothing of it
        can be sent (empty once cleaned, or a channel name too long for any text).

        When the queue is full the oldest message is dropped and counted in ``dropped``.
        """
        text = clean(text)[: MAX_CHARACTERS + 1]  # longer is cut to the same by fit
        if not fit(text, channel, reserve=self.relay_reserve):
            log.debug("skipping an empty reply to %s", channel)
            return False
        if self._waiting >= self.limits.queue_size:
            oldest = min(self._queues, key=lambda waiting: self._queues[waiting][0][0])
            self._take(oldest)
            self.dropped += 1
            self._unreported += 1
        self._queues.setdefault(channel, collections.deque()).append((next(self._arrivals), text))
        self._waiting += 1
        return True

    def take_ready(self) -> list[tuple[str, str]]:
        """Remove and return the ``(channel, text)`` pairs that may be sent now, in order,
        cut to fit, a repeated reply with ``INVISIBLE_SUFFIX`` (see the module's docstring).

        The channels' oldest messages are looked at in order of arrival (a heap of them): the
        account's window goes to the earliest, and a channel that must wait keeps the rest of
        its messages waiting, as one queue would."""
        if not self._waiting:
            return []
        now = self._clock()
        ready: list[tuple[str, str]] = []
        heads = [(queue[0][0], channel) for channel, queue in self._queues.items()]
        heapq.heapify(heads)
        while heads:
            _, channel = heapq.heappop(heads)
            if not self._may_send(channel, now):
                continue
            sent = self._as_sent(channel, self._take(channel), now)
            self._record(channel, sent, now)
            ready.append((channel, sent))
            if channel in self._queues:
                heapq.heappush(heads, (self._queues[channel][0][0], channel))
        return ready

    def wait_time(self) -> float | None:
        """Seconds until ``take_ready`` may return something, or None when the queue is empty."""
        if not self._waiting:
            return None
        if self.pace is not None:
            return self.pace.wait_time()
        now = self._clock()
        return max(min([self._ready_at(channel, now) for channel in self._queues]) - now, 0.0)

    def report_dropped(self) -> int:
        """Log one WARNING for the messages dropped since the last call (the queue was full), if any,
        and return how many they were; ``dropped`` keeps the count since start."""
        unreported, self._unreported = self._unreported, 0
        if unreported:
            log.warning("too many replies waiting: dropped the %d oldest", unreported)
        return unreported

    def _ready_at(self, channel: str, now: float) -> float:
        """When a message to ``channel`` may go, by Twitch's limits (clock seconds; ``now`` at the soonest)."""
        at = max(self._paused_until.get(channel, now), now)
        if channel not in self._privileged:
            at = max(at, self._last_sent_at(channel) + self.limits.channel_interval)
        limit = self._window_limit(channel)
        if len(self._sent_at) >= limit:  # a slot frees when all but limit - 1 have left the window
            at = max(at, self._sent_at[len(self._sent_at) - limit] + self.limits.window + self.limits.margin)
        return at

    def _take(self, channel: str) -> str:
        """Remove and return ``channel``'s oldest waiting text."""
        queue = self._queues[channel]
        text = queue.popleft()[1]
        if not queue:
            del self._queues[channel]
        self._waiting -= 1
        return text

    def _window_limit(self, channel: str) -> int:
        if channel in self._privileged:
            return self.limits.privileged_messages
        return self.limits.messages

    def _last_sent_at(self, channel: str) -> float:
        """When the last message went to ``channel``; minus infinity when none did."""
        last = self._last_sent.get(channel)
        return -math.inf if last is None else last[1]

    def _may_send(self, channel: str, now: float) -> bool:
        if self.pace is not None:  # off Twitch: the flood rule instead of Twitch's limits
            return self.pace.room() >= 1
        while self._sent_at and self._sent_at[0] <= now - self.limits.window - self.limits.margin:
            self._sent_at.popleft()
        if self._paused_until.get(channel, now) > now:
            return False
        if len(self._sent_at) >= self._window_limit(channel):
            return False
        if channel in self._privileged:
            return True
        return now - self._last_sent_at(channel) >= self.limits.channel_interval

    def _as_sent(self, channel: str, text: str, now: float) -> str:
        """``text`` cut to fit, with INVISIBLE_SUFFIX when it repeats the previous message to
        ``channel`` within ``limits.duplicate_window``, the bot is not privileged there, and
        ``vary_repeats`` is on (Twitch)."""
        fitted = fit(text, channel, reserve=self.relay_reserve)
        last = self._last_sent.get(channel)
        if (
            not self.vary_repeats
            or channel in self._privileged
            or last is None
            or last[0] != fitted
            or now - last[1] >= self.limits.duplicate_window
        ):
            return fitted
        return fit(text, channel, INVISIBLE_SUFFIX, self.relay_reserve)

    def _record(self, channel: str, text: str, now: float) -> None:
        if self.pace is not None:
            self.pace.charge()
        self._sent_at.append(now)
        self._last_sent[channel] = (text, now)
