"""Shared fixtures: real servers on loopback, started per test and always stopped."""

from __future__ import annotations

import pytest

from tests.support import Ngircd, ScriptedServer


@pytest.fixture
def ngircd():
    """A real ngircd on a free loopback port (Debian package ``ngircd``)."""
    server = Ngircd().start()
    yield server
    server.stop()


@pytest.fixture
def twitch():
    """A scripted Twitch-like chat server on a free loopback port."""
    server = ScriptedServer().start()
    yield server
    server.stop()
