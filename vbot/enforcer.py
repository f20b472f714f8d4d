"""The spam filters' actions carried out through Twitch's API (Helix): in order, from a bounded queue.

``vbot.moderation`` decides what to do about a message (an ``Action``); ``Enforcer`` turns
each action the bot may carry out into one Helix call and runs the calls one at a time
in the background (``vbot.helix.Calls``, lane ``moderation``, beside the stream facts'
lane and sharing their rate-limit bucket). The driver asks it about every chat line
(``breaks_a_filter``, on the text alone), hands it each line that breaks a filter and each
command as a ChatMessage (``check``, before commands: one INFO line per action, ``would …``
when it is only described), and calls ``tick()`` on every turn of its loop. From Twitch's
API reference (the project's ``twitch-helix.md``):

* ``delete`` is Delete Chat Messages, ``DELETE /moderation/chat?broadcaster_id=…&
  moderator_id=…&message_id=…`` with the PRIVMSG's ``id`` tag (without ``message_id``
  Twitch would clear the whole chat: never sent so); 204 when done;
* ``timeout N`` is Ban User, ``POST /moderation/bans?broadcaster_id=…&moderator_id=…`` with
  ``{"data": {"user_id", "duration": N, "reason"}}``; never without ``duration``, which would
  ban for good. 409 means another ban of that user is under way: not an error;
* both need ``moderator_id``, the token's user, to be the broadcaster or one of the
  channel's moderators (else 403), and the scopes MODERATION_SCOPES (else 401).

The rules:

* The bot acts in a channel only when it is a moderator there (USERSTATE: ``note_bot_role``)
  or its broadcaster, the token holds both scopes (scopes not known count as held), and
  the broadcaster's user ID (ROOMSTATE's ``room-id``: ``note_room``) and the bot's (the
  token's ``user_id``) are known. Otherwise ``Moderation`` runs that channel's filters as
  in log mode (``may_act``), with one WARNING saying what to do; once it can act again,
  one INFO line says so. A 403 means the bot is no longer a moderator there: the same.
* Calls go in the order the actions were decided, one at a time; while the bucket is
  empty (or after a 429) they wait for its reset, the rate-limited call first.
* At most ``max_waiting`` actions wait; beyond, the oldest is dropped: one WARNING for the
  first drop, DEBUG for the others, and one INFO with their number once none waits.
* A refusal (4xx) is one WARNING per HTTP status until a call succeeds, the rest at DEBUG;
  an outage or a refused token is ``Calls``' WARNING. A failed action is not tried again.
* The action's warning reply (``@alice, … (10 s timeout)``) is posted once Twitch has
  answered that the call was carried out; never for a call that failed, was dropped or
  was never made.
"""

from __future__ import annotations

import collections
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

from vbot.chat import USER_ID, ChatMessage
from vbot.moderation import Action, Moderation

if TYPE_CHECKING:  # Helix's code loads only when there are calls to make (vbot.cli)
    from vbot.helix import Calls, Outcome, Request

log = logging.getLogger(__name__)

MODERATION_SCOPES = ("moderator:manage:banned_users", "moderator:manage:chat_messages")
"""The token scopes for Ban User (timeouts) and Delete Chat Messages; ``vbot login`` asks for
them when the commands file has a ``[filters]`` table."""
LANE = "moderation"
"""The lane of ``vbot.helix.Calls`` the actions run in."""
MAX_WAITING = 100
"""Actions waiting for Twitch's API at most; beyond, the oldest is dropped."""
CHECK_EVERY = 0.02
"""Seconds between two looks at a call under way (``tick``'s answer while one runs)."""
_MESSAGE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")
"""A message's ``id`` tag: a UUID on Twitch (Twitch docs, "IRC Concepts" > PRIVMSG tags)."""


class _Job(NamedTuple):
    action: Action
    request: Request
    since: float
    say: Callable[[str, str], None] | None  # where the warning goes once the call is done


class Enforcer:
    """Carries out ``moderation``'s actions with ``calls`` (None where there is no Twitch API:
    every channel then only logs); see the module's docstring.

    Installs itself as ``moderation.may_act``. ``max_waiting`` is the queue's bound;
    ``clock()`` returns monotonic seconds (how long an action waited, at DEBUG); the
    bucket's waits are ``calls``' clocks. Use from one thread (the event loop's).
    """

    def __init__(
        self,
        calls: Calls | None,
        moderation: Moderation,
        *,
        max_waiting: int = MAX_WAITING,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.calls = calls
        self.moderation = moderation
        self.max_waiting = max_waiting
        self._clock = clock
        self._waiting: collections.deque[_Job] = collections.deque()
        self._running: _Job | None = None
        self._moderator: dict[str, bool] = {}  # channel -> the bot is a moderator or the broadcaster there
        self._rooms: dict[str, str] = {}  # channel -> its broadcaster's user ID
        self._warned: dict[str, str] = {}  # channel -> why the bot cannot act there, as warned
        self._dropped = 0  # actions dropped since the queue last had room
        self._refused: set[int] = set()  # HTTP statuses warned about since the last success
        moderation.may_act = self.may_act

    @property
    def waiting(self) -> int:
        """Actions waiting or under way."""
        return len(self._waiting) + (self._running is not None)

    def breaks_a_filter(self, text: str, tags: Mapping[str, str]) -> bool:
        """True when a chat line saying ``text`` (with ``tags``) breaks a filter, exemptions aside
        (``Moderation.breaks_a_filter``): only then, or for a command, does the driver make it a
        ChatMessage and ``check`` it."""
        return self.moderation.breaks_a_filter(text, tags)

    def check(self, message: ChatMessage, say: Callable[[str, str], None]) -> Action | None:
        """Run ``message`` through the spam filters (``Moderation.check``); the Action when it broke
        one (it then runs no command), else None. Logs the action (INFO; the text at DEBUG) and
        queues it; its warning goes to ``say(channel, text)`` once Twitch has carried it out
        (never in log mode)."""
        action = self.moderation.check(message)
        if action is None:
            return None
        log.info("%s: %s, offence %d", action.channel, action.describe(), action.offence)
        log.debug("%s: %s's message that broke %s: %r", action.channel, action.login, action.filter, message.text)
        self.submit(action, say)
        return action

    # --- what the driver tells ----------------------------------------------------------------

    def note_bot_role(self, channel: str, is_moderator: bool) -> None:
        """The bot is (or is not) a moderator or the broadcaster in ``channel`` (Twitch's USERSTATE)."""
        channel = channel.lower()
        self._moderator[channel] = is_moderator
        self._check_early(channel)

    def note_room(self, channel: str, room_id: str) -> None:
        """``channel``'s broadcaster has the user ID ``room_id`` (ROOMSTATE's ``room-id`` tag)."""
        channel = channel.lower()
        if USER_ID.fullmatch(room_id):
            self._rooms[channel] = room_id
        self._check_early(channel)

    def _check_early(self, channel: str) -> None:
        """With filters meant to act, say at once (one WARNING) when the bot cannot act in ``channel``,
        once both the bot's role and the room are known (Twitch sends USERSTATE, then ROOMSTATE)."""
        if self.moderation.acts and channel in self._moderator and channel in self._rooms:
            self.may_act(channel)

    # --- what Moderation asks -----------------------------------------------------------------

    def may_act(self, channel: str) -> bool:
        """True when actions in ``channel`` can be carried out; else False, with one WARNING
        saying what to do (again only when the reason changes)."""
        problem = self.why_not(channel)
        warned = self._warned.get(channel)
        if problem and problem != warned:
            self._warned[channel] = problem
            log.warning("spam filters in %s only log, as in log mode: %s", channel, problem)
        elif not problem and warned is not None:
            del self._warned[channel]
            log.info("spam filters in %s act from now on: the bot is a moderator there with the scopes", channel)
        return not problem

    def why_not(self, channel: str) -> str:
        """Why actions in ``channel`` cannot be carried out and what to do, one line; ``''`` when they can."""
        if self.calls is None:
            return "acting needs Twitch's API, which vbot uses on Twitch chat with a token (README: Getting a token)"
        tokens = self.calls.tokens.tokens
        room = self._rooms.get(channel)
        problems = []
        if not (self._moderator.get(channel) or (tokens.user_id and tokens.user_id == room)):
            bot = tokens.login or "<the bot's login>"
            problems.append(f"the bot is not a moderator there: the broadcaster types /mod {bot} in that chat")
        missing = [scope for scope in MODERATION_SCOPES if tokens.scopes and scope not in tokens.scopes]
        if missing:
            from vbot.keeper import the_scopes  # loaded already: ``calls`` hold the token keeper

            problems.append(
                f'the token lacks {the_scopes(missing)}: run "vbot login" again, which asks for the filters\' scopes'
            )
        if not problems and not tokens.user_id:
            problems.append("the bot's user ID is not known yet (Twitch's token service has not answered)")
        if not problems and room is None:
            problems.append("the broadcaster's user ID is not known (Twitch sent no ROOMSTATE)")
        return "; and ".join(problems)

    # --- the queue ------------------------------------------------------------------------------

    def submit(self, action: Action, say: Callable[[str, str], None] | None = None) -> None:
        """Queue the call that carries out ``action`` (nothing for a would-be one) and start it
        when nothing runs and the bucket allows; once Twitch has carried it out, its warning
        goes to ``say(channel, text)``."""
        if action.log_only:
            return
        request = self._request(action)
        if request is None:
            return
        self._waiting.append(_Job(action, request, self._clock(), say))
        if len(self._waiting) > self.max_waiting:
            dropped = self._waiting.popleft()
            self._dropped += 1
            log.log(
                logging.WARNING if self._dropped == 1 else logging.DEBUG,
                "%d moderation actions wait for Twitch's API: dropping the oldest, %s in %s",
                self.max_waiting,
                dropped.action.describe(),
                dropped.action.channel,
            )
        self._start_next()

    def tick(self) -> float | None:
        """Call on every turn of the event loop: collects a finished call, starts the next one. Never
        blocks. Returns the seconds until it wants to be asked again: CHECK_EVERY while a call runs,
        the bucket's wait while actions wait for it; None when idle (only ``check`` brings work)."""
        if self._running is not None and self.calls is not None:
            outcome = self.calls.collect(LANE)
            if outcome is None:
                return CHECK_EVERY
            job, self._running = self._running, None
            self._settle(job, outcome)
        self._start_next()
        if self._running is not None:
            return CHECK_EVERY
        if self._waiting and self.calls is not None:
            return self.calls.bucket.wait_time() or 1.0  # else the credentials are not known yet
        return None

    # --- inside -----------------------------------------------------------------------------------

    def _request(self, action: Action) -> Request | None:
        """The Helix call for ``action``; None (logged) when the message lacks the tag it needs."""
        from vbot.helix import Request  # there are calls to make: Helix's code is loaded (vbot.cli)

        broadcaster = self._rooms.get(action.channel, "")
        moderator = self.calls.tokens.tokens.user_id if self.calls is not None else ""
        params = (("broadcaster_id", broadcaster), ("moderator_id", moderator))
        if not (broadcaster and moderator):  # may_act said yes just now: only if the token changed meanwhile
            log.debug("%s: cannot %s: the user IDs are not known", action.channel, action.describe())
            return None
        if action.penalty.timeout is None:
            if not _MESSAGE_ID.fullmatch(action.message_id):
                log.warning("%s: cannot %s: the message has no id tag", action.channel, action.describe())
                return None
            return Request("DELETE", "/moderation/chat", (*params, ("message_id", action.message_id)))
        if not USER_ID.fullmatch(action.user_id):
            log.warning("%s: cannot %s: the message has no user-id tag", action.channel, action.describe())
            return None
        data = {"user_id": action.user_id, "duration": action.penalty.timeout, "reason": action.reason}
        return Request("POST", "/moderation/bans", params, {"data": data})

    def _start_next(self) -> None:
        if self._running is None and self._waiting and self.calls is not None and self.calls.may_start(LANE):
            self._running = self._waiting.popleft()
            self.calls.start(LANE, self._running.request)
        if self._dropped and not self._waiting:
            if self._dropped > 1:
                log.info("the moderation queue has room again; %d actions were dropped in all", self._dropped)
            self._dropped = 0

    def _settle(self, job: _Job, outcome: Outcome) -> None:
        """Note what became of ``job``'s call: done, to be made again (429), or failed (logged)."""
        action = job.action
        if outcome.retry:  # rate-limited: made again first, once the bucket refills
            self._waiting.appendleft(job)
            return
        waited = self._clock() - job.since
        if outcome.ok:
            self._refused.clear()
            log.debug("%s: done: %s, %.1f s after it was decided", action.channel, action.describe(), waited)
            if action.warning and job.say is not None:
                job.say(action.channel, action.warning)
            return
        status = outcome.answer.status if outcome.answer is not None else None
        if status == 409:
            log.debug(
                "%s: %s: another ban of %s was under way (HTTP 409)", action.channel, action.describe(), action.login
            )
            return
        if status is None or status == 401 or status >= 500:  # Calls has said so (one WARNING per outage)
            log.debug("%s: could not %s: %s", action.channel, action.describe(), outcome.problem)
            return
        if status == 403:  # the bot is no longer a moderator there: that channel only logs from now on
            self._moderator[action.channel] = False
            self._waiting = collections.deque(
                other for other in self._waiting if other.action.channel != action.channel
            )
            log.debug("%s: could not %s: %s", action.channel, action.describe(), outcome.problem)
            self.may_act(action.channel)
            return
        level = logging.DEBUG if status in self._refused else logging.WARNING
        self._refused.add(status)
        log.log(level, "%s: Twitch's API refused to %s: %s", action.channel, action.describe(), outcome.problem)
