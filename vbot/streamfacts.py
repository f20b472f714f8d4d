"""Stream facts from Twitch's API (Helix), cached per channel and fetched in the background.

``StreamFacts`` is a decision object with injected clocks, like ``vbot.keeper``: the
driver calls ``tick()`` on every turn of its loop and sends the replies it returns;
commands ask it through ``Chat.facts`` (the ``vbot.facts.Facts`` protocol). Its rules:

* a fact younger than FRESH (60 s) is answered at once; an older one is fetched again,
  but never twice within FRESH seconds whatever chat asks (a failed call counts too,
  a rate-limited one does not): at most one Get Streams per channel per minute;
* a reply whose facts must be fetched is held until they arrive or ``reply_wait``
  seconds pass (the call's own deadline), then made with what is known: a fact younger
  than USABLE_FOR (5 min), else ``(not available)``; nothing else waits for it;
* calls run one at a time in the background (``vbot.helix.Calls``, lane ``facts``),
  batched: up to 100 logins per Get Users, 100 channels per Get Streams or Get Channel
  Information; broadcaster IDs are looked up once at start and kept for the run (a channel
  Twitch has no user for is a WARNING then, and its facts stay ``(not available)``);
* ``{followage}`` needs the scope ``moderator:read:followers`` and the bot to be a
  moderator or the broadcaster in the channel (Twitch then answers only the total, so
  an empty answer would read as "not following"): otherwise it shows ``(not available)``,
  with one WARNING saying why.

Helix's shapes (Twitch's API reference): Get Users ``data[].{id, login}``; Get Streams
``data[].{user_id, viewer_count, started_at, game_name, title}``, an offline channel
absent; Get Channel Information ``data[].{broadcaster_id, game_name, title}``; Get
Channel Followers ``total`` and ``data[].followed_at`` (RFC 3339, UTC).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vbot.chat import USER_ID
from vbot.config import LOGIN_PATTERN, Config
from vbot.facts import (
    CHANNEL,
    FOLLOWAGE,
    FOLLOWERS,
    SCOPES,
    STREAM,
    ChannelInfo,
    Follow,
    Known,
    Render,
    Stream,
    Subject,
    scope_warnings,
)
from vbot.helix import DEADLINE, Answer, Calls, Outcome, Request
from vbot.lines import MAX_CHARACTERS, one_line

log = logging.getLogger(__name__)

FRESH = 60.0
"""Seconds a fetched fact is answered without asking Twitch again; also the least time between
two calls for one fact (one channel's Get Streams, say)."""
USABLE_FOR = 300.0
"""Seconds a fact may be shown when a newer one could not be had."""
BATCH = 100
"""Logins per Get Users, channels per Get Streams and Get Channel Information (Twitch's maximum)."""
MAX_USERS = 10_000
"""User IDs kept at most (chatters named by ``{target}``); beyond, only the broadcasters' are kept."""
PRUNE_EVERY = 60.0
"""Seconds between two clean-ups of facts too old to be shown."""
LANE = "facts"

Key = tuple[str, ...]
"""A fact: ``("user", login)``, ``(STREAM | CHANNEL | FOLLOWERS, channel)``, ``(FOLLOWAGE, channel, user_id)``."""


@dataclasses.dataclass
class _Pending:
    channel: str
    needs: frozenset[str]
    subject: Subject | None
    render: Render
    since: float
    deadline: float


class StreamFacts:
    """The Facts of the joined ``channels`` (lowercase, with ``#``) from Twitch's API.

    ``calls`` runs the calls (its token source also gives the granted scopes and the
    bot's user ID); ``clock()`` is monotonic seconds, ``wall_clock()`` epoch seconds
    (uptime, followage). ``reply_wait`` is the most seconds a reply waits for facts.
    Use from one thread (the event loop's).
    """

    def __init__(
        self,
        calls: Calls,
        channels: Iterable[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        reply_wait: float = DEADLINE,
    ):
        self.calls = calls
        self.channels = tuple(channel.lower() for channel in channels)
        self._clock = clock
        self._wall_clock = wall_clock
        self.reply_wait = reply_wait
        self._broadcasters = {channel.lstrip("#") for channel in self.channels}
        self._ids: dict[str, str | None] = {}  # login -> user ID; None: no such user
        self._values: dict[Key, tuple[float, Any]] = {}  # fact -> (fetched at, value)
        self._tried: dict[Key, tuple[float, float]] = {}  # fact -> (last call started, ended)
        self._wanted: dict[Key, None] = {}  # facts to fetch, in order asked
        self._running: tuple[tuple[Key, ...], float] | None = None  # the facts of the call in flight, since
        self._pending: list[_Pending] = []
        self._moderator: dict[str, bool] = {}  # channel -> the bot is moderator or broadcaster there
        self._warned: set[str] = set()
        self._pruned_at = clock()
        self._want([("user", login) for login in sorted(self._broadcasters)])

    # --- Facts -----------------------------------------------------------------------------------

    def answer(self, channel: str, needs: frozenset[str], render: Render, subject: Subject | None = None) -> str | None:
        """See ``vbot.facts.Facts.answer``; the calls it needs start at once."""
        self._collect()
        channel = channel.lower()
        if subject is not None and subject.user_id and USER_ID.fullmatch(subject.user_id):
            self._learn_id(subject.login, subject.user_id)
        now = self._clock()
        missing = self._missing(channel, needs, subject, now)
        if not missing:
            return render(self.known(channel, needs, subject))
        self._want(missing)
        self._pending.append(_Pending(channel, needs, subject, render, now, now + self.reply_wait))
        self._start_next()
        return None

    def known(self, channel: str, needs: frozenset[str], subject: Subject | None = None) -> Known:
        """See ``vbot.facts.Facts.known``: facts younger than USABLE_FOR."""
        channel = channel.lower()
        stream = self._usable((STREAM, channel))
        info = self._usable((CHANNEL, channel))
        follow = None
        if FOLLOWAGE in needs and subject is not None and self._may_ask_followage(channel):
            user_id = self._user_id(subject)
            if user_id is None:
                follow = Follow(None) if subject.login in self._ids or not self._is_login(subject) else None
            else:
                follow = self._usable((FOLLOWAGE, channel, user_id))
        return Known(self._wall_clock(), stream, info, self._usable((FOLLOWERS, channel)), follow)

    def ready(self, channel: str, needs: frozenset[str]) -> bool:
        """See ``vbot.facts.Facts.ready``: stale facts are fetched again meanwhile."""
        self._collect()
        channel = channel.lower()
        self._want(self._missing(channel, needs, None, self._clock()))
        known = self.known(channel, needs)
        return all(known.has(need) for need in needs if need != FOLLOWAGE)  # a timer has no follower to ask about

    def is_live(self, channel: str) -> bool | None:
        """See ``vbot.facts.Facts.is_live``."""
        if not self.ready(channel, frozenset({STREAM})):
            return None
        stream = self.known(channel, frozenset({STREAM})).stream
        return None if stream is None else stream.live

    def tick(self) -> list[tuple[str, str]]:
        """See ``vbot.facts.Facts.tick``: collects a finished call, makes the replies whose facts
        arrived or whose wait is over, and starts the next call due."""
        self._collect()
        now = self._clock()
        replies = []
        for pending in list(self._pending):
            missing = self._missing(pending.channel, pending.needs, pending.subject, pending.since)
            if missing and now < pending.deadline:
                self._want(missing)
                continue
            self._pending.remove(pending)
            try:
                text = pending.render(self.known(pending.channel, pending.needs, pending.subject))
                replies.append((pending.channel, text))
            except Exception:  # as the dispatcher does for a command: logged, no reply, the bot goes on
                log.exception("a reply waiting for stream facts in %s failed", pending.channel)
        self._start_next()
        if now >= self._pruned_at + PRUNE_EVERY:
            self._prune(now)
        return replies

    # --- what the driver tells -------------------------------------------------------------------

    def note_bot_role(self, channel: str, is_moderator: bool) -> None:
        """The bot is (or is not) a moderator or the broadcaster in ``channel`` (Twitch's USERSTATE)."""
        self._moderator[channel.lower()] = is_moderator

    def scope_missing(self, need: str) -> bool:
        """True when the token lacks the scope ``need`` requires (unknown scopes count as granted)."""
        granted = self.calls.tokens.tokens.scopes
        return need in SCOPES and bool(granted) and SCOPES[need] not in granted

    def check_scopes(self, needs: Iterable[str]) -> None:
        """One WARNING (once per run) for each need of ``needs`` whose scope the token lacks:
        at start, for the needs of every command and timer."""
        for need in sorted(need for need in needs if self.scope_missing(need)):
            self._warn_once(f"scope {need}", scope_warnings({need}, ())[0])

    # --- which facts ------------------------------------------------------------------------------

    def _missing(self, channel: str, needs: frozenset[str], subject: Subject | None, since: float) -> list[Key]:
        """The facts to wait for: not fresh, not settled since ``since``, and fetchable."""
        keys: list[Key] = []
        broadcaster = channel.lstrip("#")
        if broadcaster not in self._ids:
            keys.append(("user", broadcaster))
        elif self._ids[broadcaster] is not None:
            keys += [(need, channel) for need in (STREAM, CHANNEL, FOLLOWERS) if need in needs]
            if FOLLOWAGE in needs and subject is not None and self._may_ask_followage(channel):
                user_id = self._user_id(subject)
                if user_id is not None:
                    keys.append((FOLLOWAGE, channel, user_id))
                elif subject.login not in self._ids and self._is_login(subject):
                    keys.append(("user", subject.login))
        return [key for key in keys if self._waits_for(key, since)]

    def _waits_for(self, key: Key, since: float) -> bool:
        if self._is_fresh(key):
            return False
        if self._is_running(key):
            return True
        tried = self._tried.get(key)
        if tried is not None and tried[1] >= since:
            return False  # a call for it ended after the reply was asked: nothing newer to wait for
        return self._may_call(key)

    def _is_fresh(self, key: Key) -> bool:
        if key[0] == "user":
            return key[1] in self._ids  # kept for the run
        value = self._values.get(key)
        return value is not None and self._clock() - value[0] < FRESH

    def _is_running(self, key: Key) -> bool:
        return self._running is not None and key in self._running[0]

    def _may_call(self, key: Key) -> bool:
        tried = self._tried.get(key)
        return not self._is_running(key) and (tried is None or self._clock() - tried[0] >= FRESH)

    def _want(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._wanted[key] = None

    def _usable(self, key: Key) -> Any:
        value = self._values.get(key)
        return None if value is None or self._clock() - value[0] >= USABLE_FOR else value[1]

    def _user_id(self, subject: Subject) -> str | None:
        return subject.user_id if USER_ID.fullmatch(subject.user_id) else self._ids.get(subject.login)

    @staticmethod
    def _is_login(subject: Subject) -> bool:
        return LOGIN_PATTERN.fullmatch(subject.login) is not None

    def _learn_id(self, login: str, user_id: str | None) -> None:
        if len(self._ids) >= MAX_USERS and login not in self._ids:
            self._ids = {name: uid for name, uid in self._ids.items() if name in self._broadcasters}
        self._ids[login] = user_id

    def _may_ask_followage(self, channel: str) -> bool:
        """Whether Twitch would answer a follow truthfully here; the first refusal of a kind is a WARNING."""
        if self.scope_missing(FOLLOWAGE):
            self.check_scopes({FOLLOWAGE})
            return False
        own_id = self.calls.tokens.tokens.user_id
        if self._moderator.get(channel) or (own_id and own_id == self._ids.get(channel.lstrip("#"))):
            return True
        self._warn_once(
            f"moderator {channel}",
            f"{{followage}} in {channel} needs the bot to be a moderator there "
            f"(the broadcaster types /mod {self.calls.tokens.tokens.login or '<bot login>'})",
        )
        return False

    def _warn_once(self, kind: str, text: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s", text)

    # --- calls --------------------------------------------------------------------------------------

    def _start_next(self) -> None:
        """Start the call for the facts wanted first, batched with others of its kind."""
        if not self._wanted or not self.calls.may_start(LANE):
            return
        now = self._clock()
        for key in list(self._wanted):
            if self._is_fresh(key) or not self._may_call(key):
                del self._wanted[key]
        if not self._wanted:
            return
        kind = next(iter(self._wanted))[0]
        keys = [key for key in self._wanted if key[0] == kind]
        if kind in (FOLLOWERS, FOLLOWAGE):
            keys = keys[:1]
        keys = keys[:BATCH]
        for key in keys:
            del self._wanted[key]
        self._running = (tuple(keys), now)
        self.calls.start(LANE, self._request(kind, keys))

    def _request(self, kind: str, keys: list[Key]) -> Request:
        def broadcaster(key: Key) -> str:
            user_id = self._ids.get(key[1].lstrip("#"))
            assert user_id is not None  # only channels whose broadcaster is known are asked about
            return user_id

        if kind == "user":
            return Request("GET", "/users", tuple(("login", key[1]) for key in keys))
        if kind == STREAM:
            ids = tuple(("user_id", broadcaster(key)) for key in keys)
            return Request("GET", "/streams", (*ids, ("first", str(BATCH))))
        if kind == CHANNEL:
            return Request("GET", "/channels", tuple(("broadcaster_id", broadcaster(key)) for key in keys))
        if kind == FOLLOWERS:
            return Request("GET", "/channels/followers", (("broadcaster_id", broadcaster(keys[0])), ("first", "1")))
        return Request(
            "GET", "/channels/followers", (("broadcaster_id", broadcaster(keys[0])), ("user_id", keys[0][2]))
        )

    def _collect(self) -> None:
        outcome = self.calls.collect(LANE)
        if outcome is not None:
            self._apply(outcome)

    def _apply(self, outcome: Outcome) -> None:
        """Note what a finished call brought (or that it failed) for the facts it asked."""
        assert self._running is not None
        keys, started = self._running
        self._running = None
        now = self._clock()
        if outcome.retry:  # rate-limited: it did not count; asked again once the bucket refills
            self._want(keys)
            return
        for key in keys:
            self._tried[key] = (started, now)
        if not outcome.ok or outcome.answer is None:
            if outcome.answer is not None and outcome.answer.status < 500 and outcome.answer.status != 401:
                self._warn_once(
                    f"refused {outcome.request.path} {outcome.answer.status}", f"Twitch's API refused {outcome.problem}"
                )
            return
        try:
            self._store(keys[0][0], keys, outcome.answer, now)
        except (KeyError, TypeError, ValueError) as error:
            self._warn_once(
                f"shape {outcome.request.path}",
                f"Twitch's API answered {outcome.request} with an unexpected reply ({error!r}); skipped",
            )

    def _store(self, kind: str, keys: tuple[Key, ...], answer: Answer, now: float) -> None:
        if kind == "user":
            found = read_users(answer.data)
            for key in keys:
                self._learn_id(key[1], found.get(key[1]))
                if key[1] not in found and key[1] in self._broadcasters:  # its stream facts stay unknown
                    self._warn_once(f"no user {key[1]}", f"Twitch has no user {key[1]}: is VBOT_CHANNEL misspelt?")
            return
        if kind == STREAM:
            streams = read_streams(answer.data)
            for key in keys:
                stream = streams.get(self._ids.get(key[1].lstrip("#")) or "", Stream(False))
                self._values[key] = (now, stream)
                if stream.live:  # the game and title come with it
                    self._values[(CHANNEL, key[1])] = (now, ChannelInfo(stream.game, stream.title))
            return
        if kind == CHANNEL:
            infos = read_channels(answer.data)
            for key in keys:
                info = infos.get(self._ids.get(key[1].lstrip("#")) or "")
                if info is not None:
                    self._values[key] = (now, info)
            return
        if kind == FOLLOWERS:
            if answer.total is None:
                raise KeyError("total")
            self._values[keys[0]] = (now, answer.total)
            return
        self._values[keys[0]] = (now, read_follow(answer.data))

    def _prune(self, now: float) -> None:
        """Forget facts too old to show and calls too old to matter (followage of past chatters)."""
        self._pruned_at = now
        self._values = {key: value for key, value in self._values.items() if now - value[0] < USABLE_FOR}
        self._tried = {key: tried for key, tried in self._tried.items() if now - tried[1] < USABLE_FOR}


def stream_facts(config: Config, calls: Calls, needs: Iterable[str]) -> StreamFacts:
    """The StreamFacts of ``config``'s channels, asked with ``calls`` (which must have the lane LANE);
    WARNINGs for the ``needs`` (of the commands file) whose scope is missing."""
    facts = StreamFacts(calls, config.channels)
    facts.check_scopes(needs)
    return facts


# --- Helix's shapes ------------------------------------------------------------------------------------


def read_users(data: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Get Users: login -> user ID. Raises KeyError/TypeError/ValueError for a malformed entry."""
    return {_text(user["login"]).lower(): _user_id(user["id"]) for user in data}


def read_streams(data: Iterable[Mapping[str, Any]]) -> dict[str, Stream]:
    """Get Streams: broadcaster's user ID -> live Stream (an offline channel is absent)."""
    streams = {}
    for entry in data:
        viewers = entry["viewer_count"]
        if isinstance(viewers, bool) or not isinstance(viewers, int) or not 0 <= viewers < 10**12:
            raise TypeError("viewer_count is not a count")
        started_at = _moment(entry["started_at"])
        streams[_user_id(entry["user_id"])] = Stream(
            True, viewers, started_at, _text(entry.get("game_name", "")), _text(entry.get("title", ""))
        )
    return streams


def read_channels(data: Iterable[Mapping[str, Any]]) -> dict[str, ChannelInfo]:
    """Get Channel Information: broadcaster's user ID -> game and title."""
    return {
        _user_id(entry["broadcaster_id"]): ChannelInfo(_text(entry.get("game_name", "")), _text(entry.get("title", "")))
        for entry in data
    }


def read_follow(data: tuple[Mapping[str, Any], ...]) -> Follow:
    """Get Channel Followers with ``user_id``: since when that user follows; empty ``data``: not following."""
    return Follow(_moment(data[0]["followed_at"]) if data else None)


def _user_id(value: object) -> str:
    if not isinstance(value, str) or not USER_ID.fullmatch(value):
        raise TypeError("not a user ID")
    return value


def _text(value: object) -> str:
    """A name or title from Twitch, on one line (it goes into chat)."""
    if not isinstance(value, str):
        raise TypeError("not a string")
    return one_line(value, MAX_CHARACTERS)


def _moment(value: object) -> float:
    """An RFC 3339 time (``2024-05-01T12:00:00Z``) as epoch seconds. Raises ValueError for a time
    the calendar cannot show in UTC (``9999-12-31T23:59:59-23:59`` is in the year 10000), which
    ``{followage}`` would fail to render; TypeError for what is not a time at all."""
    if not isinstance(value, str) or len(value) > 40:
        raise TypeError("not a time")
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("a time without its zone")
    try:
        seconds = moment.astimezone(datetime.UTC).timestamp()
        datetime.datetime.fromtimestamp(seconds, datetime.UTC)  # as the texts read it back (facts.py)
    except (OverflowError, OSError, ValueError):
        raise ValueError("a time beyond the calendar") from None
    return seconds
