"""What to do about a chat message that broke a spam filter: pure, with an injected clock.

The driver asks ``Moderation.check(message)`` about every chat message before commands
(the bot only about a command or a message whose text ``breaks_a_filter``: the same
answers, for a fraction of the cost); the answer is None (let it be) or an ``Action``, a
small immutable record of what to do: delete the message or time the chatter out, and the
warning to reply with. Nothing here sends, calls or logs anything (``vbot.enforcer`` logs
each action; the console prints it).

- Exempt: the broadcaster, moderators, VBOT_OWNERS, and the roles of ``exempt`` (each
  with every role above it).
- Offences are counted per chatter per channel; the n-th gets ``penalties[n - 1]``
  (the last entry beyond), and a chatter's count is forgotten ``forget_after`` seconds
  after their last offence.
- ``permit(channel, login)`` (``!permit``) lets that chatter's links through for the
  links filter's ``permit_seconds``.
- The warning is at most one per ``WARN_INTERVAL`` per channel.
- In ``mode = "log"`` (or with ``log_only``, as in the console), or in a channel where
  ``may_act(channel)`` says the bot cannot act (``vbot.enforcer``: not a moderator there, or
  the token lacks the scopes), an action is only described: ``Action.log_only`` is true and
  the driver must call nothing. Such would-be actions are counted apart: their offences
  escalate among themselves (so the log shows what acting would do) and they have their own
  warning interval, but they never count toward a real penalty nor use up the real warning.

Memory is bounded: offences and permits are forgotten once expired, and at most
``max_entries`` of each are kept (the oldest go first).
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from vbot.chat import ChatMessage, ChatText

if TYPE_CHECKING:  # vbot.filters is imported only with a [filters] table (start-up time)
    from vbot.filters import FilterSettings, Links, Penalty

log = logging.getLogger(__name__)

WARN_INTERVAL = 30.0
"""Seconds between two warning replies in one channel."""
MAX_ENTRIES = 100_000
"""Offences (and permits) remembered at most, each a few hundred bytes."""
V = TypeVar("V")


class Action(NamedTuple):
    """What to do about one message: ``penalty`` for the ``offence``-th offence of ``login``
    (``user_id`` from the ``user-id`` tag) in ``channel`` against the filter ``filter``;
    ``message_id`` is the ``id`` tag (for Delete Chat Messages). Either id is ``''`` when the
    message had no such tag (plain IRC, the console). ``reason`` is the text for Ban User;
    ``warning`` the reply to post in the channel, or None. When ``log_only`` is true, nothing
    may be done: the action is only reported."""

    channel: str
    login: str
    user_id: str
    message_id: str
    filter: str
    penalty: Penalty
    offence: int
    reason: str
    log_only: bool = False
    warning: str | None = None

    def describe(self) -> str:
        """``"time out alice for 10 s (links)"``, with ``"would "`` in front when ``log_only``."""
        text = f"{self.penalty.describe(self.login)} ({self.filter})"
        return f"would {text}" if self.log_only else text


class _Memory(Generic[V]):
    """Values by key, each forgotten ``lifetime`` seconds after it was put (the caller passes
    the lifetime, which a reload may change); at most ``max_entries``, the oldest go first."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[V, float, int]] = {}  # key -> (value, put at, stamp)
        self._order: collections.deque[tuple[float, int, Hashable]] = collections.deque()
        self._stamps = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, now: float, lifetime: float) -> V | None:
        """The value put for ``key`` less than ``lifetime`` seconds before ``now``, or None."""
        entry = self._entries.get(key)
        if entry is None or now - entry[1] >= lifetime:
            return None
        return entry[0]

    def put(self, key: Hashable, value: V, now: float, lifetime: float) -> None:
        """Remember ``value`` for ``key`` from ``now``; forget what expired meanwhile."""
        while self._order and now - self._order[0][0] >= lifetime:
            self._pop()
        stamp = next(self._stamps)
        self._entries[key] = (value, now, stamp)
        self._order.append((now, stamp, key))
        while len(self._order) > self.max_entries:
            self._pop()

    def clear(self) -> None:
        self._entries.clear()
        self._order.clear()

    def _pop(self) -> None:
        _, stamp, key = self._order.popleft()
        entry = self._entries.get(key)
        if entry is not None and entry[2] == stamp:
            del self._entries[key]


class Moderation:
    """The spam filters' decisions for every channel; see the module's docstring.

    ``settings`` is None while the commands file has no ``[filters]`` table; ``clock()``
    returns monotonic seconds; ``owners`` are logins exempt everywhere (VBOT_OWNERS).
    ``log_only`` makes every action a would-be one (the console sets it); ``may_act(channel)``
    says whether actions can be carried out in that channel (``vbot.enforcer.Enforcer`` sets
    it; asked only for a message that broke a filter).
    """

    def __init__(
        self,
        settings: FilterSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        owners: Iterable[str] = (),
        max_entries: int = MAX_ENTRIES,
    ):
        self.settings = settings
        self.log_only = False
        self.may_act: Callable[[str], bool] = _always
        self.owners = frozenset(owners)
        self._clock = clock
        self._acted = _Record(max_entries)  # actions carried out
        self._would = _Record(max_entries)  # would-be actions (log mode): never counted toward real ones
        self._permits: _Memory[bool] = _Memory(max_entries)

    def __len__(self) -> int:
        """Chatters remembered (offences and permits): what a flood could grow."""
        return len(self._acted.offences) + len(self._would.offences) + len(self._permits)

    @property
    def is_on(self) -> bool:
        """True when some filter is on."""
        return self.settings is not None and bool(self.settings.filters)

    @property
    def acts(self) -> bool:
        """True when some filter is on and its actions are meant to be carried out (not log mode)."""
        settings = self.settings
        return settings is not None and bool(settings.filters) and settings.mode == "act" and not self.log_only

    def set_filters(self, settings: FilterSettings | None) -> None:
        """Use ``settings`` from now on (a reload); offences and permits stay while filters are on."""
        self.settings = settings
        if settings is None:
            self._acted.clear()
            self._would.clear()
        if settings is None or settings.links is None:
            self._permits.clear()

    def breaks_a_filter(self, text: str, tags: Mapping[str, str]) -> bool:
        """True when a chat message saying ``text`` (with ``tags``) breaks a filter that is on,
        whoever sends it: exemptions and ``!permit`` do not count. False means ``check`` would
        let it be. The filters read only the text and one tag (``emotes``), so a clean chat line
        is never made a ChatMessage (all its tags parsed, its sender's role worked out: about
        half of what checking it cost); the driver hands ``check`` the others."""
        settings = self.settings
        if settings is not None:
            said = ChatText(text, tags)
            for rule in settings.filters:
                if rule.broken_by(said):
                    return True
        return False

    def check(self, message: ChatMessage) -> Action | None:
        """What to do about ``message``: None, or the Action for the first filter it breaks.
        Counts the offence: a would-be one (``Action.log_only``) apart from those carried out."""
        settings = self.settings
        if settings is None or message.role >= settings.exempt or message.login in self.owners:
            return None
        key = (message.channel, message.login)
        links = settings.links
        broken = None
        for rule in settings.filters:
            if rule.broken_by(message) and not (rule is links and self._is_permitted(key, rule)):
                broken = rule
                break
        if broken is None:
            return None
        now = self._clock()
        log_only = self.log_only or settings.mode == "log" or not self.may_act(message.channel)
        record = self._would if log_only else self._acted
        offence = (record.offences.get(key, now, settings.forget_after) or 0) + 1
        record.offences.put(key, offence, now, settings.forget_after)
        penalty = settings.penalty(offence)
        warning = None
        warned_at = record.warned_at.get(message.channel)
        if settings.warn and (warned_at is None or now - warned_at >= WARN_INTERVAL):
            record.warned_at[message.channel] = now
            outcome = "message deleted" if penalty.timeout is None else f"{penalty.timeout} s timeout"
            warning = f"@{message.name}, {broken.warning} ({outcome})"
        return Action(
            channel=message.channel,
            login=message.login,
            user_id=message.tags.get("user-id", ""),
            message_id=message.tags.get("id", ""),
            filter=broken.name,
            penalty=penalty,
            offence=offence,
            reason=f"spam filter: {broken.name} (offence {offence})",
            log_only=log_only,
            warning=warning,
        )

    def permit(self, channel: str, login: str) -> int | None:
        """Let ``login``'s links through in ``channel`` from now on for ``permit_seconds``, which
        is returned; None when the links filter is off (nothing to permit)."""
        links = self.settings.links if self.settings is not None else None
        if links is None:
            return None
        self._permits.put((channel, login), True, self._clock(), links.permit_seconds)
        log.info("%s: %s may post links for %d s", channel, login, links.permit_seconds)
        return links.permit_seconds

    def _is_permitted(self, key: tuple[str, str], links: Links) -> bool:
        return self._permits.get(key, self._clock(), links.permit_seconds) is not None


class _Record:
    """Offences per (channel, login) and each channel's last warning: one record for the actions
    carried out, another for the would-be ones, so that trying filters never counts for real."""

    def __init__(self, max_entries: int):
        self.offences: _Memory[int] = _Memory(max_entries)
        self.warned_at: dict[str, float] = {}  # channel -> when its last warning was decided

    def clear(self) -> None:
        self.offences.clear()
        self.warned_at.clear()


def _always(channel: str) -> bool:
    return True
