"""The console transport: chat with vbot in a terminal, no network and no token.

Each line read is a chat message in one channel; each reply goes through the
same Dispatcher (command table, roles, cooldowns) and the same Outbox
(cleaning, cutting, duplicates, rate windows) as on Twitch, and is printed as
``<bot login>: <text>``. Only the transport differs from ``vbot.bot``.

Lines starting with ``/`` that name a console command simulate chat instead:

* ``/as <login> [everyone|subscriber|vip|moderator|broadcaster]`` speak as someone else (``/as``
  alone: as the broadcaster again);
* ``/join <login>``, ``/part <login>`` a chatter arrives or leaves (``!count_viewers``);
* ``/timers`` lists the timers of the commands file and what each is waiting for;
* ``/live <viewers> [game]`` and ``/offline`` set the stream facts the console pretends
  Twitch's API gave (``!uptime``, ``!count_viewers``, ``{game}``, timers' ``live_only``);
  until the first of them they are unknown, as without Twitch's API;
* ``/wait <seconds>`` lets that much time pass at once on the console's clock
  (``ConsoleClock``): timers due meanwhile post, in order, and cooldowns and send
  limits see the time pass too (``/wait 900`` is 15 minutes);
* ``/quit`` ends the console, as does the end of input.

Every other line counts as a chat line from the current speaker for timers
(as on Twitch, the bot's own login never counts). Timers are checked after each
line and during ``/wait``, not while the console waits for input.

The spam filters of the commands file run in log mode: a line that breaks one is
reported (``* would time out alice for 10 s (links)``) and, as on Twitch, never runs
a command. The typist starts as the broadcaster, whom no filter applies to: ``/as
alice`` first.

``{count}`` values start from the live bot's (VBOT_STATE_FILE, read once, read-only) and
are counted on in memory only (``vbot.state.ConsoleCounts``, built by ``vbot.cli``): trying a
command here never changes the live bot's counters.

Notes for the person typing (confirmations, usage) go to the ``notes`` stream
(stderr), so stdout carries only replies.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from vbot.chat import ChatMessage, Role, role_from_tags
from vbot.config import LOGIN_PATTERN, Config
from vbot.dispatch import Dispatcher, NoReload
from vbot.facts import ConsoleFacts
from vbot.health import Health, format_duration
from vbot.modes import Members
from vbot.outbox import Outbox
from vbot.timers import TimerSchedule

CONSOLE_LOGIN = "vbot"
"""The bot's login in the console when VBOT_USERNAME is not set."""
CONSOLE_CHANNEL = "#console"
"""The console's channel when VBOT_CHANNEL is not set."""
USAGE = (
    "console commands: /as <login> [everyone|subscriber|vip|moderator|broadcaster], "
    "/join <login>, /part <login>, /live <viewers> [game], /offline, /timers, /wait <seconds>, /quit"
)
MAX_WAIT = 7 * 86400.0
"""The most seconds one ``/wait`` may skip (a week)."""


class ConsoleClock:
    """The console's monotonic clock: ``base()`` plus the seconds skipped with ``skip()`` (``/wait``).

    Outbox, cooldowns and timers all read it in the console, so a ``/wait``
    moves them together.
    """

    def __init__(self, base: Callable[[], float] = time.monotonic):
        self._base = base
        self.skipped = 0.0

    def __call__(self) -> float:
        return self._base() + self.skipped

    def skip(self, seconds: float) -> None:
        """Move the clock ``seconds`` ahead."""
        self.skipped += seconds


@dataclasses.dataclass(frozen=True)
class Speaker:
    """Who the typed lines come from: ``login`` (lowercase), display name, and Twitch-style tags."""

    login: str
    display_name: str
    tags: Mapping[str, str]

    @classmethod
    def make(cls, name: str, role: Role) -> Speaker:
        """A speaker called ``name`` (case kept for the display name) with the badge of ``role``."""
        tags = {"display-name": name}
        if role > Role.EVERYONE:
            tags["badges"] = f"{role.label}/1"
        return cls(name.lower(), name, tags)


class Console:
    """A Chat that reads chat lines from ``stdin`` and prints replies to ``stdout``.

    The channel is ``config.channels[0]`` (``#console`` when none) and the bot's
    login ``config.username`` (``vbot`` when empty). The typist starts as the
    channel's broadcaster. The bot counts as a moderator of its channel, so the
    privileged send limit applies. ``reload() -> str | None`` answers ``!reload``;
    ``sleep(seconds)`` waits for the outbox's rate window. ``timers`` (its bot
    login and channels are set here) is driven by the typed lines and
    ``/wait``, which skips ``clock`` ahead; give the outbox and the
    dispatcher's cooldowns the same clock. ``facts`` are what ``/live`` and
    ``/offline`` set (vbot.facts.ConsoleFacts).
    """

    def __init__(
        self,
        config: Config,
        dispatcher: Dispatcher,
        outbox: Outbox,
        stdin: TextIO,
        stdout: TextIO,
        notes: TextIO,
        reload: Callable[[], str | None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timers: TimerSchedule | None = None,
        clock: ConsoleClock | None = None,
    ):
        self.dispatcher = dispatcher
        self.outbox = outbox
        self.stdin, self.stdout, self.notes = stdin, stdout, notes
        self.reload = reload or NoReload()
        self.sleep = sleep
        self.login = config.username or CONSOLE_LOGIN
        self.channel = config.channels[0] if config.channels else CONSOLE_CHANNEL
        self.members = Members()  # the channel's members, the bot included: the live bot's record
        self.members.add(self.login)
        self.speaker = Speaker.make(self.channel.lstrip("#"), Role.BROADCASTER)
        self.exit_code: int | None = None
        self.outbox.set_privileged(self.channel, True)
        self.dispatcher.moderation.log_only = True  # offline: say what would be done, do nothing
        self.clock = clock or ConsoleClock()
        self.started = self.clock()
        self.sent = 0
        self.timers = timers or TimerSchedule(clock=self.clock)
        self.timers.bot_login = self.login
        self.timers.set_channels([self.channel])
        self.facts = ConsoleFacts(self.clock)
        self.timers.facts = self.facts

    # --- Chat ----------------------------------------------------------------

    def viewer_count(self, channel: str) -> int:
        """Chatters joined with ``/join`` and not parted, the bot excluded (0 for other channels)."""
        if channel != self.channel:
            return 0
        return self.members.viewer_count(self.login)

    def request_stop(self, exit_code: int = 0) -> None:
        """End ``run()`` with ``exit_code`` after the current line."""
        if self.exit_code is None:
            self.exit_code = exit_code

    def health(self) -> Health:
        """The console's counters: its own uptime (``/wait`` included), ``console`` as the connection."""
        return Health(
            uptime=self.clock() - self.started,
            connected=None,
            reconnects=0,
            sent=self.sent,
            dropped=self.outbox.dropped,
            waiting=len(self.outbox),
            connection="console",
        )

    # --- the loop ------------------------------------------------------------------

    def run(self) -> int:
        """Handle lines until ``/quit``, end of input, Ctrl-C or a stop request; returns the exit code (0)."""
        if self.stdin.isatty():
            self._note(
                f"vbot console: you are {self.speaker.display_name}, the broadcaster of {self.channel}. "
                f"Try !help. {{count}} values start from the live bot's and change here only. {USAGE}"
            )
        try:
            while self.exit_code is None:
                line = self.stdin.readline()
                if not line:
                    break
                self.handle_line(line.rstrip("\r\n"))
        except KeyboardInterrupt:
            self._note("")
        return self.exit_code or 0

    def handle_line(self, line: str) -> None:
        """One typed line: a console command, or a chat message whose reply is printed."""
        word, _, rest = line.partition(" ")
        console_command = {
            "/as": self._as,
            "/join": self._join,
            "/live": self._live,
            "/offline": self._offline,
            "/part": self._part,
            "/quit": self._quit,
            "/timers": self._timers,
            "/wait": self._wait,
        }
        if word.lower() in console_command:
            console_command[word.lower()](rest.split())
            return
        if line.startswith("/") and not self.dispatcher.is_command(line):
            self._note(f"unknown console command {word!r}; {USAGE}")
            return
        if not line.strip():
            return
        speaker = self.speaker
        self.timers.note_line(self.channel, speaker.login)
        role = role_from_tags(speaker.tags, speaker.login, self.channel)
        message = ChatMessage(self.channel, speaker.login, line, role, speaker.display_name, speaker.tags)
        action = self.dispatcher.moderation.check(message)
        if action is not None:
            self._note(f"* {action.describe()}")
            if action.warning:
                self._note(f"* would reply: {action.warning}")
        elif self.dispatcher.is_command(line):
            reply = self.dispatcher.handle(message, self)
            if reply:
                self.say(reply)
        self.post_timers()

    def post_timers(self) -> int:
        """Post (through ``say``) the timers due now; returns how many."""
        if self.exit_code is not None:
            return 0
        return self.timers.post_due(self, lambda channel, text: self.say(text))

    def say(self, text: str) -> None:
        """Pass ``text`` through the outbox and print what it releases, waiting for the rate window if needed."""
        if not self.outbox.submit(self.channel, text):
            self._note("(no reply sent: the outbox skipped it as empty or the same as a recent reply)")
        while True:
            for _channel, ready in self.outbox.take_ready():
                self.stdout.write(f"{self.login}: {ready}\n")
                self.stdout.flush()
                self.sent += 1
            wait = self.outbox.wait_time()
            if wait is None:
                return
            self.sleep(max(wait, 0.001))

    # --- console commands ------------------------------------------------------------

    def _as(self, words: list[str]) -> None:
        if not words:  # the typist again: the channel's broadcaster
            words = [self.channel.lstrip("#"), "broadcaster"]
        if len(words) > 2 or not LOGIN_PATTERN.fullmatch(words[0].lower()):
            self._note("usage: /as <login> [everyone|subscriber|vip|moderator|broadcaster]")
            return
        try:
            role = Role.parse(words[1]) if len(words) == 2 else Role.EVERYONE
        except ValueError as error:
            self._note(str(error))
            return
        self.speaker = Speaker.make(words[0], role)
        effective = role_from_tags(self.speaker.tags, self.speaker.login, self.channel)
        self._note(f"* you are now {self.speaker.display_name} ({effective.label})")

    def _join(self, words: list[str]) -> None:
        login = self._member_login(words, "/join")
        if login:
            self.members.add(login)
            self._note(f"* {login} joined {self.channel}")

    def _part(self, words: list[str]) -> None:
        login = self._member_login(words, "/part")
        if login and login not in self.members:
            self._note(f"* {login} is not in {self.channel}")
        elif login:
            self.members.remove(login)
            self._note(f"* {login} left {self.channel}")

    def _live(self, words: list[str]) -> None:
        if not words or not re.fullmatch(r"[0-9]{1,9}", words[0]):
            self._note("usage: /live <viewers> [game], e.g. /live 1234 Just Chatting")
            return
        game = " ".join(words[1:])
        self.facts.go_live(int(words[0]), game)
        self._note(
            f"* {self.channel} is live from now with {int(words[0]):,} viewers" + (f", in {game}" if game else "")
        )
        self.post_timers()

    def _offline(self, words: list[str]) -> None:
        self.facts.go_offline()
        self._note(f"* {self.channel} is offline")

    def _quit(self, words: list[str]) -> None:
        self.request_stop(0)

    def _timers(self, words: list[str]) -> None:
        states = self.timers.states()
        if not self.timers.timers:
            self._note("* no timers: add [timers.<name>] tables to the commands file, then !reload")
        for state in states:
            self._note(f"* {state.describe()}")

    def _wait(self, words: list[str]) -> None:
        """Skip the clock ``seconds`` ahead, stopping at each moment a timer falls due to post it."""
        word = words[0] if len(words) == 1 else ""
        seconds = float(word) if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", word) else math.nan  # ASCII digits only
        if not 0 < seconds <= MAX_WAIT:
            self._note(f"usage: /wait <seconds>, more than 0 and at most {MAX_WAIT:.0f}, e.g. /wait 900 for 15 minutes")
            return
        left = seconds
        while self.exit_code is None:
            posted = self.post_timers()
            wait = self.timers.wait_time()
            if wait is None or wait > left or (wait == 0 and not posted):
                break
            self.clock.skip(wait)
            left -= wait
        self.clock.skip(left)
        self.post_timers()
        self._note(f"* {seconds:g} s passed ({format_duration(seconds)})")

    def _member_login(self, words: list[str], usage: str) -> str | None:
        if len(words) != 1 or not LOGIN_PATTERN.fullmatch(words[0].lower()):
            self._note(f"usage: {usage} <login>")
            return None
        return words[0].lower()

    def _note(self, text: str) -> None:
        self.notes.write(text + "\n")
        self.notes.flush()
