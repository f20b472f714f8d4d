"""Issue 10, live: timers, ``!botstatus``, systemd notify and a postponed SIGHUP reload wired into the running bot.

The rules themselves are tested purely (tests/test_timers.py, test_health.py,
test_notify.py); these tests prove the wiring on a real socket: a VBot in a thread
on the scripted Twitch server with an injected fake clock (timers, ``!botstatus``),
and ``python -m vbot`` as a subprocess with NOTIFY_SOCKET pointing at a Unix
datagram socket that plays systemd. ``pytest -s`` prints what was captured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    PASSWORD,
    TOKEN,
    BotThread,
    FakeClock,
    ScriptedServer,
    free_port,
    make_config,
    wait_until,
)
from tests.test_notify import Systemd
from vbot.cli import build_dispatcher
from vbot.notify import Notifier
from vbot.outbox import Outbox
from vbot.session import Backoff, Phase
from vbot.state import CountStore

MOD = "badges=moderator/1;mod=1;display-name=Moddy"
HYDRATE = """
[water]
reply = "Drink some water, test!"

[timers.hydrate]
message = "Drink some water, {channel}!"
interval = 60
min_lines = 2
"""
SOCIALS = """
[timers.socials]
message = "Follow us elsewhere"
interval = 60
min_lines = 0
"""


def handled(server: ScriptedServer, *lines: str) -> None:
    """Send ``lines`` and a PING in one write; return once the bot has answered the PING
    (so it has handled every line before it, and sent what they made it send)."""
    start = len(server.received)
    server.send("\r\n".join([*lines, "PING :handled"]))
    server.wait_for(r"^PONG :?handled$", start=start)


def chat_line(login: str, text: str, tags: str = "", channel: str = "#test") -> str:
    prefix = f"@{tags} " if tags else ""
    return f"{prefix}:{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channel} :{text}"


def action(login: str, text: str) -> str:
    """A ``/me`` line: CTCP ACTION inside a PRIVMSG."""
    return chat_line(login, f"\x01ACTION {text}\x01")


def posts(server: ScriptedServer, text: str) -> list[str]:
    """The PRIVMSG lines the bot sent to #test whose text starts with ``text``."""
    return [line for line in server.received if line.startswith(f"PRIVMSG #test :{text}")]


@pytest.fixture
def timer_bot(twitch, tmp_path):
    """A VBot in a thread on ``twitch``, with the commands file HYDRATE, a FakeClock for the
    session, outbox, cooldowns and timers, built as ``python -m vbot`` builds it."""
    path = tmp_path / "commands.toml"
    path.write_text(HYDRATE)
    clock = FakeClock()
    config = make_config(twitch.port, commands_file=path, commands_file_required=True,
                         state_file=tmp_path / "state.sqlite3", ping_interval=3600, ping_timeout=300)
    with CountStore(config.state_file) as store:
        dispatcher, timers, reload = build_dispatcher(config, store, clock)
        run = BotThread(config, dispatcher, reload=reload, timers=timers, clock=clock, outbox=Outbox(clock=clock))
        run.start()
        try:
            twitch.wait_for(r"^JOIN #test$")
            yield run, clock, path
        finally:
            assert run.stop() == 0


def test_a_timer_posts_through_the_outbox_once_the_interval_passed_and_two_others_spoke(twitch, timer_bot):
    run, clock, path = timer_bot
    twitch.userstate_badges = ""  # the bot is no moderator: one message per second, the duplicate rule on
    handled(twitch, "@badges=;mod=0 :tmi.twitch.tv USERSTATE #test")
    # the bot's own lines never count (Twitch does not echo them, but a line in its name must not count)
    handled(twitch, *[chat_line("vbot", f"my own line {n}") for n in range(3)])
    clock.advance(60)
    handled(twitch, chat_line("alice", "hello"))
    assert posts(twitch, "Drink") == []  # the interval has passed, but only one line from others
    # the second line from others is !water, whose reply is the timer's text: the reply goes out at
    # once, the timer's post waits in the outbox for the per-channel second, then gets the duplicate suffix
    handled(twitch, chat_line("bob", "!water"))
    assert posts(twitch, "Drink") == ["PRIVMSG #test :Drink some water, test!"]
    assert len(run.bot.outbox) == 1
    clock.advance(1)
    twitch.wait_for(r"^PRIVMSG #test :Drink some water, test! \U000E0000$")
    assert len(run.bot.outbox) == 0 and run.bot.sent == 2

    # /me lines count as chat: one is not enough, two are
    clock.advance(60)
    handled(twitch, action("carol", "waves"))
    assert len(posts(twitch, "Drink")) == 2
    handled(twitch, action("dave", "dances"))
    assert len(posts(twitch, "Drink")) == 3  # more than 30 s after the last one: no suffix needed
    assert posts(twitch, "Drink")[-1] == "PRIVMSG #test :Drink some water, test!"

    # !reload swaps the timers: hydrate is gone, socials (min_lines 0) posts on time
    path.write_text(SOCIALS)
    clock.advance(1)
    handled(twitch, chat_line("moddy", "!reload", MOD))
    twitch.wait_for(r"^PRIVMSG #test :Reloaded 0 custom commands and 1 timer")
    assert [timer.name for timer in run.bot.timers.timers] == ["socials"]
    clock.advance(60)
    twitch.wait_for(r"^PRIVMSG #test :Follow us elsewhere$")
    handled(twitch, chat_line("alice", "one"), chat_line("bob", "two"), chat_line("carol", "three"))
    assert len(posts(twitch, "Drink")) == 3
    print("\ncaptured: the bot's PRIVMSG lines:", *[repr(line) for line in twitch.received
                                                     if line.startswith("PRIVMSG")], sep="\n  ")


def test_botstatus_on_the_live_bot(twitch, tmp_path):
    """Uptime, time connected, reconnects after a forced reconnect, replies sent, the last PING's round trip."""
    clock = FakeClock()
    config = make_config(twitch.port, ping_interval=60, ping_timeout=10, state_file=tmp_path / "state.sqlite3")
    run = BotThread(config, clock=clock, reconnect=Backoff(first=0.5, cap=1.0)).start()
    try:
        twitch.wait_for(r"^JOIN #test$")  # logged in at 1000.0
        start = len(twitch.received)
        twitch.drop()  # forced reconnect
        wait_until(lambda: run.bot.session.phase is Phase.WAITING, message="the drop to be noticed")
        clock.advance(1)  # past the backoff (at most 0.5 s)
        twitch.wait_for(r"^JOIN #test$", start=start)  # logged in again at 1001.0
        handled(twitch)  # the JOIN's answers are read now, not after the clock moved
        twitch.silent = True  # the keep-alive PING waits for its PONG
        start = len(twitch.received)
        clock.advance(60)  # 60 s of silence: the bot sends PING
        twitch.wait_for(r"^PING ", start=start)
        clock.advance(0.048)
        twitch.silent = False
        handled(twitch, ":tmi.twitch.tv PONG tmi.twitch.tv :tmi.twitch.tv")
        handled(twitch, chat_line("alice", "!version"))
        handled(twitch, chat_line("moddy", "!botstatus", MOD))
        status = twitch.wait_for(r"^PRIVMSG #test :Up ").split(" :", 1)[1]
    finally:
        assert run.stop() == 0
    print(f"\ncaptured: !botstatus: {status}")
    for part in ["Up 1m 1s", "connected 1m", "reconnects 1", "replies sent 1, dropped 0, waiting 0", "PING 48 ms"]:
        assert part in status.split(" | ")
    assert TOKEN not in status and "/" not in status and "token" not in status  # no keeper: no expiry


# --- systemd notify, from python -m vbot --------------------------------------------------------------


class Captured:
    """The datagrams a Systemd socket receives, each stamped on arrival with seconds since start
    (read by a thread, so the stamps are the bot's timing, not the test's)."""

    def __init__(self, systemd: Systemd):
        self.systemd = systemd
        self.start = time.monotonic()
        self.datagrams: list[tuple[float, str]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stopping.is_set():
            select.select([self.systemd.sock], [], [], 0.05)
            for message in self.systemd.messages():
                self.datagrams.append((time.monotonic() - self.start, message))

    def messages(self) -> list[str]:
        return [message for _, message in list(self.datagrams)]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 15) -> None:
        regex = re.compile(pattern)
        wait_until(lambda: sum(bool(regex.search(message)) for message in self.messages()) >= count, timeout,
                   f"{count} datagram(s) matching {pattern!r}")

    def stop(self) -> None:
        """Stop reading (after a last look at the socket)."""
        self._stopping.set()
        self._thread.join(5)

    def show(self) -> str:
        return "\n".join(f"  {at:6.2f} s  {message!r}" for at, message in self.datagrams)


def start_under_systemd(env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """``python -m vbot`` as systemd starts a ``Type=notify`` unit with ``WatchdogSec=``: NOTIFY_SOCKET and
    WATCHDOG_USEC from ``env``, no WATCHDOG_PID (a child of this process never has the right one)."""
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith("VBOT_") and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    return subprocess.Popen([sys.executable, "-m", "vbot"], env={**clean, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)


@contextlib.contextmanager
def under_systemd(env: dict[str, str], cwd: Path,
                  abstract: bool = False) -> Iterator[tuple[subprocess.Popen, Captured]]:
    """``start_under_systemd`` with a Systemd socket as NOTIFY_SOCKET; yields the process and what the
    socket captured; at the end the process is killed (if still running) and the socket closed."""
    systemd = Systemd(abstract=abstract)
    captured = Captured(systemd)
    process = start_under_systemd({**env, "NOTIFY_SOCKET": systemd.notify_socket}, cwd)
    try:
        yield process, captured
    finally:
        process.kill()
        captured.stop()
        systemd.close()


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_datagrams_from_a_live_run(twitch, tmp_path, abstract):
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": PASSWORD, "VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1",
           "VBOT_PORT": str(twitch.port), "VBOT_TLS": "false", "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3"),
           "WATCHDOG_USEC": "2000000"}
    with under_systemd(env, tmp_path, abstract) as (process, captured):
        twitch.wait_for(r"^JOIN #test$")
        captured.wait_for(r"^READY=1\n")
        start = len(twitch.received)
        twitch.drop()
        captured.wait_for(r"^STATUS=reconnecting in ")
        twitch.wait_for(r"^JOIN #test$", start=start)
        captured.wait_for(r"^STATUS=logged in as ")
        captured.wait_for(r"^WATCHDOG=1$", count=4)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    print(f"\ncaptured: NOTIFY_SOCKET={'@' if abstract else ''}... datagrams (WATCHDOG_USEC=2000000):\n"
          + captured.show())
    assert process.returncode == 0, stderr
    messages = captured.messages()
    states = [message for message in messages if message != "WATCHDOG=1"]
    assert states[0] == "READY=1\nSTATUS=logged in as vbot, 1 channel"
    assert re.fullmatch(r"STATUS=reconnecting in \d+\.\d s", states[1])
    assert states[2:] == ["STATUS=logged in as vbot, 1 channel", "STOPPING=1\nSTATUS=stopping"]
    assert messages.count("WATCHDOG=1") >= 4
    assert sum("READY=1" in message for message in messages) == 1  # after the first welcome only


def test_failed_connects_update_the_status(tmp_path):
    """Every failed connect attempt says when the next one is, and before the first login (the
    server down at start) that the bot is connecting, with the reason, not reconnecting (issue 17)."""
    systemd = Systemd(abstract=False)
    captured = Captured(systemd)
    config = make_config(free_port(), state_file=tmp_path / "state.sqlite3")  # nothing listens there
    run = BotThread(config, notifier=Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket}),
                    reconnect=Backoff(first=0.05, cap=0.1)).start()
    try:
        captured.wait_for(r"^STATUS=connecting in \d+\.\d s \(the last try: .*Connection refused\)$", count=3)
    finally:
        assert run.stop() == 0
        captured.stop()
        systemd.close()
    assert not any("READY=1" in message for message in captured.messages())


def test_a_password_the_server_quotes_never_reaches_the_status(tmp_path):
    """A server whose ERROR quotes the PASS it refused (``[Access denied, bad password ...]``): the
    STATUS line before the first login quotes that reason, redacted as the log is (a1 of the
    attack trial: ``systemctl status`` showed the token to any local user)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopping = threading.Event()

    def refuse() -> None:
        while not stopping.is_set():
            try:
                peer, _ = listener.accept()
            except OSError:
                continue
            with peer:
                peer.settimeout(5)
                received = b""
                while b"NICK" not in received and (data := peer.recv(4096)):
                    received += data
                passes = [line[5:] for line in received.decode().split("\r\n") if line.startswith("PASS ")]
                reason = f"Closing link: (vbot@127.0.0.1) [Access denied, bad password {passes}]"
                peer.sendall(f"ERROR :{reason}\r\n".encode())

    threading.Thread(target=refuse, daemon=True).start()
    secret = "s3cretServerPass"
    env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": secret, "VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1",
           "VBOT_PORT": str(listener.getsockname()[1]), "VBOT_TLS": "false",
           "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3")}
    try:
        with under_systemd(env, tmp_path) as (process, captured):
            captured.wait_for(r"^STATUS=connecting in .*bad password")
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=15)
    finally:
        stopping.set()
        listener.close()
    statuses = [message for message in captured.messages() if "bad password" in message]
    assert statuses and all("bad password ['[REDACTED]']" in message for message in statuses), captured.show()
    assert secret not in "".join(captured.messages()) + stderr


def test_a_sighup_inside_the_reload_interval_reloads_at_its_end(twitch, timer_bot, caplog):
    """Trial: a moderator's !reload, then the operator's edit and `systemctl reload` 1 s later: the
    SIGHUP was dropped. Now the bot's tick runs it once the 5 s have passed (vbot.custom.Reloader)."""
    run, clock, path = timer_bot
    handled(twitch, chat_line("moddy", "!reload", MOD))
    twitch.wait_for(r"^PRIVMSG #test :Reloaded 1 custom command and 1 timer\.$")
    path.write_text(HYDRATE.replace("Drink some water, test!", "Version two"))
    clock.advance(1)
    with caplog.at_level(logging.INFO, logger="vbot.custom"):
        run.bot.request_reload()  # what the SIGHUP handler calls
        wait_until(lambda: "reloading in 4 s: at most one reload per 5 s" in caplog.messages, message="postponed")
        handled(twitch, chat_line("moddy", "!water", MOD))
        assert posts(twitch, "Version two") == []
        clock.advance(4)
        wait_until(lambda: any(line.startswith("reloaded 1 custom") for line in caplog.messages), message="reloaded")
    handled(twitch, chat_line("moddy", "!water", MOD))
    assert posts(twitch, "Version two") == ["PRIVMSG #test :Version two"]
    assert [line for line in caplog.messages if "reload" in line][-2:] == [
        "reloading in 4 s: at most one reload per 5 s",
        f"reloaded 1 custom command(s) and 1 timer(s) from {path}; filters: none",
    ]
