"""Signals at any moment (issue 9 item 6): handlers before any slow start-up work, and a stop
that does not wait for a blocking token check or connect. Real processes, real signals."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.support import TOKEN, ScriptedServer, start_vbot, wait_until
from vbot.tokens import Tokens, save_tokens


def caught_signals(pid: int) -> int:
    """The mask of signals ``pid`` has handlers for (``SigCgt`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def handles(pid: int, signum: int) -> bool:
    return bool(caught_signals(pid) >> (signum - 1) & 1)


def env_for(port: int, **more: str) -> dict[str, str]:
    return {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{TOKEN}", "VBOT_CHANNEL": "#test",
            "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(port), "VBOT_TLS": "false", **more}


def finish(process, timeout: float = 10) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


@pytest.fixture
def stuck_start(tmp_path):
    """A bot whose start-up is stuck validating its token (the token service does not answer
    for ``hang_for`` seconds); yields ``start(hang_for) -> (process, fake, chat)``."""
    started = []

    def start(hang_for: float):
        fake = FakeTwitchAuth(hang_for=hang_for).start()
        chat = ScriptedServer(token=None)
        chat.accept = fake.is_valid
        chat.start()
        access, refresh = fake.issue()
        save_tokens(tmp_path / "vbot-token.json",
                    Tokens(access, refresh, time.time() + 14000, CHAT_SCOPES, "vbot", "12345678", CLIENT_ID))
        (tmp_path / "commands.toml").write_text('[hi]\nreply = "hello"\n')
        fake.fail("validate", "hang")
        env = {"VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(chat.port), "VBOT_TLS": "false",
               "VBOT_AUTH_URL": fake.url, "VBOT_LOG_LEVEL": "INFO"}
        process = start_vbot(env, cwd=tmp_path)
        started.append((process, fake, chat))
        wait_until(lambda: "validate:hang" in fake.requests, message="start-up stuck on /validate")
        return process, fake, chat

    yield start
    for process, fake, chat in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        fake.stop()
        chat.stop()


def test_sighup_during_start_up_is_kept_not_fatal(stuck_start):
    """A SIGHUP while start-up waits for the token service is recorded, not the default
    'terminate', and acted on once the bot runs."""
    process, fake, chat = stuck_start(hang_for=1.0)
    assert handles(process.pid, signal.SIGHUP)
    process.send_signal(signal.SIGHUP)
    chat.wait_for(r"^JOIN #test$")  # the validation gave up; vbot connected with the token it had
    process.send_signal(signal.SIGTERM)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "reloaded 1 custom command" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_during_start_up_exits_0_at_once(stuck_start, signum):
    process, fake, chat = stuck_start(hang_for=30.0)
    process.send_signal(signum)  # start-up is waiting on the token service: abandoned at once
    stdout, stderr = finish(process, timeout=5)  # the service would answer in 30 s
    assert process.returncode == 0, stderr
    assert chat.connections == 0  # it stopped before connecting
    assert "Traceback" not in stderr


def test_sigterm_during_a_tls_handshake_exits_within_a_second(tmp_path):
    """A server that accepts TCP and never answers the TLS handshake: vbot would wait for its
    connect timeout (10 s); SIGTERM ends the wait."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held = []

    def accept() -> None:
        connection, _ = listener.accept()
        held.append(connection)
        accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    process = start_vbot(env_for(port, VBOT_TLS="true"), cwd=tmp_path)
    try:
        assert accepted.wait(10), "vbot never connected"
        wait_until(lambda: handles(process.pid, signal.SIGTERM), message="the handlers")
        sent_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = finish(process, timeout=5)  # the connect timeout is 10 s
        print(f"measured: SIGTERM during a TLS handshake -> exit: {time.monotonic() - sent_at:.2f} s")
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
