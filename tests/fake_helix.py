"""A loopback fake of Twitch's HTTP API, Helix (``api.twitch.tv/helix``), reached through VBOT_HELIX_URL.

It answers the calls vbot makes with the shapes of Twitch's API reference: ``data``
arrays, ``total`` and ``pagination`` for followers, ``Ratelimit-Limit``,
``Ratelimit-Remaining`` and ``Ratelimit-Reset`` (Unix seconds) on every reply, 429 once
the bucket is empty, and errors as ``{"error", "status", "message"}``:

* ``GET /users?login=...`` (up to 100), ``GET /streams?user_id=...`` (a channel that is
  offline is absent from ``data``), ``GET /channels?broadcaster_id=...``;
* ``GET /channels/followers?broadcaster_id=...[&user_id=...]``: ``total``; with ``user_id``
  the follow, only when the token has ``moderator:read:followers`` and its user is the
  broadcaster or one of the channel's moderators (otherwise, as Twitch does, only ``total``);
* ``DELETE /moderation/chat?broadcaster_id=...&moderator_id=...&message_id=...`` (204) and
  ``POST /moderation/bans?broadcaster_id=...&moderator_id=...`` with ``{"data": {"user_id",
  "duration", "reason"}}`` (200), each with its scope (else 401), ``moderator_id`` the token's
  user (else 403), who must be the broadcaster or one of its moderators (else 403).

A token is accepted when ``accept(token)`` says so (e.g. the fake token service's
``is_valid``); its scopes come from ``scopes_of(token)``. Faults are scripted per path
with ``fail(path, *faults)``, each used by one call, in order: ``"500"``, ``"401"``,
``"429"``, ``"409"`` (another ban of that user under way), ``"hang"`` (no answer until
``stop()`` or ``hang_for`` seconds), ``"bad_json"``, ``"huge"`` (a reply of 1 MB),
``"redirect"`` (302 to another path here). ``requests`` lists every call as
``"GET /streams?user_id=1001"``, in order of arrival, and ``bodies`` the JSON body of each
(None without one).
"""

from __future__ import annotations

import http.server
import json
import math
import time
import urllib.parse
from collections.abc import Callable

from tests.fake_auth import CLIENT_ID
from tests.loopback import JsonHandler, LoopbackService

FOLLOWERS_SCOPE = "moderator:read:followers"
BANS_SCOPE = "moderator:manage:banned_users"
DELETE_SCOPE = "moderator:manage:chat_messages"
MODERATION_PATHS = ("/moderation/chat", "/moderation/bans")


class FakeHelix(LoopbackService):
    """Helix on a free loopback port; ``url`` is its base (``.../helix``).

    ``points`` calls are allowed per ``window`` seconds (Twitch: 800 a minute); the
    bucket refills whole at the reset. ``clock()`` is the epoch time the fake reads.
    ``bot_user_id`` is the token's user (for the moderator check of followage).
    """

    def __init__(self, *, client_id: str = CLIENT_ID, accept: Callable[[str], bool] | None = None,
                 scopes_of: Callable[[str], tuple[str, ...]] | None = None, bot_user_id: str = "12345678",
                 points: int = 800, window: float = 60.0, hang_for: float = 60.0,
                 clock: Callable[[], float] = time.time):
        super().__init__()
        self.client_id = client_id
        self.accept = accept or (lambda token: True)
        self.scopes_of = scopes_of or (lambda token: ("chat:read", "chat:edit", FOLLOWERS_SCOPE, BANS_SCOPE,
                                                      DELETE_SCOPE))
        self.bot_user_id = bot_user_id
        self.points = points
        self.window = window
        self.hang_for = hang_for
        self.clock = clock
        self.users: dict[str, str] = {}  # login -> user id
        self.streams: dict[str, dict] = {}  # user id -> live stream entry
        self.channels: dict[str, dict] = {}  # user id -> game and title
        self.followers: dict[str, dict[str, str]] = {}  # broadcaster id -> follower id -> followed_at
        self.moderators: dict[str, set[str]] = {}  # broadcaster id -> moderator user ids
        self.requests: list[str] = []
        self.bodies: list[object] = []  # the JSON body of each request, None without one
        self.answered: list[int] = []  # the status of each answer, in order
        self._remaining = points
        self._reset_at = -math.inf

    base = "/helix"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        return _handler_for(self)

    # --- what tests set up and look at --------------------------------------------------------------

    def add_user(self, login: str, user_id: str) -> None:
        with self.lock:
            self.users[login] = user_id
            self.channels.setdefault(user_id, {"game_name": "", "title": ""})

    def go_live(self, login: str, viewers: int, game: str = "Just Chatting", title: str = "Hello chat",
                started_at: float | None = None) -> None:
        """``login``'s stream is live since ``started_at`` (epoch seconds; default now)."""
        with self.lock:
            user_id = self.users[login]
            self.channels[user_id] = {"game_name": game, "title": title}
            self.streams[user_id] = {
                "id": "40952121085", "user_id": user_id, "user_login": login, "user_name": login,
                "game_id": "509658", "game_name": game, "type": "live", "title": title, "tags": ["English"],
                "viewer_count": viewers, "started_at": _rfc3339(self.clock() if started_at is None else started_at),
                "language": "en", "thumbnail_url": "https://example.invalid/{width}x{height}.jpg", "is_mature": False,
            }

    def go_offline(self, login: str) -> None:
        with self.lock:
            self.streams.pop(self.users[login], None)

    def follow(self, channel: str, follower: str, since: float) -> None:
        with self.lock:
            self.followers.setdefault(self.users[channel], {})[self.users[follower]] = _rfc3339(since)

    def make_moderator(self, channel: str, user_id: str) -> None:
        with self.lock:
            self.moderators.setdefault(self.users[channel], set()).add(user_id)

    def calls(self, path: str) -> list[str]:
        """The calls that arrived for ``path`` (without the query), in order."""
        return [line for line in list(self.requests) if line.split(" ", 1)[1].split("?", 1)[0] == path]

    def moderation_calls(self) -> list[tuple[str, object]]:
        """Each call to a moderation path with its JSON body (None without one), in order."""
        with self.lock:
            calls = list(zip(self.requests, self.bodies, strict=True))
        return [(line, body) for line, body in calls if line.split(" ", 1)[1].split("?", 1)[0] in MODERATION_PATHS]

    # --- the API -------------------------------------------------------------------------------------

    def _take_point(self) -> bool:
        now = self.clock()
        if now >= self._reset_at:
            self._remaining, self._reset_at = self.points, now + self.window
        if self._remaining <= 0:
            return False
        self._remaining -= 1
        return True

    def limit_headers(self) -> dict[str, str]:
        return {"Ratelimit-Limit": str(self.points), "Ratelimit-Remaining": str(max(self._remaining, 0)),
                "Ratelimit-Reset": str(math.ceil(self._reset_at))}

    def answer(self, path: str, query: dict[str, list[str]], headers, method: str = "GET",
               body: object = None) -> tuple[int, object]:
        """The (status, JSON body) for one call; runs under ``lock``."""
        kind, _, token = (headers.get("Authorization") or "").partition(" ")
        if kind != "Bearer" or not token or not self.accept(token):
            return _error(401, "Unauthorized", "Invalid OAuth token")
        if headers.get("Client-Id") != self.client_id:
            return _error(401, "Unauthorized", "Client ID and OAuth token do not match")
        if method != "GET":
            return self.moderate(method, path, query, token, body)
        if path == "/users":
            logins = query.get("login", [])
            if len(logins) > 100:
                return _error(400, "Bad Request", "The maximum number of login parameters is 100")
            return 200, {"data": [_user(login, self.users[login]) for login in logins if login in self.users]}
        if path == "/streams":
            ids = query.get("user_id", [])
            first = int(query.get("first", ["20"])[0])
            if len(ids) > 100 or not 1 <= first <= 100:
                return _error(400, "Bad Request", "The maximum number of user_id parameters is 100")
            live = [self.streams[user_id] for user_id in ids if user_id in self.streams][:first]
            return 200, {"data": live, "pagination": {}}
        if path == "/channels":
            ids = query.get("broadcaster_id", [])
            if not ids:
                return _error(400, "Bad Request", "Missing required parameter \"broadcaster_id\"")
            login = {user_id: login for login, user_id in self.users.items()}
            return 200, {"data": [
                {"broadcaster_id": user_id, "broadcaster_login": login[user_id], "broadcaster_name": login[user_id],
                 "broadcaster_language": "en", "game_id": "509658", "tags": [], "delay": 0,
                 "content_classification_labels": [], "is_branded_content": False, **self.channels[user_id]}
                for user_id in ids if user_id in self.channels]}
        if path == "/channels/followers":
            broadcaster = (query.get("broadcaster_id") or [""])[0]
            if broadcaster not in self.channels:
                return _error(400, "Bad Request", "Missing required parameter \"broadcaster_id\"")
            followers = self.followers.get(broadcaster, {})
            total = len(followers)
            may_see = FOLLOWERS_SCOPE in self.scopes_of(token) and (
                self.bot_user_id == broadcaster or self.bot_user_id in self.moderators.get(broadcaster, set()))
            if not may_see:
                return 200, {"total": total, "data": [], "pagination": {}}
            login = {user_id: login for login, user_id in self.users.items()}
            wanted = query.get("user_id")
            rows = [(user_id, since) for user_id, since in followers.items() if not wanted or user_id in wanted]
            first = int(query.get("first", ["20"])[0])
            data = [{"user_id": user_id, "user_login": login.get(user_id, ""), "user_name": login.get(user_id, ""),
                     "followed_at": since} for user_id, since in rows[:first]]
            pagination = {"cursor": "eyJiIjpudWxsLCJhIjp7Ik9mZnNldCI6MX19"} if len(rows) > first else {}
            return 200, {"total": total, "data": data, "pagination": pagination}
        return _error(404, "Not Found", "Not Found")

    def moderate(self, method: str, path: str, query: dict[str, list[str]], token: str,
                 body: object) -> tuple[int, object]:
        """Delete Chat Messages and Ban User, as Twitch's API reference describes their answers."""
        broadcaster = (query.get("broadcaster_id") or [""])[0]
        moderator = (query.get("moderator_id") or [""])[0]
        scope = {("DELETE", "/moderation/chat"): DELETE_SCOPE, ("POST", "/moderation/bans"): BANS_SCOPE}.get(
            (method, path))
        if scope is None:
            return _error(404, "Not Found", "Not Found")
        if scope not in self.scopes_of(token):
            return _error(401, "Unauthorized", f"Missing scope: {scope}")
        if broadcaster not in self.channels or not moderator:
            return _error(400, "Bad Request", "Missing required parameter \"broadcaster_id\"")
        if moderator != self.bot_user_id:
            return _error(403, "Forbidden", "The ID in moderator_id must match the user ID in the access token.")
        if moderator != broadcaster and moderator not in self.moderators.get(broadcaster, set()):
            return _error(403, "Forbidden", "The user in moderator_id is not one of the broadcaster's moderators.")
        if method == "DELETE":
            if not query.get("message_id"):
                return _error(400, "Bad Request", "vbot must never clear the whole chat")  # Twitch would
            return 204, None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("user_id"), str):
            return _error(400, "Bad Request", "The user_id field is required.")
        duration = data.get("duration")
        if not isinstance(duration, int) or not 1 <= duration <= 1_209_600:
            return _error(400, "Bad Request", "fake: a filter never bans for good")
        now = self.clock()
        return 200, {"data": [{"broadcaster_id": broadcaster, "moderator_id": moderator, "user_id": data["user_id"],
                               "created_at": _rfc3339(now), "end_time": _rfc3339(now + duration)}]}


def _user(login: str, user_id: str) -> dict:
    return {"id": user_id, "login": login, "display_name": login, "type": "", "broadcaster_type": "",
            "description": "", "profile_image_url": "https://example.invalid/p.png",
            "offline_image_url": "", "view_count": 0, "created_at": "2016-12-14T20:32:28Z"}


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _error(status: int, error: str, message: str) -> tuple[int, dict]:
    return status, {"error": error, "status": status, "message": message}


FAULTS = {
    "500": _error(500, "Internal Server Error", "Internal Server Error"),
    "401": _error(401, "Unauthorized", "Invalid OAuth token"),
    "429": _error(429, "Too Many Requests", "Too Many Requests"),
    "409": _error(409, "Conflict", "You may not update the user's ban state while someone else is updating the "
                                   "state."),
}


def _handler_for(fake: FakeHelix) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            self.handle_call("GET")

        def do_DELETE(self) -> None:
            self.handle_call("DELETE")

        def do_POST(self) -> None:
            self.handle_call("POST")

        def handle_call(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            path = parts.path.removeprefix("/helix")
            query = urllib.parse.parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            with fake.lock:
                fake.requests.append(f"{method} {path}" + (f"?{parts.query}" if parts.query else ""))
                fake.bodies.append(body)
                fault = fake.next_fault(path)  # fail(path): /streams, /users, ...
                if fault is None or fault in FAULTS:
                    scripted = fault
                    if not fake._take_point():
                        fault = "429"
                    status, reply = FAULTS[fault] if fault else fake.answer(path, query, self.headers, method, body)
                    limits = fake.limit_headers()
                    if scripted == "429":  # the bucket is said to be empty for a second
                        limits["Ratelimit-Remaining"] = "0"
                        limits["Ratelimit-Reset"] = str(math.ceil(fake.clock()) + 1)
                    fake.answered.append(status)
            if self.send_fault(fault, fake):  # hang, bad_json, redirect
                return
            if fault == "huge":
                self.send_json(200, b'{"data": [' + b'{"x": 1},' * 110000 + b'{"x": 1}]}', {})
            else:
                headers = dict(limits)
                if status == 429:
                    headers["Retry-After"] = str(max(1, math.ceil(fake._reset_at - fake.clock())))
                self.send_json(status, b"" if reply is None else json.dumps(reply).encode(), headers)

    return Handler
