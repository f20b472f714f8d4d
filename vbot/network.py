"""Which kind of IRC server vbot is on, and reaching a server within one deadline.

On Twitch a login is authenticated, roles come from tags, and the token goes as
``PASS oauth:<token>``; elsewhere a nick proves nothing, roles come from channel
prefixes, and replies must leave room for the relay prefix.

``open_connection`` is the one way vbot opens a TCP connection (chat, vbot.irclib; HTTP,
vbot.http): name resolution, every address of the host and the TLS handshake all within one
deadline, so a host with dead addresses or a hanging resolver costs that deadline, no more.
"""

from __future__ import annotations

import collections
import errno
import itertools
import math
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl

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


# --- connecting within one deadline ----------------------------------------------------------

CONNECT_ATTEMPT_DELAY = 0.25
"""Seconds after a connect to one of a host's addresses starts before the next address is tried
too, the first still waiting (RFC 8305 "Happy Eyeballs" section 5: 250 ms recommended): an address
that drops every SYN costs this, not the whole deadline."""

Address = tuple[Any, ...]
"""One of ``socket.getaddrinfo``'s answers: ``(family, type, proto, canonname, sockaddr)``."""
Resolve = Callable[[str, int], Sequence[Address]]
"""``resolve(host, port)``: the TCP addresses of ``host``, best first (``resolve_tcp``). Raises
OSError (``socket.gaierror``) when the name does not resolve; may block for as long as DNS takes."""


def resolve_tcp(host: str, port: int) -> list[Address]:
    """The TCP addresses of ``host`` by the system's resolver (``socket.getaddrinfo``, in its order)."""
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def open_connection(
    host: str, port: int, timeout: float, *, tls: ssl.SSLContext | None = None, resolve: Resolve = resolve_tcp
) -> socket.socket:
    """A TCP socket connected to ``host``:``port``, within ``timeout`` seconds in total: resolving the
    name, every address tried and, with ``tls``, the TLS handshake (``host``'s certificate checked).

    ``resolve`` runs in a daemon thread, abandoned when the deadline passes (a resolver can hang for
    half a minute). The addresses are tried in its order, the families alternating, a new one every
    CONNECT_ATTEMPT_DELAY seconds or as soon as the one before failed, each attempt going on until one
    connects (RFC 8305). Every wait is interruptible: an exception raised by a signal handler
    (``vbot.bot.Stopping``) ends the connect and closes every socket it opened.

    Returns the socket blocking, with ``timeout`` per operation and TCP_NODELAY (a PONG must not wait
    for an ACK). Raises TimeoutError when the deadline passed, else the OSError of the failure
    (``socket.gaierror``, the last address's ``ConnectionRefusedError``, ``ssl.SSLError``...).
    """
    end = time.monotonic() + timeout
    sock = _first_to_connect(_resolved(host, port, resolve, end), end)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
            _shake_hands(sock, end)
        sock.settimeout(timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _resolved(host: str, port: int, resolve: Resolve, end: float) -> list[Address]:
    """``resolve(host, port)``, run in a daemon thread and waited for until ``end`` (monotonic)."""
    answer: list[Sequence[Address] | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(resolve(host, port))
        except BaseException as error:  # handed to the caller's thread
            answer.append(error)
        done.set()

    threading.Thread(target=run, name="vbot-resolve", daemon=True).start()
    if not done.wait(max(end - time.monotonic(), 0.0)):
        raise TimeoutError(f"resolving {host} timed out")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    if not answer[0]:
        raise OSError(f"{host} has no address")
    return _interleaved(answer[0])


def _interleaved(addresses: Sequence[Address]) -> list[Address]:
    """The addresses with their families alternating, the first one's first (RFC 8305 section 4).

    >>> v6, v4 = socket.AF_INET6, socket.AF_INET
    >>> [family.name for family, *_ in _interleaved([(v6,), (v6,), (v4,), (v4,)])]
    ['AF_INET6', 'AF_INET', 'AF_INET6', 'AF_INET']
    """
    first = [address for address in addresses if address[0] == addresses[0][0]]
    others = [address for address in addresses if address[0] != addresses[0][0]]
    pairs = itertools.zip_longest(first, others)
    return [address for pair in pairs for address in pair if address is not None]


def _first_to_connect(addresses: list[Address], end: float) -> socket.socket:
    """The first of ``addresses`` to accept a TCP connect before ``end`` (monotonic), tried as
    ``open_connection`` says; every other socket opened is closed."""
    waiting = collections.deque(addresses)
    failure: OSError = TimeoutError("timed out")
    next_start = -math.inf
    with selectors.DefaultSelector() as selector:
        try:
            while True:
                now = time.monotonic()
                if waiting and (now >= next_start or not selector.get_map()):
                    family, kind, proto, _, sockaddr = waiting.popleft()
                    try:
                        sock = socket.socket(family, kind, proto)
                    except OSError as error:  # a family this machine lacks
                        failure = error
                        continue
                    sock.setblocking(False)
                    code = sock.connect_ex(sockaddr)
                    if code in (0, errno.EINPROGRESS, errno.EAGAIN):
                        selector.register(sock, selectors.EVENT_WRITE)  # writable once connected or failed
                        next_start = now + CONNECT_ATTEMPT_DELAY
                    else:
                        sock.close()
                        failure = OSError(code, os.strerror(code))
                    continue
                if not selector.get_map():
                    raise failure  # every address failed
                if now >= end:
                    raise TimeoutError("timed out")
                for key, _ in selector.select(min(end, next_start) - now if waiting else end - now):
                    sock = key.fileobj  # type: ignore[assignment]
                    selector.unregister(sock)
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if not code:
                        sock.setblocking(True)
                        return sock
                    sock.close()
                    failure, next_start = OSError(code, os.strerror(code)), -math.inf  # the next one at once
        finally:
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]


def _shake_hands(sock: ssl.SSLSocket, end: float) -> None:
    """The TLS handshake on ``sock``, done before ``end`` (monotonic) however slowly its bytes come."""
    import ssl

    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                selector.register(sock, selectors.EVENT_READ)
            except ssl.SSLWantWriteError:
                selector.register(sock, selectors.EVENT_WRITE)
            ready = selector.select(max(end - time.monotonic(), 0.0))
            selector.unregister(sock)
            if not ready:
                raise TimeoutError("the TLS handshake timed out")
