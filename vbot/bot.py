"""The IRC side of vbot: a thin ``irc.bot.SingleServerIRCBot`` subclass for Twitch chat.

Events in, domain calls out: server events arrive as ``on_<event>`` methods (the
library's convention) and become calls on the Session (connection life cycle),
the Dispatcher (commands), the Outbox (sending) and the channel tracking. Every
override of the library's internals lives in ``vbot.irclib``.

Twitch facts used here come from Twitch's "IRC Concepts" and "Chat & Chatbots"
docs (https://dev.twitch.tv/docs/chat/irc/).
"""

from __future__ import annotations

import functools
import logging
import math
import socket
import sqlite3
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import irc.bot
import irc.client
import irc.modes

from vbot.chat import ChatMessage, Role, role_from_tags, tags_to_dict
from vbot.config import Config, ConfigError
from vbot.dispatch import Dispatcher, no_reload
from vbot.health import Health
from vbot.irclib import GuardedReactor, make_connect_factory, replaced_handlers
from vbot.joins import MAX_CHANNELS_WARNING, REFUSED_GIVE_UP, Joins
from vbot.modes import Isupport, Members
from vbot.network import is_twitch
from vbot.notify import Notifier
from vbot.outbox import Outbox
from vbot.session import Action, Backoff, Phase, Session
from vbot.timers import TimerSchedule

if TYPE_CHECKING:  # the token code is imported only with a token (vbot.cli)
    from vbot.keeper import CannotLogIn, TokenKeeper

log = logging.getLogger(__name__)


class Stopping(BaseException):
    """Raised by a signal handler to abandon a blocking connect; ends ``VBot.run``."""


CAPABILITIES = ("twitch.tv/membership", "twitch.tv/tags", "twitch.tv/commands")
LOGIN_FAILURES = ("Login authentication failed", "Login unsuccessful", "Improperly formatted auth")
"""NOTICE texts Twitch sends when it refuses PASS/NICK; retrying cannot help."""
WARNING_NOTICES = frozenset(
    {
        "msg_ratelimit",
        "msg_duplicate",
        "msg_banned",
        "msg_timedout",
        "msg_channel_suspended",
        "msg_requires_verified_phone_number",
    }
)
"""NOTICE msg-ids that mean a reply of ours was not delivered (Twitch docs, "IRC Concepts" > NOTICE)."""
NICK_REFUSALS = ("erroneusnickname", "nicknameinuse", "nickcollision", "unavailresource")
"""432, 433, 436, 437 (RFC 2812 section 5.2), as the irc library names them."""
JOIN_REFUSALS = (
    "channelisfull",
    "inviteonlychan",
    "bannedfromchan",
    "badchannelkey",
    "nosuchchannel",
    "toomanychannels",
    "nochanmodes",
)
"""471, 473, 474, 475, 403, 405, 477: the server refused a JOIN (RFC 2812 section 5.2)."""
REPLY_REFUSALS = ("cannotsendtochan", "417")
"""404 (RFC 2812) and 417 ERR_INPUTTOOLONG (modern.ircdocs.horse): a PRIVMSG not delivered."""


class VBot(irc.bot.SingleServerIRCBot):
    """vbot's connection to one IRC server (Twitch, or any RFC 1459 server for tests).

    ``dispatcher`` turns chat messages into replies, ``outbox`` paces them, ``session``
    decides when to connect, PING and give up. ``keeper`` (vbot.keeper; None for a plain IRC
    server or an anonymous login) keeps the token fresh: it is asked for the PASS before every
    connect, so a reconnect always sends the current token.
    ``clock()`` returns monotonic seconds; ``connect_factory((host, port)) -> socket`` opens
    the connection (TLS as configured by default). ``timers`` post to chat (vbot.timers);
    ``notifier`` tells systemd how the bot is (vbot.notify). ``run()`` returns the exit code: 0 after a stop
    request, 3 after Twitch refused the login.
    """

    reactor_class: Callable[..., GuardedReactor] = GuardedReactor

    def __init__(
        self,
        config: Config,
        dispatcher: Dispatcher,
        outbox: Outbox | None = None,
        reconnect: Backoff | None = None,
        reload: Callable[[], str] = no_reload,
        clock: Callable[[], float] = time.monotonic,
        connect_factory: Callable[[tuple[str, int]], socket.socket] | None = None,
        timers: TimerSchedule | None = None,
        notifier: Notifier | None = None,
        keeper: TokenKeeper | None = None,
    ):
        # Reactor's on_connect runs once the socket is up, before the library sends PASS and NICK.
        self.reactor_class = functools.partial(GuardedReactor, on_connect=self._on_socket_connected)
        super().__init__([], config.username, config.username)
        for event, handler in replaced_handlers(self):
            self.reactor.remove_global_handler(event, handler)
        self.connection.chat_handler = self.chat_line  # chat lines skip the library's events (vbot.irclib)
        for event, handler, priority in [
            ("all_events", self._on_any_event, -10),
            ("disconnect", self._track_disconnect, -20),
            ("join", self._track_join, -20),
            ("part", self._track_part, -20),
            ("quit", self._track_quit, -20),
            ("kick", self._track_kick, -20),
            ("nick", self._track_nick, -20),
            ("mode", self._track_mode, -20),
            ("namreply", self._track_namreply, -20),
        ]:
            self.reactor.add_global_handler(event, handler, priority)
        for events, handler in [
            (NICK_REFUSALS, self._nick_refused),
            (JOIN_REFUSALS, self._join_refused),
            (REPLY_REFUSALS, self._reply_refused),
        ]:
            for event in events:
                self.reactor.add_global_handler(event, handler)
        self.reactor.clock = clock
        self.config = config
        self.dispatcher = dispatcher
        self.outbox = Outbox() if outbox is None else outbox  # an empty Outbox is falsy
        self.session = Session(config.ping_interval, config.ping_timeout, reconnect, clock)
        self.joins = Joins(clock=clock)
        self.reload = reload
        self.timers = timers or TimerSchedule((), clock=clock)
        self.timers.bot_login = config.username  # known by now even when learned from the token
        self.notifier = notifier or Notifier()
        self.started_at = clock()
        self.sent = 0  # chat messages sent since start
        self.dropped = 0  # replies dropped since start because too many were waiting
        self.ping_rtt: float | None = None  # seconds, the last PING's round trip
        self._ping_sent_at: float | None = None
        self._timers_check_at = -math.inf
        self.keeper = keeper
        self._keeper_tick_at = -math.inf
        self.channels: dict[str, Members] = {}  # folded channel name -> its members
        self.isupport = Isupport()  # the server's rules for names and modes, from its 005 lines
        self.is_twitch = config.is_twitch_host  # settled at the welcome (vbot.network.is_twitch)
        self._acknowledged: set[str] = set()  # capabilities the server acknowledged
        self._own_source = ""  # the bot's nick!user@host as the server shows it (plain IRC)
        self._closing_reason = ""  # the server's ERROR, logged with the drop that follows
        self.exit_code: int | None = None
        self._reload_requested = False
        self._flush_scheduled = False
        self._connect_factory = connect_factory or make_connect_factory(config.tls)
        if not config.tls and config.is_twitch_host:
            log.warning("VBOT_TLS=false: the token travels to Twitch in clear text")
        if len(config.channels) > MAX_CHANNELS_WARNING:
            log.warning(
                "%d channels configured: Twitch limits how many channels one account may join "
                "(channels where it is broadcaster or moderator do not count); JOINs go out at "
                "20 per 10 s",
                len(config.channels),
            )

    # --- life cycle -------------------------------------------------------

    def run(self, poll: float = 0.2) -> int:
        """Connect, process events until a stop, send QUIT, and return the exit code.

        ``poll`` is the longest wait for data, in seconds, between two checks of the session.
        """
        while self.exit_code is None:
            try:
                if self._reload_requested:
                    self._reload_requested = False
                    self.reload()
                with self.reactor.mutex:
                    self._step()
                self.reactor.process_once(timeout=poll)
            except Stopping:
                break
            except Exception:
                log.exception("error in the event loop; carrying on")
                time.sleep(poll)
            self.notifier.keep_alive()
        log.info(
            "stopping (exit code %d)%s", self.exit_code or 0, "; sending QUIT" if self.connection.is_connected() else ""
        )
        self.notifier.stopping("stopping")
        if self.connection.is_connected():
            self.connection.disconnect("Goodbye")
        return self.exit_code if self.exit_code is not None else 0

    def request_reload(self) -> None:
        """Reload custom commands in the event loop, within ``poll`` seconds (safe from signal handlers)."""
        self._reload_requested = True

    def request_stop(self, exit_code: int = 0) -> None:
        """End ``run()`` with ``exit_code`` (safe from signal handlers and other threads)."""
        if self.exit_code is None:
            self.exit_code = exit_code

    def stop_from_signal(self, exit_code: int = 0) -> None:
        """``request_stop`` for a signal handler: also abandons a TCP connect or TLS handshake
        under way (which could otherwise block for CONNECT_TIMEOUT seconds) by raising Stopping."""
        self.request_stop(exit_code)
        if self.session.phase is Phase.CONNECTING:
            raise Stopping

    def _step(self) -> None:
        """Do what the session says now: connect, PING, or drop a dead connection."""
        step = self.session.check(self.connection.last_received)
        if step.action is Action.CONNECT:
            self._open_connection()
        elif step.action is Action.PING:
            self._ping_sent_at = self.session.clock()
            self.connection.ping("tmi.twitch.tv")
        elif step.action is Action.DISCONNECT:
            self._closing_reason = step.why  # logged with the drop, as one line
            self.connection.disconnect(step.quit_message)
        if self.keeper is not None and self.session.clock() >= self._keeper_tick_at:
            self._keeper_tick_at = self.session.clock() + 1.0
            stop = self.keeper.tick()  # never blocks: the token service is called in the background
            if stop is not None:
                self._cannot_log_in(stop)
        if self.session.phase is Phase.WELCOMED:
            self._send_joins()
            if self.session.clock() >= self._timers_check_at:
                self._post_timers()

    def _post_timers(self) -> None:
        """Post what the timers allow now (through the outbox, like any reply); ask again at
        the timers' wait time, and at least every second (a reload may change them)."""
        for post in self.timers.take_due():
            try:
                text = post.text(self)
            except (ConfigError, sqlite3.Error) as error:  # {count}'s state file
                log.warning("timer %r in %s not posted: %s", post.timer.name, post.channel, error)
                continue
            self.say(post.channel, text)
        wait = self.timers.wait_time()
        self._timers_check_at = self.session.clock() + min(1.0 if wait is None else wait, 1.0)

    def _send_joins(self) -> None:
        """JOIN the channels the join pacing releases now (see vbot.joins)."""
        for channel in self.joins.take_ready():
            if not self.connection.is_connected():
                return  # dropped while joining: the next welcome queues every channel again
            self.connection.join(channel)

    def _open_connection(self) -> None:
        """Before connecting (a fresh token), then connect; a failure waits with backoff.

        Both may block (the token service's timeout, the connect timeout): the session is
        CONNECTING meanwhile, so a SIGTERM abandons them (``stop_from_signal``)."""
        self.session.connecting()
        password = self.config.password
        if self.keeper is not None:
            from vbot.keeper import CannotLogIn

            try:
                password = self.keeper.before_connect()
            except CannotLogIn as error:
                self._cannot_log_in(error)
                return
            self.notifier.keep_alive()  # the token step and the connect each stay within the watchdog
        try:
            self.connection.connect(
                self.config.host,
                self.config.port,
                self.config.username,
                password,
                connect_factory=self._connect_factory,
            )
        except irc.client.ServerConnectionError as error:
            delay = self.session.connect_failed()
            log.warning(
                "could not connect to %s:%s: %s; next attempt in %.1f s",
                self.config.host,
                self.config.port,
                error.__cause__ or error,
                delay,
            )
            self.notifier.status(f"reconnecting in {delay:.1f} s")
            return
        self.connection.last_received = self.session.clock()
        self.session.connected()

    def _on_socket_connected(self, sock: socket.socket) -> None:
        """Request Twitch's capabilities first: CAP REQ goes before PASS and NICK."""
        self.connection.cap("REQ", *CAPABILITIES)

    def _cannot_log_in(self, error: CannotLogIn) -> None:
        """The token was revoked or cannot be renewed: QUIT and exit 3 (Twitch requires ending the session)."""
        log.error("cannot log in to Twitch: %s", error)
        self.request_stop(3)

    def _reconnect_now(self) -> None:
        """Close and connect again, at once unless the session paces it (see Session.reconnect_requested)."""
        if self.exit_code is not None:
            return
        if not self.connection.is_connected():
            return  # the drop has already been handled
        self.session.reconnect_requested()
        self.connection.disconnect("Reconnecting")

    # --- server events ------------------------------------------------------

    def _on_any_event(self, connection, event) -> None:
        """Call ``on_<event.type>`` when defined (the library's ``_dispatcher``, without its DEBUG line)."""
        method = getattr(self, "on_" + event.type, None)
        if method is not None:
            method(connection, event)

    def on_cap(self, connection, event):
        if event.arguments[:1] == ["ACK"] and len(event.arguments) > 1:
            self._acknowledged.update(event.arguments[1].split())
        if event.arguments[:1] == ["NAK"]:  # a warning on Twitch, where membership tracking needs them
            log.log(
                logging.WARNING if self.is_twitch else logging.INFO,
                "server refused capabilities: %s",
                " ".join(event.arguments[1:]),
            )
            if self.session.phase is not Phase.WELCOMED:
                connection.cap("END")  # a standard server holds registration until CAP END

    def on_welcome(self, connection, event):
        self.session.welcomed()
        if self.keeper is not None:
            self.keeper.logged_in()
        count = len(self.config.channels)
        status = f"logged in as {self.config.username}, {count} channel{'' if count == 1 else 's'}"
        if self.session.logins == 1:
            self.notifier.ready(status)
        else:
            self.notifier.status(status)
        self.is_twitch = is_twitch(self.config.host, str(event.source or ""), self._acknowledged)
        self.outbox.vary_repeats = self.is_twitch  # the invisible suffix is for Twitch's msg_duplicate only
        if not self.is_twitch:
            self.outbox.set_relay_prefix(connection.get_nickname())  # a margin until the JOIN echo shows ours
        log.info("logged in to %s:%s as %s", self.config.host, self.config.port, self.config.username)
        self.joins.want_all(self.config.channels)
        self._send_joins()
        self._flush()

    def on_reconnect(self, connection, event):
        """Twitch's RECONNECT: reconnect at once, after the lines of this read are handled."""
        log.info("server asked us to reconnect")
        self.reactor.scheduler.execute_after(0, self._reconnect_now)

    def on_error(self, connection, event):
        """The server's ERROR line, sent before it closes the connection (RFC 2812, 3.7.4):
        its reason is logged with the drop that follows, as one line."""
        self._closing_reason = f"server closed the connection: {event.target or 'no reason given'}"

    def _nick_refused(self, connection, event) -> None:
        """433, 432, 436, 437 at login: close, and try again later (the backoff paces it); the
        nick and the server's reason are logged with the drop, as one line."""
        if self.session.phase is Phase.WELCOMED:
            return
        reason = event.arguments[-1] if event.arguments else event.type
        self._closing_reason = f"the server refused the nick {self.config.username}: {reason}"
        connection.disconnect("Nick refused")

    def _join_refused(self, connection, event) -> None:
        """471, 473, 474, 475, 403, 405, 477: say so, and retry through the join pacing, a few times."""
        channel = (event.arguments[0] if event.arguments else "").lower()
        if channel not in self.joins:
            return
        reason = event.arguments[-1] if len(event.arguments) > 1 else event.type
        delay = self.joins.rejoin_later(channel, refused=True)
        if delay is None:
            log.error("giving up joining %s after %d refusals: %s", channel, REFUSED_GIVE_UP, reason)
        else:
            log.warning("the server refused to let the bot join %s: %s; trying again in %.0f s", channel, reason, delay)

    def _reply_refused(self, connection, event) -> None:
        """404 ``<channel> :<reason>``, 417 ``:<reason>`` (no channel) and the like: a reply the
        server did not deliver."""
        reason = event.arguments[-1] if event.arguments else event.type
        if len(event.arguments) > 1:
            log.warning("the server refused a reply to %s: %s", event.arguments[0], reason)
        else:
            log.warning("the server refused a reply: %s", reason)

    def on_396(self, connection, event):
        """RPL_HOSTHIDDEN (396, not named by the irc library): the host others now see for the bot."""
        if self.is_twitch or not event.arguments:
            return
        nick, user = connection.get_nickname(), f"~{self.config.username}"
        if "!" in self._own_source:
            user = self._own_source.split("!", 1)[1].split("@", 1)[0]
        self._own_source = f"{nick}!{user}@{event.arguments[0]}"
        self.outbox.set_relay_prefix(self._own_source)

    def on_privnotice(self, connection, event):
        text = event.arguments[0] if event.arguments else ""
        from_server = event.source is None or "!" not in event.source  # a server's prefix has no nick!user@host
        if from_server and self.session.phase is not Phase.WELCOMED and text.startswith(LOGIN_FAILURES):
            if self.keeper is not None and text.startswith("Login authentication failed"):
                stop = self.keeper.login_failed()  # None: renew the token before the next attempt
                if stop is None:
                    log.warning("Twitch refused the login; renewing the token and logging in again at once")
                    self.session.retry_at_once()  # the keeper renews the token before the next connect
                    connection.disconnect("Login refused")  # Twitch closes it too; do not wait for that
                else:
                    self._cannot_log_in(stop)
                return
            fix = (
                'run "vbot login" again'
                if self.keeper is not None
                else 'check VBOT_TOKEN, or run "vbot login" for a token vbot renews by itself'
            )
            log.error(
                "Twitch refused the login (%s): %s; the token needs the chat:read and chat:edit scopes", text, fix
            )
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

    # --- membership: who is in each channel, by the server's own rules (vbot.modes) ---------

    def members(self, channel: str) -> Members | None:
        """The members of ``channel`` (any case), or None when the bot is not in it."""
        return self.channels.get(self.isupport.fold(channel))

    def on_featurelist(self, connection, event):
        """ISUPPORT (005): the server's PREFIX, CHANMODES and CASEMAPPING (Twitch sends none)."""
        self.isupport = self.isupport.update(event.arguments)

    def _track_disconnect(self, connection, event) -> None:
        """Forget every channel (rebuilt from the next JOIN/NAMES) and let the session decide the retry."""
        self.channels = {}
        self.timers.set_channels(())
        self.isupport = Isupport()
        self._acknowledged = set()
        self.joins.clear_queue()
        if self.exit_code is not None:
            return
        reason = self._closing_reason or " ".join(event.arguments).strip(" .") or "connection closed"
        self._closing_reason = ""
        drop = self.session.dropped()
        if drop.planned:
            return
        log.warning(
            "%s %s:%s: %s; next attempt in %.1f s",
            "disconnected from" if drop.was_welcomed else "not connected to",
            self.config.host,
            self.config.port,
            reason,
            drop.delay,
        )
        self.notifier.status(f"reconnecting in {drop.delay:.1f} s")

    def _is_me(self, nick: str) -> bool:
        return self.isupport.fold(nick) == self.isupport.fold(self.connection.get_nickname())

    def _track_join(self, connection, event) -> None:
        if not event.target or event.source is None:
            return
        key = self.isupport.fold(event.target)
        if self._is_me(event.source.nick):
            if key in self.channels:
                return  # a duplicate JOIN of our own would forget everyone
            self.channels[key] = Members(self.isupport)
            self.timers.set_channels(self.channels)
            self.joins.joined(event.target.lower())
            if not self.is_twitch:
                self._own_source = str(event.source)
                self.outbox.set_relay_prefix(self._own_source)
        members = self.channels.get(key)
        if members is not None:
            members.add(event.source.nick)

    def _track_part(self, connection, event) -> None:
        if event.source is None or not event.target:
            return
        reason = event.arguments[0] if event.arguments else ""
        self._remove(event.target, event.source.nick, f"parted by the server ({reason or 'no reason'})")

    def _track_kick(self, connection, event) -> None:
        if not event.target or not event.arguments:
            return
        reason = event.arguments[1] if len(event.arguments) > 1 else ""
        who = event.source.nick if event.source else "the server"
        self._remove(event.target, event.arguments[0], f"kicked by {who} ({reason or 'no reason'})")

    def _remove(self, channel: str, nick: str, why: str) -> None:
        members = self.members(channel)
        if members is None:
            return
        if not self._is_me(nick):
            members.remove(nick)
            return
        del self.channels[self.isupport.fold(channel)]
        self.timers.set_channels(self.channels)
        channel = channel.lower()
        if channel not in self.joins:
            log.info("left %s", channel)
            return
        delay = self.joins.rejoin_later(channel)
        log.warning("the bot was %s in %s; rejoining in %.0f s", why, channel, delay)

    def _track_quit(self, connection, event) -> None:
        if event.source is None:
            return
        for members in self.channels.values():
            members.remove(event.source.nick)

    def _track_nick(self, connection, event) -> None:
        if event.source is None or not event.target:
            return
        for members in self.channels.values():
            members.rename(event.source.nick, event.target)

    def _track_mode(self, connection, event) -> None:
        members = self.members(event.target or "")
        if members is not None:
            members.apply_modes(self.isupport.parse_modes(event.arguments))

    def _track_namreply(self, connection, event) -> None:
        """RPL_NAMREPLY (353): ``[type, channel, "nick @op +voiced ..."]``."""
        if len(event.arguments) != 3:
            return
        members = self.members(event.arguments[1])
        if members is None:
            return
        for entry in event.arguments[2].split():
            modes, nick = self.isupport.split_prefixes(entry)
            if nick:
                members.add(nick, modes)

    def viewer_count(self, channel: str) -> int:
        """Chatters the server has reported in ``channel`` (JOIN/NAMES), the bot excluded."""
        members = self.members(channel)
        return 0 if members is None else members.viewer_count(self.connection.get_nickname())

    # --- chat ------------------------------------------------------------------

    def chat_line(self, channel: str, nick: str, text: str, tags: Mapping[str, str], is_action: bool) -> None:
        """One chat line in ``channel`` (as the server wrote it) from ``nick``; ``is_action`` for
        ``/me``. Called by the connection's fast path (``vbot.irclib``, ``tags`` parsed only when
        read) and by ``on_pubmsg``/``on_action``. Timers count it; a command (not a ``/me``) is answered."""
        timers_due = self.timers.note_line(channel, nick)
        # A check of every line (the spam filters) goes here: text, nick and tags, before the command.
        if not is_action and self.dispatcher.is_command(text):
            members = self.members(channel)
            if members is not None:
                message = self._chat_message(channel, nick, text, tags, members)
                reply = self.dispatcher.handle(message, self)
                if reply:
                    self.say(message.channel, reply)
        if timers_due:
            self._post_timers()

    def on_pubmsg(self, connection, event):
        """A chat line the fast path left to the library (an odd but valid line)."""
        if event.source is None:
            log.debug("skipping a message without a sender in %s", event.target)
            return
        self.chat_line(event.target, event.source.nick, event.arguments[0], tags_to_dict(event.tags), False)

    def on_action(self, connection, event):
        """``/me`` lines count as chat for timers (the library reports them as CTCP ACTION)."""
        if event.source is not None and irc.client.is_channel(event.target or ""):
            text = event.arguments[0] if event.arguments else ""
            self.chat_line(event.target, event.source.nick, text, tags_to_dict(event.tags), True)

    def on_pong(self, connection, event):
        """The answer to our keep-alive PING: its round trip for ``!botstatus``."""
        if self._ping_sent_at is not None:
            self.ping_rtt, self._ping_sent_at = self.session.clock() - self._ping_sent_at, None

    def health(self) -> Health:
        """The counters ``!botstatus`` reports (vbot.health)."""
        welcomed_at = self.session.welcomed_at
        return Health(
            uptime=self.session.clock() - self.started_at,
            connected=None if welcomed_at is None else self.session.clock() - welcomed_at,
            reconnects=max(self.session.logins - 1, 0),
            sent=self.sent,
            dropped=self.dropped + self.outbox.dropped,
            waiting=len(self.outbox),
            ping_rtt=self.ping_rtt,
            token_expires_in=self._token_expires_in(),
        )

    def _token_expires_in(self) -> float | None:
        if self.keeper is None or not self.keeper.is_renewable or self.keeper.tokens.expires_at is None:
            return None
        return self.keeper.tokens.expires_at - time.time()

    def _chat_message(
        self, channel: str, nick: str, text: str, tags: Mapping[str, str], members: Members
    ) -> ChatMessage:
        """On Twitch the role comes from the tags; elsewhere only from channel status
        (a plain IRC nick is not authenticated, so the nick equal to the channel name is nobody)."""
        channel = channel.lower()
        login = nick.lower()
        role = role_from_tags(tags, login, channel) if self.is_twitch else members.role(nick)
        return ChatMessage(channel, login, text, role, tags.get("display-name", ""), tags)

    def say(self, channel: str, text: str) -> None:
        """Queue ``text`` for ``channel`` and send what the limits allow now. Never raises."""
        if self.config.is_anonymous:
            log.debug("anonymous login: not sending to %s", channel)
            return
        self.outbox.submit(channel, text)
        self._flush()

    def _flush(self) -> None:
        if not (self.session.phase is Phase.WELCOMED and self.connection.is_connected()):
            return  # on_welcome flushes again
        for channel, text in self.outbox.take_ready():
            try:
                self.connection.privmsg(channel, text)
                self.sent += 1
            except Exception:
                log.exception("could not send a reply to %s", channel)
        wait = self.outbox.wait_time()
        if wait is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            self.reactor.scheduler.execute_after(wait, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        dropped = self.outbox.take_dropped()
        self.dropped += dropped
        if dropped:
            log.warning("too many replies waiting: dropped the %d oldest", dropped)
        self._flush()
