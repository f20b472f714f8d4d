"""The IRC side of vbot: a thin ``irc.bot.SingleServerIRCBot`` subclass for Twitch chat.

A driver: server events in, calls on the decision objects out. Events arrive as
``on_<event>`` methods (the library's convention) and become calls on the Session
(connection life cycle), the Membership (who is in each channel, vbot.modes), the
Dispatcher (commands) and the Outbox (sending). What only Twitch sends or needs is in
``vbot.twitch``, what only a plain IRC server needs in ``vbot.plainirc`` (a reader of the
Twitch path skips it); every override of the library's internals is in ``vbot.irclib``.

One timing mechanism: each turn of ``run``'s loop asks every decision object in
``tickers`` what is due now and when to ask again, and waits for data at most until then
(``poll`` at the longest). Nothing is scheduled with the library's scheduler.

Twitch facts used here come from Twitch's "IRC Concepts" and "Chat & Chatbots"
docs (https://dev.twitch.tv/docs/chat/irc/).
"""

from __future__ import annotations

import functools
import logging
import math
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import irc.bot
import irc.client

from vbot.chat import ChatMessage, role_from_tags, tags_to_dict
from vbot.config import Config
from vbot.dispatch import Dispatcher, NoReload, Reloads
from vbot.enforcer import Enforcer
from vbot.facts import Facts, NoFacts
from vbot.health import Health
from vbot.irclib import GuardedReactor, make_connect_factory, replaced_handlers
from vbot.joins import Joins
from vbot.modes import Membership
from vbot.network import is_twitch
from vbot.notify import Notifier, waiting_status
from vbot.outbox import Outbox
from vbot.plainirc import PlainIrc
from vbot.session import Action, Backoff, Phase, Session
from vbot.timers import TimerSchedule
from vbot.twitch import TwitchIrc

if TYPE_CHECKING:  # the token code is imported only with a token (vbot.cli)
    from vbot.keeper import TokenKeeper

log = logging.getLogger(__name__)

TOKEN_ASK_EVERY = 0.2
"""Seconds between two questions to the keeper while a login waits for the token's renewal."""


def soonest(*waits: float | None) -> float | None:
    """The shortest of ``waits`` (seconds), None when all are None.

    >>> soonest(None, 2.0, 0.5), soonest(None, None)
    (0.5, None)
    """
    known = [wait for wait in waits if wait is not None]
    return min(known) if known else None


class Stopping(BaseException):
    """Raised by a signal handler to abandon a blocking connect; ends ``VBot.run``."""


class VBot(irc.bot.SingleServerIRCBot):
    """vbot's connection to one IRC server (Twitch, or any RFC 1459 server); ``run()`` returns the exit code: 0
    after a stop request, 3 when the login is refused for good. ``keeper`` (None without a token to renew) gives the
    password of the library's server list before every connect; ``clock()`` returns monotonic seconds; ``facts``
    are stream facts; ``enforcer`` acts for the spam filters; ``connect_factory((host, port)) -> socket`` opens the
    connection (TLS as configured)."""

    def __init__(
        self,
        config: Config,
        dispatcher: Dispatcher,
        outbox: Outbox | None = None,
        reconnect: Backoff | None = None,
        reload: Reloads | None = None,
        clock: Callable[[], float] = time.monotonic,
        connect_factory: Callable[[tuple[str, int]], socket.socket] | None = None,
        timers: TimerSchedule | None = None,
        notifier: Notifier | None = None,
        keeper: TokenKeeper | None = None,
        facts: Facts | None = None,
        enforcer: Enforcer | None = None,
    ):
        # Reactor's on_connect runs once the socket is up, before the library sends PASS and NICK.
        self.reactor_class = functools.partial(GuardedReactor, on_connect=self._on_socket_connected)
        server = irc.bot.ServerSpec(config.host, config.port, config.password)  # its repr hides the password
        super().__init__([server], config.username, config.username)
        for event, handler in replaced_handlers(self):
            self.reactor.remove_global_handler(event, handler)
        self.reactor.add_global_handler("all_events", self._on_any_event, -10)
        self.connection.chat_handler = self.chat_line  # chat lines skip the library's events (vbot.irclib)
        for event in Membership.EVENTS:
            self.reactor.add_global_handler(event, self._on_membership, -20)
        self.reactor.clock = clock
        self.config, self.dispatcher, self.reload, self.keeper = config, dispatcher, reload or NoReload(), keeper
        self.outbox = Outbox() if outbox is None else outbox  # an empty Outbox is falsy
        self.session = Session(config.ping_interval, config.ping_timeout, reconnect, clock)
        self.joins = Joins(clock=clock)
        self.membership = Membership(self.connection.get_nickname, self.joins.accepts)  # only JOINs it asked for
        self.channels = self.membership.channels  # the library's name for them; the same dict, kept there
        self.connection.pace = self.outbox.line_pace  # every line sent counts for a plain server's flood rule
        self.timers = timers or TimerSchedule((), clock=clock)
        self.timers.bot_login = config.username  # known by now even when learned from the token
        self.facts = self.timers.facts = facts or NoFacts()  # stream facts (vbot.streamfacts); none by default
        self.enforcer = enforcer or Enforcer(None, dispatcher.moderation)  # the spam filters' calls to Helix
        self.notifier = notifier or Notifier()
        self.twitch, self.plain = TwitchIrc(self), PlainIrc(self)
        self.is_twitch = config.is_twitch_host  # settled at the welcome (vbot.network.is_twitch)
        self.started_at = clock()
        self.sent = 0  # chat messages sent since start
        self.ping_rtt: float | None = None  # seconds, the last PING's round trip
        self.closing_reason = ""  # the server's ERROR (or a refusal), logged with the drop that follows
        self.exit_code: int | None = None
        self._ping_sent_at: float | None = None
        self._reload_requested = False
        self._connect_factory = connect_factory or make_connect_factory(config.tls)
        # Asked in this order at every tick: each does what is due and returns the seconds until
        # it is due again (None: only an event can make it due). A new one is one more name here.
        ticks = (self.twitch.reconnect_if_asked, self._post_timers, self.enforcer.tick)  # never block
        self.tickers = (self._follow_session, *ticks, self.reload.tick, self._send)  # a SIGHUP's reload reads a file

    def run(self, poll: float = 0.2) -> int:
        """Connect, process events until a stop, send QUIT, and return the exit code. ``poll`` is the
        longest wait for data, in seconds, between two ticks; a tick that says something is due
        sooner (a reply the outbox releases in 0.3 s) shortens it."""
        while self.exit_code is None:
            try:
                if self._reload_requested:  # SIGHUP: the reloads run it when their pace allows
                    self._reload_requested = False
                    self.reload.request()
                with self.reactor.mutex:
                    wait = self._step()
                self.reactor.process_once(timeout=min(poll, wait))
            except Stopping:
                break
            except Exception:
                log.exception("error in the event loop; carrying on")
                time.sleep(poll)
            self.notifier.keep_alive()
        quitting = self.connection.is_connected()
        log.info("stopping (exit code %d)%s", self.exit_code or 0, "; sending QUIT" if quitting else "")
        self.notifier.stopping("stopping")
        if quitting:
            self.connection.disconnect("Goodbye")
        return self.exit_code if self.exit_code is not None else 0

    def _step(self) -> float:
        """One tick: each of ``tickers`` does what is due now, and replies the outbox dropped since
        the last tick are one WARNING; returns the seconds until the soonest is due again."""
        wait = soonest(*[tick() for tick in self.tickers])
        self.outbox.report_dropped()
        return math.inf if wait is None else max(wait, 0.0)

    def request_reload(self) -> None:
        """Reload custom commands in the event loop, once the reload pace allows (safe from signal handlers)."""
        self._reload_requested = True

    def request_stop(self, exit_code: int = 0) -> None:
        """End ``run()`` with ``exit_code`` (safe from signal handlers and other threads)."""
        if self.exit_code is None:
            self.exit_code = exit_code

    def stop_from_signal(self, exit_code: int = 0) -> None:
        """``request_stop`` for a signal handler; also abandons a connect under way, and only that (raises Stopping)."""
        self.request_stop(exit_code)
        if self.connection.connecting:
            raise Stopping

    def _follow_session(self) -> float | None:
        """Do what the session says now: connect, PING, or drop a dead connection; the keeper (it
        never blocks) collects and starts its background calls."""
        stop = self.keeper.tick() if self.keeper is not None else None
        if stop is not None:
            self.twitch.cannot_log_in(stop)
        step = self.session.check(self.connection.last_received)
        if step.action is Action.CONNECT:
            self._open_connection()
        elif step.action is Action.PING:
            self._ping_sent_at = self.session.clock()
            self.connection.ping("tmi.twitch.tv")
        elif step.action is Action.DISCONNECT:
            self.closing_reason = step.why  # logged with the drop, as one line
            self.connection.disconnect(step.quit_message)
        wait = self.session.wait_time() if self.session.phase is Phase.WAITING else math.inf
        if wait == 0.0:  # due, but the keeper renews the token first: ask it again shortly
            wait = TOKEN_ASK_EVERY
        return min(wait, math.inf if self.keeper is None else 1.0)  # the keeper: about once a second

    def _post_timers(self) -> float | None:
        """Post the replies that waited for stream facts (it never blocks) and what the timers allow
        now, through the outbox; ask again at the timers' wait time, within a second (a reload)."""
        for channel, text in self.facts.tick():
            self.say(channel, text)
        if self.session.phase is not Phase.WELCOMED:
            return None
        self.timers.post_due(self, self.say)
        wait = self.timers.wait_time()
        return 1.0 if wait is None else min(wait, 1.0)

    def _send(self) -> float | None:
        """Send the JOINs the join pacing releases now, then the replies the outbox releases;
        the seconds until either releases more."""
        if self.session.phase is not Phase.WELCOMED:
            return None  # the welcome sends again
        for channel in self.joins.take_ready():
            if self.connection.is_connected():  # else dropped while joining: the next welcome queues them again
                self.connection.join(channel)
        for channel, text in self.outbox.take_ready() if self.connection.is_connected() else ():
            self.sent += 1  # counted first: whoever saw the line arrive sees it counted
            try:
                self.connection.privmsg(channel, text)
            except Exception:
                self.sent -= 1
                log.exception("could not send a reply to %s", channel)
        return soonest(self.joins.wait_time(), self.outbox.wait_time())

    def _open_connection(self) -> None:
        """A fresh token (the keeper never blocks; None: not yet, CONNECT comes again), then connect (vbot.irclib);
        any failure, a stop's (``stop_from_signal``) too, waits with backoff: the session never stays CONNECTING."""
        server = self.servers.peek()  # the library's server list: one ServerSpec
        if self.keeper is not None:
            if (password := self.twitch.password()) is None:
                return  # not yet: the token is being renewed in the background (or the login is over)
            server.password = password
        self.session.connecting()
        self.closing_reason = ""  # an ERROR handled after the last drop was logged is not this one's
        self.notifier.keep_alive()  # the connect may block for its timeout: start it with a fresh ping
        nick, ident, factory = self.config.username, self.config.ident, self._connect_factory
        try:
            self.connection.connect(server.host, server.port, nick, server.password, ident, connect_factory=factory)
        except BaseException as error:  # vbot.irclib makes every failure a ServerConnectionError
            delay = self.session.connect_failed()
            if isinstance(error, irc.client.ServerConnectionError):
                return self._waiting("could not connect to", str(error.__cause__ or error), delay)
            raise  # Stopping
        self.connection.last_received = self.session.clock()
        self.session.connected()

    def _on_socket_connected(self, sock: socket.socket) -> None:
        """The socket is up; PASS and NICK follow: Twitch's capabilities go first. The server
        counts lines for its flood rule afresh (vbot.outbox.LinePace)."""
        self.outbox.line_pace.reset()
        self.twitch.request_capabilities(self.connection)

    # --- server events -----------------------------------------------------------

    def _on_any_event(self, connection, event) -> None:
        """Call ``on_<event.type>`` when defined (the library's ``_dispatcher``, without its DEBUG line)."""
        method = getattr(self, "on_" + event.type, None)
        if method is not None:
            method(connection, event)

    def on_welcome(self, connection, event):
        """001: logged in. Settle whether this is Twitch (its limits, or the flood rule and vbot.plainirc); JOIN."""
        self.session.welcomed()
        if self.keeper is not None:
            self.keeper.logged_in()
        count = len(self.config.channels)
        status = f"logged in as {self.config.username}, {count} channel{'' if count == 1 else 's'}"
        (self.notifier.ready if self.session.logins == 1 else self.notifier.status)(status)
        self.is_twitch = is_twitch(self.config.host, str(event.source or ""), self.twitch.acknowledged)
        self.joins.pace = self.outbox.use_line_pace(not self.is_twitch)  # Twitch's limits, or the flood rule
        if not self.is_twitch:
            self.plain.welcomed()
        log.info("logged in to %s:%s as %s", self.config.host, self.config.port, self.config.username)
        self.joins.want_all(self.config.channels)
        self._send()

    def on_error(self, connection, event):
        """The server's ERROR line, sent before it closes the connection (RFC 2812, 3.7.4):
        its reason is logged with the drop that follows, as one line."""
        self.closing_reason = f"server closed the connection: {event.target or 'no reason given'}"

    def on_disconnect(self, connection, event):
        """Forget every channel (rebuilt from the next JOIN/NAMES) and let the session decide the retry."""
        self.membership.clear()
        self.timers.set_channels(())
        self.joins.clear_queue()
        if self.exit_code is not None:
            return
        reason = self.closing_reason or " ".join(event.arguments).strip(" .") or "connection closed"
        self.closing_reason = ""
        drop = self.session.dropped()
        if not drop.planned:
            self._waiting("disconnected from" if drop.was_welcomed else "not connected to", reason, drop.delay)

    def _waiting(self, what: str, reason: str, delay: float) -> None:
        """One WARNING and the systemd STATUS for a failed connect or a drop: why, and the wait."""
        log.warning("%s %s:%s: %s; next attempt in %.1f s", what, self.config.host, self.config.port, reason, delay)
        self.notifier.status(waiting_status(delay, reason, self.session.logins))

    def _on_membership(self, connection, event) -> None:
        """JOIN, PART, KICK, QUIT, NICK, MODE, NAMES: vbot.modes.Membership keeps the members; the
        bot's own JOIN or leaving goes to the join pacing and the timers."""
        own = self.membership.feed(event)
        if own is not None:
            self.joins.follow(own)
            self.timers.follow(own)

    def on_ctcp(self, connection, event):
        """Twitch has no CTCP: ignore it (the library's default replies, and can raise)."""

    def on_pong(self, connection, event):
        """The answer to our keep-alive PING: its round trip for ``!botstatus``."""
        if self._ping_sent_at is not None:
            self.ping_rtt, self._ping_sent_at = self.session.clock() - self._ping_sent_at, None

    # --- chat --------------------------------------------------------------------

    def chat_line(self, channel: str, nick: str, text: str, tags: Mapping[str, str], is_action: bool) -> None:
        """A chat line or a /me line (``is_action``) from the fast path (vbot.irclib: ``tags`` parsed when read) or
        ``on_pubmsg``. The timers count it; in the bot's channels a command, or a line whose text breaks a spam filter,
        becomes a ChatMessage (role: Twitch's tags, else channel status) for the filters, then a command is answered."""
        channel, login = channel.lower(), nick.lower()
        is_command = not is_action and self.dispatcher.is_command(text)
        timers_due = self.timers.note_line(channel, login)
        is_checked = is_command or self.enforcer.breaks_a_filter(text, tags)  # on the text: no tags parsed, no role
        if is_checked and (members := self.membership.members(channel)) is not None:
            role = role_from_tags(tags, login, channel) if self.is_twitch else members.role(nick)
            message = ChatMessage(channel, login, text, role, tags.get("display-name", ""), tags)
            if not self.enforcer.check(message, self.say) and is_command:
                if reply := self.dispatcher.handle(message, self):
                    self.say(channel, reply)
        if timers_due:
            self._post_timers()

    def on_pubmsg(self, connection, event):
        """A chat line or a /me line (``on_action``) the fast path left to the library: see ``chat_line``."""
        if event.source is None or not irc.client.is_channel(event.target or ""):
            log.debug("skipping a chat line without a sender or a channel: %s", event.target)
            return
        text = (event.arguments or [""])[0]
        self.chat_line(event.target, event.source.nick, text, tags_to_dict(event.tags), event.type == "action")

    on_action = on_pubmsg  # /me lines, which the library reports as CTCP ACTION

    def say(self, channel: str, text: str) -> None:
        """Queue ``text`` for ``channel`` and send what the limits allow now. Never raises."""
        if self.config.is_anonymous:
            log.debug("anonymous login: not sending to %s", channel)
            return
        self.outbox.submit(channel, text)
        self._send()

    def viewer_count(self, channel: str) -> int:
        """Chatters the server has reported in ``channel`` (JOIN/NAMES), the bot excluded."""
        return self.membership.viewer_count(channel)

    def health(self) -> Health:
        """The counters ``!botstatus`` reports (vbot.health)."""
        welcomed_at, now, keeper = self.session.welcomed_at, self.session.clock(), self.keeper
        return Health(
            uptime=now - self.started_at,
            connected=None if welcomed_at is None else now - welcomed_at,
            reconnects=max(self.session.logins - 1, 0),
            sent=self.sent,
            dropped=self.outbox.dropped,
            waiting=len(self.outbox),
            ping_rtt=self.ping_rtt,
            token_expires_in=keeper.expires_in() if keeper is not None and keeper.is_renewable else None,
        )
