"""Shared fixtures: real servers on loopback, started per test and always stopped."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fake_auth import FakeTwitchAuth
from tests.support import ScriptedServer, Vbot, real_ircd


@pytest.fixture
def ircd():
    """A real IRC server on a free loopback port: ngircd, or miniircd where ngircd is missing
    (``support.real_ircd``), accepting PASS ``oauth:<TOKEN>``."""
    server = real_ircd().start()
    yield server
    server.stop()


@pytest.fixture
def twitch():
    """A scripted Twitch-like chat server on a free loopback port."""
    server = ScriptedServer().start()
    yield server
    server.stop()


@pytest.fixture
def servers():
    """``servers(real_ircd())`` starts a server (a real or a scripted one); all are stopped after the test."""
    started: list = []

    def start(server):
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def fake():
    """Twitch's token service, faked on loopback (tests/fake_auth.py)."""
    with FakeTwitchAuth() as server:
        yield server


@pytest.fixture
def chat(fake):
    """The scripted Twitch chat server, accepting exactly the tokens ``fake`` deems valid right now."""
    server = ScriptedServer(token=None)
    server.accept = fake.is_valid
    yield server.start()
    server.stop()


@pytest.fixture
def vbots():
    """``vbots(env, cwd)`` starts a Vbot; every one still running is killed at the end."""
    started: list[Vbot] = []

    def start(env: dict[str, str], cwd: Path, name: str = "vbot") -> Vbot:
        started.append(Vbot(env, cwd, name))
        return started[-1]

    yield start
    for vbot in started:
        vbot.process.kill()
        vbot.process.wait(10)
