"""A loopback fake of Twitch's token service (``id.twitch.tv/oauth2``), reached through VBOT_AUTH_URL.

It behaves as the project's ``twitch-auth.md`` describes: ``/device`` hands out a
device code that stays pending for ``pending_polls`` polls and is then approved;
``/token`` exchanges it (once) or a refresh token (single-use) for a new pair;
``/validate`` answers for a valid access token with its ``expires_in``, 401
otherwise. Errors use Twitch's shape, ``{"status": 400, "message": "..."}``.

Faults are scripted per endpoint with ``fail(endpoint, *faults)``, each used by one
call, in order: ``"500"``, ``"hang"`` (no answer until ``stop()`` or ``hang_for``
seconds, then the connection closes), ``"401"``, ``"refuse"`` (400 ``Invalid refresh token``), ``"slow_down"``,
``"429"``, ``"denied"``, ``"bad_json"``, ``"redirect"`` (302 to another path here),
``"drip"`` (a 500 answer, one byte every ``drip_every`` seconds: no state changes), ``"retry_after"`` (429
with ``Retry-After: <retry_after>``), ``"deep_json"`` (200 with arrays nested 10,000 deep),
``"late"`` (the real answer, its state changed at once, sent once ``release`` is set: a renewal done, its
answer still on the way),
and ``"<field>=<raw JSON>"`` (the real answer with that field's value written as given, e.g.
``"expires_in=Infinity"`` or a 400-digit number).
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import secrets
import string
import threading
import time
import urllib.parse

from tests.loopback import JsonHandler, LoopbackService

CLIENT_ID = "fakeclientid0123456789abcdefgh"
CHAT_SCOPES = ("chat:read", "chat:edit")


@dataclasses.dataclass
class AccessToken:
    expires_at: float
    scopes: tuple[str, ...]
    revoked: bool = False


@dataclasses.dataclass
class DeviceCode:
    user_code: str
    expires_at: float
    pending_polls: int
    scopes: tuple[str, ...]


class FakeTwitchAuth(LoopbackService):
    """Twitch's token service on a free loopback port; ``url`` is its base (``.../oauth2``).

    Every secret it ever issued is in ``secrets`` (to check none leaks into output);
    ``requests`` lists each call as ``"device"``, ``"token:device"``,
    ``"token:refresh"`` or ``"validate"``, in order. ``on_access_token(token)`` is
    called with each new access token (e.g. to let a chat server accept it).
    """

    def __init__(self, *, client_id: str = CLIENT_ID, pending_polls: int = 2, token_lifetime: int = 14000,
                 code_lifetime: int = 1800, interval: int = 5, login: str = "vbot", user_id: str = "12345678",
                 scopes: tuple[str, ...] = CHAT_SCOPES, hang_for: float = 60.0, drip_every: float = 0.5,
                 retry_after: str = "30"):
        super().__init__()
        self.client_id = client_id
        self.pending_polls = pending_polls
        self.token_lifetime = token_lifetime
        self.code_lifetime = code_lifetime
        self.interval = interval
        self.login = login
        self.user_id = user_id
        self.scopes = scopes
        self.hang_for = hang_for
        self.drip_every = drip_every
        self.retry_after = retry_after
        self.dripped = threading.Event()  # set when a dripping answer ended (sent in full, or cut off)
        self.release = threading.Event()  # lets a "late" answer go
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: set[str] = set()
        self.device_codes: dict[str, DeviceCode] = {}
        self.secrets: list[str] = []
        self.requests: list[str] = []
        self.on_access_token = lambda token: None

    # --- what tests set up and look at ----------------------------------------------------

    def issue(self, expires_in: int | None = None, scopes: tuple[str, ...] | None = None) -> tuple[str, str]:
        """A new valid (access token, refresh token) pair, as if a login had just happened."""
        with self.lock:
            return self._issue(self.token_lifetime if expires_in is None else expires_in, scopes or self.scopes)

    def expire(self, access_token: str) -> None:
        """Make ``access_token`` expired (its refresh token stays valid)."""
        with self.lock:
            self.access_tokens[access_token].expires_at = time.time() - 1

    def revoke(self) -> None:
        """What "Disconnect" in Twitch's Connections settings does: every token and refresh token dies."""
        with self.lock:
            for token in self.access_tokens.values():
                token.revoked = True
            self.refresh_tokens.clear()

    def is_valid(self, access_token: str) -> bool:
        """True for an access token issued here that has neither expired nor been revoked."""
        with self.lock:
            token = self.access_tokens.get(access_token)
            return token is not None and not token.revoked and token.expires_at > time.time()

    def count(self, request: str) -> int:
        """How many calls of one kind (see ``requests``) arrived."""
        return self.requests.count(request)

    base = "/oauth2"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        return _handler_for(self)

    # --- the service ------------------------------------------------------------------------

    def _issue(self, expires_in: int, scopes: tuple[str, ...]) -> tuple[str, str]:
        access, refresh = secrets.token_hex(15), secrets.token_hex(25)
        self.access_tokens[access] = AccessToken(time.time() + expires_in, scopes)
        self.refresh_tokens.add(refresh)
        self.secrets += [access, refresh]
        self.on_access_token(access)
        return access, refresh

    def _grant(self, scopes: tuple[str, ...]) -> tuple[int, dict]:
        access, refresh = self._issue(self.token_lifetime, scopes)
        return 200, {"access_token": access, "refresh_token": refresh, "expires_in": self.token_lifetime,
                     "scope": list(scopes), "token_type": "bearer"}

    def answer(self, method: str, path: str, form: dict[str, str], headers) -> tuple[int, object]:
        """The (status, JSON body) for one request; runs under ``lock``."""
        if method == "POST" and path == "/oauth2/device":
            self.requests.append("device")
            if form.get("client_id") != self.client_id:
                return _error(400, "invalid client")
            device_code = secrets.token_urlsafe(30)
            user_code = "".join(secrets.choice(string.ascii_uppercase) for _ in range(8))
            self.secrets.append(device_code)
            self.device_codes[device_code] = DeviceCode(user_code, time.time() + self.code_lifetime,
                                                        self.pending_polls, tuple(form.get("scopes", "").split()))
            return 200, {"device_code": device_code, "expires_in": self.code_lifetime, "interval": self.interval,
                         "user_code": user_code,
                         "verification_uri": f"https://www.twitch.tv/activate?public=true&device-code={user_code}"}
        if method == "POST" and path == "/oauth2/token":
            grant_type = form.get("grant_type", "")
            self.requests.append("token:refresh" if grant_type == "refresh_token" else "token:device")
            if form.get("client_id") != self.client_id:
                return _error(400, "invalid client")
            if grant_type == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self.refresh_tokens:
                    return _error(400, "Invalid refresh token")
                self.refresh_tokens.discard(refresh)  # single-use
                return self._grant(self.scopes)
            if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
                code = self.device_codes.get(form.get("device_code", ""))
                if code is None or code.expires_at <= time.time():
                    return _error(400, "invalid device code")
                if code.pending_polls > 0:
                    code.pending_polls -= 1
                    return _error(400, "authorization_pending")
                del self.device_codes[form["device_code"]]  # a code is exchanged once
                return self._grant(code.scopes or self.scopes)
            return _error(400, "Invalid grant type")
        if method == "GET" and path == "/oauth2/validate":
            self.requests.append("validate")
            kind, _, value = (headers.get("Authorization") or "").partition(" ")
            token = self.access_tokens.get(value) if kind == "OAuth" else None
            if token is None or token.revoked or token.expires_at <= time.time():
                return _error(401, "invalid access token")
            return 200, {"client_id": self.client_id, "login": self.login, "scopes": list(token.scopes),
                         "user_id": self.user_id, "expires_in": int(token.expires_at - time.time())}
        return _error(404, "Not Found")


def _error(status: int, message: str) -> tuple[int, dict]:
    return status, {"status": status, "message": message}


FAULTS = {
    "500": (500, {"status": 500, "message": "Internal Server Error"}),
    "401": (401, {"status": 401, "message": "invalid access token"}),
    "refuse": (400, {"status": 400, "message": "Invalid refresh token"}),
    "slow_down": (400, {"status": 400, "message": "slow_down"}),
    "429": (429, {"status": 429, "message": "Too Many Requests"}),
    "denied": (400, {"status": 400, "message": "authorization_denied"}),
}


def _handler_for(fake: FakeTwitchAuth) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            form = dict(urllib.parse.parse_qsl(body))
            endpoint = self.path.rsplit("/", 1)[-1]
            with fake.lock:
                fault = fake.next_fault(endpoint)  # fail(endpoint): device, token or validate
                if fault is None or "=" in fault or fault == "late":
                    status, reply = fake.answer(method, self.path, form, self.headers)
                if fault is not None:
                    fake.requests.append(f"{endpoint}:{fault.partition('=')[0]}")
            if self.send_fault(fault, fake):  # hang, bad_json, redirect
                return
            if fault == "late":
                fake.release.wait(fake.hang_for)
                self.send_json(status, json.dumps(reply).encode())
                return
            if fault == "drip":
                self._drip(500, json.dumps(FAULTS["500"][1]).encode())
                return
            if fault == "retry_after":
                self.send_json(429, json.dumps(FAULTS["429"][1]).encode(), {"Retry-After": fake.retry_after})
                return
            if fault == "deep_json":
                self.send_json(200, b"[" * 10_000 + b"]" * 10_000)
                return
            if fault is not None and "=" in fault:
                field, _, raw = fault.partition("=")
                marker = "\u0000marker"
                self.send_json(status, json.dumps({**reply, field: marker}).encode().replace(
                    json.dumps(marker).encode(), raw.encode()))
                return
            if fault is not None:
                status, reply = FAULTS[fault]
            self.send_json(status, json.dumps(reply).encode())

        def _drip(self, status: int, data: bytes) -> None:
            """Headers at once, then the body one byte every ``drip_every`` seconds (until stopped)."""
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.flush()
                for index in range(len(data)):
                    if fake.stopping.wait(fake.drip_every):
                        return
                    self.wfile.write(data[index:index + 1])
                    self.wfile.flush()
            except OSError:
                pass
            finally:
                fake.dripped.set()

    return Handler
