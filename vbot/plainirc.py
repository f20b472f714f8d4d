"""What vbot does only on a plain IRC server (ngIRCd, InspIRCd, Ergo, Solanum...), not on Twitch.

A reader of the Twitch path can skip this file: Twitch sends none of these events, or
the handlers return at once there. ``PlainIrc(bot)`` registers its handlers on the bot's
reactor; the bot calls ``welcomed()`` after a welcome from a server that is not Twitch.

* Capabilities: a server that refuses (``CAP NAK``) Twitch's capabilities is a standard
  one. vbot then asks for ``multi-prefix`` (NAMES shows every prefix a member holds, not
  only the highest, so losing one of two modes is seen right) and ``chghost`` (the
  server tells the bot when its own ident or host changes), each in a REQ of its own: a
  REQ is granted or refused whole (IRCv3 Capability Negotiation), so one capability a
  server lacks cannot cost the other. Then ``CAP END``, which such a server waits for
  before it completes the login. Twitch acknowledges its capabilities, so it never sees
  these requests; on Twitch's host a refusal gets only the ``CAP END``. Asked after the
  refusal rather than after a ``CAP LS 302``: Twitch's login stays exactly as it was,
  one round trip is saved, and a refusal simply means "not offered".
* The nick refused at login (432, 433, 436, 437): the connection is closed and the
  session's backoff paces the next attempt; the server's reason is logged with the drop.
* A JOIN refused (471, 473, 474, 475, 403, 405, 477): retried through the join pacing,
  given up after a few refusals in a row (``Joins.refused``).
* A reply refused (404, 417): a warning.
* ISUPPORT (005): the server's rules for names and modes (``vbot.modes.Isupport``).
* The relay prefix: a plain server puts ``:<nick>!<user>@<host> `` in front of each reply
  it relays, within its 512 bytes (``Outbox.set_relay_prefix``); it is learned from the
  bot's own JOIN echo and recomputed on its own NICK, CHGHOST and 396 (host hidden).
* Sending: from the welcome on, the flood rule (``outbox.LinePace``) paces every reply
  and JOIN instead of Twitch's limits.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from vbot.irclib import add_handlers
from vbot.network import TWITCH_CAPABILITY_PREFIX
from vbot.session import Phase

if TYPE_CHECKING:
    from vbot.bot import VBot

log = logging.getLogger(__name__)

CAPABILITIES = ("multi-prefix", "chghost")
"""IRCv3 capabilities asked of a plain server, each in its own CAP REQ."""
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


class PlainIrc:
    """The plain-IRC-only handlers of ``bot`` (a ``vbot.bot.VBot``), registered on its reactor.

    ``own_source`` is the bot's ``nick!user@host`` as the server last showed it (``''``
    before its first JOIN echo).
    """

    def __init__(self, bot: VBot):
        self.bot = bot
        self.own_source = ""
        handlers = [
            ("cap", self._capabilities_refused),
            ("featurelist", self._isupport),
            ("join", self._own_join),
            ("nick", self._own_nick),
            ("chghost", self._own_host_changed),
            ("396", self._host_hidden),
            *((event, self._nick_refused) for event in NICK_REFUSALS),
            *((event, self._join_refused) for event in JOIN_REFUSALS),
            *((event, self._reply_refused) for event in REPLY_REFUSALS),
        ]
        self.events = add_handlers(bot.reactor, handlers)

    def welcomed(self) -> None:
        """After the welcome of a server that is not Twitch: leave room for the relay prefix,
        with a margin for the ``user@host`` until the JOIN echo shows it."""
        self.bot.outbox.set_relay_prefix(self.bot.connection.get_nickname())

    def _capabilities_refused(self, connection, event) -> None:
        """``CAP * NAK :twitch.tv/...`` before the welcome: a standard server (see the module's docstring)."""
        refused = event.arguments[1].split() if event.arguments[:1] == ["NAK"] and len(event.arguments) > 1 else []
        if not any(name.startswith(TWITCH_CAPABILITY_PREFIX) for name in refused):
            return
        if self.bot.session.phase is Phase.WELCOMED:
            return
        if not self.bot.config.is_twitch_host:
            for capability in CAPABILITIES:
                connection.cap("REQ", capability)
        connection.cap("END")  # a standard server holds the login until CAP END

    def _isupport(self, connection, event) -> None:
        """ISUPPORT (005): the server's PREFIX, CHANMODES and CASEMAPPING (Twitch sends none)."""
        membership = self.bot.membership
        membership.isupport = membership.isupport.update(event.arguments)

    def _relay(self, source: str) -> None:
        self.own_source = source
        self.bot.outbox.set_relay_prefix(source)

    def _own_join(self, connection, event) -> None:
        if not self.bot.is_twitch and event.source is not None and self.bot.membership.is_me(event.source.nick):
            self._relay(str(event.source))

    def _own_nick(self, connection, event) -> None:
        """``:old!user@host NICK new``: the library has already taken ``new`` as the bot's nick."""
        if self.bot.is_twitch or event.source is None or not (event.target and self.bot.membership.is_me(event.target)):
            return
        user_host = str(event.source).partition("!")[2]
        self._relay(f"{event.target}!{user_host}" if user_host else event.target)

    def _own_host_changed(self, connection, event) -> None:
        """IRCv3 ``chghost``: ``:nick!old@old.host CHGHOST <new user> <new host>``."""
        if self.bot.is_twitch or event.source is None or not event.target or not event.arguments:
            return
        if self.bot.membership.is_me(event.source.nick):
            self._relay(f"{event.source.nick}!{event.target}@{event.arguments[0]}")

    def _host_hidden(self, connection, event) -> None:
        """RPL_HOSTHIDDEN (396, not named by the irc library): ``<nick> <host> :is now your
        displayed host``; some servers give ``user@host``."""
        if self.bot.is_twitch or not event.arguments:
            return
        user, _, host = event.arguments[0].rpartition("@")
        if not user:
            user = self.own_source.partition("!")[2].partition("@")[0] or f"~{self.bot.config.ident}"
        self._relay(f"{connection.get_nickname()}!{user}@{host}")

    def _nick_refused(self, connection, event) -> None:
        """433, 432, 436, 437 at login: close, and try again later (the backoff paces it); the
        nick and the server's reason are logged with the drop, as one line."""
        if self.bot.session.phase is Phase.WELCOMED:
            return
        reason = event.arguments[-1] if event.arguments else event.type
        self.bot.closing_reason = f"the server refused the nick {self.bot.config.username}: {reason}"
        connection.disconnect("Nick refused")

    def _join_refused(self, connection, event) -> None:
        """471, 473, 474, 475, 403, 405, 477: say so, and retry through the join pacing, a few times."""
        channel = (event.arguments[0] if event.arguments else "").lower()
        if channel not in self.bot.joins:
            return
        self.bot.joins.refused(channel, event.arguments[-1] if len(event.arguments) > 1 else event.type)

    def _reply_refused(self, connection, event) -> None:
        """404 ``<channel> :<reason>``, 417 ``:<reason>`` (no channel) and the like: a reply the
        server did not deliver."""
        reason = event.arguments[-1] if event.arguments else event.type
        if len(event.arguments) > 1:
            log.warning("the server refused a reply to %s: %s", event.arguments[0], reason)
        else:
            log.warning("the server refused a reply: %s", reason)
