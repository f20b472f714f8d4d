"""vbot.http against real loopback servers: the total deadline, bounded replies, no redirects, JSON bounds."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support import address_of, silent_address
from vbot.http import MAX_JSON_DEPTH, Unavailable, exchange, parse_json, retry_after


class RawServer:
    """A loopback TCP server that answers every connection with ``answer(sock)``; ``stop()`` ends it."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]):
        self.answer = answer
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            with sock:
                sock.settimeout(5)
                try:
                    self.requests.append(sock.recv(65536))
                    self.answer(sock, self.stopped)
                except OSError:
                    pass

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]], RawServer]]:
    started: list[RawServer] = []

    def start(answer):
        started.append(RawServer(answer))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def reply(status: str, body: bytes, *headers: str) -> Callable[[socket.socket, threading.Event], None]:
    def answer(sock: socket.socket, stopped: threading.Event) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return answer


def drip(data: bytes) -> Callable[[socket.socket, threading.Event], None]:
    """Send ``data`` one byte every 50 ms (a whole minute for 1,200 bytes), until stopped."""

    def answer(sock: socket.socket, stopped: threading.Event) -> None:
        for byte in data:
            if stopped.wait(0.05):
                return
            sock.sendall(bytes([byte]))

    return answer


def test_a_reply_with_its_status_headers_and_body(serve):
    server = serve(reply("401 Unauthorized", b'{"message": "invalid"}', "Ratelimit-Remaining: 799"))
    answer = exchange("GET", server.url + "/helix/users?login=a", {"Authorization": "Bearer secret"})
    assert (answer.status, answer.body) == (401, b'{"message": "invalid"}')
    assert answer.headers["ratelimit-remaining"] == "799"
    assert server.requests[0].startswith(b"GET /helix/users?login=a HTTP/1.1\r\n")


def test_a_body_and_a_method(serve):
    server = serve(reply("204 No Content", b""))
    answer = exchange("DELETE", server.url + "/moderation/chat", {"Content-Type": "application/json"}, b"{}")
    assert answer.status == 204
    assert server.requests[0].startswith(b"DELETE /moderation/chat HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "answer",
    [
        drip(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + b" " * 1200),  # headers a byte at a time
        drip(b"X" * 1200),  # never a status line
        drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1200\r\n\r\n" + b"{" * 1200),  # a body a byte at a time
    ],
)
def test_the_deadline_holds_however_slowly_the_bytes_arrive(serve, answer):
    """Each byte arrives well within any per-read timeout, yet the call ends at the deadline."""
    server = serve(answer)
    started = time.monotonic()
    with pytest.raises(Unavailable, match="no complete answer within 0.5 s"):
        exchange("GET", server.url, {}, deadline=0.5)
    assert time.monotonic() - started < 30  # the drip would last a minute


def test_a_reply_without_length_cut_by_the_deadline_is_not_taken_as_whole(serve):
    server = serve(drip(b"HTTP/1.0 200 OK\r\n\r\n" + b'{"a": 1}' + b" " * 1200))
    with pytest.raises(Unavailable, match="no complete answer"):
        exchange("GET", server.url, {}, deadline=1.0)


def test_a_host_whose_first_address_never_answers_gives_its_whole_reply(serve):
    """The attack: the token service's host had two addresses, the first dropping SYNs; the connect
    waited the whole deadline on it, then the second carried out the renewal (spending the refresh
    token) and its complete reply was discarded as late. Now the second address is tried while the
    first still waits, within the one deadline, and a reply that arrived whole is returned."""
    server = serve(reply("200 OK", b'{"access_token": "new"}'))
    with silent_address() as silent:
        answer = exchange(
            "POST", "http://id.example/oauth2/token", {}, b"refresh_token=old", deadline=5.0,
            resolve=lambda host, port: [silent, address_of(server.listener)],
        )
    assert (answer.status, answer.body) == (200, b'{"access_token": "new"}')
    assert len(server.requests) == 1


def test_a_hanging_resolver_is_inside_the_deadline(serve):
    server = serve(reply("200 OK", b"{}"))
    release = threading.Event()

    def hanging(host: str, port: int) -> list[tuple]:
        release.wait(60)
        return [address_of(server.listener)]

    try:
        with pytest.raises(Unavailable, match="no complete answer within 0.3 s"):
            exchange("GET", "http://slow-dns.example/", {}, deadline=0.3, resolve=hanging)
    finally:
        release.set()
    assert server.requests == []


def test_a_reply_cut_short_of_its_content_length_is_unavailable(serve):
    """The server closes after half the body its Content-Length announces: not a whole reply."""
    server = serve(lambda sock, stopped: sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789"))
    with pytest.raises(Unavailable, match="ended early"):
        exchange("GET", server.url, {})


def test_a_redirect_is_returned_not_followed(serve):
    server = serve(reply("302 Found", b"", "Location: http://127.0.0.1:9/steal"))
    assert exchange("POST", server.url + "/token", {}, b"refresh_token=secret").status == 302
    assert len(server.requests) == 1


def test_a_long_reply_is_unavailable(serve):
    server = serve(reply("200 OK", b"x" * 2000))
    with pytest.raises(Unavailable, match="longer than 1000 bytes"):
        exchange("GET", server.url, {}, max_bytes=1000)


def test_no_server_and_not_http(serve):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(Unavailable, match="refused"):
        exchange("GET", f"http://127.0.0.1:{port}/", {})
    server = serve(lambda sock, stopped: sock.sendall(b"SSH-2.0-OpenSSH\r\n"))
    with pytest.raises(Unavailable):
        exchange("GET", server.url, {})
    with pytest.raises(Unavailable, match="not an http"):
        exchange("GET", "ftp://example.invalid/", {})


def test_tls_against_a_plain_server_is_unavailable_in_one_line(serve):
    server = serve(reply("200 OK", b"{}"))
    with pytest.raises(Unavailable) as caught:
        exchange("GET", server.url.replace("http:", "https:"), {"Authorization": "OAuth secret"}, deadline=2)
    assert "\n" not in str(caught.value) and "secret" not in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # Python's json would raise RecursionError
        b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1),
        b'{"expires_in": Infinity}',
        b'{"expires_in": NaN}',
        b'{"expires_in": -Infinity}',
        b'{"expires_in": ' + b"9" * 400 + b"}",
        b'{"expires_in": 1e400}',
        b'{"expires_in": 1' + b"0" * 5000 + b"}",  # beyond Python's own int digit limit
        b"\xff\xfe",
        b"",
        b"{",
    ],
)
def test_json_that_would_raise_later_is_refused_in_one_line(body):
    with pytest.raises(ValueError) as caught:
        parse_json(body)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_json_within_bounds():
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert parse_json(nested) is not None
    assert parse_json(b'{"data": [{"viewer_count": 1234, "ratio": 0.5}]}') == {
        "data": [{"viewer_count": 1234, "ratio": 0.5}]
    }


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5", 5.0), ("0", 0.0), ("9" * 400, 3600.0), ("-5", None), ("soon", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after(value, seconds):
    assert retry_after({"retry-after": value}, time.time()) == seconds
