"""The built-in chat commands: the file to edit to add one.

Each command is one function ``f(ctx) -> str | None`` marked with ``@command``;
the returned text is sent to the channel the command came from (through the
outbox, which enforces every outgoing rule). ``help`` feeds ``!help``.
"""

from __future__ import annotations

import logging

from vbot import __version__
from vbot.chat import Role
from vbot.config import LOGIN_PATTERN
from vbot.dispatch import CommandTable, Context, command
from vbot.facts import STREAM, uptime_text, viewers_text
from vbot.health import format_health

log = logging.getLogger(__name__)


@command("version", help="the bot's version")
def version(ctx: Context) -> str:
    """Reply with the package version (the one ``vbot --version`` prints)."""
    return f"Version: {__version__}"


@command("count_viewers", help="live viewers and chatters in this channel")
def count_viewers(ctx: Context) -> str | None:
    """Reply with the stream's live viewers, where Twitch's API tells them, and the logged-in
    chatters Twitch has reported for this channel (the reply may come a moment later: vbot.facts)."""
    channel = ctx.message.channel
    return ctx.chat.facts.answer(
        channel, frozenset({STREAM}), lambda known: viewers_text(known.stream, ctx.chat.viewer_count(channel))
    )


@command("uptime", help="how long the stream has been live")
def uptime(ctx: Context) -> str | None:
    """Reply with how long the stream has been live, or that it is offline (vbot.facts)."""
    return ctx.chat.facts.answer(ctx.message.channel, frozenset({STREAM}), uptime_text)


@command("help", aliases=["commands"], help="the commands you may use")
def help_(ctx: Context) -> str:
    """List the commands this chatter may use, one line."""
    names = ", ".join(ctx.prefix + entry.name for entry in ctx.table.available_to(ctx.role))
    return f"Commands: {names}"


@command("reload", role=Role.MODERATOR, cooldown=0, user_cooldown=0, help="reload custom commands")
def reload(ctx: Context) -> str | None:
    """Reload the custom commands file; the reply says whether it worked (None: a refusal already answered)."""
    return ctx.chat.reload()


@command("botstatus", role=Role.MODERATOR, help="the bot's uptime, connection and replies")
def botstatus(ctx: Context) -> str:
    """One line on the bot's health: uptime, connection, reconnects, replies, PING, token expiry."""
    return format_health(ctx.chat.health())


@command("permit", role=Role.MODERATOR, cooldown=0, user_cooldown=0, help="let a chatter post links for a while")
def permit(ctx: Context) -> str:
    """``!permit <login>``: that chatter's links pass the links filter for its ``permit_seconds``."""
    words = ctx.args.split()
    login = words[0].removeprefix("@").lower() if len(words) == 1 else ""
    if not LOGIN_PATTERN.fullmatch(login):
        return f"Usage: {ctx.prefix}permit <login>"
    seconds = ctx.moderation.permit(ctx.message.channel, login)
    if seconds is None:
        return "Links are not filtered here: no permit needed."
    return f"{login} may post links for the next {seconds} s."


@command("exit", role=Role.BROADCASTER, cooldown=0, user_cooldown=0, help="stop the bot")
def exit_(ctx: Context) -> None:
    """Stop the bot (the broadcaster and VBOT_OWNERS only); no reply."""
    log.info("%s asked the bot to stop (%sexit in %s)", ctx.message.login, ctx.prefix, ctx.message.channel)
    ctx.chat.request_stop()


def builtin_table() -> CommandTable:
    """A new table of the commands defined in this module."""
    return CommandTable.collect(globals().values())
