"""An HTTP service on loopback for the fakes of Twitch's services (tests/fake_auth.py, tests/fake_helix.py)."""

from __future__ import annotations

import http.server
import threading
from typing import Self


class LoopbackService:
    """Serves ``handler()`` on a free loopback port from a daemon thread; ``url`` is the base URL,
    ``http://127.0.0.1:<port>`` followed by ``base`` (``/oauth2``, ``/helix``). ``stopping`` is set
    by ``stop()`` (a request told to hang waits on it). Use as a context manager, or start()/stop()."""

    base = ""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._server: http.server.ThreadingHTTPServer | None = None

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.base}"

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A request handler answering JSON over HTTP/1.1, quietly (tests read what the fake recorded)."""

    protocol_version = "HTTP/1.1"

    def send_json(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with the body ``data``; a client that went away is ignored."""
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass

    def log_message(self, format, *args) -> None:
        """Quiet: tests read what the fake recorded instead."""
