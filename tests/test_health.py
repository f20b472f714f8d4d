"""!botstatus: the Health record's one-line text, and who may ask for it."""

from __future__ import annotations

import pytest

from vbot.chat import ChatMessage, Role
from vbot.commands import builtin_table
from vbot.dispatch import Dispatcher
from vbot.health import Health, format_duration, format_health


@pytest.mark.parametrize(("seconds", "text"), [
    (-3, "0s"), (0, "0s"), (0.9, "0s"), (59.99, "59s"), (60, "1m"), (61, "1m 1s"), (3599, "59m 59s"),
    (3600, "1h"), (3660, "1h 1m"), (3661, "1h 1m"), (7500, "2h 5m"), (86399, "23h 59m"), (86400, "1d"),
    (90000, "1d 1h"), (40 * 86400 + 3 * 3600, "40d 3h"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("health", "parts"), [
    (Health(7500, 3720, 3, 120, 2, 1, 0.0451, 273600),
     ["Up 2h 5m", "connected 1h 2m", "reconnects 3", "replies sent 120, dropped 2, waiting 1", "PING 45 ms",
      "token expires in 3d 4h"]),
    (Health(30, None, 0, 0, 0, 0), ["Up 30s", "not connected", "reconnects 0", "PING none yet"]),
    (Health(30, 10, 0, 0, 0, 0, token_expires_in=-5), ["token expired"]),
    (Health(30, None, 0, 4, 0, 0, connection="console"),
     ["connection: console", "replies sent 4, dropped 0, waiting 0"]),
])
def test_format_health(health, parts):
    text = format_health(health)
    assert all(part in text.split(" | ") for part in parts), text
    assert "\n" not in text
    assert ("token" in text) == (health.token_expires_in is not None)
    assert ("PING" in text) == (health.connection is None)


class Host:
    def health(self) -> Health:
        return Health(65, 5, 1, 2, 0, 0, 0.012)


@pytest.mark.parametrize(("role", "answered"), [
    (Role.EVERYONE, False), (Role.SUBSCRIBER, False), (Role.VIP, False), (Role.MODERATOR, True),
    (Role.BROADCASTER, True),
])
def test_botstatus_is_for_moderators_and_up(role, answered):
    reply = Dispatcher(builtin_table()).handle(ChatMessage("#test", "someone", "!botstatus", role), Host())
    assert (reply == "Up 1m 5s | connected 5s | reconnects 1 | replies sent 2, dropped 0, waiting 0 | PING 12 ms") \
        == answered
    assert answered or reply is None
