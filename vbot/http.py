"""One HTTP exchange with a total deadline: the one code path of every call vbot makes over HTTP.

The token service client (``vbot.auth``) and the Helix client (``vbot.helix``) send their
requests through ``exchange`` and read replies with ``parse_json``. What it guarantees:

* A total deadline: name resolution, connect (to whichever of the host's addresses answers
  first), TLS handshake, request and the whole reply must finish within ``deadline`` seconds,
  however slowly the bytes arrive. ``vbot.network.open_connection`` holds the connect to the
  time left; after it a timer shuts the socket down when the deadline passes, which ends the
  read under way (a server dripping one byte a second cannot hold a call for longer).
* A reply that arrived whole (framed by ``Content-Length`` or chunked, read to its end) is
  returned even when the deadline passed meanwhile: a token service that renewed a token
  has spent the old refresh token. Only a reply without framing, which ends where the
  socket ends, is Unavailable when the timer cut it; a framed one cut short always is.
* TLS verified against the system CAs (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` are honoured,
  for a private CA), with the host name checked.
* No redirects: a 3xx is returned as it is, so a token never travels to another URL.
* A bounded reply: more than ``max_bytes`` of body is Unavailable; http.client bounds the
  status line and the headers (64 KiB a line, 100 headers).
* ``parse_json`` refuses what Python's ``json`` would turn into a traceback later: nesting
  deeper than MAX_JSON_DEPTH, ``NaN``/``Infinity``, numbers longer than MAX_NUMBER_CHARS.

``http.client`` (and the ``email`` package it imports) is imported on the first call, not at
start-up: it costs tens of milliseconds that a bot without HTTP should not pay.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from vbot.lines import MAX_MESSAGE_CHARS, one_line
from vbot.network import Resolve, open_connection, resolve_tcp

DEADLINE = 10.0
"""Seconds for one whole exchange, connect to last byte."""
MAX_REPLY_BYTES = 65536
"""Replies with a longer body are Unavailable: no reply vbot reads is anywhere near this."""
MAX_JSON_DEPTH = 32
"""Nesting of arrays and objects that ``parse_json`` accepts (Twitch's replies use 3)."""
MAX_NUMBER_CHARS = 24
"""Characters of one JSON number that ``parse_json`` accepts (Unix seconds have 10)."""
MAX_RETRY_AFTER = 3600.0
"""The longest wait ``retry_after`` returns, in seconds, whatever a server asks."""


class Unavailable(Exception):
    """No usable HTTP answer: a network or TLS error, the deadline passed, or the reply
    was too long or not HTTP. ``str()`` is one line naming the cause; it never holds a
    header or body that was sent (tokens travel there)."""


@dataclasses.dataclass(frozen=True)
class Reply:
    """An HTTP answer: ``status`` (any, 3xx and errors included), ``headers`` with
    lower-cased names (a repeated header keeps its last value), and ``body`` (at most
    ``max_bytes`` bytes)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def exchange(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None = None,
    *,
    deadline: float = DEADLINE,
    max_bytes: int = MAX_REPLY_BYTES,
    resolve: Resolve = resolve_tcp,
) -> Reply:
    """Send one request to ``url`` (``http://`` or ``https://``) and read the whole reply.

    ``method`` is ``GET``, ``POST``, ``DELETE``...; ``body`` is sent as it is (set
    ``Content-Type`` in ``headers``). Blocks for at most about ``deadline`` seconds.
    ``resolve`` finds the host's addresses (``vbot.network.Resolve``; the system's resolver).
    Returns the Reply, whatever its status. Raises Unavailable (see the module doc).
    """
    import http.client

    parts = _split(url)
    expired = threading.Event()
    tls = _tls_context() if parts.tls else None
    connection = _connection_class()(parts.host, parts.port, time.monotonic() + deadline, tls, resolve, expired)
    timer = threading.Timer(deadline, _shut_down, (connection, expired))
    timer.daemon = True
    timer.start()
    try:
        connection.request(method, parts.target, body=body, headers=dict(headers))
        response = connection.getresponse()
        framed = response.chunked or response.length is not None  # else the body ends where the socket does
        data = response.read(max_bytes + 1)  # chunked: IncompleteRead when cut short
        if len(data) > max_bytes:
            raise Unavailable(f"the reply is longer than {max_bytes} bytes")
        cut = response.length if framed else expired.is_set()  # bytes a Content-Length says are missing
        if cut:
            raise Unavailable(
                f"no complete answer within {deadline:g} s" if expired.is_set() else "the reply ended early"
            )
        return Reply(response.status, {name.lower(): value for name, value in response.getheaders()}, data)
    except Unavailable:
        raise
    except (OSError, http.client.HTTPException, ValueError) as error:
        if expired.is_set() or isinstance(error, TimeoutError):  # one operation's timeout is the whole deadline
            raise Unavailable(f"no complete answer within {deadline:g} s") from None
        raise Unavailable(_reason(error)) from None
    finally:
        timer.cancel()
        connection.close()


@dataclasses.dataclass(frozen=True)
class _Url:
    tls: bool
    host: str
    port: int
    target: str


def _split(url: str) -> _Url:
    """``url`` → where to connect and what to ask; Unavailable for what is not an http(s) URL.

    >>> _split("https://api.twitch.tv/helix/users?login=a")
    _Url(tls=True, host='api.twitch.tv', port=443, target='/helix/users?login=a')
    >>> _split("http://127.0.0.1:8080")
    _Url(tls=False, host='127.0.0.1', port=8080, target='/')
    """
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Unavailable(f"not a usable URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unavailable("not an http:// or https:// URL")
    tls = parts.scheme == "https"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Url(tls, parts.hostname, port or (443 if tls else 80), target)


@functools.cache
def _connection_class():
    """http.client's connection, connecting with ``vbot.network.open_connection`` in the time left
    before ``end`` (monotonic), and keeping its socket in ``opened`` for the deadline timer:
    http.client forgets it once the headers say the connection closes."""
    import http.client

    class Connection(http.client.HTTPConnection):
        def __init__(self, host: str, port: int, end: float, tls, resolve: Resolve, expired: threading.Event):
            super().__init__(host, port)
            self.end, self.tls, self.resolve, self.expired = end, tls, resolve, expired
            self.opened: socket.socket | None = None

        def connect(self) -> None:
            left = max(self.end - time.monotonic(), 0.0)
            self.sock = self.opened = open_connection(self.host, self.port, left, tls=self.tls, resolve=self.resolve)
            if self.expired.is_set():  # the timer fired before it could reach this socket
                raise TimeoutError("timed out")

    return Connection


def _shut_down(connection, expired: threading.Event) -> None:
    """The deadline passed: shut the socket down, which ends a read or write under way."""
    expired.set()
    sock = connection.opened
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also for TLS
        except OSError:
            pass


@functools.cache
def _tls_context():
    """The system CAs (with SSL_CERT_FILE/SSL_CERT_DIR), host names checked."""
    import ssl

    return ssl.create_default_context()


def phrase(status: int) -> str:
    """HTTP's reason phrase for ``status`` (for a reply whose body gives no ``message``).

    >>> phrase(503), phrase(599)
    ('Service Unavailable', 'unexpected status')
    """
    import http  # the standard library's (this module is vbot.http)

    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "unexpected status"


def _reason(error: BaseException) -> str:
    """A short description of a failed exchange: its strerror, or its class name.

    >>> _reason(ConnectionRefusedError(111, "Connection refused"))
    'Connection refused'
    """
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    reason = getattr(error, "reason", None)  # ssl.SSLError's short reason, e.g. CERTIFICATE_VERIFY_FAILED
    if isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    text = one_line(str(error), MAX_MESSAGE_CHARS)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def parse_json(body: bytes, *, odd_numbers_as_none: bool = False) -> Any:
    """The JSON value in ``body`` (UTF-8). Raises ValueError, one line, when it is not JSON,
    is nested deeper than MAX_JSON_DEPTH, or holds ``NaN``, ``Infinity`` or a number longer
    than MAX_NUMBER_CHARS characters; with ``odd_numbers_as_none`` such a number becomes
    None instead (for a reply whose other fields must not be lost, e.g. new tokens).

    >>> parse_json(b'{"expires_in": 14400, "scopes": ["chat:read"]}')
    {'expires_in': 14400, 'scopes': ['chat:read']}
    >>> parse_json(b'[' * 40 + b']' * 40)
    Traceback (most recent call last):
    ValueError: JSON nested deeper than 32 levels
    >>> parse_json(b'{"expires_in": Infinity}')
    Traceback (most recent call last):
    ValueError: JSON number Infinity is not allowed
    >>> parse_json(b'{"expires_in": Infinity, "n": 1' + b'0' * 400 + b'}', odd_numbers_as_none=True)
    {'expires_in': None, 'n': None}
    """
    hooks = [_constant, _integer, _float]
    if odd_numbers_as_none:
        hooks = [_or_none(hook) for hook in hooks]
    try:
        value = json.loads(body, parse_constant=hooks[0], parse_int=hooks[1], parse_float=hooks[2])
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at character {error.pos})") from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"JSON number {name} is not allowed")


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"JSON number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(f"JSON number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"JSON number {text} is out of range")
    return value


def _or_none(hook: Callable[[str], Any]) -> Callable[[str], Any]:
    """``hook``, answering None where it would raise ValueError."""

    def lenient(text: str) -> Any:
        try:
            return hook(text)
        except ValueError:
            return None

    return lenient


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_JSON_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait that a ``Retry-After`` header asks for (RFC 9110 section 10.2.3: delta
    seconds or an HTTP date, compared with ``now``, wall-clock epoch seconds), between 0 and
    MAX_RETRY_AFTER; None when there is none or it cannot be read. ``headers`` as in Reply.

    >>> retry_after({"retry-after": "30"}, 0), retry_after({"retry-after": "99999999999"}, 0)
    (30.0, 3600.0)
    >>> retry_after({"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}, 40.0), retry_after({}, 0)
    (60.0, None)
    """
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        seconds = float(value) if len(value) <= MAX_NUMBER_CHARS else MAX_RETRY_AFTER
    else:
        import email.utils

        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - now
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
