"""Real parts for tests: real IRC servers (ngircd, or miniircd where ngircd is missing), a scripted
Twitch-like server, IRC clients, a bot runner.

Every wait has a timeout and waits for a condition, never a fixed time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.config import Config
from vbot.dispatch import Cooldowns, Dispatcher
from vbot.outbox import Outbox
from vbot.session import Backoff

TOKEN = "testtoken0123456789abcdefghijk"
PASSWORD = f"oauth:{TOKEN}"
"""What the test servers accept as PASS; off Twitch's host vbot sends VBOT_TOKEN as given, so tests set this."""
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


@contextlib.contextmanager
def silent_address() -> Iterator[tuple]:
    """A loopback address that never answers a connect, as a host that is down or drops SYNs behind
    a firewall: a listener whose backlog is full, so the kernel drops new SYNs. Yields it as one
    of ``socket.getaddrinfo``'s answers, for a resolver stand-in (``vbot.network.Resolve``)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        with socket.create_connection(listener.getsockname(), timeout=WAIT):  # fills the backlog
            yield address_of(listener)


def address_of(listener: socket.socket) -> tuple:
    """``listener``'s address as one of ``socket.getaddrinfo``'s answers."""
    return (listener.family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", listener.getsockname())


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
        except (TimeoutError, BlockingIOError):
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


REQUIRE_NGIRCD = "REQUIRE_NGIRCD"
"""Set to 1 (``.ci/run`` does): a test that needs ngircd runs, and fails, where ngircd is missing,
instead of being skipped; every other integration test uses ngircd too, never miniircd."""
NGIRCD_MISSING = (f"ngircd is not on PATH and {REQUIRE_NGIRCD}=1 asks for it: "
                  "apt-get install ngircd (Debian, Ubuntu; root's PATH has /usr/sbin)")
MINIIRCD_MISSING = "miniircd is not installed; the integration tests need it without ngircd: pip install -e '.[test]'"


def find_ngircd() -> str | None:
    """The ngircd program on PATH, or None (Debian installs it in /usr/sbin, on root's PATH)."""
    return shutil.which("ngircd")


def ngircd_required() -> bool:
    """True when REQUIRE_NGIRCD asks for ngircd (CI): no skips, no miniircd."""
    return os.environ.get(REQUIRE_NGIRCD, "") not in ("", "0")


def needs_ngircd(why: str) -> pytest.MarkDecorator:
    """Mark a test that needs what among the real servers only ngircd has (channel modes, IRC
    operators, ERROR before a close, ...); ``why`` says what, e.g. "miniircd has no channel
    operators". Skipped with that reason when ngircd is not on PATH, unless
    ``ngircd_required()``: then it runs, and fails with NGIRCD_MISSING. Use it with
    ``Ngircd(...)``; ``real_ircd()`` serves every other test."""
    return pytest.mark.skipif(find_ngircd() is None and not ngircd_required(),
                              reason=f"needs ngircd ({why}), which is not on PATH: apt-get install ngircd")


class ServerProcess:
    """A real IRC server program on a free loopback port, run as a child process.

    ``password`` holds what clients must send as PASS (``oauth:<token>`` by default), or
    None; ``start`` waits until the server listens and returns it; ``stop`` ends it and
    removes its files. Subclasses name the program (``name``) and its command line.
    """

    name = "server"
    operator: tuple[str, str] | None = None
    """An IRC operator's (name, password): only ``Ngircd`` has one."""

    def __init__(self, token: str | None = TOKEN, password: str | None = None):
        self.port = free_port()
        self.password = password if password is not None else (f"oauth:{token}" if token else None)
        self.directory = Path(tempfile.mkdtemp(prefix=f"vbot-{self.name}-"))
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground on ``port``."""
        raise NotImplementedError

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._listening, message=f"{self.name} on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
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


class Ngircd(ServerProcess):
    """A real ngircd (Debian package ``ngircd``), configured to accept PASS ``oauth:<TOKEN>``.

    Options: ``token=None`` for a server without a password (ngircd then refuses any
    PASS); ``password`` for a plain server password instead of ``oauth:<token>``;
    ``channels`` for pre-defined channels, name → initial modes as in a MODE command
    (``{"#locked": "+i", "#keyed": "+k sesame", "#full": "+l 1"}``; ngircd's
    ``[Channel]`` sections, mode ``+P`` added: nobody gets ops by joining them);
    ``operator`` = ``(name, password)`` for an IRC operator who may set any channel
    mode, ``+q``/``+a``/``+h`` included (``OPER``, see ``registered_client``).
    ``binary`` defaults to ``find_ngircd()``; without it ``start`` fails the test with
    one line saying how to install ngircd (mark such tests ``needs_ngircd``).
    """

    name = "ngircd"

    def __init__(self, token: str | None = TOKEN, password: str | None = None,
                 channels: Mapping[str, str] | None = None, operator: tuple[str, str] | None = None,
                 binary: str | None = None):
        super().__init__(token, password)
        self.binary = binary or find_ngircd()
        self.config = self.directory / "ngircd.conf"
        self.operator = operator
        password_line = f"Password = {self.password}\n" if self.password else ""
        sections = "".join(f"[Channel]\nName = {name}\nModes = {modes}\n" for name, modes in (channels or {}).items())
        if operator:
            sections += f"[Operator]\nName = {operator[0]}\nPassword = {operator[1]}\n"
        self.config.write_text(
            "[Global]\nName = irc.vbot.test\nInfo = vbot test server\nListen = 127.0.0.1\n"
            f"Ports = {self.port}\nMotdPhrase = vbot test\n{password_line}"
            "[Limits]\nMaxNickLength = 30\nMaxConnectionsIP = 0\nMaxPenaltyTime = 0\nPingTimeout = 600\n"
            "[Options]\nPAM = no\nIdent = no\nDNS = no\n"
            + ("OperCanUseMode = yes\n" if operator else "") + sections
        )

    def command(self) -> list[str]:
        return [self.binary, "-n", "-f", str(self.config)]

    def start(self) -> Ngircd:
        if not self.binary or not os.access(self.binary, os.X_OK):
            shutil.rmtree(self.directory, ignore_errors=True)
            pytest.fail(NGIRCD_MISSING, pytrace=False)
        super().start()
        return self


class Miniircd(ServerProcess):
    """A real miniircd (PyPI ``miniircd``, in the test extra), accepting PASS ``oauth:<TOKEN>``.

    Registration, PASS, NICK (433 for a nick in use), JOIN/PART/QUIT with echoes, NAMES,
    PRIVMSG relayed to a channel, PING, CAP (it refuses every capability). Unlike ngircd
    it has no channel or user modes but ``+k``, no operators, no ISUPPORT line, relays
    lines longer than 512 bytes, and answers a wrong PASS with 464 without closing.
    Options as ``Ngircd``'s ``token`` and ``password`` (without one, it ignores a PASS).
    """

    name = "miniircd"

    def command(self) -> list[str]:
        # miniircd refuses to run as root unless told to stay root
        as_root = ["--setuid", "root"] if os.getuid() == 0 else []
        password = ["--password", self.password] if self.password else []
        return [sys.executable, "-m", "miniircd", "--listen", "127.0.0.1", "--ports", str(self.port),
                *password, *as_root]

    def start(self) -> Miniircd:
        if importlib.util.find_spec("miniircd") is None:
            shutil.rmtree(self.directory, ignore_errors=True)
            pytest.fail(MINIIRCD_MISSING, pytrace=False)
        super().start()
        return self


IrcServer = Ngircd | Miniircd


def real_ircd(token: str | None = TOKEN, password: str | None = None) -> IrcServer:
    """A real IRC server (not started) for what every server does: ngircd when it is on PATH
    (or ``ngircd_required()``), else miniircd. ``token`` and ``password`` as ``Ngircd``'s."""
    if find_ngircd() or ngircd_required():
        return Ngircd(token, password)
    return Miniircd(token, password)


class ScriptedServer:
    """A loopback server that answers like Twitch chat (lines from Twitch's docs).

    It accepts any number of connections one after another; ``received`` holds every
    line from every connection; ``connections`` counts accepted connections. With
    ``token=None`` any PASS is accepted; a wrong PASS gets Twitch's login-failure
    NOTICE and a close. ``accept``, when set, decides instead at each login:
    ``accept(token)`` is True for a token valid right now (e.g. a fake token
    service's ``is_valid``). ``silent`` stops all answers, PONG included. After a JOIN it
    sends USERSTATE with ``userstate_badges`` (a moderator by default) and ROOMSTATE with
    ``room_id``.
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
        self.room_id = "12345678"  # ROOMSTATE's room-id: the broadcaster's user ID
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
            except (TimeoutError, OSError):
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
                if not self.silent:
                    nick, password = self._answer(peer, line, nick, password)
                # recorded after the answer: a test that saw "JOIN #test" here knows the echo
                # went out before anything it sends next (the bot handles them in that order)
                self.received.append(line)
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
                mod = "moderator" in self.userstate_badges
                peer.send(f"@badge-info=;badges={self.userstate_badges};color=;display-name={nick};"
                          f"emote-sets=0,300374282;mod={int(mod)};subscriber=0;user-type={'mod' if mod else ''} "
                          f":tmi.twitch.tv USERSTATE {channel}")
                peer.send(f"@emote-only=0;followers-only=-1;r9k=0;room-id={self.room_id};slow=0;subs-only=0 "
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


def make_config(port: int, channels=("#test",), username: str = "vbot", token: str | None = PASSWORD,
                **overrides) -> Config:
    """A Config for a loopback server without TLS; its token, sent as given there, is the password
    the test servers expect."""
    fields = dict(username=username, token=token, channels=tuple(channels), host="127.0.0.1",
                  port=port, tls=False)
    fields.update(overrides)
    return Config(**fields)


class BotHarness:
    """A VBot driven in the test's own thread, as a chat log: ``feed`` server lines, read ``sent`` lines.

    No server and no threads: the bot's connection is one end of a ``socket.socketpair()``
    and the test holds the other. Time is a FakeClock shared by the bot's session and
    outbox; ``advance(seconds)`` moves it and lets the bot act on it. Sopel's
    ``botfactory``/``ircfactory`` and errbot's ``testbot`` are the models.

    >>> harness = BotHarness().welcome()
    >>> harness.say("alice", "!version")
    >>> harness.replies()[0].startswith("PRIVMSG #test :Version: ")
    True
    """

    def __init__(self, config: Config | None = None, dispatcher: Dispatcher | None = None, **bot_options):
        self.config = config or make_config(6667)
        self.clock = bot_options.pop("clock", None) or FakeClock()
        bot_options.setdefault("outbox", Outbox(clock=self.clock))
        self.server: socket.socket | None = None
        self.connects = 0
        dispatcher = dispatcher or Dispatcher(builtin_table(), self.config.prefix, self.config.owners,
                                              Cooldowns(self.clock))
        self.bot = VBot(self.config, dispatcher,
                        clock=self.clock, connect_factory=self._connect, **bot_options)
        self._pending = b""
        self.step()

    def _connect(self, address: tuple[str, int]) -> socket.socket:
        bot_end, self.server = socket.socketpair()
        self.server.setblocking(False)
        self.connects += 1
        return bot_end

    def step(self) -> None:
        """One turn of the bot's loop, without waiting: session check, then what has arrived."""
        with self.bot.reactor.mutex:
            self.bot._step()
        self.bot.reactor.process_once(0)

    def feed(self, *lines: str | bytes) -> None:
        """Send raw server lines (CRLF added) and let the bot handle them."""
        for line in lines:
            self.server.sendall((line if isinstance(line, bytes) else line.encode()) + b"\r\n")
        self.step()

    def advance(self, seconds: float) -> None:
        """Move the clock and let the bot act (PING, reconnect, ...)."""
        self.clock.advance(seconds)
        self.step()

    def welcome(self, nick: str | None = None) -> BotHarness:
        """Answer the login like Twitch, and echo the JOINs the bot sends."""
        nick = nick or self.config.username
        self.feed(*(line.format(nick=nick) for line in TWITCH_WELCOME))
        for channel in self.config.channels:
            self.feed(f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {channel}")
        return self

    def say(self, login: str, text: str, channel: str = "#test", tags: str = "") -> None:
        """A chat message from ``login``, with optional raw ``tags`` (without the ``@``)."""
        prefix = f"@{tags} " if tags else ""
        self.feed(f"{prefix}:{login}!{login}@{login}.tmi.twitch.tv PRIVMSG {channel} :{text}")

    def sent(self) -> list[str]:
        """The lines the bot sent since the last call (CRLF removed)."""
        try:
            while chunk := self.server.recv(65536):
                self._pending += chunk
        except (BlockingIOError, OSError):
            pass
        *lines, self._pending = self._pending.split(b"\r\n")
        return [line.decode("utf-8", "replace") for line in lines]

    def replies(self) -> list[str]:
        """The PRIVMSG lines among ``sent()``."""
        return [line for line in self.sent() if line.startswith("PRIVMSG ")]

    def drop(self) -> None:
        """Close the server's end, as a server that goes away; the bot notices on its next read."""
        self.server.close()
        self.step()


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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd or tempfile.mkdtemp(prefix="vbot-run-"))


class Vbot:
    """``python -m vbot`` in the background, in ``cwd``, with exactly the VBOT_* variables in ``env``;
    its log goes to a file (``log()``), so a long DEBUG log can never fill a pipe and stall it."""

    def __init__(self, env: dict[str, str], cwd: Path, name: str = "vbot"):
        self.log_path = cwd / f"{name}.log"
        clean = {key: value for key, value in os.environ.items()
                 if not key.startswith("VBOT_") and key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        with open(self.log_path, "w") as log_file:
            self.process = subprocess.Popen([sys.executable, "-m", "vbot"], env={**clean, **env}, cwd=cwd,
                                            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        assert self.process.poll() is None, f"vbot exited with {self.process.returncode}:\n{self.log()[-3000:]}"
        return True

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(15)
        finally:
            self.process.kill()


class FakeClock:
    """An injected clock for the outbox and cooldowns: ``clock()`` returns ``now`` (seconds),
    which moves only by ``advance(seconds)``. Safe to read from the bot's thread."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class TwoClocks(FakeClock):
    """A FakeClock (monotonic seconds) with a wall clock beside it: ``wall()`` reads epoch-like
    seconds that move with ``advance``, and alone with ``jump`` (NTP stepping the clock, a VM
    resumed). Both read the same until the first jump."""

    def __init__(self, start: float = 1000.0):
        super().__init__(start)
        self.offset = 0.0

    def wall(self) -> float:
        return self.now + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


def registered_client(server: IrcServer, nick: str, channel: str | None = None, oper: bool = False) -> IrcClient:
    """A client registered on ``server`` as ``nick`` (with the server's password, if any):
    it holds the nick, so a bot logging in with it gets 433. ``channel``: joined after
    registering; ``oper``: becomes the server's IRC operator first (``Ngircd(operator=...)``)."""
    if oper and not server.operator:
        raise ValueError("Ngircd(operator=(name, password)) is needed for oper=True")
    client = IrcClient(server.port, nick, server.password)
    if oper and server.operator:
        client.send(f"OPER {server.operator[0]} {server.operator[1]}")
        client.wait_for(rf"^:\S+ 381 {re.escape(nick)} ")
    if channel:
        client.join(channel)
    return client


class PlainIrcServer(ScriptedServer):
    """A scripted plain IRC server (not Twitch), for what ngircd cannot do.

    It welcomes as ``server_name`` (001-004, then ``isupport`` as one 005 line when
    given, e.g. ``"PREFIX=(qaohv)~&@%+ CHANMODES=beI,kfL,lj,imnpst"``, then the MOTD),
    refuses (NAK) a ``CAP REQ`` that names a ``twitch.tv/`` capability, and answers
    JOIN with the echo ``:<nick>!<user>@<host> JOIN``, a NAMES list of ``names``
    (raw entries such as ``"~fiona &adam @olga %hal +val"``) plus the nick, and 366;
    no Twitch tags or USERSTATE. ``user`` is ``~`` plus the nick cut to 9 characters
    and ``host`` is ``client_host``; with ``hidden_host`` a 396 (RPL_HOSTHIDDEN) after
    the welcome changes it. With ``relay_limit`` (bytes) a PRIVMSG whose relayed form
    ``:<nick>!<user>@<host> PRIVMSG ...\\r\\n`` is longer gets 417 (ERR_INPUTTOOLONG), as
    a server that refuses rather than cuts; ``relay_limit=0`` refuses every PRIVMSG.
    Other lines from the client are recorded in ``received`` and not answered.
    """

    def __init__(self, token: str | None = None, port: int | None = None, server_name: str = "irc.vbot.test",
                 isupport: str | None = None, names: str = "", client_host: str = "127.0.0.1",
                 hidden_host: str | None = None, relay_limit: int | None = None):
        super().__init__(token, port)
        self.server_name = server_name
        self.isupport = isupport
        self.names = names
        self.host = client_host
        self.hidden_host = hidden_host
        self.relay_limit = relay_limit

    def source(self, nick: str) -> str:
        """The ``nick!user@host`` this server shows for a client of its own called ``nick``."""
        return f"{nick}!~{nick[:9]}@{self.host}"

    def _answer(self, peer: LineSocket, line: str, nick: str, password: str | None):
        command, _, rest = line.partition(" ")
        server = self.server_name
        if command == "CAP" and rest.startswith("REQ"):
            wanted = rest.split(":", 1)[-1]
            verdict = "NAK" if "twitch.tv/" in wanted else "ACK"
            peer.send(f":{server} CAP {nick or '*'} {verdict} :{wanted}")
        elif command == "PASS":
            password = rest
        elif command == "NICK":
            nick = rest.lstrip(":")
            if self.token is not None and password != self.token:
                peer.send(f":{server} 464 {nick} :Password incorrect")
                peer.send("ERROR :Access denied: Bad password?")
                peer.close()
                return nick, password
            peer.send(f":{server} 001 {nick} :Welcome to the vbot test network {self.source(nick)}")
            peer.send(f":{server} 002 {nick} :Your host is {server}, running version scripted-1")
            peer.send(f":{server} 003 {nick} :This server was created today")
            peer.send(f":{server} 004 {nick} {server} scripted-1 io biklmnopstv")
            if self.isupport:
                peer.send(f":{server} 005 {nick} {self.isupport} :are supported by this server")
            peer.send(f":{server} 375 {nick} :- {server} Message of the day -")
            peer.send(f":{server} 372 {nick} :- vbot test")
            peer.send(f":{server} 376 {nick} :End of /MOTD command.")
            if self.hidden_host:
                self.host = self.hidden_host
                peer.send(f":{server} 396 {nick} {self.hidden_host} :is now your displayed host")
        elif command == "JOIN":
            for channel in rest.split(" ")[0].split(","):
                peer.send(f":{self.source(nick)} JOIN {channel}")
                peer.send(f":{server} 353 {nick} = {channel} :{' '.join([*self.names.split(), nick])}")
                peer.send(f":{server} 366 {nick} {channel} :End of /NAMES list.")
        elif command == "PRIVMSG" and self.relay_limit is not None:
            if len(f":{self.source(nick)} {line}\r\n".encode()) > self.relay_limit:
                peer.send(f":{server} 417 {nick} :Input line was too long")
        elif command == "PING":
            peer.send(f":{server} PONG {server} {rest}")
        return nick, password

    def mode(self, channel: str, arguments: str, by: str = "olga") -> None:
        """Send ``:<by>!~<by>@<host> MODE <channel> <arguments>`` (e.g. ``"-l+o gina"``)."""
        self.send(f":{self.source(by)} MODE {channel} {arguments}")
