"""Twitch's HTTP API, Helix: the client, its rate-limit bucket, and calls in the background.

Facts from Twitch's API reference (https://dev.twitch.tv/docs/api/reference), collected
in the project's ``twitch-helix.md``:

* every call carries ``Client-Id`` (the application the token was issued to) and
  ``Authorization: Bearer <user access token>``;
* replies are JSON objects with a ``data`` array (``total`` and ``pagination.cursor``
  where lists are long); errors are ``{"error", "status", "message"}``;
* every reply carries ``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (Unix seconds);
  with the bucket empty Twitch answers 429 until the reset (twurple's HelixRateLimiter);
* 401 means the access token is no longer valid; Twitch recommends renewing it then.

Three layers, each usable alone:

* ``HelixClient.call(request, credentials) -> Answer``: one blocking HTTP exchange on the
  project's HTTP path, ``vbot.http`` (TLS verified, no redirects, a total deadline
  however slowly the bytes arrive, a bounded reply, JSON of bounded depth and numbers).
* ``RateLimit``: the bucket as the replies describe it; pure, with injected clocks.
* ``Calls``: background calls, at most one at a time per lane (``facts`` for stream
  facts; a moderation lane can be added the same way), started and collected on the
  loop's tick, never blocking it. It takes the credentials from the token keeper at
  each call, renews the token once on a 401 and retries (when Helix refuses the renewed
  token too, it asks for no renewal for RENEW_PAUSE), holds every call while the bucket
  is empty, and logs one WARNING per outage, not per call.

No secret reaches an exception message, a repr or a log line: the token goes only
into the ``Authorization`` header, and Twitch's ``message`` is masked if it repeats it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from vbot import __version__
from vbot import http as web
from vbot.keeper import Submit, in_daemon_thread
from vbot.lines import MAX_MESSAGE_CHARS, one_line
from vbot.logs import mask_secrets
from vbot.tokens import LOGIN_HINT, Tokens

log = logging.getLogger(__name__)

BASE_URL = "https://api.twitch.tv/helix"
DEADLINE = 5.0
"""Seconds a Helix call may take in all, however slowly the bytes arrive."""
MAX_REPLY_BYTES = 512 * 1024
"""A longer reply is not Twitch's (100 users or streams are about 70 KB): it counts as unavailable."""
MAX_WAIT = 60.0
"""Seconds: the longest wait for the bucket's reset (it refills within a minute), also after a 429 without headers."""
MIN_WAIT = 1.0
"""Seconds: the shortest wait after the bucket emptied, whatever ``Ratelimit-Reset`` says (a clock off by a
few seconds must not turn into a burst of 429s)."""
RENEW_WAIT = 30.0
"""Seconds a call refused with 401 waits for the keeper's renewed token before it counts as failed."""
RENEW_EVERY = 60.0
"""Seconds: a 401 within this time of the last renewal asked for is not renewed again (no refresh storm)."""
RENEW_PAUSE = 3600.0
"""Seconds: once Helix refused a freshly renewed token too (a missing scope, Twitch's trouble), a 401 asks
for no renewal for this long; the keeper's hourly validation still renews a token Twitch no longer takes."""


class HelixUnavailable(Exception):
    """No usable answer from Helix: network error, deadline passed, TLS, too long, not JSON.

    ``str()`` is one line, e.g. ``GET /streams: timed out``; never a secret.
    """


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What every call carries: the application's client ID and the user access token (secret)."""

    client_id: str
    access_token: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Request:
    """One Helix call: ``method`` and ``path`` under the base URL (``/streams``), query ``params``
    as (name, value) pairs (a name may repeat: ``login=a&login=b``), and a JSON ``body`` object for
    POST/PATCH (moderation), None for none."""

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclasses.dataclass(frozen=True)
class Answer:
    """Helix's HTTP answer to one Request.

    ``data``: the ``data`` array's objects (empty for 204 or an error); ``total`` and
    ``cursor`` (``pagination.cursor``) when Twitch sent them; ``message``: Twitch's
    ``message`` for an error (else the HTTP phrase), one line. ``remaining`` and
    ``reset`` (Unix seconds) from ``Ratelimit-Remaining``/``Ratelimit-Reset``;
    ``retry_after`` seconds from ``Retry-After`` (``vbot.http.retry_after``); each None
    when absent or malformed.
    """

    status: int
    data: tuple[Mapping[str, Any], ...] = ()
    total: int | None = None
    cursor: str | None = None
    message: str = ""
    remaining: int | None = None
    reset: float | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    def describe(self, request: Request) -> str:
        """One line for the log: ``GET /streams: HTTP 503: Service Unavailable``."""
        return f"{request}: HTTP {self.status}: {self.message}"


class HelixClient:
    """Calls Helix at ``base_url`` (no trailing slash needed); each call blocks for at most
    ``deadline`` seconds in all, so run it off the chat loop (``Calls`` does)."""

    def __init__(
        self, base_url: str = BASE_URL, deadline: float = DEADLINE, wall_clock: Callable[[], float] = time.time
    ):
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self._wall_clock = wall_clock  # for a Retry-After given as a date

    def __repr__(self) -> str:
        return f"HelixClient({self.base_url!r}, deadline={self.deadline})"

    def call(self, request: Request, credentials: Credentials) -> Answer:
        """Send ``request``; its Answer, whatever the status. Raises HelixUnavailable when no
        usable answer came (and for a 2xx reply that is not a JSON object)."""
        url = f"{self.base_url}{request.path}"
        if request.params:
            url += "?" + urllib.parse.urlencode(request.params)
        headers = {
            "Client-Id": credentials.client_id,
            "Authorization": f"Bearer {credentials.access_token}",
            "Accept": "application/json",
            "User-Agent": f"vbot/{__version__}",
        }
        body = None
        if request.body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(request.body).encode()
        try:
            reply = web.exchange(request.method, url, headers, body, deadline=self.deadline, max_bytes=MAX_REPLY_BYTES)
        except web.Unavailable as error:
            raise HelixUnavailable(f"{request}: {_masked(str(error), credentials)}") from None
        return _answer(request, reply, web.retry_after(reply.headers, self._wall_clock()), credentials)


def _answer(request: Request, reply: web.Reply, retry_after: float | None, credentials: Credentials) -> Answer:
    """Read one reply into an Answer; HelixUnavailable for a 2xx reply that is not Twitch's JSON."""
    status, headers, body = reply.status, reply.headers, reply.body
    parsed: Any = None
    if body.strip():
        try:
            parsed = web.parse_json(body)
        except ValueError:
            parsed = None
    limits = Answer(
        status,
        remaining=_whole(headers.get("ratelimit-remaining")),
        reset=_whole(headers.get("ratelimit-reset")),
        retry_after=retry_after,
    )
    if 200 <= status < 300:
        if status == 204 or not body.strip():
            return limits
        if not isinstance(parsed, dict) or not isinstance(parsed.get("data", []), list):
            raise HelixUnavailable(f"{request}: HTTP {status}: the reply is not Twitch's JSON")
        pagination = parsed.get("pagination")
        cursor = pagination.get("cursor") if isinstance(pagination, dict) else None
        total = parsed.get("total")
        return dataclasses.replace(
            limits,
            data=tuple(item for item in parsed.get("data", []) if isinstance(item, dict)),
            total=total if isinstance(total, int) and not isinstance(total, bool) and total >= 0 else None,
            cursor=cursor if isinstance(cursor, str) else None,
        )
    message = parsed.get("message") if isinstance(parsed, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = web.phrase(status)
    return dataclasses.replace(limits, message=_masked(message, credentials))


def _whole(value: str | None) -> int | None:
    """A header's non-negative whole number (ASCII digits, at most 12), else None.

    >>> _whole("1700000000"), _whole(" 7 "), _whole("-1"), _whole("9" * 40), _whole(None)
    (1700000000, 7, None, None, None)
    """
    if value is None or not re.fullmatch(r"[0-9]{1,12}", value.strip()):
        return None
    return int(value.strip())


def _masked(message: str, credentials: Credentials) -> str:
    """``message`` on one line, at most MAX_MESSAGE_CHARS characters, the access token masked."""
    return mask_secrets(one_line(message), [credentials.access_token])[:MAX_MESSAGE_CHARS]  # cut a masked line


# --- the bucket -------------------------------------------------------------------------------------


class RateLimit:
    """Helix's token bucket as the replies describe it: may a call start now?

    ``clock()`` is monotonic seconds (the schedule); ``wall_clock()`` epoch seconds, used
    only to turn ``Ratelimit-Reset`` (Unix seconds) into a wait. Once a reply says the
    bucket is empty (``Ratelimit-Remaining: 0``, or HTTP 429), no call may start before
    the reset: at least MIN_WAIT, at most MAX_WAIT seconds later. Each call started uses
    one point of the last known remainder, so calls started before the next reply
    cannot overrun it either.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self._clock = clock
        self._wall_clock = wall_clock
        self._remaining: int | None = None  # None: unknown, or refilled since
        self._reset_at = -math.inf

    def wait_time(self) -> float:
        """Seconds until a call may start; 0 when it may start now."""
        if self._remaining is None or self._remaining > 0:
            return 0.0
        left = self._reset_at - self._clock()
        if left <= 0:
            self._remaining = None  # refilled
            return 0.0
        return left

    def started(self) -> None:
        """A call starts now: one point of the bucket is used."""
        if self._remaining is not None:
            self._remaining -= 1

    def note(self, answer: Answer) -> None:
        """Learn from ``answer``'s headers; a 429 empties the bucket until its reset
        (``Ratelimit-Reset``, else ``Retry-After``, else MAX_WAIT)."""
        now = self._clock()
        reset_in = None if answer.reset is None else answer.reset - self._wall_clock()
        if answer.status == 429:
            wait = reset_in if reset_in is not None else answer.retry_after
            self._remaining = 0
            self._reset_at = now + _bounded(MAX_WAIT if wait is None else wait)
        elif answer.remaining is not None:
            self._remaining = answer.remaining
            self._reset_at = now + _bounded(MAX_WAIT if reset_in is None else reset_in)


def _bounded(seconds: float) -> float:
    return min(max(seconds, MIN_WAIT), MAX_WAIT)


# --- calls in the background ---------------------------------------------------------------------------


class TokenSource(Protocol):
    """Where the access token comes from: ``vbot.keeper.TokenKeeper``."""

    tokens: Tokens

    @property
    def is_renewable(self) -> bool:
        """True when the token can be renewed (a token file)."""

    def token_refused(self, access_token: str) -> None:
        """An HTTP API answered 401 to ``access_token``: renew it at the next tick."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of one background call.

    ``answer`` is Helix's Answer, None when none came; ``problem`` a one-line reason
    when the call failed (no secret), ``''`` when it succeeded; ``retry`` True when
    the call was rate-limited (429): it did not count, ask again once the bucket refills.
    """

    request: Request
    answer: Answer | None
    problem: str = ""
    retry: bool = False

    @property
    def ok(self) -> bool:
        """True when Helix answered 2xx."""
        return self.answer is not None and self.answer.ok


@dataclasses.dataclass
class _Lane:
    job: tuple[Request, Credentials, concurrent.futures.Future[Answer]] | None = None
    renewing: tuple[Request, str, float] | None = None  # the request, the refused token, since when
    retried: bool = False  # the call running is the retry after a renewal


class Calls:
    """Helix calls in the background, one at a time per lane; the driver asks on its tick.

    ``client`` makes the calls; ``tokens`` (the token keeper) gives the credentials for
    each call and renews a refused token; ``lanes`` name the kinds of calls that run
    independently (``facts``; later ``moderation``). ``clock()`` is monotonic seconds,
    ``wall_clock()`` epoch seconds (for ``Ratelimit-Reset``); ``submit(job)`` runs
    ``job()`` in the background and returns its Future (a daemon thread by default).
    Use from one thread (the event loop's).
    """

    def __init__(
        self,
        client: HelixClient,
        tokens: TokenSource,
        *,
        lanes: Iterable[str] = ("facts",),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        submit: Submit | None = None,
    ):
        self.client = client
        self.tokens = tokens
        self.bucket = RateLimit(clock, wall_clock)
        self._clock = clock
        self._submit = submit or (lambda job: in_daemon_thread(job, name="vbot-helix"))
        self._lanes = {lane: _Lane() for lane in lanes}
        self._renewal_asked_at = -math.inf
        self._renewals_from = -math.inf  # no renewal for a 401 before then (RENEW_PAUSE)
        self._trouble: dict[str, str] = {}  # kind of trouble -> the problem warned about

    def credentials(self) -> Credentials | None:
        """The client ID and current access token; None while the client ID is unknown (a pasted
        VBOT_TOKEN whose validation has not answered yet)."""
        tokens = self.tokens.tokens
        if not tokens.client_id or not tokens.access_token:
            return None
        return Credentials(tokens.client_id, tokens.access_token)

    def may_start(self, lane: str) -> bool:
        """True when a call may start in ``lane`` now: nothing runs or waits there, the bucket
        is not empty, and the credentials are known."""
        state = self._lanes[lane]
        return (
            state.job is None
            and state.renewing is None
            and self.bucket.wait_time() <= 0
            and self.credentials() is not None
        )

    def start(self, lane: str, request: Request) -> None:
        """Start ``request`` in the background in ``lane``; only when ``may_start(lane)``."""
        credentials = self.credentials()
        assert credentials is not None and self._lanes[lane].job is None
        self._run(self._lanes[lane], request, credentials, retried=False)

    def collect(self, lane: str) -> Outcome | None:
        """The Outcome of the call in ``lane`` once it has one; None while it runs or waits (for a
        renewed token after a 401, or for the bucket before that retry). Never blocks."""
        state = self._lanes[lane]
        if state.renewing is not None:
            return self._after_renewal(state)
        if state.job is None or not state.job[2].done():
            return None
        request, credentials, future = state.job
        state.job = None
        try:
            answer = future.result()
        except HelixUnavailable as error:
            return self._failed("outage", Outcome(request, None, str(error)))
        except Exception as error:  # a bug or an odd failure: logged, and the call counts as failed
            log.error("Helix call %s failed unexpectedly", request, exc_info=error)
            return self._failed("outage", Outcome(request, None, f"{request}: {type(error).__name__}"))
        self.bucket.note(answer)
        if answer.status == 401:
            return self._refused(state, request, credentials, answer)
        if answer.status == 429:
            wait = self.bucket.wait_time()
            outcome = Outcome(request, answer, answer.describe(request), retry=True)
            return self._failed("rate limit", outcome, f"; no call for {wait:.0f} s")
        if answer.status >= 500:
            return self._failed("outage", Outcome(request, answer, answer.describe(request)))
        self._recovered("outage")
        self._recovered("rate limit")
        self._recovered("token")
        return Outcome(request, answer, "" if answer.ok else answer.describe(request))

    # --- inside -------------------------------------------------------------------------------

    def _run(self, state: _Lane, request: Request, credentials: Credentials, retried: bool) -> None:
        self.bucket.started()
        state.retried = retried
        state.job = (request, credentials, self._submit(lambda: self.client.call(request, credentials)))

    def _refused(self, state: _Lane, request: Request, credentials: Credentials, answer: Answer) -> Outcome | None:
        """A 401: ask the keeper for a fresh token and retry once; else the call failed. A fresh
        token refused too pauses the renewals for RENEW_PAUSE (renewing again would not help)."""
        now = self._clock()
        if state.retried:
            self._renewals_from = now + RENEW_PAUSE
            return self._failed(
                "token",
                Outcome(request, answer, answer.describe(request)),
                f", and a freshly renewed one too: no renewal for Twitch's API for {RENEW_PAUSE / 60:.0f} min "
                f"(the hourly validation still checks the token); calls fail meanwhile; a missing scope? "
                f"{LOGIN_HINT} again",
            )
        renew_from = max(self._renewal_asked_at + RENEW_EVERY, self._renewals_from)
        if self.tokens.is_renewable and now >= renew_from:
            log.info("Twitch's API refused the token (%s); renewing it", answer.describe(request))
            self._renewal_asked_at = now
            self.tokens.token_refused(credentials.access_token)
            state.renewing = (request, credentials.access_token, now)
            return None
        return self._failed(
            "token",
            Outcome(request, answer, answer.describe(request)),
            f"; calls fail until the token is renewed ({LOGIN_HINT} again if this goes on)",
        )

    def _after_renewal(self, state: _Lane) -> Outcome | None:
        assert state.renewing is not None
        request, refused, since = state.renewing
        credentials = self.credentials()
        if credentials is not None and credentials.access_token != refused:
            if self.bucket.wait_time() > 0:
                return None
            state.renewing = None
            self._run(state, request, credentials, retried=True)
            return None
        if self._clock() - since < RENEW_WAIT:
            return None
        state.renewing = None
        return self._failed(
            "token",
            Outcome(request, None, f"{request}: HTTP 401, and the token was not renewed within {RENEW_WAIT:.0f} s"),
        )

    def _failed(self, kind: str, outcome: Outcome, advice: str = "") -> Outcome:
        """Log the first failure of an episode of ``kind`` as a WARNING, the others at DEBUG."""
        if kind in self._trouble:
            log.debug("Helix: %s", outcome.problem)
        else:
            self._trouble[kind] = outcome.problem
            what = {"outage": "Twitch's API is not answering", "rate limit": "Twitch's API rate limit reached"}
            log.warning("%s (%s)%s", what.get(kind, "Twitch's API refused the token"), outcome.problem, advice)
        return outcome

    def _recovered(self, kind: str) -> None:
        if self._trouble.pop(kind, None) is not None and kind == "outage":
            log.info("Twitch's API answers again")
