"""Chat messages and chatter roles: parsed once, at the boundary, into immutable records."""

from __future__ import annotations

import enum
import re
import types
from collections.abc import Iterable, Mapping
from typing import NamedTuple


class Role(enum.IntEnum):
    """A chatter's standing in one channel; a higher value may do everything a lower one may.

    Source: Twitch docs, "IRC Concepts" > tags (badges, mod, vip, subscriber).
    """

    EVERYONE = 0
    SUBSCRIBER = 1
    VIP = 2
    MODERATOR = 3
    BROADCASTER = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        """``'moderator'`` → Role.MODERATOR; raises ValueError for an unknown name."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            names = ", ".join(role.name.lower() for role in cls)
            raise ValueError(f"unknown role {name!r}; use one of {names}") from None

    @property
    def label(self) -> str:
        """The user-facing name, e.g. ``'moderator'``."""
        return self.name.lower()


def tags_to_dict(tags: Iterable[Mapping[str, str | None]] | None) -> dict[str, str]:
    """Convert the ``irc`` library's tag list to a dict; empty values become ``''``.

    >>> tags_to_dict([{'key': 'mod', 'value': '1'}, {'key': 'badges', 'value': None}])
    {'mod': '1', 'badges': ''}
    >>> tags_to_dict(None)
    {}
    """
    return {tag["key"] or "": tag["value"] or "" for tag in tags or ()}


def parse_badges(value: str) -> dict[str, str]:
    """``'broadcaster/1,subscriber/12'`` → ``{'broadcaster': '1', 'subscriber': '12'}``.

    Source: Twitch docs, "IRC Concepts" > PRIVMSG tags, ``badges``.
    """
    badges = {}
    for badge in value.split(","):
        name, _, version = badge.partition("/")
        if name:
            badges[name] = version
    return badges


def role_from_tags(tags: Mapping[str, str], login: str, channel: str) -> Role:
    """The chatter's role from Twitch PRIVMSG/USERSTATE tags (``tags_to_dict`` output).

    ``login`` is the lowercase login, ``channel`` has its ``#``. The broadcaster is
    recognised by the ``broadcaster`` badge, by ``user-id == room-id``, or by login
    equal to the channel name (their own messages carry ``mod=0``).
    """
    badges = parse_badges(tags.get("badges", ""))
    user_id = tags.get("user-id")
    if "broadcaster" in badges or login == channel.lstrip("#") or (user_id and user_id == tags.get("room-id")):
        return Role.BROADCASTER
    if tags.get("mod") == "1" or "moderator" in badges:
        return Role.MODERATOR
    if tags.get("vip") == "1" or "vip" in badges:
        return Role.VIP
    if tags.get("subscriber") == "1" or "subscriber" in badges or "founder" in badges:
        return Role.SUBSCRIBER
    return Role.EVERYONE


USER_ID = re.compile(r"[0-9]{1,20}")
"""A Twitch user ID as the tags (``user-id``, ``room-id``) and Helix give it: decimal digits."""
NO_TAGS: Mapping[str, str] = types.MappingProxyType({})
"""The tags of a message that has none (plain IRC, the console): empty and read-only."""


class ChatText(NamedTuple):
    """A chat message's text and tags alone, before its sender is looked at: what the spam
    filters read (``vbot.filters``), and all that a clean chat line is made into while they are on."""

    text: str
    tags: Mapping[str, str]


class ChatMessage(NamedTuple):
    """One chat line in a channel, as vbot's commands see it.

    ``channel`` is lowercase with ``#``; ``login`` is the lowercase login from the
    IRC prefix; ``display_name`` falls back to the login when the tag is empty;
    ``tags`` holds the Twitch tags (empty on plain IRC).
    """

    channel: str
    login: str
    text: str
    role: Role = Role.EVERYONE
    display_name: str = ""
    tags: Mapping[str, str] = NO_TAGS

    @property
    def name(self) -> str:
        """The name to address the chatter by: display name, else login."""
        return self.display_name or self.login


def split_command(text: str, prefix: str) -> tuple[str, str] | None:
    """Split ``'!Hug  alice bob'`` into ``('hug', 'alice bob')``; None when not a command.

    A bare prefix, or a prefix followed by a space, is not a command.

    >>> split_command('!Version', '!')
    ('version', '')
    >>> split_command('!hug  alice bob', '!')
    ('hug', 'alice bob')
    >>> split_command('!', '!') is None
    True
    >>> split_command('hello', '!') is None
    True
    """
    if not text.startswith(prefix):
        return None
    word, _, rest = text[len(prefix) :].partition(" ")
    if not word:
        return None
    return word.lower(), rest.strip()
