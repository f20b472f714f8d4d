"""Twitch's token service (``id.twitch.tv/oauth2``): device-code login, refresh, validate.

Four small HTTP calls through ``vbot.http.exchange`` (the one HTTP code path, shared with
the Helix client): TLS verified, no redirects, a total deadline on every call however
slowly the bytes arrive, a bounded reply read by the bounded ``parse_json``, and
Twitch's error shape understood.
Facts from Twitch's docs ("Authentication" > "Getting OAuth Access Tokens" > "Device
code grant flow", "Refreshing Access Tokens", "Validating Requests"), collected in
the project's ``twitch-auth.md``:

* errors are JSON ``{"status": 400, "message": "authorization_pending"}``: the reason
  is in ``message``, not in OAuth's usual ``error`` field;
* ``/device`` and ``/token`` take form fields; ``/validate`` takes the header
  ``Authorization: OAuth <access token>``;
* refresh tokens of public clients (no secret) are single-use: every refresh returns
  a new pair, and the old refresh token is dead.

Every reply becomes a frozen record whose secrets are left out of ``repr``; every
failure is ServiceRefused (the service said no) or ServiceUnavailable (no usable
answer). No secret is ever part of an exception message.
"""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from vbot import __version__
from vbot.config import MAX_ACCESS_TOKEN_CHARS
from vbot.http import Reply, Unavailable, exchange, parse_json, phrase, retry_after
from vbot.lines import MAX_MESSAGE_CHARS, one_line
from vbot.logs import mask_secrets

CHAT_SCOPES = ("chat:read", "chat:edit")
"""The scopes an IRC chat login needs (Twitch docs, "Chat & Chatbots" > "Authenticating")."""
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
"""RFC 8628's grant type, as Twitch's device code flow expects it."""
TIMEOUT = 10.0
"""Default seconds for one whole HTTP call, connect to last byte (``vbot.http.exchange``'s deadline)."""
MAX_SECONDS = 366 * 86400
"""A duration (``expires_in``, ``interval``) above this is not Twitch's: it counts as unknown."""


class ServiceError(Exception):
    """A call to the token service failed; ``str()`` is one line without any secret.

    ``endpoint`` is ``device``, ``token`` or ``validate``; ``status`` the HTTP status,
    or None when no HTTP answer came; ``message`` Twitch's ``message`` field (or a
    description of the failure), at most MAX_MESSAGE_CHARS characters, one line;
    ``retry_after`` the seconds the service asked to wait (``Retry-After``), or None.
    """

    def __init__(self, endpoint: str, status: int | None, message: str, retry_after: float | None = None):
        self.endpoint = endpoint
        self.status = status
        self.retry_after = retry_after
        self._whole = one_line(message)  # masked whole (``scrub``), then cut: a cut secret would not match
        self.message = self._whole[:MAX_MESSAGE_CHARS]
        super().__init__(self._describe())

    def scrub(self, secrets: list[str]) -> None:
        """Mask each of ``secrets`` (the token or code just sent) wherever the service or the
        network library repeated it in the message, also where the cut would have split it."""
        self._whole = mask_secrets(self._whole, secrets)
        self.message = self._whole[:MAX_MESSAGE_CHARS]
        self.args = (self._describe(),)

    def _describe(self) -> str:
        status = f"HTTP {self.status}: " if self.status is not None else ""
        return f"/{self.endpoint}: {status}{self.message}"


class ServiceRefused(ServiceError):
    """The token service answered HTTP 400 or 401: the request, code or token was refused.

    For a device-code poll this includes the "still waiting" answer: ``message``
    ``authorization_pending`` (also ``slow_down``).
    """


class ServiceUnavailable(ServiceError):
    """No usable answer: network error, the deadline passed, HTTP 429 or 5xx (or any status but
    200/400/401), or a reply that is not the JSON Twitch documents. Trying again later may work
    (after ``retry_after`` seconds, when the service said so)."""


class ServiceUnusable(ServiceUnavailable):
    """HTTP 200 with tokens vbot cannot use (an access token too long for chat's PASS line). The
    device code or refresh token sent was spent by that answer, so asking again with it cannot
    work: callers that know this end the login (``vbot.keeper``, ``vbot.login``); any other
    treats it as unavailable."""


@dataclasses.dataclass(frozen=True)
class DeviceCode:
    """The answer to ``POST /device``: what to show the person, and what to poll with.

    ``device_code`` is secret (polling with it yields the tokens); ``user_code`` is
    what the person types at ``verification_uri`` (which already carries it).
    ``expires_in`` and ``interval`` are seconds (``interval`` 5 when the reply has none).
    """

    device_code: str = dataclasses.field(repr=False)
    user_code: str
    verification_uri: str
    expires_in: int
    interval: int


@dataclasses.dataclass(frozen=True)
class Grant:
    """New tokens from ``POST /token`` (device code approved, or a refresh).

    ``expires_in`` is the access token's lifetime in seconds (about 4 hours today); 0 when
    unknown (missing, or a number no token lives for: the tokens are kept all the same).
    """

    access_token: str = dataclasses.field(repr=False)
    refresh_token: str = dataclasses.field(repr=False)
    expires_in: int
    scopes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Validation:
    """What ``GET /validate`` says about a valid access token.

    ``expires_in`` is seconds left; 0 means the token does not expire by itself
    (old tokens), or that the reply's number was not a usable one. ``client_id`` is the
    application that the token was issued to.
    """

    client_id: str
    login: str
    user_id: str
    scopes: tuple[str, ...]
    expires_in: int

    def missing_scopes(self, needed: tuple[str, ...] = CHAT_SCOPES) -> list[str]:
        """The scopes of ``needed`` that this token lacks, in order."""
        return [scope for scope in needed if scope not in self.scopes]


class TokenService:
    """A client of Twitch's token service at ``base_url`` (no trailing slash needed).

    ``client_id`` is the operator's application (client type Public: no secret);
    ``timeout`` is the total seconds one call may take, however slowly the service
    answers (``vbot.http.exchange``'s deadline); run the calls off the chat loop.
    Every method raises ServiceRefused or ServiceUnavailable, and
    ValueError when it needs ``client_id`` and none was given. Redirects are not
    followed (they count as unavailable), so a token never goes to another URL.
    """

    def __init__(self, base_url: str, client_id: str | None = None, timeout: float = TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"TokenService({self.base_url!r}, client_id={self.client_id!r}, timeout={self.timeout})"

    def start_device_login(self, scopes: tuple[str, ...] = CHAT_SCOPES) -> DeviceCode:
        """``POST /device``: start a device-code login for ``scopes``; needs ``client_id``."""
        reply = self._call("device", {"client_id": self._client_id(), "scopes": " ".join(scopes)})
        return _record(
            "device",
            DeviceCode,
            lambda: DeviceCode(
                device_code=_text(reply["device_code"], TOKEN_SHAPE),
                user_code=_text(reply["user_code"], _USER_CODE),
                verification_uri=_text(reply["verification_uri"], _HTTPS_URL),
                expires_in=_seconds(reply["expires_in"]),
                interval=max(1, _seconds(reply.get("interval", 5)) or 5),
            ),
        )

    def poll_device(self, device_code: str, scopes: tuple[str, ...] = CHAT_SCOPES) -> Grant:
        """``POST /token`` with the device code: the tokens once the person approved.

        Until then ServiceRefused with ``message`` ``authorization_pending``; an
        expired or used code gives ``invalid device code``.
        """
        return self._grant(
            {
                "client_id": self._client_id(),
                "device_code": device_code,
                "scopes": " ".join(scopes),
                "grant_type": DEVICE_GRANT,
            }
        )

    def refresh(self, refresh_token: str, client_id: str | None = None) -> Grant:
        """``POST /token`` with ``grant_type=refresh_token``: a new access token and a new
        refresh token (``refresh_token`` is dead afterwards). ``client_id`` defaults to the
        service's; it must be the one the token was issued to. A dead refresh token
        gives ServiceRefused (HTTP 400, ``Invalid refresh token``)."""
        return self._grant(
            {"client_id": client_id or self._client_id(), "refresh_token": refresh_token, "grant_type": "refresh_token"}
        )

    def validate(self, access_token: str) -> Validation:
        """``GET /validate``: whose token this is, its scopes and seconds left.

        An invalid token (expired, revoked, password changed) gives ServiceRefused
        with status 401.
        """
        reply = self._call("validate", None, {"Authorization": f"OAuth {access_token}"})
        return _record(
            "validate",
            Validation,
            lambda: Validation(
                client_id=_text(reply["client_id"], TOKEN_SHAPE),
                login=_text(reply["login"], _LOGIN).lower(),
                user_id=_text(reply["user_id"], TOKEN_SHAPE),
                scopes=_scopes(reply.get("scopes")),
                expires_in=_seconds(reply["expires_in"]),
            ),
        )

    def _client_id(self) -> str:
        if not self.client_id:
            raise ValueError("TokenService needs a client_id for this call")
        return self.client_id

    def _grant(self, form: dict[str, str]) -> Grant:
        reply = self._call("token", form)
        return _record(
            "token",
            Grant,
            lambda: Grant(
                access_token=access_token(reply["access_token"]),
                refresh_token=_text(reply["refresh_token"], TOKEN_SHAPE),
                expires_in=_seconds(reply["expires_in"]),
                scopes=_scopes(reply.get("scope")),
            ),
        )

    def _call(
        self, endpoint: str, form: Mapping[str, str] | None, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One request; the decoded JSON object of a 200 reply. POST when ``form`` is given."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Accept": "application/json", "User-Agent": f"vbot/{__version__}", **(headers or {})}
        if data is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            try:
                reply = exchange(
                    "GET" if data is None else "POST",
                    f"{self.base_url}/{endpoint}",
                    headers,
                    data,
                    deadline=self.timeout,
                )
            except Unavailable as error:
                raise ServiceUnavailable(endpoint, None, str(error)) from None
            return _decode(endpoint, reply)
        except ServiceError as error:
            sent = [(form or {}).get(field, "") for field in ("device_code", "refresh_token")]
            error.scrub([*sent, headers.get("Authorization", "").removeprefix("OAuth ")])
            raise


def _decode(endpoint: str, reply: Reply) -> dict[str, Any]:
    """A 200 reply's JSON object; otherwise the matching ServiceError with Twitch's ``message``
    (and the wait its ``Retry-After`` asks for).

    A number no JSON parser should turn into a float or a huge int (``Infinity``, 400 digits)
    becomes None, so a grant with an absurd ``expires_in`` still yields its tokens."""
    status = reply.status
    try:
        value: Any = parse_json(reply.body, odd_numbers_as_none=True)
    except ValueError as error:
        value, problem = None, str(error)
    else:
        problem = "not a JSON object"
    if status == 200:
        if not isinstance(value, dict):
            raise ServiceUnavailable(endpoint, status, f"the reply is {problem}")
        return value
    message = value.get("message") if isinstance(value, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = phrase(status)
    if status in (400, 401):
        raise ServiceRefused(endpoint, status, message)
    raise ServiceUnavailable(endpoint, status, message, retry_after(reply.headers, time.time()))


def _record(endpoint: str, kind: type, build):
    """``build()``, or ServiceUnavailable when the reply lacks a field or has a wrong type (ServiceUnusable
    when its access token is too long for chat)."""
    try:
        return build()
    except TokenTooLong as error:
        raise ServiceUnusable(endpoint, 200, f"the reply is not a usable {kind.__name__}: {error}") from None
    except (KeyError, TypeError, ValueError) as error:
        field = f" {error.args[0]!r}" if isinstance(error, KeyError) else ""
        raise ServiceUnavailable(
            endpoint, 200, f"the reply is not a {kind.__name__}: bad or missing field{field}"
        ) from None


TOKEN_SHAPE = re.compile(r"[!-~]{1,512}")
"""Tokens, codes and ids: printable ASCII without spaces (they travel in PASS lines and headers);
the token file is held to the same shape (vbot.tokens)."""


class TokenTooLong(ValueError):
    """An access token too long for chat's PASS line; ``str()`` says so, without the token."""

    def __init__(self, length: int):
        super().__init__(
            f"an access token of {length} characters, too long for chat: 'PASS oauth:<token>' and CR LF must "
            f"fit in IRC's 512-byte line, so it may have {MAX_ACCESS_TOKEN_CHARS}"
        )


def access_token(value: object) -> str:
    """``value`` when it is a token (TOKEN_SHAPE) that fits chat's PASS line; TypeError when it is not
    a token, TokenTooLong when it is too long (vbot.tokens holds the token file to the same rule)."""
    token = _text(value, TOKEN_SHAPE)
    if len(token) > MAX_ACCESS_TOKEN_CHARS:
        raise TokenTooLong(len(token))
    return token


_USER_CODE = re.compile(r"[A-Za-z0-9-]{1,32}")
_HTTPS_URL = re.compile(r"https://[!-~]{1,500}")
_LOGIN = re.compile(r"[A-Za-z0-9_]{1,25}")


def _text(value: object, shape: re.Pattern[str]) -> str:
    """``value`` when it is a string of ``shape``; a token with a space or a line break (which
    could split the PASS line or a header) or a code with terminal controls never gets in."""
    if not isinstance(value, str) or not shape.fullmatch(value):
        raise TypeError("not a string of the expected shape")
    return value


def _seconds(value: object) -> int:
    """A duration from a reply, whole seconds; 0 (unknown, not an error: a grant's tokens are
    kept) for None (a number ``parse_json`` would not read), a negative number, or one above
    MAX_SECONDS, which no token or code lives for. Raises TypeError for what is not a number.

    >>> _seconds(14400.5), _seconds(None), _seconds(10**20), _seconds(-1)
    (14400, 0, 0, 0)
    """
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number of seconds")
    return int(value) if 0 <= value <= MAX_SECONDS else 0


def _scopes(value: object) -> tuple[str, ...]:
    """Twitch sends scopes as a JSON list (``scope`` on /token, ``scopes`` on /validate); None is none."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(scope, str) for scope in value):
        raise TypeError("scopes are not a list of strings")
    return tuple(value)
