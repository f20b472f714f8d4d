"""The ``[filters]`` table of the custom commands file -> ``vbot.filters.FilterSettings``.

```toml
[filters]
mode = "act"                 # or "log": say what would be done, do nothing
exempt = ["vip"]             # roles exempt besides the broadcaster and moderators
penalties = ["delete", "timeout 10", "timeout 600"]  # by offence number
forget_after = 3600          # seconds after a chatter's last offence
warn = true                  # a short reply naming the rule, at most one per 30 s per channel

[filters.links]              # a filter is on when its table exists
allow = ["twitch.tv"]
permit_seconds = 60
[filters.caps]
max_percent = 70
min_letters = 20
[filters.symbols]
max_percent = 50
min_length = 20
[filters.repeat]
max_run = 15
[filters.emotes]
max = 10
[filters.length]
max = 325
[filters.terms]
block = ["badword", "free followers*"]
```

A filter is on when its table exists. ``parse_filters`` raises FilterSettingError naming
the table and the key, which ``vbot.custom`` turns into the file's one-line error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import cast

from vbot.chat import Role
from vbot.filters import (
    DEFAULT_PENALTIES,
    FILTER_TYPES,
    Filter,
    FilterSettings,
    Length,
    Links,
    Penalty,
    Repeat,
    Terms,
    is_label,
    term_words,
)


class FilterSettingError(ValueError):
    """A key of the ``[filters]`` table is wrong: ``table`` (e.g. ``filters.caps``), ``field``
    (the key, or None for the table itself) and ``problem`` (what is wrong and the fix)."""

    def __init__(self, problem: str, table: str = "filters", field: str | None = None):
        super().__init__(problem)
        self.problem, self.table, self.field = problem, table, field


KEYS = ("mode", "exempt", "penalties", "forget_after", "warn")
"""The keys of ``[filters]`` itself; its tables are the filters, by name."""
MODES = ("act", "log")


def parse_filters(table: Mapping[str, object]) -> FilterSettings:
    """The settings described by the ``filters`` table of a parsed TOML document; raises
    FilterSettingError for the first wrong key."""
    by_name = {kind.name: kind for kind in FILTER_TYPES}
    tables: dict[str, Mapping[str, object]] = {}
    for key, value in table.items():
        if key in by_name and not isinstance(value, dict):
            raise FilterSettingError(f"must be a table: write [filters.{key}] on its own line", "filters", key)
        if key in by_name and isinstance(value, dict):
            tables[key] = value
        elif key not in KEYS:
            raise FilterSettingError(
                f"unknown key; [filters] may have {', '.join(KEYS)} and the tables {', '.join(by_name)}",
                "filters",
                key,
            )
    mode = table.get("mode", FilterSettings.mode)
    if not isinstance(mode, str) or mode not in MODES:
        raise FilterSettingError('must be "act" or "log", e.g. mode = "log" to try the filters out', "filters", "mode")
    forget_after = _whole(table, "forget_after", FilterSettings.forget_after, "filters", low=1)
    warn = table.get("warn", FilterSettings.warn)
    if not isinstance(warn, bool):
        raise FilterSettingError("must be true or false, e.g. warn = true", "filters", "warn")
    return FilterSettings(
        filters=tuple(_parse_filter(kind, tables[kind.name]) for kind in FILTER_TYPES if kind.name in tables),
        mode=mode,
        exempt=_exempt(table.get("exempt", [])),
        penalties=_penalties(table.get("penalties")),
        forget_after=forget_after,
        warn=warn,
    )


def _exempt(value: object) -> Role:
    example = 'e.g. exempt = ["vip"]; the broadcaster and moderators always are'
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        raise FilterSettingError(f"must be a list of roles, {example}", "filters", "exempt")
    lowest = Role.MODERATOR
    for name in value:
        try:
            role = Role.parse(name)
        except ValueError as error:
            raise FilterSettingError(str(error), "filters", "exempt") from None
        if role == Role.EVERYONE:
            raise FilterSettingError(
                "'everyone' would turn every filter off: list roles such as subscriber or vip, "
                "or remove the [filters] table",
                "filters",
                "exempt",
            )
        lowest = min(lowest, role)
    return lowest


def _penalties(value: object) -> tuple[Penalty, ...]:
    if value is None:
        return DEFAULT_PENALTIES
    example = 'e.g. penalties = ["delete", "timeout 10", "timeout 600"]'
    if not isinstance(value, list) or not value or not all(isinstance(entry, str) for entry in value):
        raise FilterSettingError(f"must be a non-empty list of penalties, {example}", "filters", "penalties")
    try:
        return tuple(Penalty.parse(entry) for entry in value)
    except ValueError as error:
        raise FilterSettingError(f"{error}; {example}", "filters", "penalties") from None


def _parse_filter(kind: type[Filter], table: Mapping[str, object]) -> Filter:
    where = f"filters.{kind.name}"
    fields = [field.name for field in dataclasses.fields(kind) if field.init]
    for key in table:
        if key not in fields:
            raise FilterSettingError(f"unknown key; [{where}] may have {', '.join(fields)}", where, key)
    if kind is Links:
        permit_seconds = _whole(table, "permit_seconds", Links.permit_seconds, where, low=1)
        return Links(_domains(table.get("allow", []), where), permit_seconds)
    if kind is Terms:
        return Terms(_terms(table.get("block"), where))
    defaults, make = kind(), cast(Callable[..., Filter], kind)
    values = {}
    for name in fields:
        default = getattr(defaults, name)
        high = 100 if name == "max_percent" else None
        low = 1 if kind in (Repeat, Length) else 0  # a run of 0, a length of 0: every message
        values[name] = _whole(table, name, default, where, low=low, high=high)
    return make(**values)


def _whole(table: Mapping[str, object], key: str, default: int, where: str, low: int, high: int | None = None) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise FilterSettingError(f"must be a whole number {bounds}, e.g. {key} = {default}", where, key)
    return value


def _domains(value: object, where: str) -> tuple[str, ...]:
    example = 'e.g. allow = ["twitch.tv", "youtube.com"]'
    if not isinstance(value, list) or not all(isinstance(entry, str) for entry in value):
        raise FilterSettingError(f"must be a list of domain names, {example}", where, "allow")
    domains = []
    for entry in value:
        domain = entry.strip().lower().rstrip(".")
        if not all(is_label(label) for label in domain.split(".")):
            raise FilterSettingError(
                f"{entry!r} is not a domain name: write only the name, without https:// or a path, {example}",
                where,
                "allow",
            )
        domains.append(domain)
    return tuple(domains)


def _terms(value: object, where: str) -> tuple[str, ...]:
    example = 'e.g. block = ["badword", "free follower*"]'
    if value is None:
        raise FilterSettingError(f"missing: list the words and phrases to block, {example}", where, "block")
    if not isinstance(value, list) or not value or not all(isinstance(entry, str) for entry in value):
        raise FilterSettingError(f"must be a non-empty list of words and phrases, {example}", where, "block")
    for entry in value:
        try:
            term_words(entry)
        except ValueError as error:
            raise FilterSettingError(f"{error}, {example}", where, "block") from None
    return tuple(value)
