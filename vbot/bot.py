"""The IRC side of vbot: a thin ``irc.bot.SingleServerIRCBot`` subclass for Twitch chat.

It reacts to ``on_<event>`` methods like any bot of the ``irc`` library, and
overrides the library only where it is wrong for Twitch or can die:

* ``GuardedReactor``: every event handler (the library's too) and every
  scheduled job runs inside a guard that logs and goes on;
* ``TwitchConnection``: lenient UTF-8 decoding, unparsable lines skipped,
  the time of the last data received kept for dead-link detection;
* membership handlers that ignore events about channels the bot is not in;
* ``Backoff``: per-instance exponential reconnect with jitter, 2 s to 60 s.

Twitch facts used here come from Twitch's "IRC Concepts" and "Chat & Chatbots"
docs (https://dev.twitch.tv/docs/chat/irc/).
"""

from __future__ import annotations

import collections
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable

import irc.bot
import irc.client
import irc.dict
import irc.events
import irc.schedule
from jaraco.stream.buffer import LenientDecodingLineBuffer

from vbot.chat import ChatMessage, Role, role_from_tags, tags_to_dict
from vbot.config import TWITCH_HOST, Config
from vbot.dispatch import Dispatcher
from vbot.outbox import Outbox

log = logging.getLogger(__name__)

CAPABILITIES = ("twitch.tv/membership", "twitch.tv/tags", "twitch.tv/commands")
LOGIN_FAILURES = ("Login authentication failed", "Login unsuccessful", "Improperly formatted auth")
"""NOTICE texts Twitch sends when it refuses PASS/NICK; retrying cannot help."""
WARNING_NOTICES = frozenset({
    "msg_ratelimit", "msg_duplicate", "msg_banned", "msg_timedout",
    "msg_channel_suspended", "msg_requires_verified_phone_number",
})
"""NOTICE msg-ids that mean a reply of ours was not delivered (Twitch docs, "IRC Concepts" > NOTICE)."""
CONNECT_TIMEOUT = 10.0
"""Seconds allowed for TCP connect plus TLS handshake, and for any one send."""
RECONNECT_AT_ONCE_EVERY = 30.0
"""Seconds: at most one RECONNECT per this time is followed at once; Twitch allows 20
login attempts per 10 s per account (Twitch docs, "Chat & Chatbots" > Rate limits)."""
MAX_LINE_CHARS = 16384
"""Longer lines are skipped; Twitch allows 8 KiB of tags plus a 512-byte message."""
LIBRARY_EVENTS = frozenset({*irc.events.generated, "pubmsg", "pubnotice", "privnotice", "action", "umode",
                            "all_events", "all_raw_messages"})
"""Event names the ``irc`` library makes up itself; a server line with such a command
(``DISCONNECT``, ``PUBMSG``...) would fire the library's handlers, so it is skipped."""


def make_connect_factory(tls: bool, timeout: float = CONNECT_TIMEOUT) -> Callable[[tuple[str, int]], socket.socket]:
    """A ``connect_factory`` for ``ServerConnection.connect``: ``(host, port) -> socket``.

    With ``tls`` the certificate is verified against the system CAs and the host
    name is sent as SNI. Raises OSError (refused, unreachable, DNS, TLS, timeout).
    """
    context = ssl.create_default_context() if tls else None

    def connect(address: tuple[str, int]) -> socket.socket:
        sock = socket.create_connection(address, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a PONG must not wait for an ACK
        if context is not None:
            try:
                sock = context.wrap_socket(sock, server_hostname=address[0])
            except BaseException:
                sock.close()
                raise
        return sock

    return connect


_RFC1459_FOLD = str.maketrans("[]\\^", "{}|~")


class NameDict(irc.dict.IRCDict):
    """The library's IRCDict, but its keys are plain strings folded once on the way in.

    ``IRCDict`` keeps each key as an ``IRCFoldedCase``, which folds the name again on
    every hash and comparison: in ``python -m bench`` that cost 20 to 35 µs per JOIN or
    PART and about 95 bytes per tracked viewer. Lookups here compare the same way
    (casefold, then RFC 1459's ``[]\\^`` as ``{}|~``); the keys it returns are the
    folded names, which on Twitch are the logins themselves.

    >>> names = NameDict()
    >>> names["Alice[m]"] = 1
    >>> "ALICE{M}" in names, list(names)
    (True, ['alice{m}'])
    """

    @staticmethod
    def transform_key(key):
        return key.casefold().translate(_RFC1459_FOLD) if isinstance(key, str) else key


class TrackedChannel(irc.bot.Channel):
    """The library's Channel (users, modes, ``is_oper``...) over NameDicts."""

    def __init__(self):
        super().__init__()
        self._users = NameDict()
        self.mode_users = collections.defaultdict(NameDict)

    def viewer_count(self, bot_nick: str) -> int:
        """Users in the channel, ``bot_nick`` (the bot itself) excluded."""
        return len(self._users) - self.has_user(bot_nick)


class GuardedScheduler(irc.schedule.DefaultScheduler):
    """The library's scheduler, but a job that raises is logged and does not stop the loop."""

    def run(self, command) -> None:
        try:
            command.target()
        except Exception:
            log.exception("scheduled job %r failed", command.target)


class TwitchConnection(irc.client.ServerConnection):
    """A ServerConnection that survives anything the server sends.

    Invalid UTF-8 is decoded as Latin-1 (``LenientDecodingLineBuffer``, set on the
    class because the buffer is recreated on every connect); a line that does not
    parse, is longer than MAX_LINE_CHARS, or has one of LIBRARY_EVENTS as its
    command is logged at DEBUG and skipped. ``last_received`` is the
    ``time.monotonic()`` of the last read with data.
    """

    buffer_class = LenientDecodingLineBuffer
    last_received = 0.0

    def process_data(self):
        self.last_received = time.monotonic()
        super().process_data()

    def _process_line(self, line):
        if len(line) > MAX_LINE_CHARS:
            log.debug("skipping a line of %d characters", len(line))
            return
        try:
            super()._process_line(line)
        except Exception as error:
            log.debug("skipping a line that does not parse (%s): %r", error, line[:300])

    def _handle_other(self, arguments, command, source, tags):
        # Every command but PRIVMSG and NOTICE comes here, lowercased: checking here costs
        # chat lines nothing, where a second parse of each line cost about 1 µs.
        if command in LIBRARY_EVENTS:
            log.debug("skipping a line with the unknown command %r", command)
            return
        super()._handle_other(arguments, command, source, tags)

    def send_raw(self, string):
        """The library's, but with ``sendall``: its ``send`` may write part of a line when the
        socket buffer is full, and the socket has a timeout. OSError drops the connection."""
        if self.socket is None:
            raise irc.client.ServerNotConnectedError("Not connected.")
        try:
            self.socket.sendall(self._prep_message(string))
            log.debug("TO SERVER: %s", string)
        except OSError:
            self.disconnect("Connection reset by peer.")

    def pong(self, target, target2=""):
        """Answer a PING; a token too long to echo within 512 bytes is not answered (DEBUG)."""
        try:
            super().pong(target, target2)
        except irc.client.MessageTooLong:
            log.debug("not answering a PING with a %d-character token", len(target))


class GuardedReactor(irc.client.Reactor):
    """A Reactor whose handlers cannot raise into the loop: each is logged and skipped.

    The handlers for an event type are merged and sorted once, not on every event.
    """

    connection_class = TwitchConnection
    scheduler_class = GuardedScheduler

    def __init__(self, *args, **kwargs):
        self._merged: dict[str, tuple] = {}  # event type -> its handlers and all_events', sorted
        super().__init__(*args, **kwargs)

    def add_global_handler(self, event, handler, priority=0):
        with self.mutex:
            super().add_global_handler(event, handler, priority)
            self._merged.clear()

    def remove_global_handler(self, event, handler):
        with self.mutex:
            self._merged.clear()
            return super().remove_global_handler(event, handler)

    def _handle_event(self, connection, event):
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


class Backoff(irc.bot.ReconnectStrategy):
    """Reconnect with exponential backoff and jitter, one instance per bot.

    The n-th retry after a drop waits ``min(cap, first * 2**n)`` seconds times a
    random factor in [0.5, 1); ``reset()`` (on welcome) starts over. ``rng()``
    returns a float in [0, 1).
    """

    def __init__(self, first: float = 2.0, cap: float = 60.0, rng: Callable[[], float] = random.random):
        self.first, self.cap, self.rng = first, cap, rng
        self.attempt = 0
        self._scheduled = False

    def reset(self) -> None:
        """Start the next drop's retries from ``first`` again."""
        self.attempt = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; advances the attempt counter."""
        delay = min(self.cap, self.first * 2 ** self.attempt) * (0.5 + self.rng() / 2)
        self.attempt = min(self.attempt + 1, 16)
        return delay

    def run(self, bot: VBot) -> None:
        """Called by the library on every disconnect: schedule one reconnect attempt."""
        if self._scheduled or bot.exit_code is not None:
            return
        delay = self.next_delay()
        log.warning("not connected to %s:%s; next attempt in %.1f s", bot.config.host, bot.config.port, delay)
        self._scheduled = True
        bot.reactor.scheduler.execute_after(delay, lambda: self._attempt(bot))

    def _attempt(self, bot: VBot) -> None:
        self._scheduled = False
        if bot.exit_code is None and not bot.connection.is_connected():
            bot.jump_server()


class VBot(irc.bot.SingleServerIRCBot):
    """vbot's connection to one IRC server (Twitch, or any RFC 1459 server for tests).

    ``dispatcher`` turns chat messages into replies, ``outbox`` paces them.
    ``run()`` connects and returns the exit code: 0 after a stop request, 3 after
    Twitch refused the login.
    """

    reactor_class = GuardedReactor

    def __init__(self, config: Config, dispatcher: Dispatcher, outbox: Outbox | None = None,
                 reconnect: Backoff | None = None, reload: Callable[[], str] | None = None):
        spec = irc.bot.ServerSpec(config.host, config.port, config.password)
        super().__init__([spec], config.username, config.username, recon=reconnect or Backoff(),
                         connect_factory=make_connect_factory(config.tls))
        self.channels = NameDict()
        self.config = config
        self.dispatcher = dispatcher
        self.outbox = Outbox() if outbox is None else outbox  # an empty Outbox is falsy
        self.reload = reload
        self.exit_code: int | None = None
        self._flush_scheduled = False
        self._pinged_for = -1.0
        self._connected_at = 0.0
        self.reactor._on_connect = self._on_socket_connected
        if not config.tls and config.host == TWITCH_HOST:
            log.warning("VBOT_TLS=false: the token travels to Twitch in clear text")
        tick = min(1.0, config.ping_timeout / 4)
        self.reactor.scheduler.execute_every(tick, self._check_alive)

    # --- life cycle -------------------------------------------------------

    def run(self, poll: float = 0.2) -> int:
        """Connect, process events until a stop, send QUIT, and return the exit code."""
        self._connect()
        while self.exit_code is None:
            try:
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload_commands()
                self.reactor.process_once(timeout=poll)
            except Exception:
                log.exception("error in the event loop; carrying on")
                time.sleep(poll)
        if self.connection.is_connected():
            self.connection.disconnect("Goodbye")
        return self.exit_code

    _reload_requested = False

    def request_reload(self) -> None:
        """Reload custom commands in the event loop, within ``poll`` seconds (safe from signal handlers)."""
        self._reload_requested = True

    def request_stop(self, exit_code: int = 0) -> None:
        """End ``run()`` with ``exit_code`` (safe from signal handlers and other threads)."""
        if self.exit_code is None:
            self.exit_code = exit_code

    def connect(self, *args, **kwargs):
        try:
            super().connect(*args, **kwargs)
        except irc.client.ServerConnectionError as error:
            log.warning("could not connect to %s:%s: %s", self.config.host, self.config.port, error.__cause__ or error)
            raise

    def _on_socket_connected(self, sock) -> None:
        """Reactor hook, called before the library sends PASS and NICK: request capabilities."""
        self.connection.last_received = self._connected_at = time.monotonic()
        self.connection.cap("REQ", *CAPABILITIES)

    def _check_alive(self) -> None:
        """Every tick: PING after ping_interval of silence; reconnect after ping_timeout more,
        or when the server has not welcomed us (001) within ping_interval + ping_timeout."""
        connection = self.connection
        if not connection.is_connected():
            return
        deadline = self.config.ping_interval + self.config.ping_timeout
        idle = time.monotonic() - connection.last_received
        if idle >= deadline:
            log.warning("no data from the server for %.0f s; reconnecting", idle)
            connection.disconnect("Ping timeout")
        elif not self._welcomed and time.monotonic() - self._connected_at >= deadline:
            log.warning("no welcome from the server within %.0f s of connecting; reconnecting", deadline)
            connection.disconnect("Login timeout")
        elif idle >= self.config.ping_interval and self._pinged_for != connection.last_received:
            self._pinged_for = connection.last_received
            connection.ping("tmi.twitch.tv")

    _reconnecting = False
    _reconnected_at = -RECONNECT_AT_ONCE_EVERY

    def _reconnect_now(self) -> None:
        """Close and connect again at once, without backoff or warning; a failed connect
        is then retried with backoff like any other. A second RECONNECT within
        RECONNECT_AT_ONCE_EVERY seconds goes through the backoff, so a server that keeps
        asking cannot make vbot exceed Twitch's login limit."""
        if self.exit_code is not None:
            return
        if time.monotonic() - self._reconnected_at < RECONNECT_AT_ONCE_EVERY:
            self.connection.disconnect("Reconnecting")
        else:
            self._reconnected_at = time.monotonic()
            self._reconnecting = True
            self.connection.disconnect("Reconnecting")
            self._reconnecting = False
            self._connect()

    # --- server events ------------------------------------------------------

    def _dispatcher(self, connection, event):
        """The library's: call ``on_<event.type>`` when defined; without its DEBUG line per event."""
        method = getattr(self, "on_" + event.type, None)
        if method is not None:
            method(connection, event)

    def on_cap(self, connection, event):
        if event.arguments[:1] == ["NAK"]:
            log.warning("server refused capabilities: %s", " ".join(event.arguments[1:]))
            if not self._welcomed:
                connection.cap("END")  # a standard server holds registration until CAP END

    _welcomed = False

    def on_welcome(self, connection, event):
        self._welcomed = True
        self.recon.reset()
        log.info("logged in to %s:%s as %s", self.config.host, self.config.port, self.config.username)
        for channel in self.config.channels:
            connection.join(channel)
        self._flush()

    def on_reconnect(self, connection, event):
        """Twitch's RECONNECT: reconnect at once, after the lines of this read are handled."""
        log.info("server asked us to reconnect")
        self.reactor.scheduler.execute_after(0, self._reconnect_now)

    def on_error(self, connection, event):
        """The server's ERROR line, sent before it closes the connection (RFC 2812, 3.7.4)."""
        log.warning("server closed the connection: %s", event.target or "no reason given")

    def on_privnotice(self, connection, event):
        text = event.arguments[0] if event.arguments else ""
        if any(text.startswith(failure) for failure in LOGIN_FAILURES):
            log.error("Twitch refused the login (%s): check VBOT_TOKEN and that it has the "
                      "chat:read and chat:edit scopes", text)
            self.request_stop(3)
            return
        self._notice(event)

    def on_pubnotice(self, connection, event):
        self._notice(event)

    def _notice(self, event) -> None:
        msg_id = tags_to_dict(event.tags).get("msg-id", "")
        if msg_id in WARNING_NOTICES:
            log.warning("%s in %s: %s", msg_id, event.target, event.arguments[0] if event.arguments else "")
            if msg_id == "msg_ratelimit" and irc.client.is_channel(event.target or ""):
                self.outbox.pause(event.target.lower())
        else:
            log.info("notice %s: %s", msg_id or event.target, " ".join(event.arguments))

    def on_userstate(self, connection, event):
        """Learn whether the bot is broadcaster, moderator or VIP here (higher send limit)."""
        channel = (event.target or "").lower()
        role = role_from_tags(tags_to_dict(event.tags), self.config.username, channel)
        self.outbox.set_privileged(channel, role >= Role.VIP)

    def on_ctcp(self, connection, event):
        """Twitch has no CTCP: ignore it (the library's default replies, and can raise)."""

    # --- membership: the library's tracking, minus its KeyErrors -----------

    def _is_tracked(self, connection, event) -> bool:
        """True when ``event`` is about a channel the bot is in (or the bot joining one)."""
        channel = event.target
        if not channel or event.source is None:
            return False
        return channel in self.channels or event.source.nick == connection.get_nickname()

    def _on_join(self, connection, event):
        if not self._is_tracked(connection, event):
            return
        nick = event.source.nick
        if nick == connection.get_nickname():
            if event.target in self.channels:
                return  # a duplicate JOIN of our own would forget everyone
            self.channels[event.target] = TrackedChannel()
        self.channels[event.target].add_user(nick)

    def _on_disconnect(self, connection, event):
        """Replaces the library's handler: warn, forget every channel (rebuilt from the next
        JOIN/NAMES) and schedule a reconnect, unless ``_reconnect_now`` is connecting already."""
        if self._welcomed and self.exit_code is None and not self._reconnecting:
            log.warning("disconnected: %s", " ".join(event.arguments) or "connection closed")
        self._welcomed = False
        self.channels = NameDict()
        if not self._reconnecting:
            self.recon.run(self)

    def _on_part(self, connection, event):
        if self._is_tracked(connection, event) and event.target in self.channels:
            super()._on_part(connection, event)

    def _on_quit(self, connection, event):
        if event.source is not None:
            super()._on_quit(connection, event)

    def _on_kick(self, connection, event):
        if event.target in self.channels and event.arguments:
            super()._on_kick(connection, event)

    def _on_mode(self, connection, event):
        if event.target in self.channels:
            super()._on_mode(connection, event)

    def _on_namreply(self, connection, event):
        if len(event.arguments) == 3 and event.arguments[1] in self.channels:
            super()._on_namreply(connection, event)

    def viewer_count(self, channel: str) -> int:
        """Chatters Twitch has reported in ``channel`` (JOIN/NAMES), the bot excluded."""
        if channel not in self.channels:
            return 0
        return self.channels[channel].viewer_count(self.connection.get_nickname())

    # --- chat ------------------------------------------------------------------

    def on_pubmsg(self, connection, event):
        if event.source is None:
            log.debug("skipping a message without a sender in %s", event.target)
            return
        text = event.arguments[0]
        if not self.dispatcher.is_command(text) or event.target not in self.channels:
            return
        message = self._chat_message(event, text)
        reply = self.dispatcher.handle(message, self)
        if reply:
            self.say(message.channel, reply)

    def _chat_message(self, event, text: str) -> ChatMessage:
        channel = event.target.lower()
        login = event.source.nick.lower()
        tags = tags_to_dict(event.tags)
        role = role_from_tags(tags, login, channel)
        if role < Role.MODERATOR and channel in self.channels and self.channels[channel].is_oper(login):
            role = Role.MODERATOR  # plain IRC: a channel operator counts as moderator
        return ChatMessage(channel, login, text, role, tags.get("display-name", ""), tags)

    def reload_commands(self) -> str:
        """Reload custom commands through the ``reload`` callable given at construction."""
        return self.reload() if self.reload else "No custom commands file to reload."

    def say(self, channel: str, text: str) -> None:
        """Queue ``text`` for ``channel`` and send what the limits allow now. Never raises."""
        if self.config.is_anonymous:
            log.debug("anonymous login: not sending to %s", channel)
            return
        self.outbox.submit(channel, text)
        self._flush()

    def _flush(self) -> None:
        if not (self._welcomed and self.connection.is_connected()):
            return  # on_welcome flushes again
        for channel, text in self.outbox.take_ready():
            try:
                self.connection.privmsg(channel, text)
            except Exception:
                log.exception("could not send a reply to %s", channel)
        wait = self.outbox.wait_time()
        if wait is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            self.reactor.scheduler.execute_after(wait, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        dropped = self.outbox.take_dropped()
        if dropped:
            log.warning("too many replies waiting: dropped the %d oldest", dropped)
        self._flush()
