"""Custom text commands: one TOML table per command, turned into rows of the command table.

```toml
[hug]
reply = "{user} hugs {args}!"   # required
aliases = ["cuddle"]            # optional
role = "subscriber"             # everyone (default), subscriber, vip, moderator, broadcaster
cooldown = 10                   # seconds per channel, default 3
user_cooldown = 30              # seconds per chatter, default 10
```

A custom command is an ordinary ``Command`` whose handler fills in the reply
template, so prefix, roles, cooldowns and the outbox apply to it exactly as to
a built-in one. The file is validated as a whole: the first problem raises
CommandsFileError naming the file, the command and the field, and nothing is
installed. ``Reloader`` re-reads the file for ``!reload`` and SIGHUP and keeps
the old table when the new file has an error.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from vbot.chat import Role
from vbot.config import ConfigError
from vbot.dispatch import DEFAULT_COOLDOWN, DEFAULT_USER_COOLDOWN, Command, CommandTable, Context, Dispatcher

log = logging.getLogger(__name__)

FIELDS = ("reply", "aliases", "role", "cooldown", "user_cooldown")
"""The keys a command's table may have; anything else is an error (usually a typo)."""
VARIABLES = ("user", "args", "channel", "count", "viewers")
"""The ``{name}``s filled in by a reply; any other ``{...}`` is left as typed."""
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class Counter(Protocol):
    """Where ``{count}`` lives (``vbot.state.CountStore``)."""

    def open(self) -> object:
        """Make sure increments will work; raises ConfigError (StateError) when they cannot."""

    def increment(self, name: str) -> int:
        """Add one to ``name``'s count and return the new count."""


class CommandsFileError(ConfigError):
    """The custom commands file cannot be read or has an invalid entry.

    ``file`` is the path, ``command`` the table name and ``field`` the key at
    fault (either may be None), ``problem`` says what is wrong and how to fix it.
    ``str(error)`` is ``"<file>: [<command>] <field>: <problem>"``.
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
        return f"{where}: {self.problem}"


def render(template: str, values: Mapping[str, Callable[[], object]]) -> str:
    """Replace each ``{name}`` of ``template`` that is in ``values`` by ``str(values[name]())``.

    Each value is computed at most once, and only when used. Unknown names stay
    as typed, and substituted text is never scanned again, so braces coming
    from chat cannot inject anything.

    >>> render("{user} hugs {args} {nope}", {"user": lambda: "Ann", "args": lambda: "{user}"})
    'Ann hugs {user} {nope}'
    """
    cache: dict[str, str] = {}

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        if name not in cache:
            cache[name] = str(values[name]())
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

    def __call__(self, ctx: Context) -> str:
        return render(self.template, {
            "user": lambda: ctx.message.name,
            "args": lambda: ctx.args,
            "channel": lambda: ctx.message.channel.lstrip("#"),
            "count": lambda: self.counter.increment(self.name),
            "viewers": lambda: ctx.host.viewer_count(ctx.message.channel),
        })


def parse_commands(data: Mapping[str, object], file: str | Path, builtins: CommandTable,
                   counter: Counter) -> list[Command]:
    """The custom commands described by ``data`` (a parsed TOML document), in file order.

    Names and aliases are lowercased. Raises CommandsFileError for the first
    invalid entry, or for a name or alias already used by a built-in command in
    ``builtins`` or by another custom command.
    """
    commands: list[Command] = []
    used: dict[str, str] = {}  # name or alias -> the custom command's table name
    for key, entry in data.items():
        def fail(problem: str, field: str | None = None, command: str = key):
            return CommandsFileError(file, problem, command, field)

        if not isinstance(entry, dict):
            raise fail(f'must be a table: write [{key}] on its own line, then reply = "..." under it')
        unknown = [field for field in entry if field not in FIELDS]
        if unknown:
            raise fail(f"unknown field; a command may have {', '.join(FIELDS)}", unknown[0])
        name = _command_name(key, fail, None)
        reply = entry.get("reply")
        if reply is None:
            raise fail('missing: every command needs reply = "the text to send"', "reply")
        if not isinstance(reply, str) or not reply.strip():
            raise fail('must be a non-empty string, e.g. reply = "Hello {user}!"', "reply")
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
            raise fail('must be a list of strings, e.g. aliases = ["dc"]', "aliases")
        aliases = tuple(_command_name(alias, fail, "aliases") for alias in aliases)
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
            if used_name in builtins:
                owner = builtins.find(used_name).name
                what = "the built-in command" if owner == used_name else f"an alias of the built-in command {owner!r}"
                raise fail(f"{used_name!r} is {what}; choose another name", field)
            if used_name in used:
                raise fail(f"{used_name!r} is already used by [{used[used_name]}]; choose another name", field)
            used[used_name] = key
        handler = TextReply(name, reply, counter)
        commands.append(Command(name, handler, aliases, "custom command", role, cooldown, user_cooldown))
    return commands


def _command_name(value: str, fail, field: str | None) -> str:
    name = value.strip().lower()
    if not name or not name.isprintable() or any(char.isspace() for char in name):
        raise fail(f"{value!r} cannot be typed as a command: use one word without spaces", field)
    return name


def _seconds(entry: Mapping[str, object], field: str, default: float, fail) -> float:
    value = entry.get(field, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise fail(f"must be a number of seconds, 0 or more, e.g. {field} = 10", field)
    return float(value)


def read_commands(path: Path, required: bool, builtins: CommandTable, counter: Counter) -> list[Command]:
    """The custom commands in the TOML file at ``path``; ``[]`` when it does not exist and is not ``required``.

    Opens ``counter`` when a reply uses ``{count}``. Raises CommandsFileError
    (missing required file, unreadable, not UTF-8, invalid TOML, invalid
    entry) or the counter's StateError.
    """
    if not path.exists() and not required:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CommandsFileError(path, "no such file (VBOT_COMMANDS_FILE); create it (commands.example.toml "
                                      "shows the format) or unset VBOT_COMMANDS_FILE") from None
    except UnicodeDecodeError:
        raise CommandsFileError(path, "not UTF-8 text; save the file as UTF-8") from None
    except OSError as error:
        raise CommandsFileError(path, f"cannot read it: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise CommandsFileError(path, f"invalid TOML: {error}") from None
    commands = parse_commands(data, path, builtins, counter)
    if any(entry.handler.uses_count for entry in commands):
        counter.open()
    return commands


def load_table(path: Path, required: bool, builtins: CommandTable, counter: Counter) -> CommandTable:
    """The built-in commands followed by the custom ones from ``path``; raises as ``read_commands``."""
    commands = read_commands(path, required, builtins, counter)
    if path.exists():
        log.info("loaded %d custom command(s) from %s", len(commands), path)
    return CommandTable([*builtins, *commands])


class Reloader:
    """Re-reads the custom commands file into ``dispatcher.table``: ``reloader() -> str``.

    The returned line is the reply to ``!reload``. On any error the old table
    stays in place, and the error is logged (with the full path) and returned
    (with only the file name).
    """

    def __init__(self, dispatcher: Dispatcher, builtins: CommandTable, path: Path, required: bool, counter: Counter):
        self.dispatcher = dispatcher
        self.builtins = builtins
        self.path = path
        self.required = required
        self.counter = counter

    def __call__(self) -> str:
        try:
            commands = read_commands(self.path, self.required, self.builtins, self.counter)
        except ConfigError as error:
            log.warning("reload failed, keeping the old commands: %s", error)
            reason = error.describe(self.path.name) if isinstance(error, CommandsFileError) else str(error)
            return f"Reload failed, kept the old commands: {reason}"
        self.dispatcher.table = CommandTable([*self.builtins, *commands])
        if not commands and not self.path.exists():
            log.info("reloaded: no %s, built-in commands only", self.path)
            return f"Reloaded: no {self.path.name}, built-in commands only."
        log.info("reloaded %d custom command(s) from %s", len(commands), self.path)
        return f"Reloaded {len(commands)} custom command{'' if len(commands) == 1 else 's'}."
