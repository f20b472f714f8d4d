"""Keeping the bot's token valid while it runs: validation, refresh, and the password for each login.

``TokenKeeper`` is a decision object with an injected clock, like ``Outbox``: the bot
asks it for the password before every connect, calls ``tick()`` about once a second,
and tells it when Twitch refused a login. What it does, and why (facts from Twitch's
docs, collected in the project's ``twitch-auth.md``):

* Twitch checks the token only at IRC login, so a connected bot chats on after its
  token expires and fails at the next reconnect. The keeper refreshes ahead of
  expiry (REFRESH_AHEAD) and ``before_connect()`` always answers with the *current*
  access token (the ``irc`` library's ``reconnect()`` would replay the old PASS).
* Twitch requires validating a kept token at start and at least hourly, and ending
  the session when it was revoked: ``tick()`` validates every ``validate_interval``
  seconds; a 401 leads to a refresh, and a refused refresh means the session is
  over: CannotLogIn. So does a token that now belongs to another login, or lost a
  chat scope.
* Refresh tokens are single-use: the new pair is saved to the token file before the
  keeper uses it, and ``on_new_secret`` hears of each new secret before it is used
  (the log redaction must know it first). Only one HTTP call runs at a time.
* A token service that fails is asked again after a backoff (5 s doubling to 60 s,
  or longer when it sends ``Retry-After``), never at once; one WARNING per attempt.
  A login Twitch refused is not tried again with the same token: ``before_connect()``
  answers "not yet" (None) until the renewal worked.

Times are scheduled on the monotonic ``clock``; the wall clock (``wall_clock``) only
converts the expiry saved in the token file (epoch seconds) to and from it, so a clock
that steps (NTP at boot, a resumed VM) moves no validation or renewal.

Nothing here blocks the chat loop: HTTP calls run in a background daemon thread
(``submit``), and ``tick()`` and ``before_connect()`` only start them and collect
finished ones. Only ``start()`` (before the bot is built) waits for the token service,
and ``close()`` at a stop waits for a refresh under way (so its new pair is saved),
never for a validation; so does a stop during ``start()``'s own refresh.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from vbot.auth import (
    ServiceError,
    ServiceRefused,
    ServiceUnavailable,
    ServiceUnusable,
    TokenService,
    Validation,
)
from vbot.health import format_duration
from vbot.session import Backoff
from vbot.tokens import LOGIN_HINT, TokenFileError, TokenFileLock, Tokens, save_tokens

log = logging.getLogger(__name__)

REFRESH_AHEAD = 600.0
"""Seconds before expiry at which a refresh becomes due (half the lifetime left, for short-lived tokens)."""
EXPIRY_MARGIN = 60.0
"""Seconds: a token expiring within this is refreshed before connecting, and at start."""
RETRY_AFTER = 60.0
"""Seconds before validating again after the token service was unavailable; the most a
failed refresh or save waits before its next try (unless the service asks for longer)."""
RETRY_FIRST = 5.0
"""Seconds before the first retry of a failed refresh or save; doubled at each failure."""
PASTED_HINT = 'run "vbot login" once for a token vbot keeps fresh (README: Getting a token)'
REFRESH_REFUSED = (
    "the refresh token was already used (by another vbot on a copy of the token file?), "
    "access was revoked, or it went unused for 30 days"
)
"""What a refused refresh token can mean (Twitch's refresh tokens are single-use and die after 30 days)."""

Submit = Callable[[Callable[[], Any]], "concurrent.futures.Future[Any]"]


class CannotLogIn(Exception):
    """Twitch will not accept the token and vbot cannot renew it: the bot must QUIT and exit 3.

    ``str()`` is a one-line reason for the log, saying what to do; never a secret.
    """


class Renewal(NamedTuple):
    """A refresh's outcome: the new ``tokens``, their expiry on the monotonic clock (None:
    unknown), and whether they reached the token file."""

    tokens: Tokens
    expires: float | None
    saved: bool


class TokenKeeper:
    """The bot's current tokens, and when to validate or refresh them.

    ``tokens``: from the token file (renewable), or a pasted VBOT_TOKEN
    (``refresh_token`` None). ``token_file``: where renewed tokens are saved (None
    for a pasted token). ``clock()`` returns monotonic seconds (the schedule);
    ``wall_clock()`` epoch seconds (only to convert ``Tokens.expires_at``).
    ``submit(job)`` runs ``job()`` in the background and returns its Future; by default
    a daemon thread per call (``in_daemon_thread``). ``backoff`` paces the retries of a
    failed refresh or save (default 5 s doubling to 60 s). ``stop_wait`` is the most
    seconds ``close()`` waits for a refresh under way (default: the service's timeout
    plus 1). ``on_new_secret(secret)`` is called, in the caller's thread, with every
    access and refresh token before the keeper uses it. ``chat_login`` is the login the
    bot chats as, once known (set by the caller): a validation naming another ends the
    session. ``lock``, the token file's TokenFileLock, is released by ``close()``.
    """

    def __init__(
        self,
        service: TokenService,
        tokens: Tokens,
        token_file: Path | None = None,
        *,
        validate_interval: float = 3600.0,
        on_new_secret: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        submit: Submit | None = None,
        backoff: Backoff | None = None,
        stop_wait: float | None = None,
        lock: TokenFileLock | None = None,
    ):
        self.service = service
        self.token_file = token_file
        self.validate_interval = validate_interval
        self.stop_wait = service.timeout + 1.0 if stop_wait is None else stop_wait
        self.chat_login = ""
        self._lock = lock
        self._on_new_secret = on_new_secret or (lambda secret: None)
        self._clock = clock
        self._wall_clock = wall_clock
        self._submit = submit or in_daemon_thread
        self._backoff = backoff or Backoff(first=RETRY_FIRST, cap=RETRY_AFTER)
        self._job: tuple[str, concurrent.futures.Future[Any]] | None = None
        self.tokens = tokens
        self._learn(tokens)
        now = clock()
        self._expires = None if tokens.expires_at is None else now + (tokens.expires_at - wall_clock())
        self._next_validation = now + validate_interval
        self._refresh_at = math.inf
        self._margin = EXPIRY_MARGIN
        self._retry_refresh_at = -math.inf
        self._must_refresh = False
        self._login_refused = False
        self._renewed_after_refusal = False
        self._unsaved = False
        self._told_expired = False
        self._plan_refresh()

    # --- what the bot asks ---------------------------------------------------------------

    @property
    def password(self) -> str:
        """The PASS argument for the current access token, ``oauth:<token>``."""
        return self.tokens.password

    @property
    def is_renewable(self) -> bool:
        """True when the keeper can refresh the token (a token file with a refresh token)."""
        return self.token_file is not None and self.tokens.is_renewable

    @property
    def busy(self) -> bool:
        """True while a background call to the token service runs (at most one at a time)."""
        return self._job is not None

    def expires_in(self) -> float | None:
        """Seconds until the access token expires (negative once it has), None when unknown or never."""
        return None if self._expires is None else self._expires - self._clock()

    def start(self) -> Validation | None:
        """At start, before the bot is built: renew an expired token, validate it, check its scopes.

        Blocks for the HTTP calls; a stop (KeyboardInterrupt) during a refresh first waits for it
        (``_refresh_now``), so that its new pair is saved. Returns Twitch's Validation, or None when the
        service could not be reached (a WARNING is logged; connect with the token as
        it is). Raises CannotLogIn when the token is invalid and cannot be renewed,
        its refresh was refused, or it lacks a chat scope. Logs a WARNING with the
        expiry for a pasted token, which vbot cannot renew.
        """
        renewed = False
        if self.is_renewable and self._expires_within(EXPIRY_MARGIN):
            log.info("the saved token has expired; renewing it")
            unavailable = self._refresh_now()
            if unavailable is not None:
                log.warning("could not renew the expired token (%s); trying it anyway", unavailable)
            renewed = unavailable is None
        while True:
            try:
                validation = self.service.validate(self.tokens.access_token)
                break
            except ServiceRefused as error:
                if not self.is_renewable:
                    raise CannotLogIn(
                        f"Twitch says VBOT_TOKEN is not valid ({error}): it expired or was "
                        f"revoked, and vbot cannot renew a pasted token; {PASTED_HINT}"
                    ) from None
                if renewed:
                    raise CannotLogIn(
                        f"Twitch refused the token it has just renewed ({error}); {LOGIN_HINT} again"
                    ) from None
                log.info("Twitch says the token is no longer valid (%s); renewing it", error)
                unavailable = self._refresh_now()
                if unavailable is not None:
                    log.warning("could not renew the token (%s); connecting with it anyway", unavailable)
                    self._unvalidated()
                    return None
                renewed = True
            except ServiceUnavailable as error:
                log.warning("could not validate the token (%s); connecting with it anyway", error)
                self._unvalidated()
                return None
        self._validated(validation)
        if self._unsaved and self.token_file is not None:
            try:
                save_tokens(self.token_file, self.tokens)
                self._unsaved = False
            except TokenFileError as error:
                log.warning("could not note the login in the token file (%s)", error)
        missing = validation.missing_scopes()
        if missing:
            raise self._lacks(missing, "")
        if not self.is_renewable:
            self._warn_pasted(validation.expires_in)
        return validation

    def before_connect(self) -> str | None:
        """Call when the bot is about to connect; never blocks.

        Returns the PASS argument to send now, or None for "not yet": the token must be
        renewed first (it has expired, or Twitch refused it) and that renewal is under way
        or waits for the token service; ask again on a later turn of the loop, without
        connecting meanwhile. A token that merely expires soon is tried as it is when its
        renewal failed; one that has expired or that Twitch refused never is. Raises CannotLogIn when Twitch
        refused the refresh (revoked, or used by another process).
        """
        stop = self._collect()
        if stop is None and self._refresh_needed() and self._job is None and self._clock() >= self._retry_refresh_at:
            self._start_refresh()
            stop = self._collect()  # a ``submit`` that runs the job at once has finished already
        if stop is not None:
            raise stop
        if not self._refresh_needed():
            return self.password  # a validation under way never holds up a login
        if self._job is not None or self._login_refused or self._expires_within(0):
            return None  # a refresh (or a call before it) decides the token; a refused or expired one is never sent
        return self.password  # expiring soon and its renewal failed: it may still work

    def tick(self) -> CannotLogIn | None:
        """Call about once a second from the event loop; never blocks.

        Collects a finished background call, then starts the next one that is due:
        saving tokens that could not be saved, a refresh (ahead of expiry, or after a
        401 or a refused login), or a validation. Returns CannotLogIn when the bot must
        QUIT and exit 3 (revoked, another login, a chat scope gone), else None.
        """
        stop = self._collect()
        if stop is not None:
            return stop
        if self._job is None:
            self._start_due_job()
        return None

    def login_failed(self) -> CannotLogIn | None:
        """Call when Twitch refused the login (``Login authentication failed``).

        None: the token is renewed in the background, and ``before_connect()`` answers
        None until then. A CannotLogIn (QUIT and exit 3) when the token cannot be renewed
        (a pasted VBOT_TOKEN) or a token renewed after a refusal was refused again. The
        caller logs the refusal.
        """
        if not self.is_renewable:
            return CannotLogIn(
                f"Twitch refused the login with VBOT_TOKEN: it expired or was revoked, "
                f"and vbot cannot renew a pasted token; {PASTED_HINT}"
            )
        if self._renewed_after_refusal:
            return CannotLogIn(f"Twitch refused the login again with a freshly renewed token; {LOGIN_HINT} again")
        self._login_refused = True
        self._must_refresh = True
        return None

    def token_refused(self, access_token: str) -> None:
        """Call when Twitch's HTTP API (Helix) answered 401 to ``access_token``: when it is still
        the current token and can be renewed, the next ``tick()`` renews it (Twitch recommends
        renewing on a 401)."""
        if self.is_renewable and access_token == self.tokens.access_token:
            self._must_refresh = True

    def logged_in(self) -> None:
        """Call on Twitch's welcome (001): the token in use works, so a later refusal may be renewed once again."""
        self._login_refused = False
        self._renewed_after_refusal = False

    def close(self) -> None:
        """Call when the bot stops. Waits (at most ``stop_wait`` s) for a refresh or save still
        running, so that a renewed pair reaches the token file (Twitch has already consumed the old
        refresh token); a validation still running is abandoned: the process may exit at once.
        Renewed tokens that could still not be saved are an ERROR: the file's refresh token is spent."""
        if self._job is not None and self._job[0] != "validate":
            concurrent.futures.wait([self._job[1]], timeout=self.stop_wait)
            self._collect()
        if self._unsaved and self.is_renewable and self.token_file is not None:
            try:
                save_tokens(self.token_file, self.tokens)
                self._unsaved = False
            except TokenFileError as error:
                log.error(
                    "stopping with a renewed token that was never saved (%s): the token file holds a spent "
                    "refresh token, so the next start cannot log in; fix that, then %s again",
                    error,
                    LOGIN_HINT,
                )
        if self._lock is not None:
            self._lock.release()

    # --- background calls ---------------------------------------------------------------------

    def _start_due_job(self) -> None:
        now = self._clock()
        retry_due = now >= self._retry_refresh_at
        if retry_due and self.is_renewable and (self._must_refresh or now >= self._refresh_at):
            self._start_refresh()  # saves the new pair too: it supersedes a save still pending
        elif retry_due and self._unsaved:
            tokens, path = self.tokens, self.token_file
            assert path is not None
            self._start("save", lambda: save_tokens(path, tokens))
        elif now >= self._next_validation:
            access_token = self.tokens.access_token
            self._start("validate", lambda: self.service.validate(access_token))
        elif not self.is_renewable and self._expires_within(0) and not self._told_expired:
            self._told_expired = True
            log.warning(
                "VBOT_TOKEN has expired: vbot stays in chat, but cannot log in again after a disconnect; %s",
                PASTED_HINT,
            )

    def _start_refresh(self) -> None:
        tokens = self.tokens
        self._start("refresh", lambda: self._renew(tokens))

    def _start(self, kind: str, job: Callable[[], Any]) -> None:
        self._job = (kind, self._submit(job))

    def _collect(self) -> CannotLogIn | None:
        """Apply the result of a finished background call, in the caller's thread."""
        if self._job is None or not self._job[1].done():
            return None
        kind, future = self._job
        self._job = None
        try:
            result = future.result()
        except ServiceError as error:
            return self._failed(kind, error)
        except TokenFileError as error:  # a save
            retry = self._backoff.next_delay()
            self._retry_refresh_at = self._clock() + retry
            log.error("could not save the renewed token (%s); trying again in %.0f s", error, retry)
            return None
        except concurrent.futures.CancelledError:
            return None
        except Exception as error:  # a bug or an odd failure: log it, try again later
            log.error("token %s failed unexpectedly", kind, exc_info=error)
            return self._failed(kind, ServiceUnavailable(kind, None, type(error).__name__))
        if kind == "refresh":
            self._adopt(result)
        elif kind == "validate":
            self._validated(result)
            return self._still_ours(result)
        else:
            self._unsaved = False
            log.info("renewed token saved to %s", self.token_file)
        return None

    @staticmethod
    def _spent(error: ServiceError) -> CannotLogIn | None:
        """Why a failed refresh ends the login: the service refused the refresh token, or answered it
        with tokens vbot cannot use (the refresh token is spent either way); None when a retry may work."""
        if isinstance(error, ServiceRefused):
            return CannotLogIn(f"Twitch refused to renew the token ({error}): {REFRESH_REFUSED}; {LOGIN_HINT} again")
        if isinstance(error, ServiceUnusable):
            return CannotLogIn(
                f"the token service renewed the token, but vbot cannot use the answer ({error}); {LOGIN_HINT} again"
            )
        return None

    def _failed(self, kind: str, error: ServiceError) -> CannotLogIn | None:
        now = self._clock()
        if kind == "validate" and isinstance(error, ServiceRefused):
            self._next_validation = now + self.validate_interval
            if self.is_renewable:
                log.warning("Twitch says the token is no longer valid (%s); renewing it", error)
                self._must_refresh = True
                return None
            if self._expires_within(0):
                self._told_expired = True
                log.warning(
                    "VBOT_TOKEN has expired (%s): vbot stays in chat, but cannot log in again after a disconnect; %s",
                    error,
                    PASTED_HINT,
                )
                return None
            return CannotLogIn(f"Twitch says VBOT_TOKEN is no longer valid ({error}): it was revoked; {PASTED_HINT}")
        if kind == "refresh" and (stop := self._spent(error)) is not None:
            return stop
        if kind == "validate":
            retry = max(min(RETRY_AFTER, self.validate_interval), error.retry_after or 0.0)
            self._next_validation = now + retry
            log.warning("could not validate the token (%s); trying again in %g s", error, retry)
            return None
        retry = max(self._backoff.next_delay(), error.retry_after or 0.0)
        self._retry_refresh_at = now + retry
        if kind == "save":
            log.error("could not save the renewed token (%s); trying again in %.0f s", error, retry)
        elif self._login_refused:
            log.warning(
                "could not renew the token Twitch refused (%s); not logging in until it is renewed; "
                "trying again in %.0f s",
                error,
                retry,
            )
        else:
            log.warning("could not renew the token (%s); trying again in %.0f s", error, retry)
        return None

    # --- refreshing -----------------------------------------------------------------------------

    def _renew(self, tokens: Tokens) -> Renewal:
        """Refresh ``tokens`` and save the new pair (may run in the worker thread).

        Expiry counts from when the request was sent. Raises ServiceError.
        """
        assert tokens.refresh_token is not None and self.token_file is not None
        sent, sent_wall = self._clock(), self._wall_clock()
        grant = self.service.refresh(tokens.refresh_token, tokens.client_id)
        renewed = dataclasses.replace(
            tokens,
            access_token=grant.access_token,
            refresh_token=grant.refresh_token,
            expires_at=sent_wall + grant.expires_in if grant.expires_in else None,
            scopes=grant.scopes or tokens.scopes,
        )
        expires = sent + grant.expires_in if grant.expires_in else None
        try:
            save_tokens(self.token_file, renewed)
        except TokenFileError as error:
            log.error(
                "could not save the renewed token (%s); vbot keeps it in memory and tries again; "
                "if it stops before then, %s again",
                error,
                LOGIN_HINT,
            )
            return Renewal(renewed, expires, False)
        return Renewal(renewed, expires, True)

    def _refresh_now(self) -> ServiceError | None:
        """Refresh, waiting for it (no background call may be running). None when renewed, the error
        when the service is unavailable; raises CannotLogIn when Twitch refused.

        The refresh runs in the background (``submit``) and saves its new pair itself: a stop while
        it runs (KeyboardInterrupt, vbot.signals) waits for it as ``close()`` does, at most
        ``stop_wait`` seconds, then goes on. Else the service could spend the refresh token and
        the process exit before its answer came: the next start could not log in."""
        tokens = self.tokens
        future = self._submit(lambda: self._renew(tokens))
        try:
            renewal = future.result()
        except KeyboardInterrupt:
            log.info(
                "stopping once the token renewal under way ends (at most %g s), to save the new token", self.stop_wait
            )
            self._job = ("refresh", future)
            self.close()
            raise
        except ServiceError as error:
            if (stop := self._spent(error)) is not None:
                raise stop from None
            self._retry_refresh_at = self._clock() + max(self._backoff.next_delay(), error.retry_after or 0.0)
            return error
        self._adopt(renewal)
        return None

    def _adopt(self, renewal: Renewal) -> None:
        """Make the renewed tokens current: the redaction learns them first."""
        self._learn(renewal.tokens)
        self.tokens, self._expires = renewal.tokens, renewal.expires
        self._renewed_after_refusal = self._login_refused
        self._login_refused = self._must_refresh = False
        self._backoff.reset()
        self._retry_refresh_at = -math.inf
        self._unsaved = not renewal.saved
        if not renewal.saved:
            self._retry_refresh_at = self._clock() + self._backoff.next_delay()
        self._plan_refresh()
        left = self.expires_in()
        self._margin = EXPIRY_MARGIN if left is None else min(EXPIRY_MARGIN, left / 2)  # never renewed again at once
        log.info("token renewed%s", "" if left is None else f"; it expires in {format_duration(left)}")

    def _learn(self, tokens: Tokens) -> None:
        self._on_new_secret(tokens.access_token)
        if tokens.refresh_token:
            self._on_new_secret(tokens.refresh_token)

    def _plan_refresh(self, sooner_only: bool = False) -> None:
        """When the next refresh is due: REFRESH_AHEAD before expiry, or after half the time left.
        ``sooner_only`` (a validation of the token planned for) may bring the refresh forward, never
        move it later: half the time left, counted again at each validation, would move it past expiry."""
        if not self.is_renewable or self._expires is None:
            self._refresh_at = self._refresh_at if sooner_only else math.inf
            return
        now = self._clock()
        left = self._expires - now
        planned = now + max(left - REFRESH_AHEAD, left / 2, 0.0)
        self._refresh_at = min(self._refresh_at, planned) if sooner_only else planned

    def _refresh_needed(self) -> bool:
        """The token must be renewed before the next login: Twitch refused it, or it expires within
        EXPIRY_MARGIN (or half its lifetime, for a short-lived token: a renewed one is not renewed again)."""
        return self.is_renewable and (self._must_refresh or self._expires_within(self._margin))

    def _expires_within(self, seconds: float) -> bool:
        left = self.expires_in()
        return left is not None and left <= seconds

    # --- validation results ---------------------------------------------------------------------

    def _validated(self, validation: Validation) -> None:
        """Note a successful validation: schedule the next; learn the login, user id and expiry
        (Twitch's ``expires_in`` corrects a clock that changed since the token was saved)."""
        now = self._clock()
        self._next_validation = now + self.validate_interval
        tokens = self.tokens
        expires_in = validation.expires_in
        self._expires = now + expires_in if expires_in else None
        learned = dataclasses.replace(
            tokens,
            login=validation.login,
            user_id=validation.user_id,
            client_id=tokens.client_id or validation.client_id,
            scopes=validation.scopes or tokens.scopes,
            expires_at=self._wall_clock() + expires_in if expires_in else None,
        )
        self.tokens = learned
        self._plan_refresh(sooner_only=True)
        if self.is_renewable and (learned.login, learned.user_id) != (tokens.login, tokens.user_id):
            self._unsaved = True  # the file learns the login (saved by start(), or at the next tick)
        log.debug("token valid for %s more", format_duration(expires_in) if expires_in else "ever")

    def _still_ours(self, validation: Validation) -> CannotLogIn | None:
        """A validation while running: the token must still be the chatting login's, with the chat scopes."""
        if self.chat_login and validation.login != self.chat_login:
            fix = f"{LOGIN_HINT} again as {self.chat_login}" if self.is_renewable else PASTED_HINT
            return CannotLogIn(
                f"the token now belongs to {validation.login}, but the bot is logged in to chat as "
                f"{self.chat_login}; {fix}, or set VBOT_USERNAME={validation.login} and restart"
            )
        missing = validation.missing_scopes()
        return self._lacks(missing, "now ") if missing else None

    def _lacks(self, missing: list[str], now: str) -> CannotLogIn:
        fix = LOGIN_HINT + " again" if self.is_renewable else PASTED_HINT
        return CannotLogIn(f"the token {now}lacks {the_scopes(missing)} (needed for chat); {fix}")

    def _unvalidated(self) -> None:
        self._next_validation = self._clock() + min(RETRY_AFTER, self.validate_interval)
        if not self.is_renewable:
            self._warn_pasted(0)

    def _warn_pasted(self, expires_in: int) -> None:
        if expires_in:
            expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self._wall_clock() + expires_in))
            log.warning(
                "VBOT_TOKEN is a pasted token: it expires in %s (%s) and vbot cannot renew it; %s",
                format_duration(expires_in),
                expiry,
                PASTED_HINT,
            )
        else:
            log.warning("VBOT_TOKEN is a pasted token that vbot cannot renew; %s", PASTED_HINT)


def the_scopes(names: Sequence[str]) -> str:
    """The token scopes ``names`` (one or more) as a message names them.

    >>> the_scopes(["chat:edit"]), the_scopes(["a:b", "c:d"])
    ('the chat:edit scope', 'the a:b and c:d scopes')
    """
    return f"the {' and '.join(names)} scope{'s' if len(names) > 1 else ''}"


def in_daemon_thread(job: Callable[[], Any], name: str = "vbot-token") -> concurrent.futures.Future[Any]:
    """Run ``job()`` in a new daemon thread called ``name``; returns its Future (result or exception).

    A daemon thread, unlike a ThreadPoolExecutor's worker (joined when the interpreter
    exits), never holds up the exit: a stop during a hanging call ends the process at
    once. The keeper runs one call at a time, so there is at most one such thread.
    """
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(job())
        except BaseException as error:  # handed to the Future, as an executor does
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
