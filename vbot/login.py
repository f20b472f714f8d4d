"""``vbot login``: Twitch's device code login, then the token file.

The person opens Twitch's activation page on any device, enters the code shown (or
opens the full link, which carries it) and approves; meanwhile vbot polls the token
service every ``interval`` seconds (never faster; 5 s more after ``slow_down`` or
HTTP 429, as RFC 8628 section 3.5 asks, and at least the ``Retry-After`` of a 429) until
the code expires. Then it validates
the new token (learning the login), saves the token file and says how to start the
bot. No token, refresh token or device code is ever printed.
"""

from __future__ import annotations

import math
import os
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from vbot.auth import (
    CHAT_SCOPES,
    DeviceCode,
    Grant,
    ServiceRefused,
    ServiceUnavailable,
    ServiceUnusable,
    TokenService,
)
from vbot.health import format_duration
from vbot.tokens import TokenFileError, TokenFileLock, Tokens, load_tokens, save_tokens

EXIT_OK, EXIT_UNAVAILABLE, EXIT_CONFIG, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    EXIT_OK: "logged in; the token file is saved",
    EXIT_UNAVAILABLE: "Twitch's token service cannot be reached (the network?); try again",
    EXIT_CONFIG: "configuration error: VBOT_CLIENT_ID not set, a token file that cannot be written, "
    "or one a running vbot holds (stop it first)",
    EXIT_REFUSED: "Twitch refused the login (is VBOT_CLIENT_ID the Client ID of a Public application?), "
    "the login was denied, or the code expired",
    EXIT_INTERRUPTED: "stopped with Ctrl-C; nothing saved",
}
"""What each exit code of ``vbot login`` means (``vbot login --help`` lists them)."""
HELP = """\
Log the bot's Twitch account in with Twitch's device code login and save its token in the
token file. vbot prints a code and a link: open the link on any device, log in to Twitch as
the bot's account, check the code and choose Authorize. vbot waits (Ctrl-C stops it; the
code stays valid for about 30 minutes), then saves the token and says what is left to do.
No token, refresh token or device code is ever printed.

Needs VBOT_CLIENT_ID: the Client ID of your own Twitch application, client type Public
(README: Getting a token). The token file is VBOT_TOKEN_FILE (default vbot-token.json),
readable by its owner only; the bot (vbot without "login") reads it and renews the token by
itself. Logging in again replaces it, also with another account's token (vbot says so)."""
"""The description of ``vbot login --help``; its exit codes follow (EXIT_CODES)."""
SLOW_DOWN = 5
"""Seconds added to the polling interval after ``slow_down`` or HTTP 429."""
MAX_UNAVAILABLE = 3
"""Polls in a row without an answer after which the login gives up."""
PROGRESS_EVERY = 60.0
"""Seconds between progress lines when the output is not a terminal."""


class LoginFailed(Exception):
    """The login cannot go on; ``exit_code`` is 1 (service unavailable), 2 (cannot save) or 3
    (refused, denied or expired); ``str()`` is one line for the person, without secrets."""

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


class DeviceLogin:
    """One ``vbot login`` run.

    ``service`` has the operator's client ID; ``token_file`` is where the tokens go.
    ``out`` receives what the person reads, ``err`` (default ``out``) the line
    saying why the login failed; ``is_tty`` chooses a countdown updated every
    second (True) or a line per minute (False). ``clock()`` is monotonic
    seconds and ``sleep(seconds)`` waits; ``wall_clock()`` is epoch seconds, for the
    expiry saved in the file. ``scopes`` are those to ask Twitch for (the chat scopes, plus
    what the configured commands need: vbot.facts.login_scopes). What the bot will be started
    with, so that the last line names only what is still missing: ``username`` is
    VBOT_USERNAME (``''`` when unset), ``channels`` VBOT_CHANNEL's channels, ``pasted_token``
    whether VBOT_TOKEN is set, ``settings_file`` where the person keeps the settings
    (``.env``, or ``--env-file``'s path). ``scope_notes`` are lines saying why ``scopes`` go
    beyond the chat ones, shown once the token file is known to be free to write.
    """

    def __init__(
        self,
        service: TokenService,
        token_file: Path,
        out: TextIO,
        err: TextIO | None = None,
        *,
        is_tty: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        username: str = "",
        scopes: tuple[str, ...] = CHAT_SCOPES,
        channels: tuple[str, ...] = (),
        pasted_token: bool = False,
        settings_file: str = ".env",
        scope_notes: tuple[str, ...] = (),
    ):
        self.service = service
        self.token_file = token_file
        self.out = out
        self.err = err or out
        self.is_tty = is_tty
        self.clock = clock
        self.sleep = sleep
        self.wall_clock = wall_clock
        self.username = username
        self.scopes = scopes
        self.channels = channels
        self.pasted_token = pasted_token
        self.settings_file = settings_file
        self.scope_notes = scope_notes
        self.replaced_login = ""
        """The login of the token file this login replaced, when it was another account's."""
        self._status_shown = False

    def _check_token_file(self) -> None:
        """Before anyone approves anything: can the token file be written where it is configured?"""
        folder = self.token_file.resolve().parent
        problem = ""
        if self.token_file.is_dir():
            problem = "is a folder; name a file, e.g. VBOT_TOKEN_FILE=vbot-token.json"
        elif not folder.is_dir():
            problem = f"cannot be created: its folder {folder} does not exist; create it or choose another path"
        elif not os.access(folder, os.W_OK | os.X_OK):
            problem = (
                f"cannot be created: its folder {folder} is not writable; choose another path or fix the permissions"
            )
        if problem:
            raise LoginFailed(EXIT_CONFIG, f"VBOT_TOKEN_FILE={self.token_file} {problem}")

    def run(self) -> int:
        """Log in; returns the exit code (0 logged in, 1 service unavailable, 2 file not writable,
        3 refused, denied or expired, 130 stopped with Ctrl-C). Problems are one line on ``err``;
        success is two lines on ``out``: who logged in and where the token went (and whose token
        it replaced, if another account's), then what is still missing before the bot can start."""
        try:
            tokens = self.log_in()
        except LoginFailed as failure:
            self._say(f"vbot login: {failure}", self.err)
            return failure.exit_code
        except KeyboardInterrupt:
            self._say("vbot login: stopped; not logged in", self.err)
            return EXIT_INTERRUPTED
        replaced = f" (replaced the token of {self.replaced_login})" if self.replaced_login else ""
        self._say(
            f"Logged in as {tokens.login or '(login unknown)'}; token saved to {self.token_file.resolve()}{replaced}"
        )
        start = (
            "start the bot the way you ran this without 'login' (e.g. .venv/bin/vbot), "
            "or systemctl restart vbot for a service"
        )
        missing = self._missing(tokens.login)
        if missing:
            self._say(f"Still to do: {'; '.join(missing)}; then {start}.")
        else:
            self._say(f"{start[0].upper()}{start[1:]}: it renews the token by itself. Keep the token file private.")
        return EXIT_OK

    def _missing(self, login: str) -> list[str]:
        """What the bot still needs before it can start with this token, as instructions."""
        missing = []
        if not self.channels:
            missing.append(f"set VBOT_CHANNEL in {self.settings_file} to the channel(s) to join")
        if self.username and login and self.username != login:
            missing.append(f"set VBOT_USERNAME={login} or remove it (it says {self.username}, you approved as {login})")
        if self.pasted_token:
            missing.append("remove VBOT_TOKEN: the token file replaces it")
        return missing

    def log_in(self) -> Tokens:
        """Run the whole login and save the token file; returns the saved Tokens. Raises LoginFailed
        (also when a running vbot holds the token file: it would overwrite the new tokens)."""
        self._check_token_file()
        lock = TokenFileLock(self.token_file)
        try:
            lock.acquire()
        except TokenFileError as error:
            raise LoginFailed(EXIT_CONFIG, str(error)) from None
        try:
            return self._log_in()
        finally:
            lock.release()

    def _log_in(self) -> Tokens:
        for note in self.scope_notes:
            self._say(note)
        try:
            code = self.service.start_device_login(self.scopes)
        except ServiceRefused as error:
            raise LoginFailed(
                EXIT_REFUSED,
                f"Twitch refused to start a login ({error}); check that VBOT_CLIENT_ID "
                "is the Client ID of an application with client type Public",
            ) from None
        except ServiceUnavailable as error:
            raise LoginFailed(
                EXIT_UNAVAILABLE, f"cannot reach Twitch's token service ({error}); check the network and try again"
            ) from None
        self._say(f"Open {_page(code.verification_uri)} and enter {code.user_code}")
        self._say(f"or open this link, which carries the code: {code.verification_uri}")
        grant = self._wait_for_approval(code)
        return self._save(grant)

    def _wait_for_approval(self, code: DeviceCode) -> Grant:
        start = self.clock()
        deadline = start + code.expires_in
        interval = float(code.interval)
        next_poll = start + interval
        next_line = start
        unavailable = 0
        while True:
            now = self.clock()
            if now >= deadline:
                self._end_status()
                lifetime = format_duration(code.expires_in)
                raise LoginFailed(
                    EXIT_REFUSED, f'the code expired after {lifetime} without approval; run "vbot login" again'
                )
            if now < next_poll:
                if now >= next_line:
                    self._status(deadline - now)
                    next_line = now + (1.0 if self.is_tty else PROGRESS_EVERY)
                self.sleep(max(0.0, min(next_poll, next_line, deadline) - now))
                continue
            try:
                grant = self.service.poll_device(code.device_code, self.scopes)
            except ServiceRefused as error:
                unavailable = 0
                reason = error.message.lower()
                if reason == "authorization_pending":
                    next_poll = self.clock() + interval
                    continue
                if reason == "slow_down":
                    interval += SLOW_DOWN
                    next_poll = self.clock() + interval
                    continue
                self._end_status()
                if "denied" in reason:
                    raise LoginFailed(
                        EXIT_REFUSED, 'the login was denied on Twitch; run "vbot login" again and choose Authorize'
                    ) from None
                if "invalid device code" in reason:
                    raise LoginFailed(
                        EXIT_REFUSED, 'Twitch no longer knows the code (expired or used); run "vbot login" again'
                    ) from None
                raise LoginFailed(EXIT_REFUSED, f"Twitch refused the login ({error})") from None
            except ServiceUnusable as error:  # the device code is spent: polling again cannot work
                self._end_status()
                raise LoginFailed(EXIT_REFUSED, f"the token service's answer is not usable ({error})") from None
            except ServiceUnavailable as error:
                if error.status == 429:
                    interval += SLOW_DOWN
                    next_poll = self.clock() + max(interval, error.retry_after or 0.0)
                    continue
                unavailable += 1
                if unavailable >= MAX_UNAVAILABLE:
                    self._end_status()
                    raise LoginFailed(
                        EXIT_UNAVAILABLE,
                        f'lost Twitch\'s token service ({error}); check the network and run "vbot login" again',
                    ) from None
                next_poll = self.clock() + interval
                continue
            self._end_status()
            return grant

    def _save(self, grant: Grant) -> Tokens:
        """Validate the new token (learning the login) and save the file."""
        login = user_id = ""
        client_id = self.service.client_id or ""
        try:
            validation = self.service.validate(grant.access_token)
            login, user_id, client_id = validation.login, validation.user_id, validation.client_id or client_id
        except (ServiceRefused, ServiceUnavailable) as error:
            self._say(
                f"vbot login: could not check the new token ({error}); saving it anyway, "
                "the bot checks it when it starts",
                self.err,
            )
        tokens = Tokens(
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            expires_at=self.wall_clock() + grant.expires_in if grant.expires_in else None,
            scopes=grant.scopes,
            login=login,
            user_id=user_id,
            client_id=client_id,
        )
        self.replaced_login = self._other_login(login)
        try:
            save_tokens(self.token_file, tokens)
        except TokenFileError as error:
            raise LoginFailed(EXIT_CONFIG, f"logged in, but {error}") from None
        return tokens

    def _other_login(self, login: str) -> str:
        """The login of the token file about to be replaced when it is another account's, else ``''``
        (also when there is no file, or it cannot be read: nothing is lost that could be named)."""
        try:
            old = load_tokens(self.token_file).login
        except TokenFileError:
            return ""
        return old if old and old != login else ""

    # --- what the person sees ---------------------------------------------------------------

    def _status(self, left: float) -> None:
        if self.is_tty:
            self.out.write(
                f"\rWaiting for approval; the code is valid for {_clock_time(left)} more (Ctrl-C to stop)\x1b[K"
            )
            self._status_shown = True
        else:
            valid = format_duration(math.ceil(left))
            self.out.write(f"Waiting for approval; the code is valid for {valid} more (Ctrl-C to stop)\n")
        self.out.flush()

    def _end_status(self) -> None:
        """Erase the countdown line (a terminal only), so that the next line takes its place."""
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._status_shown = False

    def _say(self, line: str, stream: TextIO | None = None) -> None:
        self._end_status()
        stream = stream or self.out
        stream.write(line + "\n")
        stream.flush()


def _page(verification_uri: str) -> str:
    """The activation page without its query (the code goes in by hand there).

    >>> _page("https://www.twitch.tv/activate?public=true&device-code=ABCDEFGH")
    'https://www.twitch.tv/activate'
    """
    parts = urllib.parse.urlsplit(verification_uri)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) or verification_uri


def _clock_time(seconds: float) -> str:
    """``29:40`` for 1780 seconds (minutes:seconds, rounded up).

    >>> _clock_time(1780), _clock_time(59.2), _clock_time(0)
    ('29:40', '1:00', '0:00')
    """
    whole = max(0, int(-(-seconds // 1)))
    return f"{whole // 60}:{whole % 60:02d}"
