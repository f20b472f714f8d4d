"""Start the clients under test as subprocesses, the way users start them, and always stop them."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.server import BenchError, Listener

NICK = "benchbot"
CHANNEL = "#benchchan"
TOKEN = "benchtoken0123456789abcdefghij"
BARE = Path(__file__).with_name("bare.py")


class Client:
    """A client process; its stderr goes to a temporary file, shown when something fails."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: str):
        self.name = name
        self.cwd = cwd
        self._stderr = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident set size from /proc/<pid>/status (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-2000:]

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM (vbot's clean stop), then SIGKILL after ``timeout`` s; returns the exit code."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        self._stderr.close()
        return self.process.returncode


def _environment(cwd: str, extra: dict[str, str]) -> dict[str, str]:
    """This environment without VBOT_* variables, plus ``extra``; Python's bytecode cache in ``cwd``.

    Both clients start as installed code does, from bytecode compiled on their first run
    (pip compiles it at install, or the first run writes it), even where the environment
    says PYTHONDONTWRITEBYTECODE; the cache lives under ``cwd``, never in the source tree.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("VBOT_") and key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(cwd, "pycache")
    env.update(extra)
    return env


def start_vbot(port: int, cwd: str, **settings: str) -> Client:
    """``python -m vbot`` configured with VBOT_* variables only (``cwd`` holds no .env)."""
    env = _environment(cwd, {
        "VBOT_USERNAME": NICK, "VBOT_TOKEN": TOKEN, "VBOT_CHANNEL": CHANNEL, "VBOT_HOST": "127.0.0.1",
        "VBOT_PORT": str(port), "VBOT_TLS": "false", "VBOT_LOG_LEVEL": "WARNING", **settings,
    })
    return Client("vbot", [sys.executable, "-m", "vbot"], env, cwd)


def start_bare(port: int, cwd: str) -> Client:
    """The bare SimpleIRCClient of ``bare.py``."""
    argv = [sys.executable, str(BARE), "127.0.0.1", str(port), NICK, f"oauth:{TOKEN}", CHANNEL]
    return Client("bare", argv, _environment(cwd, {}), cwd)


class Session:
    """A listener, one client started against it, and the handshake done: ``peer`` is ready.

    ``with Session("vbot", cwd) as session:`` always stops the client and closes the sockets.
    """

    def __init__(self, kind: str, cwd: str, timeout: float = 30.0, **settings: str):
        self.kind, self.cwd, self.timeout, self.settings = kind, cwd, timeout, settings
        self.listener = self.client = self.peer = None
        self.joined_at = 0.0

    def __enter__(self) -> Session:
        self.listener = Listener()
        try:
            if self.kind == "vbot":
                self.client = start_vbot(self.listener.port, self.cwd, **self.settings)
            else:
                self.client = start_bare(self.listener.port, self.cwd)
            self.peer = self.listener.accept(self.timeout, self.client.alive)
            self.joined_at = self.peer.handshake(CHANNEL, self.timeout)
        except BenchError as error:
            stderr = self.client.stderr() if self.client else ""
            self.__exit__(None, None, None)
            raise BenchError(f"{self.kind}: {error}\n{stderr}") from None
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def failure(self, error: Exception) -> str:
        """``error`` with the client's last stderr lines, for a BenchError message."""
        return f"{self.kind}: {error}\n{self.client.stderr() if self.client else ''}"

    def __exit__(self, *exc_info) -> None:
        if self.peer:
            self.peer.close()
        if self.client:
            self.client.stop()
        if self.listener:
            self.listener.close()
