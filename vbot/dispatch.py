"""The command table and the path from a chat message to a reply.

A command is a plain function from a Context to reply text (or None), marked
with ``@command(...)``; the decorator only records metadata on the function.
``CommandTable.collect`` gathers marked functions into an immutable table, and
``Dispatcher.handle`` runs one message through prefix → lookup → role →
cooldown → handler, never letting a handler's exception escape.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from vbot.chat import ChatMessage, Role, split_command
from vbot.health import Health
from vbot.moderation import Moderation

if TYPE_CHECKING:
    from vbot.facts import Facts

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN = 3.0
"""Seconds between two runs of one command in one channel (moderators and up bypass)."""
DEFAULT_USER_COOLDOWN = 10.0
"""Seconds between two runs of one command by one chatter in one channel."""


class Reloads(Protocol):
    """What the bot asks of the custom commands file's reloads (``vbot.custom.Reloader``).

    ``reloads() -> str | None`` answers ``!reload`` (None: nothing to say in chat);
    ``request()`` asks for a reload without a reply (SIGHUP), now or once the reload
    pace allows; ``tick()`` runs that reload when it is due and returns the seconds until
    it is due, None when none waits.
    """

    def __call__(self) -> str | None: ...

    def request(self) -> None: ...

    def tick(self) -> float | None: ...


class NoReload:
    """The ``Reloads`` (and ``Chat.reload``) of a bot or console without a custom commands file: an
    answer, nothing to run."""

    def __call__(self) -> str:
        return "No custom commands file to reload."

    def request(self) -> None:
        """Nothing to reload."""

    def tick(self) -> None:
        """Nothing is ever due."""


class Chat(Protocol):
    """The chat a command runs in: what it may ask of the IRC bot, or of the console.

    ``reload() -> str | None`` re-reads the custom commands file (``vbot.custom.Reloader``, or
    ``NoReload``) and returns a one-line result for chat (None: nothing to say). ``facts`` are the stream facts
    (``vbot.facts``): Twitch's API, the console's pretend ones, or none.
    """

    reload: Callable[[], str | None]

    @property
    def facts(self) -> Facts:
        """The stream facts commands may ask (``vbot.facts.Facts``)."""

    def viewer_count(self, channel: str) -> int:
        """Chatters currently known in ``channel``, the bot excluded."""

    def request_stop(self) -> None:
        """Quit and end the process with exit code 0 once the current message is handled."""

    def health(self) -> Health:
        """The transport's counters for ``!botstatus`` (see ``vbot.health.Health``)."""


class Command(NamedTuple):
    """One entry of the command table.

    ``handler(ctx) -> str | None``; ``role`` is the lowest role allowed;
    ``cooldown`` (per channel) and ``user_cooldown`` (per chatter) are seconds.
    """

    name: str
    handler: Callable[[Context], str | None]
    aliases: tuple[str, ...] = ()
    help: str = ""
    role: Role = Role.EVERYONE
    cooldown: float = DEFAULT_COOLDOWN
    user_cooldown: float = DEFAULT_USER_COOLDOWN

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)


def command(
    name: str,
    *,
    aliases: Iterable[str] = (),
    help: str = "",
    role: Role = Role.EVERYONE,
    cooldown: float = DEFAULT_COOLDOWN,
    user_cooldown: float = DEFAULT_USER_COOLDOWN,
):
    """Mark a function ``f(ctx) -> str | None`` as a chat command; see Command for the fields."""

    def mark(handler):
        handler.vbot_command = Command(
            name.lower(), handler, tuple(a.lower() for a in aliases), help, role, cooldown, user_cooldown
        )
        return handler

    return mark


class CommandTable:
    """Commands by name and alias (lowercase). Raises ValueError on a name used twice."""

    def __init__(self, commands: Iterable[Command] = ()):
        self._commands: list[Command] = []
        self._by_name: dict[str, Command] = {}
        for entry in commands:
            for name in entry.names:
                if name in self._by_name:
                    raise ValueError(f"command name {name!r} is already used by {self._by_name[name].name!r}")
                self._by_name[name] = entry
            self._commands.append(entry)

    @classmethod
    def collect(cls, objects: Iterable[object]) -> CommandTable:
        """A table of every object marked with ``@command`` among ``objects``."""
        return cls(obj.vbot_command for obj in objects if hasattr(obj, "vbot_command"))

    def __iter__(self):
        return iter(self._commands)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def find(self, name: str) -> Command | None:
        """The command called ``name`` (lowercase) or None."""
        return self._by_name.get(name)

    def available_to(self, role: Role) -> list[Command]:
        """Commands a chatter with ``role`` may use, in table order."""
        return [entry for entry in self._commands if role >= entry.role]


class Context(NamedTuple):
    """What a command handler gets: the message, its arguments, the table and the chat it came
    from, and the spam filters' decisions (for ``!permit``)."""

    message: ChatMessage
    args: str
    role: Role
    command: Command
    table: CommandTable
    chat: Chat
    prefix: str
    moderation: Moderation


MAX_COOLDOWNS = 100_000
"""Running cooldowns kept at most (a few tens of bytes each); see Cooldowns."""


class Cooldowns:
    """Per-channel and per-chatter cooldowns; ``clock()`` returns seconds (monotonic).

    A cooldown is forgotten as soon as it is over, so memory follows the chatters of the
    last few seconds, not all chatters ever seen. Each call costs amortised O(1) whatever
    their number: the end times wait in one first-in first-out queue per cooldown length
    (in order, because the clock only moves forward), and each call forgets the ended
    ones from the queues' fronts. At most ``max_entries`` cooldowns are kept: beyond that
    the ones nearest their end are forgotten first, so in a flood a chatter may run a
    command slightly early, never late.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_COOLDOWNS):
        self._clock = clock
        self._max_entries = max_entries
        self._ready_at: dict[tuple[str, ...], float] = {}
        self._ending: dict[float, collections.deque[tuple[float, tuple[str, ...]]]] = {}
        self._queued = 0

    def __len__(self) -> int:
        """The number of running cooldowns (channel and chatter ones)."""
        return len(self._ready_at)

    def try_use(self, entry: Command, channel: str, login: str) -> bool:
        """True (and start both cooldowns) when ``entry`` may run now in ``channel`` for ``login``."""
        now = self._clock()
        self._forget_ended(now)
        channel_key = (entry.name, channel)
        user_key = (entry.name, channel, login)
        if self._ready_at.get(channel_key, now) > now or self._ready_at.get(user_key, now) > now:
            return False
        if entry.cooldown > 0:
            self._start(channel_key, entry.cooldown, now)
        if entry.user_cooldown > 0:
            self._start(user_key, entry.user_cooldown, now)
        return True

    def _start(self, key: tuple[str, ...], seconds: float, now: float) -> None:
        ready_at = now + seconds
        self._ready_at[key] = ready_at
        queue = self._ending.get(seconds)
        if queue is None:
            queue = self._ending[seconds] = collections.deque()
        queue.append((ready_at, key))
        self._queued += 1
        while self._queued > self._max_entries:
            self._pop(min(self._ending, key=lambda length: self._ending[length][0][0]))

    def _forget_ended(self, now: float) -> None:
        for seconds in [seconds for seconds, queue in self._ending.items() if queue[0][0] <= now]:
            queue = self._ending[seconds]
            while queue and queue[0][0] <= now:
                self._pop(seconds)

    def _pop(self, seconds: float) -> None:
        """Forget the first cooldown in the queue of ``seconds``-long ones."""
        queue = self._ending[seconds]
        ready_at, key = queue.popleft()
        self._queued -= 1
        if self._ready_at.get(key) == ready_at:
            del self._ready_at[key]
        if not queue:
            del self._ending[seconds]


class Dispatcher:
    """Runs chat messages through the command table.

    ``owners`` are logins treated as the broadcaster in every channel; moderators
    and up bypass cooldowns. ``table`` may be replaced (reload) at any time.
    ``moderation`` holds the spam filters (none by default): the transport asks it
    about every message before commands; ``!permit`` and reloads change it.
    """

    def __init__(
        self,
        table: CommandTable,
        prefix: str = "!",
        owners: Iterable[str] = (),
        cooldowns: Cooldowns | None = None,
        moderation: Moderation | None = None,
    ):
        self.table = table
        self.prefix = prefix
        self.owners = frozenset(owners)
        self.cooldowns = Cooldowns() if cooldowns is None else cooldowns  # an empty one is falsy
        self.moderation = Moderation(owners=self.owners) if moderation is None else moderation  # also falsy empty

    def is_command(self, text: str) -> bool:
        """Cheap pre-check before a message is parsed: does it start with the prefix?"""
        return text.startswith(self.prefix)

    def handle(self, message: ChatMessage, chat: Chat) -> str | None:
        """The reply to ``message``, or None (not a command, unknown, refused, failed)."""
        parsed = split_command(message.text, self.prefix)
        if parsed is None:
            return None
        name, args = parsed
        entry = self.table.find(name)
        if entry is None:
            log.debug("unknown command %r in %s", name, message.channel)
            return None
        role = Role.BROADCASTER if message.login in self.owners else message.role
        if role < entry.role:
            log.debug("%s may not use %r in %s", message.login, name, message.channel)
            return None
        if role < Role.MODERATOR and not self.cooldowns.try_use(entry, message.channel, message.login):
            log.debug("%r is cooling down in %s", name, message.channel)
            return None
        context = Context(message, args, role, entry, self.table, chat, self.prefix, self.moderation)
        try:
            return entry.handler(context)
        except Exception:
            log.exception("command %r failed on %r in %s", name, message.text, message.channel)
            return None
