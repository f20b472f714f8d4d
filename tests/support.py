"""Real parts for tests: an ngircd server, a scripted Twitch-like server, IRC clients, a bot runner.

Every wait has a timeout and waits for a condition, never a fixed time.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from vbot.bot import Backoff, VBot
from vbot.commands import builtin_table
from vbot.config import Config
from vbot.dispatch import Dispatcher

TOKEN = "testtoken0123456789abcdefghijk"
WAIT = 10.0
TWITCH_WELCOME = [
    ":tmi.twitch.tv 001 {nick} :Welcome, GLHF!",
    ":tmi.twitch.tv 002 {nick} :Your host is tmi.twitch.tv",
    ":tmi.twitch.tv 003 {nick} :This server is rather new",
    ":tmi.twitch.tv 004 {nick} :-",
    ":tmi.twitch.tv 375 {nick} :-",
    ":tmi.twitch.tv 372 {nick} :You are in a maze of twisty passages.",
    ":tmi.twitch.tv 376 {nick} :>",
    "@badge-info=;badges=;color=;display-name={nick};emote-sets=0,300374282;user-id=12345678;user-type= "
    ":tmi.twitch.tv GLOBALUSERSTATE",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float = WAIT, message: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.01)


class LineSocket:
    """A socket read and written in CRLF-terminated lines; received lines are kept in ``lines``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lines: list[str] = []
        self._buffer = b""
        self._lock = threading.Lock()
        self.closed = False

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        try:
            self.sock.sendall(data + b"\r\n")
        except OSError:
            self.closed = True

    def read_available(self, timeout: float) -> None:
        """Read what arrives within ``timeout`` seconds into ``lines``."""
        try:
            self.sock.settimeout(timeout)  # raises OSError too once another thread closed the socket
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self._buffer += data
        *complete, self._buffer = self._buffer.split(b"\n")
        with self._lock:
            self.lines.extend(raw.rstrip(b"\r").decode("utf-8", "replace") for raw in complete)

    def wait_for(self, pattern: str, timeout: float = WAIT, start: int = 0) -> str:
        """The first line from index ``start`` on that matches regex ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines[start:]:
                if regex.search(line):
                    return line
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} within {timeout} s; got {self.lines[-10:]}")
            self.read_available(min(0.1, max(deadline - time.monotonic(), 0.001)))

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class IrcClient(LineSocket):
    """A chatter: a real client socket to an IRC server, registered and ready."""

    def __init__(self, port: int, nick: str, password: str | None = None):
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=WAIT))
        self.nick = nick
        if password:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        self.wait_for(r"^:\S+ 001 ")

    def join(self, channel: str) -> None:
        self.send(f"JOIN {channel}")
        self.wait_for(rf"^:\S+ 366 {self.nick} {re.escape(channel)} ")

    def part(self, channel: str) -> None:
        self.send(f"PART {channel}")
        self.wait_for(rf"^:{self.nick}!\S+ PART {re.escape(channel)}")

    def say(self, channel: str, text: str) -> int:
        """Send a PRIVMSG; returns the index in ``lines`` from which replies can be awaited."""
        start = len(self.lines)
        self.send(f"PRIVMSG {channel} :{text}")
        return start

    def wait_for_reply(self, channel: str, pattern: str, start: int = 0, timeout: float = WAIT) -> str:
        """The text of the next PRIVMSG to ``channel`` whose text matches ``pattern``."""
        line = self.wait_for(rf"PRIVMSG {re.escape(channel)} :(?:{pattern})", timeout, start)
        return line.split(" :", 1)[1]


class Ngircd:
    """A real ngircd on a free loopback port, configured to accept PASS ``oauth:<TOKEN>``."""

    def __init__(self, token: str = TOKEN):
        self.binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="vbot-ngircd-"))
        self.config = self.directory / "ngircd.conf"
        self.config.write_text(
            "[Global]\nName = irc.vbot.test\nInfo = vbot test server\nListen = 127.0.0.1\n"
            f"Ports = {self.port}\nMotdPhrase = vbot test\nPassword = oauth:{token}\n"
            "[Limits]\nMaxNickLength = 30\nMaxConnectionsIP = 0\nMaxPenaltyTime = 0\nPingTimeout = 600\n"
            "[Options]\nPAM = no\nIdent = no\nDNS = no\n"
        )
        self.process: subprocess.Popen | None = None

    def start(self) -> Ngircd:
        self.process = subprocess.Popen([self.binary, "-n", "-f", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, message=f"ngircd on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"ngircd exited with {self.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


class ScriptedServer:
    """A loopback server that answers like Twitch chat (lines from Twitch's docs).

    It accepts any number of connections one after another; ``received`` holds every
    line from every connection; ``connections`` counts accepted connections. With
    ``token=None`` any PASS is accepted; a wrong PASS gets Twitch's login-failure
    NOTICE and a close. ``accept``, when set, decides instead at each login:
    ``accept(token)`` is True for a token valid right now (e.g. a fake token
    service's ``is_valid``). ``silent`` stops all answers, PONG included.
    """

    def __init__(self, token: str | None = TOKEN, port: int | None = None):
        self.token = token
        self.accept: Callable[[str], bool] | None = None
        self.port = port or free_port()
        self.received: list[str] = []
        self.connections = 0
        self.current: LineSocket | None = None
        self.silent = False
        self.userstate_badges = "moderator/1"
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> ScriptedServer:
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(8)
        self._listener.settimeout(0.1)
        self._spawn(self._accept_loop)
        return self

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except (socket.timeout, OSError):
                continue
            self.connections += 1
            peer = LineSocket(sock)
            self.current = peer
            self._spawn(self._serve, peer)

    def _serve(self, peer: LineSocket) -> None:
        nick, password, seen = "", None, 0
        while not self._stopping.is_set() and not peer.closed:
            peer.read_available(0.05)
            for line in peer.lines[seen:]:
                self.received.append(line)
                if not self.silent:
                    nick, password = self._answer(peer, line, nick, password)
            seen = len(peer.lines)
        peer.close()

    def _answer(self, peer: LineSocket, line: str, nick: str, password: str | None):
        command, _, rest = line.partition(" ")
        if command == "CAP" and rest.startswith("REQ"):
            peer.send(f":tmi.twitch.tv CAP * ACK :{rest.split(':', 1)[1]}")
        elif command == "PASS":
            password = rest
        elif command == "NICK":
            nick = rest
            if not self._accepts(password):
                peer.send(":tmi.twitch.tv NOTICE * :Login authentication failed")
                peer.close()
            else:
                for welcome in TWITCH_WELCOME:
                    peer.send(welcome.format(nick=nick))
        elif command == "JOIN":
            for channel in rest.split(","):
                peer.send(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {channel}")
                peer.send(f":{nick}.tmi.twitch.tv 353 {nick} = {channel} :{nick}")
                peer.send(f":{nick}.tmi.twitch.tv 366 {nick} {channel} :End of /NAMES list")
                peer.send(f"@badge-info=;badges={self.userstate_badges};color=;display-name={nick};"
                          f"emote-sets=0,300374282;mod=1;subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE {channel}")
                peer.send(f"@emote-only=0;followers-only=-1;r9k=0;room-id=12345678;slow=0;subs-only=0 "
                          f":tmi.twitch.tv ROOMSTATE {channel}")
        elif command == "PING":
            peer.send(f":tmi.twitch.tv PONG tmi.twitch.tv {rest}")
        return nick, password

    def _accepts(self, password: str | None) -> bool:
        if self.accept is not None:
            return (password or "").startswith("oauth:") and self.accept((password or "")[len("oauth:"):])
        return self.token is None or password == f"oauth:{self.token}"

    def send(self, line: str | bytes) -> None:
        """Send a raw line to the current connection."""
        wait_until(lambda: self.current is not None, message="a connection")
        self.current.send(line)

    def chat(self, channel: str, login: str, text: str, tags: str = "") -> None:
        """Send a PRIVMSG from ``login`` with optional raw ``tags`` (without the ``@``)."""
        prefix = f"@{tags} " if tags else ""
        self.send(f"{prefix}:{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channel} :{text}")

    def drop(self) -> None:
        """Close the current connection abruptly."""
        if self.current:
            self.current.close()

    def wait_for(self, pattern: str, timeout: float = WAIT, start: int = 0) -> str:
        """The first received line from index ``start`` on that matches regex ``pattern``."""
        regex = re.compile(pattern)
        return wait_until(lambda: next((line for line in self.received[start:] if regex.search(line)), None),
                          timeout, f"a line matching {pattern!r}; got {self.received[-10:]}")

    def stop(self) -> None:
        self._stopping.set()
        if self.current:
            self.current.close()
        if self._listener:
            self._listener.close()
        for thread in self._threads:
            thread.join(2)


def make_config(port: int, channels=("#test",), username: str = "vbot", token: str | None = TOKEN, **overrides) -> Config:
    """A Config for a loopback server without TLS."""
    fields = dict(username=username, token=token, channels=tuple(channels), host="127.0.0.1",
                  port=port, tls=False)
    fields.update(overrides)
    return Config(**fields)


class BotThread:
    """Runs a VBot in a thread of the test process; ``exit_code`` is set when ``run()`` returns."""

    def __init__(self, config: Config, dispatcher: Dispatcher | None = None, **bot_options):
        self.dispatcher = dispatcher or Dispatcher(builtin_table(), config.prefix, config.owners)
        bot_options.setdefault("reconnect", Backoff(first=0.2, cap=1.0))
        self.bot = VBot(config, self.dispatcher, **bot_options)
        self.exit_code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.exit_code = self.bot.run(poll=0.05)

    def start(self) -> BotThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = WAIT) -> int | None:
        self.bot.request_stop()
        self.thread.join(timeout)
        return self.exit_code


def run_vbot(env: dict[str, str], *args: str, input: str | None = None, timeout: float = 30,
             cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m vbot`` with exactly the VBOT_* variables in ``env``; returns the finished process."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("VBOT_")}
    clean_env.update(env)
    return subprocess.run([sys.executable, "-m", "vbot", *args], env=clean_env, input=input, text=True,
                          capture_output=True, timeout=timeout, cwd=cwd or tempfile.mkdtemp(prefix="vbot-run-"))


def start_vbot(env: dict[str, str], *args: str, cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``python -m vbot`` in the background with the VBOT_* variables in ``env``."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith("VBOT_")}
    clean_env.update(env)
    return subprocess.Popen([sys.executable, "-m", "vbot", *args], env=clean_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd or tempfile.mkdtemp(prefix="vbot-run-"))


class FakeClock:
    """An injected clock for the outbox and cooldowns: ``clock()`` returns ``now`` (seconds),
    which moves only by ``advance(seconds)``. Safe to read from the bot's thread."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
