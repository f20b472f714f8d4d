"""Signals at any moment (issue 9 item 6): handlers before any slow start-up work, and a stop
that does not wait for a blocking connect. Real processes, real signals."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.support import TOKEN, start_vbot, wait_until


def caught_signals(pid: int) -> int:
    """The mask of signals ``pid`` has handlers for (``SigCgt`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return int(line.split()[1], 16)
    return 0


def handles(pid: int, signum: int) -> bool:
    return bool(caught_signals(pid) >> (signum - 1) & 1)


def is_open(pid: int, path: Path) -> bool:
    """True while process ``pid`` has ``path`` open."""
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(descriptor) == str(path):
                return True
        except OSError:
            continue
    return False


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


def test_sighup_during_start_up_is_kept_not_fatal(twitch, tmp_path):
    """Start-up blocks on reading the commands file (a FIFO): the handlers are in place by then,
    so a SIGHUP there is recorded (and acted on once running), not the default 'terminate'."""
    fifo = tmp_path / "commands.toml"
    os.mkfifo(fifo)
    process = start_vbot(env_for(twitch.port, VBOT_COMMANDS_FILE=str(fifo), VBOT_LOG_LEVEL="INFO"), cwd=tmp_path)
    wait_until(lambda: process.poll() is not None or handles(process.pid, signal.SIGHUP),
               message="vbot's SIGHUP handler, while start-up waits on the commands file")
    process.send_signal(signal.SIGHUP)
    fifo.write_text('[hi]\nreply = "hello"\n')  # start-up goes on...
    wait_until(lambda: not is_open(process.pid, fifo), message="vbot to finish reading the commands file")
    reload = threading.Thread(target=fifo.write_text, args=('[hi]\nreply = "hello again"\n',), daemon=True)
    reload.start()  # ...and the SIGHUP's reload reads the file a second time
    twitch.wait_for(r"^JOIN #test$")
    reload.join(10)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert "reloaded 1 custom command" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_during_start_up_exits_0(twitch, tmp_path, signum):
    fifo = tmp_path / "commands.toml"
    os.mkfifo(fifo)
    process = start_vbot(env_for(twitch.port, VBOT_COMMANDS_FILE=str(fifo)), cwd=tmp_path)
    wait_until(lambda: process.poll() is not None or handles(process.pid, signal.SIGHUP), message="the handlers")
    process.send_signal(signum)  # start-up is waiting on the commands file: abandoned at once
    stdout, stderr = finish(process)
    assert process.returncode == 0, stderr
    assert twitch.connections == 0  # it stopped before connecting


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
