"""Custom text commands and timers: one TOML file, turned into command table rows and timers.

```toml
[hug]
reply = "{user} hugs {target}!"  # required
aliases = ["cuddle"]            # optional
role = "subscriber"             # everyone (default), subscriber, vip, moderator, broadcaster
cooldown = 10                   # seconds per channel, default 3
user_cooldown = 30              # seconds per chatter, default 10

[timers.hydrate]                # the top-level key "timers" holds timers, never a command
message = "Drink some water!"   # or messages = ["...", "..."], posted in turn
interval = 900                  # seconds (15 minutes), at least 60
min_lines = 5                   # chat lines from others since the last post, default 5
channels = ["mychannel"]        # default: every joined channel
live_only = true                # post only while the stream is live (default false)

[filters.links]                 # the top-level key "filters" holds the spam filters (vbot.filters)
allow = ["twitch.tv"]
```

A custom command is an ordinary ``Command`` whose handler fills in the reply
template, so prefix, roles, cooldowns and the outbox apply to it exactly as to
a built-in one; a timer is a ``vbot.timers.Timer``. The file is read once and
validated as a whole: the first problem raises CommandsFileError naming the
file, the table and the field, and nothing is installed. ``Reloader`` re-reads
the file for ``!reload`` and SIGHUP and swaps commands, timers and filters
together, or keeps all three when the new file has an error; at most once per
RELOAD_INTERVAL, whoever asks (a SIGHUP inside it is kept for its end; ``!reload`` is refused, and
answered once).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import re
import time
import types
from collections.abc import Callable, Container, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from vbot.chat import Role
from vbot.config import ConfigError, NotAFile, read_regular_file
from vbot.dispatch import DEFAULT_COOLDOWN, DEFAULT_USER_COOLDOWN, Chat, Command, CommandTable, Context, Dispatcher
from vbot.facts import NOT_AVAILABLE, STREAM, Known, Subject, needs_of
from vbot.outbox import visible
from vbot.state import StateError
from vbot.timers import DEFAULT_MIN_LINES, MAX_INTERVAL, MIN_INTERVAL, Timer

if TYPE_CHECKING:
    from vbot.filters import FilterSettings

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
"""A custom commands file larger than this (1 MiB) is refused."""
RELOAD_INTERVAL = 5.0
"""Seconds from the end of one reload before the next may start, whoever asks (``!reload`` from
any role, SIGHUP): a reload blocks the event loop while it reads the file (a second or two for a
1 MiB file), so a burst of them must not keep the bot from answering Twitch's PING."""

FIELDS = ("reply", "aliases", "role", "cooldown", "user_cooldown")
"""The keys a command's table may have; anything else is an error (usually a typo)."""
MAX_MIN_LINES = 100_000
"""A timer waiting for more chat lines than this would never post: refused as a typo."""
TIMERS_KEY = "timers"
"""The top-level key whose tables are timers; no command may be called this."""
FILTERS_KEY = "filters"
"""The top-level key whose tables are the spam filters (``vbot.filters``); no command may be called this."""
FILTERS_RESERVED = (
    f"{FILTERS_KEY!r} is reserved for the spam filters: write [{FILTERS_KEY}] and [{FILTERS_KEY}.<name>] tables "
    f"(docs/filters.md); a command cannot be called {FILTERS_KEY!r}, choose another name"
)
TIMER_FIELDS = ("message", "messages", "interval", "min_lines", "channels", "live_only")
"""The keys a timer's table may have."""
_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")
_CHANNEL = re.compile(r"[a-z0-9_]{1,25}")


class Counter(Protocol):
    """Where ``{count}`` lives (``vbot.state.CountStore``)."""

    def open(self) -> object:
        """Make sure increments will work; raises ConfigError (StateError) when they cannot."""

    def increment(self, name: str) -> int:
        """Add one to ``name``'s count and return the new count."""


class CommandsFileError(ConfigError):
    """The custom commands file cannot be read or has an invalid entry.

    ``file`` is the path, ``command`` the table name (``timers.<name>`` for a
    timer) and ``field`` the key at fault (either may be None), ``problem`` says
    what is wrong and how to fix it. ``str(error)`` is
    ``"<file>: [<command>] <field>: <problem>"``.
    """

    def __init__(self, file: str | Path, problem: str, command: str | None = None, field: str | None = None):
        self.file, self.problem, self.command, self.field = str(file), problem, command, field
        super().__init__(self.describe(self.file))

    def describe(self, file_label: str) -> str:
        """The message with ``file_label`` in place of the path (e.g. only the file name, for chat)."""
        where = file_label
        if self.command is not None:
            where += f": [{self.command}]"
            if self.field is not None:
                where += f" {self.field}"
        text = f"{where}: {self.problem}"
        return text if text.isprintable() else repr(text)[1:-1]  # one line, whatever the names hold

    def brief(self) -> str:
        """The message naming only the file's base name, for chat."""
        return self.describe(Path(self.file).name)


# --- template variables ----------------------------------------------------------------------------


class Scope(NamedTuple):
    """What a template's variables are computed from.

    ``channel`` has its ``#``; ``next_count()`` adds one to the count and returns it;
    ``name`` (the sender's display name) and ``args`` (the text after the
    command) are empty for a timer; ``known`` holds the stream facts (vbot.facts).
    """

    channel: str
    chat: Chat
    next_count: Callable[[], int]
    name: str = ""
    args: str = ""
    known: Known = Known()


def _word(number: int) -> Callable[[Scope], str]:
    def word(scope: Scope) -> str:
        words = scope.args.split()
        return words[number - 1] if len(words) >= number else ""

    return word


def _target_word(args: str) -> str:
    """The first word of ``args`` as a name: what of it shows (``visible``), without a leading ``@``;
    ``''`` when there is none, or when it looks blank."""
    words = args.split(maxsplit=1)
    return visible(words[0]).removeprefix("@") if words else ""


def _target(scope: Scope) -> str:
    return _target_word(scope.args) or scope.name


def _count(scope: Scope) -> object:
    """``{count}``: the next count; NOT_AVAILABLE, with one WARNING, when the state file cannot take it
    (another process holding its lock, a full disk): the reply still goes out, saying so."""
    try:
        return scope.next_count()
    except StateError as error:
        log.warning("{count} not counted: %s; the reply shows %s", error, NOT_AVAILABLE)
        return NOT_AVAILABLE


VARIABLES: Mapping[str, Callable[[Scope], object]] = types.MappingProxyType(
    {
        "user": lambda scope: scope.name,
        "target": _target,
        "args": lambda scope: scope.args,
        **{str(number): _word(number) for number in range(1, 10)},
        "channel": lambda scope: scope.channel.lstrip("#"),
        "count": lambda scope: _count(scope),
        "viewers": lambda scope: scope.chat.viewer_count(scope.channel),
        "live_viewers": lambda scope: scope.known.live_viewers(),
        "uptime": lambda scope: scope.known.uptime(),
        "game": lambda scope: scope.known.game(),
        "title": lambda scope: scope.known.title(),
        "followers": lambda scope: scope.known.followers_total(),
        "followage": lambda scope: scope.known.followage(),
    }
)
"""Every ``{name}`` a template may use, and how ``render`` computes it; any other
``{...}`` is left as typed. README's variables table lists the same names."""
TIMER_VARIABLES = ("channel", "viewers", "count", "live_viewers", "uptime", "game", "title", "followers")
"""The variables a timer message may use; the others need a chatter's command."""


def template_needs(template: str) -> frozenset[str]:
    """The stream facts ``template`` needs (vbot.facts: ``STREAM``, ``CHANNEL``, ...).

    >>> sorted(template_needs("{user}: live {uptime} with {live_viewers}, in {game}"))
    ['channel', 'stream']
    """
    return needs_of(_PLACEHOLDER.findall(template))


def render(template: str, scope: Scope, names: Container[str] = VARIABLES) -> str:
    """Replace each ``{name}`` of ``template`` that is in ``names`` by ``str(VARIABLES[name](scope))``.

    Each value is computed at most once, and only when used (``{count}``
    increments once per reply). Unknown names stay as typed, and substituted
    text is never scanned again, so braces coming from chat cannot inject anything.

    >>> scope = Scope("#chan", None, lambda: 1, "Ann", "@Bob {user} x")
    >>> render("{user} hugs {target}: {args} [{3}] [{4}] {nope}", scope)
    'Ann hugs Bob: @Bob {user} x [x] [] {nope}'
    >>> render("{user} in {channel}", scope, TIMER_VARIABLES)
    '{user} in chan'
    """
    cache: dict[str, str] = {}

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in names:
            return match.group(0)
        if name not in cache:
            cache[name] = str(VARIABLES[name](scope))
        return cache[name]

    return _PLACEHOLDER.sub(substitute, template)


@dataclasses.dataclass(frozen=True)
class TextReply:
    """The handler of one custom command: ``reply(ctx) -> str``, the template filled in.

    ``{count}`` adds one to ``counter``'s count for ``name`` each time the
    reply is made; replies without ``{count}`` never touch the counter.
    """

    name: str
    template: str
    counter: Counter = dataclasses.field(repr=False, compare=False)

    @property
    def uses_count(self) -> bool:
        """True when the template contains ``{count}``."""
        return "{count}" in self.template

    @functools.cached_property
    def needs(self) -> frozenset[str]:
        """The stream facts the template needs (``template_needs``)."""
        return template_needs(self.template)

    def __call__(self, ctx: Context) -> str | None:
        """The reply; None when it waits for stream facts (``Chat.facts`` sends it then)."""
        message = ctx.message

        def count() -> int:
            return self.counter.increment(self.name)

        def fill(known: Known) -> str:
            return render(self.template, Scope(message.channel, ctx.chat, count, message.name, ctx.args, known))

        if not self.needs:
            return fill(Known())
        target = _target_word(ctx.args).lower()  # whom {target} names: the sender when blank
        subject = Subject(target) if target else Subject(message.login, message.tags.get("user-id", ""))
        return ctx.chat.facts.answer(message.channel, self.needs, fill, subject)


@dataclasses.dataclass(frozen=True)
class TimerText:
    """A timer's ``fill(message, channel, chat) -> str``: the variables of TIMER_VARIABLES
    filled in, stream facts as known now; the count is kept as ``"timer <name>"`` (no command
    name has a space)."""

    name: str
    counter: Counter = dataclasses.field(repr=False, compare=False)

    def __call__(self, message: str, channel: str, chat: Chat) -> str:
        needs = template_needs(message)
        known = chat.facts.known(channel, needs) if needs else Known()
        scope = Scope(channel, chat, lambda: self.counter.increment(f"timer {self.name}"), known=known)
        return render(message, scope, TIMER_VARIABLES)


# --- parsing ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class CustomFile:
    """What one read of the custom commands file gave: commands and timers, in file order, and
    the spam filters' settings (None without a ``[filters]`` table)."""

    commands: tuple[Command, ...] = ()
    timers: tuple[Timer, ...] = ()
    filters: FilterSettings | None = None

    def table(self, builtins: CommandTable) -> CommandTable:
        """The built-in commands followed by these."""
        return CommandTable([*builtins, *self.commands])

    @property
    def filters_on(self) -> str:
        """The spam filters on, e.g. ``"links, caps"`` (``FilterSettings.summary``); ``"none"``
        without a ``[filters]`` table."""
        return "none" if self.filters is None else self.filters.summary()

    def summary(self, path: Path) -> str:
        """What was loaded from ``path``, for the log: ``"2 custom command(s) and 1 timer(s) from
        commands.toml; filters: links, caps"``, or ``"...; filters: none"``, so that a reload
        that removed ``[filters]`` says they are off."""
        return (
            f"{len(self.commands)} custom command(s) and {len(self.timers)} timer(s) from {path}; "
            f"filters: {self.filters_on}"
        )


def close_variables(loaded: CustomFile, file: str | Path) -> list[str]:
    """One line for each ``{name}`` in the replies and timer messages of ``loaded`` that is no
    variable but close to one (``difflib``, as ``vbot.config.unknown_settings`` does for
    VBOT_* names), naming the tables that use it: it is sent as typed, so a typo would reach
    chat. Names far from every variable are left alone (sent as typed, as documented).

    >>> reply = TextReply("fa", "{user}: {followag} {Game} {xyz} {10}", None)
    >>> for line in close_variables(CustomFile((Command("fa", reply),)), "commands.toml"):
    ...     print(line)
    commands.toml: [fa] {followag} is not a variable and is sent as typed; did you mean {followage}?
    commands.toml: [fa] {Game} is not a variable and is sent as typed; did you mean {game}?
    """
    texts = [
        (f"[{entry.name}]", entry.handler.template) for entry in loaded.commands if isinstance(entry.handler, TextReply)
    ]
    texts += [(f"[{TIMERS_KEY}.{timer.name}]", message) for timer in loaded.timers for message in timer.messages]
    names = [name for name in VARIABLES if not name.isdigit()]
    tables: dict[str, list[str]] = {}  # unknown name -> the tables using it, in file order
    for table, text in texts:
        for name in re.findall(r"\{([A-Za-z_0-9]+)\}", text):
            if name not in VARIABLES and table not in tables.setdefault(name, []):
                tables[name].append(table)
    if not tables:
        return []
    import difflib  # here: only a file with an unknown {name} needs it (a few ms saved at start)

    lines = []
    for name, used in tables.items():
        close = [name.lower()] if name.lower() in VARIABLES else difflib.get_close_matches(name.lower(), names, n=1)
        if close and not name.isdigit():  # {10}: no hint of {1}
            hint = f"did you mean {{{close[0]}}}?"
            lines.append(f"{file}: {', '.join(used)} {{{name}}} is not a variable and is sent as typed; {hint}")
    return lines


def file_needs(commands: Iterable[Command], timers: Iterable[Timer]) -> frozenset[str]:
    """The stream facts the custom ``commands`` and ``timers`` need (vbot.facts), e.g. to know
    the token scopes to ask for and to warn about."""
    needs = [entry.handler.needs for entry in commands if isinstance(entry.handler, TextReply)]
    return frozenset().union(*needs, *(timer.needs for timer in timers))


def parse_file(
    data: Mapping[str, object], file: str | Path, builtins: CommandTable, counter: Counter, prefix: str = "!"
) -> CustomFile:
    """The commands, timers and filters described by ``data`` (a parsed TOML document).

    Every top-level table is a command, except ``timers``, whose tables are
    timers, and ``filters``, the spam filters. ``prefix`` is VBOT_PREFIX. Raises
    CommandsFileError for the first invalid entry.
    """
    timers = data.get(TIMERS_KEY, {})
    if not isinstance(timers, dict) or not all(isinstance(entry, dict) for entry in timers.values()):
        raise CommandsFileError(file, _reserved_problem(), TIMERS_KEY)
    filters = None
    if FILTERS_KEY in data:
        table = data[FILTERS_KEY]
        if not isinstance(table, dict):
            raise CommandsFileError(file, FILTERS_RESERVED, FILTERS_KEY)
        filters = _parse_filters(table, file)
    commands = {key: entry for key, entry in data.items() if key not in (TIMERS_KEY, FILTERS_KEY)}
    return CustomFile(
        tuple(parse_commands(commands, file, builtins, counter, prefix)),
        tuple(parse_timers(timers, file, counter)),
        filters,
    )


def _parse_filters(table: Mapping[str, object], file: str | Path) -> FilterSettings:
    """``vbot.filtertable.parse_filters``, imported only for a file with filters (start-up time)."""
    from vbot.filtertable import FilterSettingError, parse_filters

    try:
        return parse_filters(table)
    except FilterSettingError as error:
        raise CommandsFileError(file, error.problem, error.table, error.field) from None


def _reserved_problem() -> str:
    return (
        f"{TIMERS_KEY!r} is reserved for timers: write each timer as [{TIMERS_KEY}.<name>] "
        f"with message and interval; a command cannot be called {TIMERS_KEY!r}, choose another name"
    )


def parse_commands(
    data: Mapping[str, object], file: str | Path, builtins: CommandTable, counter: Counter, prefix: str = "!"
) -> list[Command]:
    """The custom commands described by ``data`` (top-level tables other than ``timers`` and
    ``filters``), in file order.

    Names and aliases are lowercased. Raises CommandsFileError for the first
    invalid entry, for the names ``timers`` and ``filters`` in any case, for a name or alias
    written with ``prefix`` (VBOT_PREFIX: ``["!so"]`` would be typed ``!!so``), or for a name
    or alias already used by a built-in command in ``builtins`` or by another custom command.
    """
    commands: list[Command] = []
    used: dict[str, str] = {}  # name or alias -> the custom command's table name
    for key, entry in data.items():

        def fail(problem: str, field: str | None = None, command: str = key):
            return CommandsFileError(file, problem, command, field)

        if not isinstance(entry, dict):
            raise fail(f'must be a table: write [{key}] on its own line, then reply = "..." under it')
        name = _command_name(key, fail, None, prefix)
        if name == TIMERS_KEY:
            raise fail(_reserved_problem())
        if name == FILTERS_KEY:
            raise fail(FILTERS_RESERVED)
        unknown = [field for field in entry if field not in FIELDS]
        if unknown:
            raise fail(f"unknown field; a command may have {', '.join(FIELDS)}", unknown[0])
        reply = entry.get("reply")
        if reply is None:
            raise fail('missing: every command needs reply = "the text to send"', "reply")
        if not isinstance(reply, str) or not reply.strip():
            raise fail('must be a non-empty string, e.g. reply = "Hello {user}!"', "reply")
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            raise fail('must be a list of strings, e.g. aliases = ["dc"]', "aliases")
        aliases = tuple(_command_name(alias, fail, "aliases", prefix) for alias in aliases)
        role = entry.get("role", Role.EVERYONE.label)
        if not isinstance(role, str):
            raise fail('must be a string, e.g. role = "moderator"', "role")
        try:
            role = Role.parse(role)
        except ValueError as error:
            raise fail(str(error), "role") from None
        cooldown = _seconds(entry, "cooldown", DEFAULT_COOLDOWN, fail)
        user_cooldown = _seconds(entry, "user_cooldown", DEFAULT_USER_COOLDOWN, fail)

        for index, used_name in enumerate((name, *aliases)):
            field = None if index == 0 else "aliases"
            found = builtins.find(used_name)
            if found is not None:
                what = "a built-in command" if found.name == used_name else f"an alias of the built-in {found.name!r}"
                raise fail(f"{used_name!r} is already {what} (vbot/commands.py); choose another name", field)
            if used_name in used:
                raise fail(f"{used_name!r} is already used by [{used[used_name]}]; choose another name", field)
            used[used_name] = key
        handler = TextReply(name, reply, counter)
        commands.append(Command(name, handler, aliases, "custom command", role, cooldown, user_cooldown))
    return commands


def parse_timers(data: Mapping[str, dict], file: str | Path, counter: Counter) -> list[Timer]:
    """The timers described by ``data`` (the ``timers`` table: name -> table), in file order.

    Raises CommandsFileError (naming ``[timers.<name>]``) for the first invalid entry.
    """
    timers = []
    for key, entry in data.items():

        def fail(problem: str, field: str | None = None, table: str = f"{TIMERS_KEY}.{key}"):
            return CommandsFileError(file, problem, table, field)

        if not key.strip() or not key.isprintable():
            raise fail("give the timer a name of printable characters, e.g. [timers.hydrate]")
        unknown = [field for field in entry if field not in TIMER_FIELDS]
        if unknown:
            raise fail(f"unknown field; a timer may have {', '.join(TIMER_FIELDS)}", unknown[0])
        if "message" in entry and "messages" in entry:
            raise fail("give either message or messages, not both", "messages")
        if "messages" in entry:
            messages = entry["messages"]
            if not isinstance(messages, list) or not messages:
                raise fail(
                    'must be a non-empty list of strings, e.g. messages = ["Drink water!", "Stretch!"]', "messages"
                )
            field = "messages"
        elif "message" in entry:
            messages, field = [entry["message"]], "message"
        else:
            raise fail('missing: every timer needs message = "the text to post" (or messages = [...])', "message")
        for message in messages:
            _check_timer_message(message, fail, field)
        interval = entry.get("interval")
        if interval is None:
            raise fail(
                f"missing: every timer needs interval = <seconds>, at least {MIN_INTERVAL:.0f}, "
                "e.g. interval = 900 (15 minutes)",
                "interval",
            )
        if (
            isinstance(interval, bool)
            or not isinstance(interval, (int, float))
            or not MIN_INTERVAL <= interval <= MAX_INTERVAL
        ):
            raise fail(
                f"must be a number of seconds from {MIN_INTERVAL:.0f} to {MAX_INTERVAL:.0f}, "
                "e.g. interval = 900 (15 minutes)",
                "interval",
            )
        min_lines = entry.get("min_lines", DEFAULT_MIN_LINES)
        if isinstance(min_lines, bool) or not isinstance(min_lines, int) or not 0 <= min_lines <= MAX_MIN_LINES:
            raise fail(
                f"must be a whole number of chat lines, 0 or more (at most {MAX_MIN_LINES}), "
                f"e.g. min_lines = {DEFAULT_MIN_LINES}",
                "min_lines",
            )
        channels = _timer_channels(entry.get("channels"), fail)
        live_only = entry.get("live_only", False)
        if not isinstance(live_only, bool):
            raise fail("must be true or false, e.g. live_only = true", "live_only")
        needs = frozenset({STREAM} if live_only else ()).union(*(template_needs(message) for message in messages))
        fill = TimerText(key, counter)
        timers.append(Timer(key, tuple(messages), float(interval), min_lines, channels, fill, live_only, needs))
    return timers


def _check_timer_message(message: object, fail, field: str) -> None:
    if not isinstance(message, str) or not message.strip():
        example = 'messages = ["Drink water!", "Stretch!"]' if field == "messages" else 'message = "Drink water!"'
        raise fail(f"must be a non-empty string, e.g. {example}", field)
    for name in _PLACEHOLDER.findall(message):
        if name in VARIABLES and name not in TIMER_VARIABLES:
            usable = ", ".join(f"{{{variable}}}" for variable in TIMER_VARIABLES)
            raise fail(
                f"{{{name}}} has no value in a timer (no chatter typed a command); a timer may use {usable}", field
            )


def _timer_channels(value: object, fail) -> tuple[str, ...]:
    if value is None:
        return ()
    example = 'e.g. channels = ["mychannel"]; leave it out to post in every joined channel'
    if not isinstance(value, list) or not value or not all(isinstance(channel, str) for channel in value):
        raise fail(f"must be a non-empty list of channel names, {example}", "channels")
    channels = [channel.strip().lower().lstrip("#") for channel in value]
    for channel in channels:
        if not _CHANNEL.fullmatch(channel):
            raise fail(
                f"{channel!r} is not a channel name (letters, digits, underscores; '#' optional), {example}", "channels"
            )
    return tuple(dict.fromkeys("#" + channel for channel in channels))


def _command_name(value: str, fail, field: str | None, prefix: str) -> str:
    name = value.strip().lower()
    if not name or not name.isprintable() or any(char.isspace() for char in name):
        raise fail(f"{value!r} cannot be typed as a command: use one word without spaces", field)
    if name.startswith(prefix.lower()):
        bare = name[len(prefix) :] or "name"
        written = f'"{bare}"' if field else f"[{bare}]"
        raise fail(f"write {written}, without the prefix {prefix}: chat types {prefix}{bare}", field)
    return name


def _seconds(entry: Mapping[str, object], field: str, default: float, fail) -> float:
    value = entry.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise fail(f"must be a number of seconds, 0 or more, e.g. {field} = 10", field)
    return float(value)


# --- reading and reloading -------------------------------------------------------------------------


def read_file(path: Path, required: bool, builtins: CommandTable, counter: Counter, prefix: str = "!") -> CustomFile:
    """The commands and timers in the TOML file at ``path``; empty when it does not exist and
    is not ``required``. ``prefix`` is VBOT_PREFIX (no command name may start with it).

    Opens ``counter`` when a reply or a timer uses ``{count}``. Raises
    CommandsFileError (missing required file, unreadable, larger than MAX_FILE_BYTES,
    not UTF-8, invalid TOML, invalid entry) or the counter's StateError.
    """
    if not path.exists() and not required:
        return CustomFile()
    try:
        raw, _ = read_regular_file(path, MAX_FILE_BYTES)  # a FIFO never blocks the bot, /dev/zero never fills memory
        if len(raw) > MAX_FILE_BYTES:
            raise CommandsFileError(path, f"larger than {MAX_FILE_BYTES // 1024} KiB; is it the right file?")
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise CommandsFileError(
            path,
            "no such file (VBOT_COMMANDS_FILE); create it (commands.example.toml "
            "shows the format) or unset VBOT_COMMANDS_FILE",
        ) from None
    except NotAFile as error:
        raise CommandsFileError(path, f"not a regular file (a {error.kind}); give the path of a TOML file") from None
    except UnicodeDecodeError:
        raise CommandsFileError(path, "not UTF-8 text; save the file as UTF-8") from None
    except OSError as error:
        raise CommandsFileError(path, f"cannot read it: {error.strerror or error}") from None
    import tomllib  # here: only a commands file needs it (a few ms saved at start)

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CommandsFileError(path, f"invalid TOML: {error}") from None
    except RecursionError:
        raise CommandsFileError(path, "invalid TOML: arrays or tables nested too deeply") from None
    loaded = parse_file(data, path, builtins, counter, prefix)
    uses_count = [isinstance(entry.handler, TextReply) and entry.handler.uses_count for entry in loaded.commands]
    uses_count += ["{count}" in message for timer in loaded.timers for message in timer.messages]
    if any(uses_count):
        counter.open()
    return loaded


def load_file(path: Path, required: bool, builtins: CommandTable, counter: Counter, prefix: str = "!") -> CustomFile:
    """``read_file``, and an INFO line saying what was loaded when the file exists, and a WARNING
    for each likely typo of a variable (``close_variables``); raises as ``read_file``."""
    loaded = read_file(path, required, builtins, counter, prefix)
    if path.exists():  # else nothing was loaded, and nothing can be a typo
        _report(loaded, path, "loaded")
    return loaded


def _report(loaded: CustomFile, path: Path, verb: str) -> None:
    """An INFO line saying what was ``verb`` (loaded, reloaded) from ``path``, and a WARNING for each
    likely typo of a variable (``close_variables``)."""
    log.info("%s %s", verb, loaded.summary(path))
    for line in close_variables(loaded, path):
        log.warning("%s", line)


def load_table(path: Path, required: bool, builtins: CommandTable, counter: Counter, prefix: str = "!") -> CommandTable:
    """The built-in commands followed by the custom ones from ``path`` (timers left out); raises as ``read_file``."""
    return load_file(path, required, builtins, counter, prefix).table(builtins)


class Reloader:
    """Re-reads the custom commands file: ``reloader() -> str | None``, the reply to ``!reload``;
    ``request()`` and ``tick()`` for SIGHUP (``vbot.dispatch.Reloads``).

    On success it installs the new commands in ``dispatcher.table``, the new
    filters in ``dispatcher.moderation`` and passes the new timers to ``set_timers``
    (``TimerSchedule.set_timers``) in the same call, so the event loop never sees
    commands, timers or filters from different versions of the file. On any error
    all stay as they were, the error is logged with the full path, and the reply
    names at most the file's base name. The log line names the filters on (``filters: none``
    when there are none); the reply does when there are some, or when a reload turned them off.

    A reload asked less than ``interval`` seconds (RELOAD_INTERVAL) after the last one ended reads
    nothing. ``!reload`` is refused: the first refusal after a reload answers ``Last reload 2 s ago;
    try again in 3 s.`` (one INFO line), later ones until the next reload return None (one DEBUG line
    each), so a crowd of moderators costs chat one line per interval. A ``request()`` (SIGHUP: the
    operator edited the file, and systemd said the reload worked) is remembered instead: ``tick()``
    runs it once the interval has passed, however many came (one INFO line says when). Any reload
    that starts after a request satisfies it. ``clock()`` returns monotonic seconds.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        builtins: CommandTable,
        path: Path,
        required: bool,
        counter: Counter,
        set_timers: Callable[[tuple[Timer, ...]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = RELOAD_INTERVAL,
    ):
        self.dispatcher = dispatcher
        self.builtins = builtins
        self.path = path
        self.required = required
        self.counter = counter
        self.set_timers = set_timers
        self.interval = interval
        self._clock = clock
        self._ended_at = -math.inf  # when the last reload ended
        self._answered = False  # a refusal was answered since the last reload
        self._requested = False  # a request() waits for the interval to pass

    def wait_time(self) -> float:
        """Seconds until a reload may start (0.0: now)."""
        return max(self._ended_at + self.interval - self._clock(), 0.0)

    def __call__(self) -> str | None:
        """``!reload``: the reply, or None for a refusal when one was answered since the last reload."""
        wait = self.wait_time()
        if wait <= 0:
            return self._run()
        then = f"reloading in {math.ceil(wait)} s" if self._requested else f"try again in {math.ceil(wait)} s"
        text = f"Last reload {int(self._clock() - self._ended_at)} s ago; {then}."
        if self._answered:
            log.debug("not reloading, not answering: %s (one answer per %g s)", text, self.interval)
            return None
        self._answered = True
        log.info("not reloading: %s (at most one reload per %g s)", text, self.interval)
        return text

    def request(self) -> None:
        """Reload without a reply (SIGHUP): at the next ``tick()``, or once the interval has passed."""
        wait = self.wait_time()
        if wait > 0:
            level = logging.DEBUG if self._requested else logging.INFO  # the first says when
            log.log(level, "reloading in %d s: at most one reload per %g s", math.ceil(wait), self.interval)
        self._requested = True

    def tick(self) -> float | None:
        """Run a requested reload if the interval has passed; the seconds until it may run, None when
        none is requested."""
        if not self._requested:
            return None
        wait = self.wait_time()
        if wait <= 0:
            self._run()  # its log lines say how it went; SIGHUP has no chat to answer
            return None
        return wait

    def _run(self) -> str:
        self._requested = self._answered = False  # this read sees every edit made before it
        try:
            return self._reload()
        finally:
            self._ended_at = self._clock()

    def _reload(self) -> str:
        try:
            loaded = read_file(self.path, self.required, self.builtins, self.counter, self.dispatcher.prefix)
        except ConfigError as error:
            log.warning("reload failed, keeping the old commands, timers and filters: %s", error)
            reason = error.brief() if isinstance(error, (CommandsFileError, StateError)) else "see the bot's log"
            return f"Reload failed, kept the old commands: {reason}"
        filtered = self.dispatcher.moderation.is_on
        self.dispatcher.table = loaded.table(self.builtins)
        self.dispatcher.moderation.set_filters(loaded.filters)
        if self.set_timers is not None:
            self.set_timers(loaded.timers)
        if not loaded.commands and not loaded.timers and not self.path.exists():
            log.info("reloaded: no %s, built-in commands only; filters: none", self.path)
            off = ", no filters" if filtered else ""
            return f"Reloaded: no {self.path.name}, built-in commands only{off}."
        _report(loaded, self.path, "reloaded")
        parts = [_plural(len(loaded.commands), "custom command")]
        if loaded.timers:
            parts.append(_plural(len(loaded.timers), "timer"))
        if loaded.filters is not None or filtered:  # chat hears that filters went off, too
            parts.append(f"filters: {loaded.filters_on}")
        return f"Reloaded {' and '.join([', '.join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)}."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
