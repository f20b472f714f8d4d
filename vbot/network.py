"""Which kind of IRC server vbot is on: Twitch, or a plain IRC server where Twitch's rules do not hold.

On Twitch a login is authenticated, roles come from tags, and the token goes as
``PASS oauth:<token>``; elsewhere a nick proves nothing, roles come from channel
prefixes, and replies must leave room for the relay prefix.
"""

from __future__ import annotations

from collections.abc import Iterable

TWITCH_DOMAIN = "twitch.tv"
"""Twitch's chat hosts (``irc.chat.twitch.tv``) are in this domain (Twitch docs, "IRC Concepts")."""
TWITCH_SERVER_NAME = "tmi.twitch.tv"
"""The source of Twitch's welcome (001) and of its own messages (Twitch docs, "IRC Concepts")."""
TWITCH_CAPABILITY_PREFIX = "twitch.tv/"
"""Twitch's own capabilities: ``twitch.tv/membership``, ``/tags``, ``/commands``."""


def is_twitch_host(host: str) -> bool:
    """True for a host in Twitch's domain (``irc.chat.twitch.tv``), any case, trailing dot allowed.

    >>> is_twitch_host('irc.chat.twitch.tv'), is_twitch_host('IRC.Chat.Twitch.TV.'), is_twitch_host('eviltwitch.tv')
    (True, True, False)
    """
    host = host.lower().rstrip(".")
    return host == TWITCH_DOMAIN or host.endswith("." + TWITCH_DOMAIN)


def is_twitch(host: str, server_name: str | None = None, capabilities: Iterable[str] = ()) -> bool:
    """Whether the server is Twitch chat.

    ``host`` is the configured host (``VBOT_HOST``); ``server_name`` the source of the
    welcome (001), None before it; ``capabilities`` those the server acknowledged
    (``CAP ACK``). Any one sign is enough: Twitch's host, the server name
    ``tmi.twitch.tv``, or a ``twitch.tv/`` capability acknowledged. So before the
    welcome only the host decides (the PASS line); a loopback server that answers as
    Twitch (vbot's tests, a local relay to Twitch) counts as Twitch once it has.

    >>> is_twitch('127.0.0.1'), is_twitch('127.0.0.1', 'tmi.twitch.tv'), is_twitch('irc.chat.twitch.tv')
    (False, True, True)
    >>> is_twitch('irc.libera.chat', 'zinc.libera.chat', ['multi-prefix', 'sasl'])
    False
    >>> is_twitch('localhost', 'irc.local', ['twitch.tv/membership'])
    True
    """
    if is_twitch_host(host):
        return True
    if server_name is not None and server_name.lower().rstrip(".") == TWITCH_SERVER_NAME:
        return True
    return any(capability.lower().startswith(TWITCH_CAPABILITY_PREFIX) for capability in capabilities)
