"""A loopback server that answers one client like Twitch chat, and the client's lines with arrival times.

Every wait has a deadline; the listener binds 127.0.0.1 only.
"""

from __future__ import annotations

import queue
import socket
import threading
import time

WAIT = 30.0
"""Default seconds for any single wait."""
SEND_TIMEOUT = 300.0
"""Seconds one ``send`` may take in all (a client that stops reading cannot hang the bench)."""


class BenchError(RuntimeError):
    """A part of the benchmark could not run (a timeout, a client that died)."""


def welcome(nick: str) -> list[str]:
    """Twitch's answer to PASS/NICK with the tags and commands capabilities (Twitch docs, verbatim)."""
    return [
        f":tmi.twitch.tv 001 {nick} :Welcome, GLHF!",
        f":tmi.twitch.tv 002 {nick} :Your host is tmi.twitch.tv",
        f":tmi.twitch.tv 003 {nick} :This server is rather new",
        f":tmi.twitch.tv 004 {nick} :-",
        f":tmi.twitch.tv 375 {nick} :-",
        f":tmi.twitch.tv 372 {nick} :You are in a maze of twisty passages.",
        f":tmi.twitch.tv 376 {nick} :>",
        f"@badge-info=;badges=;color=;display-name={nick};emote-sets=0,300374282;user-id=12345678;user-type= "
        ":tmi.twitch.tv GLOBALUSERSTATE",
    ]


def joined(nick: str, channel: str) -> list[str]:
    """Twitch's answer to ``JOIN channel``; the USERSTATE makes the bot a moderator (100 messages / 30 s)."""
    return [
        f":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN {channel}",
        f":{nick}.tmi.twitch.tv 353 {nick} = {channel} :{nick}",
        f":{nick}.tmi.twitch.tv 366 {nick} {channel} :End of /NAMES list",
        f"@badge-info=;badges=moderator/1;color=;display-name={nick};emote-sets=0,300374282;mod=1;"
        f"subscriber=0;user-type=mod :tmi.twitch.tv USERSTATE {channel}",
        f"@emote-only=0;followers-only=-1;r9k=0;room-id=713936733;slow=0;subs-only=0 "
        f":tmi.twitch.tv ROOMSTATE {channel}",
    ]


class Listener:
    """A listening socket on 127.0.0.1 and a free port; ``accept()`` gives one Peer."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]

    def accept(self, timeout: float = WAIT, alive=lambda: True) -> Peer:
        """The next connection; BenchError after ``timeout`` s or as soon as ``alive()`` is false."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.05)
        while time.monotonic() < deadline:
            if not alive():
                raise BenchError("the client exited before it connected")
            try:
                sock, _ = self.sock.accept()
            except TimeoutError:
                continue
            return Peer(sock)
        raise BenchError(f"no connection within {timeout} s")

    def close(self) -> None:
        self.sock.close()


class Peer:
    """One accepted client. A thread reads its lines into a queue as ``(perf_counter(), line)``."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(SEND_TIMEOUT)
        self.lines: queue.Queue[tuple[float, str | None]] = queue.Queue()
        self.received: list[str] = []
        self.nick = ""
        self.closed = False
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue  # the timeout is there for sendall; a quiet client is fine
            except OSError:
                break
            now = time.perf_counter()
            if not data:
                break
            buffer += data
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                self.lines.put((now, raw.rstrip(b"\r").decode("utf-8", "replace")))
        self.closed = True
        self.lines.put((time.perf_counter(), None))

    def send(self, data: bytes | str) -> float:
        """Send bytes, or one line (CR LF added); returns the ``perf_counter()`` just before sending."""
        if isinstance(data, str):
            data = (data + "\r\n").encode()
        with self._send_lock:
            now = time.perf_counter()
            try:
                self.sock.sendall(data)
            except OSError as error:
                raise BenchError(f"could not send to the client: {error}") from None
        return now

    def send_lines(self, lines: list[str]) -> float:
        return self.send("".join(line + "\r\n" for line in lines).encode())

    def wait_for(self, match, timeout: float = WAIT) -> tuple[float, str]:
        """The next line for which ``match(line)`` is true, with its arrival time; other lines are kept."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"timed out after {timeout} s; last lines from the client: {self.received[-5:]}")
            try:
                at, line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                raise BenchError(f"the client closed the connection; last lines: {self.received[-5:]}")
            self.received.append(line)
            if match(line):
                return at, line

    def handshake(self, channel: str, timeout: float = WAIT) -> float:
        """Answer CAP, PASS (any), NICK and JOIN ``channel`` like Twitch; returns when the JOIN arrived."""
        deadline = time.monotonic() + timeout
        while True:
            at, line = self.wait_for(lambda _: True, max(deadline - time.monotonic(), 0.001))
            command, _, rest = line.partition(" ")
            if command == "CAP" and rest.startswith("REQ"):
                self.send(f":tmi.twitch.tv CAP * ACK :{rest.partition(':')[2]}")
            elif command == "NICK":
                self.nick = rest.strip()
                self.send_lines(welcome(self.nick))
            elif command == "PING":
                self.send(f":tmi.twitch.tv PONG tmi.twitch.tv {rest}")
            elif command == "JOIN":
                if rest.strip() != channel:
                    raise BenchError(f"the client joined {rest!r}, not {channel}")
                self.send_lines(joined(self.nick, channel))
                return at

    def ping_round_trip(self, token: str, timeout: float = WAIT) -> float:
        """Send ``PING :token`` and wait for the PONG; seconds from sending to its arrival."""
        sent = self.send(f"PING :{token}")
        at, _ = self.wait_for(lambda line: line.startswith("PONG") and line.endswith(token), timeout)
        return at - sent

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._reader.join(2)
