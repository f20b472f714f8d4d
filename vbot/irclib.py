"""The edge with the ``irc`` library: every place vbot subclasses, replaces or copies its code.

Everything else in vbot uses the library only through its public API. An upgrade of
``irc`` is a review of this one file; ``tests/test_irclib.py`` holds a digest of each
library method named below and fails, naming the method, when a new release changes one.

What vbot takes from ``irc.bot.SingleServerIRCBot`` (``vbot.bot.VBot`` is one):

* its construction: the reactor (``reactor_class``, here ``GuardedReactor``), the one
  ``ServerConnection`` (here ``TwitchConnection``), and the server list: one
  ``ServerSpec`` whose ``password`` the bot sets right before each connect (the token
  keeper's current token), so a reconnect always sends the current token;
* ``connection`` and its public API (``connect``, ``cap``, ``join``, ``privmsg``, ``ping``,
  ``disconnect``, ``get_nickname``: the library follows the bot's own nick);
* the ``on_<event>`` naming of handlers;
* its import, ``irc.events`` first, from ``vbot.cli``: that module finds its data file with
  ``importlib_resources.files()``, which inspects every frame of the stack (about 0.3 ms
  each); from a shallow frame a start takes 4 ms less. Nothing depends on the order.

What vbot replaces, and why:

* ``start``/``_connect`` and the ``ReconnectStrategy`` (``recon``): ``VBot.run`` is the loop;
  ``vbot.session.Session`` decides when to connect (backoff with jitter, RECONNECT pacing,
  login and PING deadlines). ``_connect`` turns a failed connect into a ``disconnect``
  event without its reason, which vbot logs; so the bot calls ``connection.connect``
  with the server list's entry itself.
* The library's scheduler (``reactor.scheduler``): vbot schedules nothing; everything timed
  is asked at each turn of ``VBot.run``'s loop. The scheduler still runs inside
  ``process_once``, so it stays guarded (``GuardedScheduler``).
* ``channels`` (an ``IRCDict`` of ``Channel``) and the membership handlers: see below;
  ``VBot.channels`` is ``vbot.modes.Membership``'s dict.
* ``on_ctcp`` (answers VERSION, PING, DCC): Twitch has no CTCP; vbot ignores it.
* ``die``, ``jump_server``, ``get_version``: not used.

What is overridden or replaced inside the library, and why:

* ``ServerConnection.connect``: the library's, marking ``connecting`` while it runs (a stop
  signal may abandon a connect, and only a connect: ``vbot.bot.Stopping``). It turns only an
  OSError of the socket's connect into a ``ServerConnectionError``; once the socket is up, the
  login lines can raise too (a PASS line over 512 bytes: ``MessageTooLong``), which left the
  connection half open and the bot waiting for nothing. Any such failure now closes the socket
  quietly (no ``disconnect`` event: no login started) and is a ``ServerConnectionError``.
* ``ServerConnection.process_data``: replaced. The same read, then vbot's line buffer
  (``ChatLineBuffer``: bytes split once, each line decoded once, over-long lines discarded as
  they arrive); remembers ``last_received`` for dead-link detection; logs each line at DEBUG
  only when DEBUG is on; drops the connection after the read when a write failed during it
  (see ``send_raw``).
* ``ServerConnection._process_line``: the fast path for chat. A PRIVMSG to a channel
  (``vbot.chatline.parse_chat_line``) goes straight to ``chat_handler`` with its tags unparsed:
  no Event objects, no ``all_raw_messages``/``pubmsg``/``ctcp``/``action`` events, no handler
  dispatch. Every other line goes through the library as before; one that does not parse, or
  is longer than MAX_RECEIVED_LINE_BYTES, is logged at DEBUG and skipped (the library raises into the loop).
* ``ServerConnection._handle_other``: a server line whose command is one of the library's
  own event names (``DISCONNECT``, ``PUBMSG``...) is skipped; it would fire their handlers.
* ``ServerConnection._handle_message``: a PRIVMSG to a channel framed as CTCP other than one
  plain ACTION (``vbot.chatline.is_other_ctcp``) is one ``action`` event with the whole text,
  as the fast path gives it: the library splits it into ``ctcp`` events (and, after the first,
  gives the rest of the text as ``ctcp`` too), which vbot ignores, so the text would skip the
  spam filters.
* ``ServerConnection.send_raw``: ``sendall`` instead of ``send``, which may write part of a
  line when the socket buffer is full; when the write fails because the server closed,
  the connection is dropped only once the lines already received are handled, those still
  waiting in the socket included: the server's ERROR among them gives the reason the log
  says (``Excess Flood``, a KILL's), not ``Connection reset by peer``.
* ``ServerConnection.pong``: a PING token too long to echo is not answered (the library raises).
* ``ServerConnection.buffer_class``: ``ChatLineBuffer`` instead of jaraco's
  ``LenientDecodingLineBuffer``: a character cut short at the end of a line is U+FFFD and
  only a line that is not UTF-8 at all is read as Latin-1 (``vbot.chatline.decode_line``),
  and a line longer than MAX_RECEIVED_LINE_BYTES is discarded as it arrives.
* ``Reactor._handle_event``: each handler runs in a guard that logs and goes on; handlers
  are sorted once per event type, not on every event.
* ``Reactor.add_global_handler``/``remove_global_handler``: clear that per-type cache.
* ``DefaultScheduler.run``: a scheduled job that raises is logged and the loop goes on.
* ``SingleServerIRCBot``'s membership handlers (``_on_join``, ``_on_part``...) and
  ``_on_disconnect``, and ``SimpleIRCClient._dispatcher``: removed with the public
  ``remove_global_handler`` (see ``replaced_handlers``); vbot registers its own, which
  track members with ``vbot.modes`` by the server's ISUPPORT instead of the library's
  ``Channel`` (a fixed list of modes with arguments, and KeyErrors).
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping

import irc.bot
import irc.client
import irc.events
import irc.schedule

from vbot.chatline import decode_line, is_other_ctcp, parse_chat_line
from vbot.lines import MAX_MESSAGE_CHARS, MAX_RECEIVED_LINE_BYTES, one_line
from vbot.logs import Clipped
from vbot.network import Resolve, open_connection, resolve_tcp
from vbot.outbox import LinePace

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
"""Seconds allowed for resolving the host, TCP connect (all its addresses) and TLS handshake in
total, and for any one send."""
LIBRARY_EVENTS = frozenset(
    {*irc.events.generated, "pubmsg", "pubnotice", "privnotice", "action", "umode", "all_events", "all_raw_messages"}
)
"""Event names the ``irc`` library makes up itself; a server line with such a command
(``DISCONNECT``, ``PUBMSG``...) would fire the library's handlers, so it is skipped."""
ERROR_LINE = re.compile(r"(?:@\S* +)?(?::\S+ +)?ERROR(?: |$)", re.IGNORECASE)
"""A server's ERROR line (RFC 2812 section 3.7.4), tags and prefix allowed."""
MEMBERSHIP_EVENTS = ("disconnect", "join", "kick", "mode", "namreply", "nick", "part", "quit")
"""The events ``SingleServerIRCBot.__init__`` registers its ``_on_<event>`` handlers for."""


def make_connect_factory(
    tls: bool, timeout: float = CONNECT_TIMEOUT, resolve: Resolve = resolve_tcp
) -> Callable[[tuple[str, int]], socket.socket]:
    """A ``connect_factory`` for ``ServerConnection.connect``: ``(host, port) -> socket``, within
    ``timeout`` seconds in total for the name's resolution (by ``resolve``), every address and the
    TLS handshake (``vbot.network.open_connection``): the connect blocks the event loop.

    With ``tls`` the certificate is verified against the system CAs and the host
    name is sent as SNI. Raises OSError (refused, unreachable, DNS, TLS, TimeoutError).
    """
    context = ssl.create_default_context() if tls else None

    def connect(address: tuple[str, int]) -> socket.socket:
        return open_connection(address[0], address[1], timeout, tls=context, resolve=resolve)

    return connect


class ChatLineBuffer:
    r"""The connection's line buffer (``ServerConnection.buffer_class``): bytes in, decoded lines out.

    Lines end with LF or CR LF, as in the library's buffer; each is decoded once by
    ``vbot.chatline.decode_line`` (UTF-8; a character cut short at the end is U+FFFD;
    Latin-1 for a line that is not UTF-8 at all). A line longer than ``limit`` bytes is
    discarded as it arrives, in time linear in its size and constant memory, and logged at
    WARNING once, with its size, when it ends; the lines after it are kept. (The library's
    buffer kept an unfinished line without bound and split the whole buffer again on every
    read: megabytes without a newline took time quadratic in their size.)

    >>> buffer = ChatLineBuffer(limit=8)
    >>> buffer.feed(b"ok\r\n" + b"x" * 20)
    >>> buffer.feed(b"x" * 20 + b"\r\nOl\xc3\xa9\nOl\xe9!\r\n\xf0\x9f\x98\r\nend")
    >>> buffer.lines()
    ['ok', 'Olé', 'Olé!', '\ufffd']
    >>> buffer.feed(b"\n")
    >>> buffer.lines()
    ['end']
    """

    def __init__(self, limit: int = MAX_RECEIVED_LINE_BYTES) -> None:
        self.buffer = b""  # the unfinished line
        self.limit = limit
        self.discarding = 0  # bytes of an over-long line discarded so far; 0 when not discarding

    def feed(self, data: bytes) -> None:
        """Add bytes read from the socket."""
        if self.discarding:
            end = data.find(b"\n")
            if end < 0:
                self.discarding += len(data)
                return
            log.warning(
                "discarded a line of %d bytes from the server (the limit is %d)", self.discarding + end + 1, self.limit
            )
            self.discarding, data = 0, data[end + 1 :]
        self.buffer += data
        unfinished = len(self.buffer) - (self.buffer.rfind(b"\n") + 1)
        if unfinished > self.limit:
            self.buffer = self.buffer[: len(self.buffer) - unfinished]
            self.discarding = unfinished

    def lines(self) -> list[str]:
        """The complete lines fed so far, decoded, without their line ends (empty lines included)."""
        *complete, self.buffer = self.buffer.split(b"\n")
        lines = []
        for raw in complete:
            if raw[-1:] == b"\r":
                raw = raw[:-1]
            try:
                lines.append(raw.decode())
            except UnicodeDecodeError:
                lines.append(decode_line(raw))
        return lines

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines())

    def __len__(self) -> int:
        return len(self.buffer)


class GuardedScheduler(irc.schedule.DefaultScheduler):
    """The library's scheduler, but a job that raises is logged and does not stop the loop."""

    def run(self, command) -> None:
        try:
            command.target()
        except Exception:
            log.exception("scheduled job %r failed", command.target)


ChatHandler = Callable[[str, str, str, Mapping[str, str], bool], None]
"""``handler(channel, nick, text, tags, is_action)``: one chat line, as ``vbot.chatline.ChatLine``."""


class TwitchConnection(irc.client.ServerConnection):
    """A ServerConnection that survives anything the server sends, with a fast path for chat.

    With ``chat_handler`` set, each PRIVMSG to a channel is handed to it as
    ``chat_handler(channel, nick, text, tags, is_action)`` (``vbot.chatline.parse_chat_line``:
    tags parsed only when read) instead of becoming library events; a handler that raises is
    logged and the next line goes on. Every other line goes through the library. Lines are
    decoded by ``ChatLineBuffer`` (set on the class because the buffer is recreated on every
    connect); a line that does not parse, is longer than MAX_RECEIVED_LINE_BYTES, or has one of
    LIBRARY_EVENTS as its command is logged at DEBUG and skipped. ``last_received`` is the
    ``clock()`` time of the last read with data (the reactor's ``clock``). ``pace``, when
    set, is told every line sent (``vbot.outbox.LinePace``: a plain server counts them all).
    """

    buffer_class = ChatLineBuffer
    buffer: ChatLineBuffer
    last_received = 0.0
    connecting = False  # ``connect`` runs: the blocking connect and the login lines
    chat_handler: ChatHandler | None = None
    _reading = False  # handling the lines of one read (process_data)
    _write_failed = False  # a write failed: the drop follows once this read is handled
    pace: LinePace | None = None  # told every line sent (a plain server's flood rule)

    def connect(self, *args, **kwargs):
        """The library's ``connect`` (same arguments), ``connecting`` while it runs. Raises
        ServerConnectionError for any failure (its ``__cause__`` the socket's OSError), the socket
        closed; what a signal handler raises (``vbot.bot.Stopping``) goes through as it is."""
        self.connecting = True
        try:
            return super().connect(*args, **kwargs)
        except irc.client.ServerConnectionError:
            raise
        except Exception as error:  # the socket is up, a login line failed: MessageTooLong, InvalidCharacters
            sock = self.socket
            vars(self).pop("connected", None)  # the library's "not connected" (see its disconnect)
            vars(self).pop("socket", None)
            if sock is not None:
                sock.close()
            raise irc.client.ServerConnectionError(
                f"could not send the login ({type(error).__name__}: {one_line(str(error), MAX_MESSAGE_CHARS)})"
            ) from None
        finally:
            self.connecting = False

    def process_data(self) -> None:
        """Read what the socket has (at most 16 KiB, as the library does) and handle each line;
        when a write failed meanwhile, drop the connection after the last one (see ``send_raw``)."""
        self.last_received = self.reactor.clock()
        self._reading = True
        try:
            self._read_lines()
        finally:
            self._reading = False
        if self._write_failed:
            self._drop_after_failed_write()

    def _read_lines(self) -> None:
        try:
            reader = getattr(self.socket, "read", self.socket.recv)
            data = reader(2**14)
        except OSError:  # the server hung up
            self.disconnect("Connection reset by peer")
            return
        if not data:
            self.disconnect("Connection reset by peer")
            return
        self.buffer.feed(data)
        debug = log.isEnabledFor(logging.DEBUG)
        for line in self.buffer.lines():
            if debug:
                log.debug("FROM SERVER: %s", line)
            if line:
                self._process_line(line)

    def _process_line(self, line: str) -> None:
        if len(line) > MAX_RECEIVED_LINE_BYTES:
            log.debug("skipping a line of %d characters", len(line))
            return
        chat = self.chat_handler
        if chat is not None and self.real_server_name:  # the library takes the first source it sees as the server's
            parsed = parse_chat_line(line)
            if parsed is not None:
                try:
                    chat(*parsed)
                except Exception:
                    log.exception("chat handler %s failed on a line in %s", getattr(chat, "__name__", chat), parsed[0])
                return
        try:
            super()._process_line(line)
        except Exception as error:
            log.debug("skipping a line that does not parse (%s): %r", error, Clipped(line, 300))

    def _handle_other(self, arguments, command, source, tags) -> None:
        # Every command but PRIVMSG and NOTICE comes here, lowercased: checking here costs
        # chat lines nothing, where a second parse of each line cost about 1 µs.
        if command in LIBRARY_EVENTS:
            log.debug("skipping a line with the unknown command %r", command)
            return
        super()._handle_other(arguments, command, source, tags)

    def _handle_message(self, arguments, command, source, tags) -> None:
        if command == "privmsg" and len(arguments) >= 2 and irc.client.is_channel(arguments[0]):
            if is_other_ctcp(arguments[1]):  # one line for the filters (see vbot.chatline), never a command
                self._handle_event(irc.client.Event("action", source, arguments[0], [arguments[1]], tags))
                return
        super()._handle_message(arguments, command, source, tags)

    def send_raw(self, string: str) -> None:
        """The library's, but with ``sendall``. OSError drops the connection, once the lines
        already received are handled: the server's ERROR among them says why it closed.

        A write fails like this when the server has closed (it killed the bot: ``Excess
        Flood``, a KILL): the lines of the read being handled still run (their writes are
        skipped), then ``_drop_after_failed_write``."""
        if self.socket is None:
            raise irc.client.ServerNotConnectedError("Not connected.")
        if self._write_failed:
            return  # the connection is going: dropped once the lines of this read are handled
        try:
            self.socket.sendall(self._prep_message(string))
            log.debug("TO SERVER: %s", string)
            if self.pace is not None:
                self.pace.sent(string)
        except OSError:
            if not self.connected:
                return  # the QUIT of a disconnect under way: nothing more to do
            self._write_failed = True
            if not self._reading:
                self._drop_after_failed_write()

    def _drop_after_failed_write(self) -> None:
        """Read, without waiting, what the server sent before it closed, handle its ERROR lines
        (RFC 2812 section 3.7.4: why it closes), and drop the connection (no QUIT: it cannot go)."""
        received = 0
        try:
            self.socket.setblocking(False)
            while received < 4 * MAX_RECEIVED_LINE_BYTES and (data := self.socket.recv(MAX_RECEIVED_LINE_BYTES)):
                received += len(data)
                self.buffer.feed(data)
        except (OSError, ValueError, AttributeError):  # nothing more to read; a TLS socket in a bad state; closed
            pass
        for line in self.buffer:
            if ERROR_LINE.match(line):  # other lines are skipped: nothing can be answered any more
                self._process_line(line)
        self.disconnect("Connection reset by peer.")
        self._write_failed = False

    def pong(self, target: str, target2: str = "") -> None:
        """Answer a PING; a token too long to echo within 512 bytes is not answered (DEBUG)."""
        try:
            super().pong(target, target2)
        except irc.client.MessageTooLong:
            log.debug("not answering a PING with a %d-character token", len(target))


class GuardedReactor(irc.client.Reactor):
    """A Reactor whose handlers cannot raise into the loop: each is logged and skipped.

    The handlers for an event type are merged and sorted once, not on every event.
    ``clock()`` (monotonic seconds) is what connections stamp ``last_received`` with.
    """

    connection_class = TwitchConnection
    scheduler_class = GuardedScheduler
    clock: Callable[[], float] = staticmethod(time.monotonic)  # VBot sets its session's clock

    def __init__(self, *args, **kwargs) -> None:
        self._merged: dict[str, tuple] = {}  # event type -> its handlers and all_events', sorted
        super().__init__(*args, **kwargs)

    def add_global_handler(self, event, handler, priority=0) -> None:
        with self.mutex:
            super().add_global_handler(event, handler, priority)
            self._merged.clear()

    def remove_global_handler(self, event, handler) -> int:
        with self.mutex:
            self._merged.clear()
            return super().remove_global_handler(event, handler)

    def _handle_event(self, connection, event) -> None:
        with self.mutex:
            matching = self._merged.get(event.type)
            if matching is None:  # the library sorts on every event; once per type is enough
                if len(self._merged) > 1000:  # a server can make up any number of commands
                    self._merged.clear()
                handlers = self.handlers
                matching = tuple(sorted(handlers.get("all_events", []) + handlers.get(event.type, [])))
                self._merged[event.type] = matching
            for handler in matching:
                try:
                    result = handler.callback(connection, event)
                except Exception:
                    log.exception("handler %s failed on %s", getattr(handler.callback, "__name__", handler), event.type)
                    continue
                if result == "NO MORE":
                    return


def add_handlers(reactor: irc.client.Reactor, handlers: Iterable[tuple[str, Callable]]) -> list[str]:
    """Register each ``(event, handler)`` on ``reactor`` (the public ``add_global_handler``,
    priority 0); returns the event names, for the contract test to check they exist."""
    events = []
    for event, handler in handlers:
        reactor.add_global_handler(event, handler)
        events.append(event)
    return events


def replaced_handlers(bot: irc.bot.SingleServerIRCBot) -> Iterator[tuple[str, Callable]]:
    """The ``(event, handler)`` pairs the library registers for ``bot`` and vbot replaces:
    ``SimpleIRCClient``'s ``_dispatcher`` (it logs every event at DEBUG) and
    ``SingleServerIRCBot``'s membership and disconnect handlers (they raise KeyError on
    events about channels the bot is not in, and reconnect by their own strategy)."""
    yield "all_events", bot._dispatcher
    for event in MEMBERSHIP_EVENTS:
        yield event, getattr(bot, "_on_" + event)
