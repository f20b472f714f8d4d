"""vbot.network.open_connection against real loopback sockets: one deadline for resolving a name,
every address of the host and the TLS handshake (the chat connect and every HTTP call use it).

Names are resolved by stand-ins for the resolver (``vbot.network.Resolve``): a host with several
addresses, some that never answer (``silent_address``), or a resolver that hangs."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest

from tests.support import address_of, silent_address
from vbot.network import open_connection


def answers(*addresses: tuple):
    """A resolver stand-in answering ``addresses`` for any name."""
    return lambda host, port: list(addresses)


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def test_a_host_whose_first_address_never_answers_is_reached_on_the_next(listener):
    """The attack: a host with two addresses, the first dropping SYNs, took one whole deadline per
    address; now the next address is tried while the first still waits (RFC 8305)."""
    with silent_address() as silent:
        with open_connection("two.example", 6667, 5.0, resolve=answers(silent, silent, address_of(listener))) as sock:
            assert sock.getpeername() == listener.getsockname()
            assert sock.gettimeout() == 5.0 and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_refused_address_moves_on_at_once(listener):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, not listening: refused
        refused = address_of(closed)
        with open_connection("x.example", 1, 5.0, resolve=answers(refused, address_of(listener))) as sock:
            assert sock.getpeername() == listener.getsockname()
        with pytest.raises(ConnectionRefusedError):
            open_connection("x.example", 1, 5.0, resolve=answers(refused))


def test_every_address_silent_costs_one_deadline_not_one_per_address():
    """40 addresses dropping SYNs, 0.5 s in all: one deadline (before: 0.5 s each, 20 s)."""
    started = time.monotonic()
    with silent_address() as silent, pytest.raises(TimeoutError):
        open_connection("down.example", 6667, 0.5, resolve=answers(*[silent] * 40))
    assert time.monotonic() - started < 10  # 20 s when each address had its own timeout


def test_a_hanging_resolver_is_abandoned_at_the_deadline(listener):
    """A resolver that does not answer (25 s in the attack) ends the connect at its deadline."""
    release = threading.Event()

    def hanging(host: str, port: int) -> list[tuple]:
        release.wait(60)
        return [address_of(listener)]

    try:
        with pytest.raises(TimeoutError, match="resolving slow.example timed out"):
            open_connection("slow.example", 6667, 0.3, resolve=hanging)
    finally:
        release.set()


def test_a_name_that_does_not_resolve_is_its_error():
    def unknown(host: str, port: int) -> list[tuple]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(socket.gaierror, match="not known"):
        open_connection("nowhere.invalid", 6667, 5.0, resolve=unknown)
    with pytest.raises(OSError, match="has no address"):
        open_connection("empty.example", 6667, 5.0, resolve=answers())


def test_a_tls_handshake_dripping_bytes_ends_at_the_deadline(listener):
    """A server that starts a TLS record of 16 KiB and sends one byte every 50 ms: every read gets a
    byte in time, so only a deadline over the whole handshake ends it (it would take 14 minutes)."""
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"\x16\x03\x03\x40\x00")  # a handshake record of 16384 bytes follows...
            while not stop.wait(0.05):
                conn.sendall(b"\x00")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started, tls = time.monotonic(), ssl.create_default_context()
    try:
        with pytest.raises(TimeoutError, match="handshake"):
            open_connection("127.0.0.1", 1, 0.5, tls=tls, resolve=answers(address_of(listener)))
    finally:
        stop.set()
        thread.join(5)
    assert time.monotonic() - started < 10
