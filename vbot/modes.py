"""Channel membership on any IRC server: who is in a channel, with which status, and the role it gives.

Pure logic, no ``irc`` import. The server's rules come from its ISUPPORT (005) tokens
``PREFIX``, ``CHANMODES`` and ``CASEMAPPING`` (``Isupport``), with the RFC 1459 defaults
when it sends none (Twitch sends no 005 at all). ``Isupport.parse_modes`` turns a
channel MODE line into changes, ``Isupport.split_prefixes`` reads a NAMES (353) entry,
``Members`` keeps one channel's members with their prefix modes, and ``Membership``
keeps every channel the bot is in, fed the server's membership events (JOIN, PART,
KICK, QUIT, NICK, MODE, NAMES), telling its driver when the bot itself joined or left.

Sources:

* RFC 1459 sections 2.2 (case of ``{}|``), 4.2.3.1 (channel modes ``opsitnmlbvk``);
  RFC 2812 section 2.2 (``^`` as the lower case of ``~``).
* The modern IRC client protocol, https://modern.ircdocs.horse: MODE message (mode
  types A, B, C, D), RPL_ISUPPORT parameters ``PREFIX`` (default ``(ov)@+``),
  ``CHANMODES`` and ``CASEMAPPING`` (default ``rfc1459``), RPL_NAMREPLY (353),
  "Channel Membership Prefixes" (founder, protected, operator, halfop, voice).
* IRCv3 ``multi-prefix``: NAMES entries may carry every prefix (``@+nick``), not only
  the highest; ``userhost-in-names``: entries may be ``nick!user@host``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple, Protocol

from vbot.chat import Role

log = logging.getLogger(__name__)

RFC1459_PREFIX = "(ov)@+"
"""``PREFIX`` when a server sends none (modern.ircdocs.horse, RPL_ISUPPORT ``PREFIX``)."""
RFC1459_CHANMODES = "b,k,l,imnpst"
"""RFC 1459 section 4.2.3.1's channel modes by type: ban list; key; limit; the flags."""
MODERATOR_MODES = frozenset("qaoh")
"""Prefix modes that make a chatter a moderator: founder ``q``, protected/admin ``a``,
operator ``o``, halfop ``h`` (see ``role_from_modes`` for why)."""
VIP_MODES = frozenset("v")
"""Prefix modes that make a chatter a VIP: voice ``v`` (see ``role_from_modes`` for why)."""


# --- case mapping ----------------------------------------------------------------

_ASCII_UPPER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_RFC1459_EXTRA = str.maketrans("[]\\~", "{}|^")
_RFC1459_STRICT_EXTRA = str.maketrans("[]\\", "{}|")
_ASCII_TABLE = dict(_ASCII_UPPER)
_RFC1459_TABLE = {**_ASCII_UPPER, **_RFC1459_EXTRA}
_RFC1459_STRICT_TABLE = {**_ASCII_UPPER, **_RFC1459_STRICT_EXTRA}


def fold_rfc1459(name: str) -> str:
    """Lower-case ``name`` by CASEMAPPING ``rfc1459``: ``A-Z`` and ``[]\\~`` as ``a-z`` and ``{}|^``.

    Only ASCII letters change (modern.ircdocs.horse, ``CASEMAPPING``); the common
    all-ASCII name without brackets costs one ``str.lower``.

    >>> fold_rfc1459('Gina[Away]~'), fold_rfc1459('ÉVA')
    ('gina{away}^', 'Éva')
    """
    if name.isascii():
        name = name.lower()
        if "[" in name or "]" in name or "\\" in name or "~" in name:
            return name.translate(_RFC1459_EXTRA)
        return name
    return name.translate(_RFC1459_TABLE)


def fold_rfc1459_strict(name: str) -> str:
    """Lower-case ``name`` by CASEMAPPING ``rfc1459-strict``: like ``rfc1459`` but ``~`` stays.

    >>> fold_rfc1459_strict('Gina[Away]~')
    'gina{away}~'
    """
    if name.isascii():
        name = name.lower()
        if "[" in name or "]" in name or "\\" in name:
            return name.translate(_RFC1459_STRICT_EXTRA)
        return name
    return name.translate(_RFC1459_STRICT_TABLE)


def fold_ascii(name: str) -> str:
    """Lower-case ``name`` by CASEMAPPING ``ascii``: only ``A-Z``.

    >>> fold_ascii('Gina[Away]'), fold_ascii('ÉVA')
    ('gina[away]', 'Éva')
    """
    return name.lower() if name.isascii() else name.translate(_ASCII_TABLE)


def casemapping_fold(casemapping: str) -> Callable[[str], str]:
    """The fold function for a ``CASEMAPPING`` value: ``rfc1459`` (also the default when the
    server sends none), ``rfc1459-strict`` or ``ascii``. Any other value (``rfc7613``,
    ``rfc8265``, a server's own) gets Unicode lower-casing, ``str.lower``: the same as
    ``ascii`` for ASCII names, and the nearest cheap match for the PRECIS mappings.

    >>> casemapping_fold('ascii')('A[B]'), casemapping_fold('rfc1459')('A[B]'), casemapping_fold('rfc8265')('ÉVA')
    ('a[b]', 'a{b}', 'éva')
    """
    folds: dict[str, Callable[[str], str]] = {
        "rfc1459": fold_rfc1459,
        "rfc1459-strict": fold_rfc1459_strict,
        "ascii": fold_ascii,
    }
    return folds.get(casemapping.lower(), str.lower)


# --- ISUPPORT --------------------------------------------------------------------


def parse_prefix(value: str) -> tuple[str, str]:
    """An ISUPPORT ``PREFIX`` value → ``(mode letters, prefix symbols)``, highest rank first.

    An empty value means no prefixes. Raises ValueError when malformed (no
    ``(modes)symbols`` shape, or counts that differ).

    >>> parse_prefix('(qaohv)~&@%+')
    ('qaohv', '~&@%+')
    >>> parse_prefix('')
    ('', '')
    """
    if not value:
        return "", ""
    modes, close, symbols = value.partition(")")
    if not modes.startswith("(") or not close or len(modes) - 1 != len(symbols):
        raise ValueError(f"malformed PREFIX {value!r}")
    return modes[1:], symbols


def parse_chanmodes(value: str) -> tuple[str, str, str, str]:
    """An ISUPPORT ``CHANMODES`` value → its types ``(A, B, C, D)``.

    A: list modes, always with an argument (``b``); B: always with an argument (``k``);
    C: with an argument only when set (``l``); D: never (``imnpst``). Missing types
    are empty; types after D (their behaviour "is undefined") are dropped, so their
    letters count as unknown, which is type D.

    >>> parse_chanmodes('beI,k,l,imnpst')
    ('beI', 'k', 'l', 'imnpst')
    >>> parse_chanmodes('b,k')
    ('b', 'k', '', '')
    """
    types = (value.split(",") + ["", "", "", ""])[:4]
    return types[0], types[1], types[2], types[3]


class ModeChange(NamedTuple):
    """One change of a MODE line: ``sign`` ``'+'`` or ``'-'``, the ``mode`` letter, its
    ``argument`` (a nick for prefix modes, a mask, key or limit) or None."""

    sign: str
    mode: str
    argument: str | None


@dataclasses.dataclass(frozen=True)
class Isupport:
    """What the server's ISUPPORT (005) says about channel modes and names; RFC 1459 by default.

    ``prefix_modes`` and ``prefix_symbols`` are in the same order, highest rank first
    (``'qaohv'``, ``'~&@%+'``); ``chanmodes`` holds the mode types A, B, C, D;
    ``casemapping`` names how nicks and channel names compare, and ``fold(name)``
    applies it (see ``casemapping_fold``).
    """

    prefix_modes: str = "ov"
    prefix_symbols: str = "@+"
    chanmodes: tuple[str, str, str, str] = parse_chanmodes(RFC1459_CHANMODES)
    casemapping: str = "rfc1459"
    fold: Callable[[str], str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fold", casemapping_fold(self.casemapping))

    def update(self, tokens: Iterable[str]) -> Isupport:
        """A copy with the ``PREFIX``, ``CHANMODES`` and ``CASEMAPPING`` tokens of one 005 line applied.

        ``tokens`` are the line's parameters after the nick; other tokens, and the
        trailing text (it has spaces), are ignored. ``-NAME`` returns a parameter to
        its default. A malformed ``PREFIX`` is logged and skipped. A server may send
        several 005 lines: apply each in turn.

        >>> Isupport().update(['CHANMODES=beI,k,l,imnpst', 'PREFIX=(qaohv)~&@%+', 'are supported']).prefix_modes
        'qaohv'
        >>> Isupport().update(['PREFIX=(qaohv)~&@%+']).update(['-PREFIX']).prefix_symbols
        '@+'
        """
        changes: dict[str, object] = {}
        for token in tokens:
            negated = token.startswith("-")
            name, has_value, value = token.removeprefix("-").partition("=")
            name = name.upper()
            if name == "PREFIX":
                try:
                    modes, symbols = parse_prefix(RFC1459_PREFIX if negated else value)
                except ValueError:
                    log.info("ignoring a malformed ISUPPORT token %r", token[:100])
                    continue
                changes.update(prefix_modes=modes, prefix_symbols=symbols)
            elif name == "CHANMODES" and (negated or has_value):
                changes["chanmodes"] = parse_chanmodes(RFC1459_CHANMODES if negated else value)
            elif name == "CASEMAPPING" and (negated or value):
                changes["casemapping"] = "rfc1459" if negated else value
        return dataclasses.replace(self, **changes) if changes else self  # type: ignore[arg-type]

    def parse_modes(self, arguments: Sequence[str]) -> list[ModeChange]:
        """A channel MODE line's parameters after the channel (``['-l+o', 'gina']``) → its changes.

        Prefix modes and types A and B take the next argument; type C takes one only
        when set; type D and letters the server did not announce take none (the modern
        spec leaves unknown letters undefined; as argument-less they cannot shift the
        arguments of the known ones before them). A missing argument is None, extra
        arguments are ignored, a mode string without a leading sign counts as ``+``.

        >>> Isupport().parse_modes(['-l-o', 'gina'])
        [ModeChange(sign='-', mode='l', argument=None), ModeChange(sign='-', mode='o', argument='gina')]
        >>> Isupport().parse_modes(['+b-o', 'x!*@*', 'gina'])[1]
        ModeChange(sign='-', mode='o', argument='gina')
        """
        if not arguments:
            return []
        with_argument, when_set = _argument_modes(self.prefix_modes, self.chanmodes)  # sets: O(1) a letter
        remaining: Iterator[str] = iter(arguments[1:])
        sign, changes = "+", []
        for letter in arguments[0]:
            if letter in "+-":
                sign = letter
            elif letter in with_argument or (sign == "+" and letter in when_set):
                changes.append(ModeChange(sign, letter, next(remaining, None)))
            else:
                changes.append(ModeChange(sign, letter, None))
        return changes

    def split_prefixes(self, entry: str) -> tuple[str, str]:
        """A NAMES (353) entry → ``(prefix modes, nick)``; modes in rank order.

        Takes every leading prefix symbol (IRCv3 ``multi-prefix``) and drops a
        ``!user@host`` tail (IRCv3 ``userhost-in-names``).

        >>> Isupport().split_prefixes('@+gina'), Isupport().split_prefixes('bob!b@host')
        (('ov', 'gina'), ('', 'bob'))
        """
        symbols = self.prefix_symbols
        if not entry or entry[0] not in symbols:
            return "", entry.partition("!")[0]
        start = 0
        while start < len(entry) and entry[start] in symbols:
            start += 1
        held = entry[:start]
        modes = "".join(mode for mode, symbol in zip(self.prefix_modes, symbols, strict=False) if symbol in held)
        return modes, entry[start:].partition("!")[0]

    def role(self, modes: str) -> Role:
        """The role a member's prefix modes give here; see ``role_from_modes``."""
        return role_from_modes(modes, self.prefix_modes)


def role_from_modes(modes: str, prefix_modes: str = "ov") -> Role:
    """The vbot role a channel member's prefix modes give (``'ov'`` → MODERATOR).

    * founder ``q`` (~), protected/admin ``a`` (&) and operator ``o`` (@) → MODERATOR:
      they run the channel. Never BROADCASTER: on plain IRC that comes only from
      ``VBOT_OWNERS``, since a nick proves nothing.
    * halfop ``h`` (%) → MODERATOR: "may perform channel moderation tasks, but at a
      lower privilege level than operators" (modern.ircdocs.horse, Halfop Prefix);
      they can kick, which is more than vbot's moderator may do (``!reload``, no
      cooldowns).
    * voice ``v`` (+) → VIP: like Twitch's VIP, a mark the channel's staff give to
      chosen chatters that lets them past chat restrictions (``+m``) without moderation
      powers, so ``role = "vip"`` commands keep a meaning on IRC. A channel that voices
      everyone makes everyone VIP, which opens no power over the bot.
    * a prefix mode vbot does not know counts as MODERATOR when ``prefix_modes``
      (the server's ``PREFIX`` order) ranks it above ``o``, else as nothing.

    >>> role_from_modes('v').label, role_from_modes('h').label, role_from_modes('').label
    ('vip', 'moderator', 'everyone')
    >>> role_from_modes('Y', 'Yqaohv').label, role_from_modes('x', 'ovx').label
    ('moderator', 'everyone')
    """
    role = Role.EVERYONE
    ranks = prefix_ranks(prefix_modes)  # a dict, so a member's few modes cost the same for any PREFIX
    operator = ranks.get("o")
    for mode in modes:
        if mode in MODERATOR_MODES:
            return Role.MODERATOR
        if mode in VIP_MODES:
            role = Role.VIP
        elif operator is not None and ranks.get(mode, operator) < operator:
            return Role.MODERATOR
    return role


@functools.lru_cache(maxsize=16)
def prefix_ranks(prefix_modes: str) -> dict[str, int]:
    """Each prefix mode's rank, 0 for the highest (``'qaohv'`` → ``{'q': 0, 'a': 1, ...}``), computed
    once per PREFIX: a server may announce thousands of modes, and a MODE line must cost what its
    own length costs, not what PREFIX's does.

    >>> prefix_ranks('ov')
    {'o': 0, 'v': 1}
    """
    ranks: dict[str, int] = {}
    for rank, mode in enumerate(prefix_modes):
        ranks.setdefault(mode, rank)
    return ranks


@functools.lru_cache(maxsize=16)
def _argument_modes(prefix_modes: str, chanmodes: tuple[str, str, str, str]) -> tuple[frozenset[str], frozenset[str]]:
    """The mode letters that always take an argument (prefix modes, types A and B), and those
    that take one only when set (type C), as sets: computed once per ISUPPORT."""
    list_modes, always, when_set, _ = chanmodes
    return frozenset(prefix_modes + list_modes + always), frozenset(when_set)


# --- membership ------------------------------------------------------------------


class Members:
    """The members of one channel and their prefix modes, by folded nick.

    A plain dict of folded nick → prefix mode letters in rank order (``''`` for
    most members, one shared empty string), so a JOIN or PART costs one fold and
    one dict operation. Replaces the ``irc`` library's ``Channel``; nicks compare by
    the server's ``CASEMAPPING``. Nothing here raises on odd input.
    """

    __slots__ = ("_fold", "_members", "_prefix_modes")

    def __init__(self, isupport: Isupport | None = None):
        rules = isupport or Isupport()
        self._fold = rules.fold
        self._prefix_modes = rules.prefix_modes
        self._members: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, nick: object) -> bool:
        return isinstance(nick, str) and self._fold(nick) in self._members

    def __repr__(self) -> str:
        return f"Members({len(self._members)} members)"

    def nicks(self) -> list[str]:
        """The members' folded nicks."""
        return list(self._members)

    def add(self, nick: str, modes: str = "") -> None:
        """A member arrived (JOIN, ``modes=''``) or was listed (NAMES, ``modes`` from
        ``Isupport.split_prefixes``). A member already known keeps its modes and gains
        ``modes``: NAMES without ``multi-prefix`` shows only the highest prefix."""
        key = self._fold(nick)
        current = self._members.setdefault(key, modes)
        if modes and current is not modes and current != modes:
            self._members[key] = self._merge(current, modes)

    def remove(self, nick: str) -> bool:
        """A member left (PART, KICK, or QUIT for every channel); False when it was not known."""
        return self._members.pop(self._fold(nick), None) is not None

    def rename(self, old: str, new: str) -> bool:
        """A member changed nick (NICK), keeping its modes; False when ``old`` was not known."""
        modes = self._members.pop(self._fold(old), None)
        if modes is None:
            return False
        self._members[self._fold(new)] = modes
        return True

    def apply_modes(self, changes: Iterable[ModeChange]) -> None:
        """Apply the prefix-mode changes of a MODE line (``Isupport.parse_modes``); other
        changes, and changes for nicks not in the channel, are ignored."""
        ranks = prefix_ranks(self._prefix_modes)
        for sign, mode, nick in changes:
            if nick is None or mode not in ranks:
                continue
            key = self._fold(nick)
            current = self._members.get(key)
            if current is None:
                continue
            if sign == "+":
                self._members[key] = self._merge(current, mode)
            else:
                self._members[key] = current.replace(mode, "")

    def modes(self, nick: str) -> str:
        """The member's prefix modes in rank order; ``''`` for none or a nick not in the channel."""
        return self._members.get(self._fold(nick), "")

    def role(self, nick: str) -> Role:
        """The role the member's prefix modes give (``role_from_modes``); EVERYONE when not a member."""
        return role_from_modes(self.modes(nick), self._prefix_modes)

    def viewer_count(self, bot_nick: str) -> int:
        """Members of the channel, ``bot_nick`` (the bot itself) excluded."""
        return len(self._members) - (self._fold(bot_nick) in self._members)

    def _merge(self, current: str, added: str) -> str:
        ranks = prefix_ranks(self._prefix_modes)
        return "".join(sorted({mode for mode in current + added if mode in ranks}, key=ranks.__getitem__))


class Source(Protocol):
    """Who sent an event: ``nick``, and ``str()`` gives ``nick!user@host`` (the ``irc`` library's NickMask)."""

    @property
    def nick(self) -> str: ...


class Event(Protocol):
    """A server event as the ``irc`` library hands it over: ``type`` (``join``, ``namreply``...),
    ``source``, ``target`` and ``arguments``, as ``irc.client.Event``."""

    type: str
    source: Source | None
    target: str | None
    arguments: list[str]


class Own(NamedTuple):
    """What a membership event did to the bot itself: it ``joined`` ``channel`` (``source``
    is then its ``nick!user@host`` as the server shows it), or left it, ``why`` (``"kicked
    by alice (spam)"``). ``channel`` is lowercased, as the join pacing names channels."""

    channel: str
    joined: bool
    source: str = ""
    why: str = ""


class Membership:
    """Every channel the bot is in and its members, by the server's ISUPPORT (``isupport``).

    ``feed(event)`` takes the server's JOIN, PART, KICK, QUIT, NICK, MODE and NAMES (353)
    events (``EVENTS``, the ``irc`` library's names) and returns an ``Own`` when the bot
    itself joined or left a channel, else None; ``me()`` returns the bot's current nick.
    ``accepts(channel)`` says whether the bot's own JOIN of ``channel`` counts (``vbot.joins``:
    only channels it asked to join); one it refuses changes nothing. Each event costs the same
    however many channels the bot is in, but QUIT and NICK, which touch every channel.
    ``clear()`` forgets everything (a drop: the next JOIN and NAMES rebuild it). Replaces
    the ``irc`` library's ``SingleServerIRCBot.channels``; nothing here raises on odd events.
    """

    EVENTS = ("join", "part", "kick", "quit", "nick", "mode", "namreply")

    def __init__(self, me: Callable[[], str], accepts: Callable[[str], bool] = lambda channel: True):
        self._me = me
        self._accepts = accepts
        self.isupport = Isupport()
        self.channels: dict[str, Members] = {}  # folded channel name -> its members

    def members(self, channel: str) -> Members | None:
        """The members of ``channel`` (any case), or None when the bot is not in it."""
        return self.channels.get(self.isupport.fold(channel))

    def viewer_count(self, channel: str) -> int:
        """Members the server has reported in ``channel`` (JOIN/NAMES), the bot excluded."""
        members = self.members(channel)
        return 0 if members is None else members.viewer_count(self._me())

    def clear(self) -> None:
        """Forget every channel (``channels`` stays the same dict), and the server's rules (a new
        connection sends them again)."""
        self.channels.clear()
        self.isupport = Isupport()

    def feed(self, event: Event) -> Own | None:
        """Apply one membership event; an ``Own`` when the bot itself joined or left a channel."""
        source, target, arguments = event.source, event.target or "", event.arguments
        if event.type == "namreply" and len(arguments) == 3:  # [type, channel, "nick @op +voiced ..."]
            self._names(arguments[1], arguments[2])
        elif event.type == "mode" and (members := self.members(target)) is not None:
            members.apply_modes(self.isupport.parse_modes(arguments))
        elif source is None:
            return None
        elif event.type == "join" and target:
            return self._joined(target, source)
        elif event.type == "part" and target:
            reason = arguments[0] if arguments else ""
            return self._left(target, source.nick, f"parted by the server ({reason or 'no reason'})")
        elif event.type == "kick" and target and arguments:
            reason = arguments[1] if len(arguments) > 1 else ""
            return self._left(target, arguments[0], f"kicked by {source.nick} ({reason or 'no reason'})")
        elif event.type == "quit":
            for members in self.channels.values():
                members.remove(source.nick)
        elif event.type == "nick" and target:
            for members in self.channels.values():
                members.rename(source.nick, target)
        return None

    def is_me(self, nick: str) -> bool:
        """Whether ``nick`` is the bot's current nick, by the server's CASEMAPPING."""
        return self.isupport.fold(nick) == self.isupport.fold(self._me())

    def _names(self, channel: str, entries: str) -> None:
        members = self.members(channel)
        if members is None:
            return
        for entry in entries.split():
            modes, nick = self.isupport.split_prefixes(entry)
            if nick:
                members.add(nick, modes)

    def _joined(self, channel: str, source: Source) -> Own | None:
        key = self.isupport.fold(channel)
        own = None
        if self.is_me(source.nick) and key not in self.channels:  # a duplicate JOIN of ours would forget everyone
            if not self._accepts(channel):
                return None
            self.channels[key] = Members(self.isupport)
            own = Own(channel.lower(), joined=True, source=str(source))
        members = self.channels.get(key)
        if members is not None:
            members.add(source.nick)
        return own

    def _left(self, channel: str, nick: str, why: str) -> Own | None:
        members = self.members(channel)
        if members is None:
            return None
        if not self.is_me(nick):
            members.remove(nick)
            return None
        del self.channels[self.isupport.fold(channel)]
        return Own(channel.lower(), joined=False, why=why)
