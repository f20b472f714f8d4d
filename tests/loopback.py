"""An HTTP service on loopback for the fakes of Twitch's services (tests/fake_auth.py, tests/fake_helix.py)."""

from __future__ import annotations

import http.server
import threading
from typing import Self


class LoopbackService:
    """Serves ``handler()`` on a free loopback port from a daemon thread; ``url`` is the base URL,
    ``http://127.0.0.1:<port>`` followed by ``base`` (``/oauth2``, ``/helix``). ``stopping`` is set
    by ``stop()`` (a request told to hang waits on it, at most ``hang_for`` seconds). Faults are
    scripted per call name with ``fail(key, *faults)``, each used by one call (``next_fault``) under
    ``lock``. Use as a context manager, or start()/stop()."""

    base = ""
    hang_for = 60.0

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.faults: dict[str, list[str]] = {}
        self._server: http.server.ThreadingHTTPServer | None = None

    def fail(self, key: str, *faults: str) -> None:
        """Make the next calls to ``key`` (how the fake names a call: an endpoint, a path) fail, one fault each."""
        with self.lock:
            self.faults.setdefault(key, []).extend(faults)

    def next_fault(self, key: str) -> str | None:
        """The fault scripted for this call to ``key``, taken off its queue; None for none. Call under ``lock``."""
        queue = self.faults.get(key)
        return queue.pop(0) if queue else None

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

    def send_fault(self, fault: str | None, service: LoopbackService) -> bool:
        """Answer a fault both fakes know, and return True; False for any other fault or none.
        ``"hang"``: no answer until ``service.stop()`` or ``hang_for`` seconds, then the connection
        closes; ``"bad_json"``: 200 with an HTML body; ``"redirect"``: 302 to ``<url>/elsewhere``."""
        if fault == "hang":
            service.stopping.wait(service.hang_for)
            self.close_connection = True
        elif fault == "bad_json":
            self.send_json(200, b"<html>not json</html>")
        elif fault == "redirect":
            self.send_json(302, b"{}", {"Location": f"{service.url}/elsewhere"})
        else:
            return False
        return True

    def log_message(self, format, *args) -> None:
        """Quiet: tests read what the fake recorded instead."""
