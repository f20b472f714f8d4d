"""What vbot does only for Twitch chat: its capabilities, RECONNECT, a refused login, NOTICE, USERSTATE,
ROOMSTATE.

The counterpart of ``vbot.plainirc``: ``TwitchIrc(bot)`` registers its handlers on the
bot's reactor; the bot asks ``request_capabilities`` once each socket is up, and
``reconnect_if_asked`` at each tick of its loop. A
plain IRC server sends none of these (or refuses the capabilities, which
``vbot.plainirc`` answers).

Facts from Twitch's docs (https://dev.twitch.tv/docs/chat/irc/): "IRC Concepts"
(capabilities, RECONNECT, NOTICE msg-ids, USERSTATE) and "Chat & Chatbots" (limits).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import irc.client

from vbot.chat import Role, role_from_tags, tags_to_dict
from vbot.irclib import add_handlers
from vbot.joins import MAX_CHANNELS_WARNING
from vbot.session import Phase

if TYPE_CHECKING:
    from vbot.bot import VBot
    from vbot.keeper import CannotLogIn  # the token code loads only with a token (vbot.cli)

log = logging.getLogger(__name__)

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


class TwitchIrc:
    """The Twitch handlers of ``bot`` (a ``vbot.bot.VBot``), registered on its reactor.

    ``acknowledged`` holds the capabilities the server granted on this connection
    (``vbot.network.is_twitch`` reads them at the welcome). Warns at construction about
    settings Twitch punishes: no TLS on Twitch's host, more channels than it lets one
    account join.
    """

    def __init__(self, bot: VBot):
        self.bot = bot
        self.acknowledged: set[str] = set()
        self._reconnect_asked = False
        handlers = [
            ("cap", self._capabilities),
            ("reconnect", self._reconnect),
            ("privnotice", self._private_notice),
            ("pubnotice", self._notice),
            ("userstate", self._userstate),
            ("roomstate", self._roomstate),
            ("disconnect", lambda connection, event: self.acknowledged.clear()),
        ]
        self.events = add_handlers(bot.reactor, handlers)
        config = bot.config
        if not config.tls and config.is_twitch_host:
            log.warning("VBOT_TLS=false: the token travels to Twitch in clear text")
        if len(config.channels) > MAX_CHANNELS_WARNING:
            log.warning(
                "%d channels configured: Twitch limits how many channels one account may join "
                "(channels where it is broadcaster or moderator do not count); JOINs go out at "
                "20 per 10 s",
                len(config.channels),
            )

    def request_capabilities(self, connection) -> None:
        """Once the socket is up: CAP REQ goes before PASS and NICK."""
        connection.cap("REQ", *CAPABILITIES)

    def password(self) -> str | None:
        """Before a connect: the PASS argument with the keeper's current token (it never blocks), or
        None: not yet (it is renewing the token in the background), or never (QUIT and exit 3)."""
        from vbot.keeper import CannotLogIn

        assert self.bot.keeper is not None
        try:
            return self.bot.keeper.before_connect()
        except CannotLogIn as error:
            self.cannot_log_in(error)
            return None

    def cannot_log_in(self, error: CannotLogIn) -> None:
        """The token was revoked or cannot be renewed: QUIT and exit 3 (Twitch requires ending the session)."""
        log.error("cannot log in to Twitch: %s", error)
        self.bot.request_stop(3)

    def _capabilities(self, connection, event) -> None:
        """CAP ACK: which capabilities the server granted; a refusal is a warning on Twitch only,
        where membership tracking needs them (a plain server's refusal: vbot.plainirc)."""
        if event.arguments[:1] == ["ACK"] and len(event.arguments) > 1:
            self.acknowledged.update(event.arguments[1].split())
        if event.arguments[:1] == ["NAK"]:
            level = logging.WARNING if self.bot.is_twitch else logging.INFO
            log.log(level, "server refused capabilities: %s", " ".join(event.arguments[1:]))

    def _reconnect(self, connection, event) -> None:
        """Twitch's RECONNECT: the bot reconnects at its next tick, after the lines of this read."""
        log.info("server asked us to reconnect")
        self._reconnect_asked = True

    def reconnect_if_asked(self) -> None:
        """At the bot's tick: close for the RECONNECT Twitch asked for; the session reconnects at
        once, unless it paces it."""
        if self._reconnect_asked:
            self._reconnect_asked = False
            if self.bot.exit_code is None and self.bot.connection.is_connected():
                self.bot.session.reconnect_requested()
                self.bot.connection.disconnect("Reconnecting")

    def _private_notice(self, connection, event) -> None:
        """Before the welcome, a server NOTICE refusing the login: renew the token and log in again
        after the session's backoff, once (the keeper decides), or QUIT and exit 3; any other NOTICE
        as ``_notice``."""
        bot = self.bot
        text = event.arguments[0] if event.arguments else ""
        from_server = event.source is None or "!" not in event.source  # a server's prefix has no nick!user@host
        if from_server and bot.session.phase is not Phase.WELCOMED and text.startswith(LOGIN_FAILURES):
            if bot.keeper is not None and text.startswith("Login authentication failed"):
                stop = bot.keeper.login_failed()  # None: renew the token before the next attempt
                if stop is None:  # the drop is logged, and paced by the session's backoff
                    bot.closing_reason = "Twitch refused the login; renewing the token before the next attempt"
                    connection.disconnect("Login refused")  # Twitch closes it too; do not wait for that
                else:
                    self.cannot_log_in(stop)
                return
            fix = (
                'run "vbot login" again'
                if bot.keeper is not None
                else 'check VBOT_TOKEN, or run "vbot login" for a token vbot renews by itself'
            )
            log.error(
                "Twitch refused the login (%s): %s; the token needs the chat:read and chat:edit scopes", text, fix
            )
            bot.request_stop(3)
            return
        self._notice(connection, event)

    def _notice(self, connection, event) -> None:
        """A msg-id that means a reply was not delivered is a warning (msg_ratelimit pauses the
        channel); any other NOTICE is INFO."""
        msg_id = tags_to_dict(event.tags).get("msg-id", "")
        if msg_id in WARNING_NOTICES:
            log.warning("%s in %s: %s", msg_id, event.target, event.arguments[0] if event.arguments else "")
            if msg_id == "msg_ratelimit" and irc.client.is_channel(event.target or ""):
                self.bot.outbox.pause(event.target.lower())
        else:
            log.info("notice %s: %s", msg_id or event.target, " ".join(event.arguments))

    def _userstate(self, connection, event) -> None:
        """Learn whether the bot is broadcaster, moderator or VIP here (higher send limit; stream facts;
        whether the spam filters can act)."""
        channel = (event.target or "").lower()
        role = role_from_tags(tags_to_dict(event.tags), self.bot.config.username, channel)
        self.bot.outbox.set_privileged(channel, role >= Role.VIP)
        self.bot.facts.note_bot_role(channel, role >= Role.MODERATOR)
        self.bot.enforcer.note_bot_role(channel, role >= Role.MODERATOR)

    def _roomstate(self, connection, event) -> None:
        """``room-id`` is the broadcaster's user ID (the spam filters' calls name it)."""
        self.bot.enforcer.note_room((event.target or "").lower(), tags_to_dict(event.tags).get("room-id", ""))
