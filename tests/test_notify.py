"""systemd notify and watchdog (sd_notify(3)): datagrams received by a real Unix datagram socket.

The fixture plays systemd: it binds an AF_UNIX datagram socket, by path or by abstract name,
and hands its address to the Notifier as NOTIFY_SOCKET.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import tempfile

import pytest

from tests.support import FakeClock
from vbot.logs import RedactingFormatter
from vbot.notify import Notifier, waiting_status


class Systemd:
    """The receiving end of NOTIFY_SOCKET: ``messages()`` returns the datagrams received so far."""

    def __init__(self, abstract: bool):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"vbot-test-{secrets.token_hex(8)}"
            self.sock.bind("\0" + name)
            self.notify_socket = "@" + name
            self.directory = None
        else:  # a short directory: socket paths are limited to 107 bytes
            self.directory = tempfile.mkdtemp(prefix="vbot-", dir="/tmp")
            self.notify_socket = os.path.join(self.directory, "notify")
            self.sock.bind(self.notify_socket)
        self.sock.setblocking(False)

    def messages(self) -> list[str]:
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return received

    def close(self) -> None:
        self.sock.close()
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture(params=["path", "abstract"])
def systemd(request):
    server = Systemd(abstract=request.param == "abstract")
    yield server
    server.close()


def test_ready_status_stopping_and_watchdog_arrive_as_datagrams(systemd):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket})
    assert notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready("logged in as mybot, 2 channels")
    assert notifier.status("reconnecting in 3.2 s")
    assert notifier.watchdog()
    assert notifier.stopping("stopping")
    assert systemd.messages() == [
        "READY=1\nSTATUS=logged in as mybot, 2 channels",
        "STATUS=reconnecting in 3.2 s",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_a_status_cannot_add_another_variable(systemd):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket})
    notifier.status("odd\nREADY=1\r\x00text\x85and\x9b2J")  # C1 too: NEL, CSI (vbot.lines.CONTROLS)
    assert systemd.messages() == ["STATUS=odd READY=1  text and 2J"]


def test_every_datagram_is_redacted_as_the_log_is(systemd):
    """A status quoting a server's message that quotes the token (``Closing link: ... bad password
    oauth:<token>``) reaches ``systemctl status``, which any local user may run: the Notifier masks
    what the log masks, renewed tokens included, and ``oauth:`` values without being told."""
    redaction = RedactingFormatter(["configuredpass"])
    redaction.add_secret("renewed0token0learned0at0run0time")
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket}, redact=redaction.redact)
    reason = "server closed the connection: Closing link: (vbot@127.0.0.1) [Access denied, bad password {}]"
    for secret in ("oauth:renewed0token0learned0at0run0time", "RENEWED0TOKEN0LEARNED0AT0RUN0TIME", "configuredpass"):
        notifier.status(waiting_status(1.5, reason.format(secret), 0))
    notifier.ready("logged in as renewed0token0learned0at0run0time")
    Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket}).stopping("bad password oauth:abc123]);")
    masked = "STATUS=connecting in 1.5 s (the last try: " + reason.format("[REDACTED]") + ")"
    assert systemd.messages() == [masked] * 3 + [
        "READY=1\nSTATUS=logged in as [REDACTED]",
        "STOPPING=1\nSTATUS=bad password [REDACTED]]);",
    ]


def test_a_piece_of_the_password_in_a_status_is_masked(systemd):
    """A plain IRC server quoting only the first 24 characters of a 30-character password (no ``oauth:``),
    or any other piece of 12 or more characters in any case, shows ``[REDACTED]`` in ``systemctl status``;
    11 characters are shown (19 stay unknown)."""
    password = "8b4a6759b7e6da2dcefa3ba3c0ffee"
    redaction = RedactingFormatter([password])
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket}, redact=redaction.redact)
    reason = "server closed the connection: Closing link: [Access denied, bad password {}]"
    pieces = [password[:24], password[-12:], password[6:20].upper(), f'"{password[3:27]}"', password[:11]]
    for piece in pieces:
        notifier.status(waiting_status(1.5, reason.format(piece), 0))
    shown = ["[REDACTED]"] * 3 + ['"[REDACTED]"', password[:11]]
    assert systemd.messages() == [
        f"STATUS=connecting in 1.5 s (the last try: {reason.format(piece)})" for piece in shown
    ]


@pytest.mark.parametrize(("environ", "interval"), [
    ({}, None),
    ({"WATCHDOG_USEC": "30000000"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),  # meant for another process
    ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "thirty"}, None),
    ({"WATCHDOG_USEC": "-5"}, None),
    ({"WATCHDOG_USEC": "٣٠"}, None),  # non-ASCII digits
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
])
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(environ, interval):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/systemd/notify", **environ}, pid=4242)
    assert notifier.watchdog_interval == interval


def test_keep_alive_sends_watchdog_every_half_interval(systemd):
    clock = FakeClock()
    environ = {"NOTIFY_SOCKET": systemd.notify_socket, "WATCHDOG_USEC": "30000000"}
    notifier = Notifier.from_environment(environ, clock=clock)
    assert notifier.watchdog_wait() == 0
    sent = []
    for _ in range(31):  # one tick per second for 30 s
        sent.append(notifier.keep_alive())
        clock.advance(1)
    assert [second for second, did in enumerate(sent) if did] == [0, 15, 30]
    assert systemd.messages() == ["WATCHDOG=1"] * 3
    assert notifier.watchdog_wait() == 14


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}, {"WATCHDOG_USEC": "30000000"}])
def test_without_notify_socket_everything_is_a_no_op(environ):
    notifier = Notifier.from_environment(environ)
    assert not notifier.enabled
    assert notifier.watchdog_interval is None and notifier.watchdog_wait() is None
    assert not any([notifier.ready("x"), notifier.status("x"), notifier.stopping(), notifier.watchdog(),
                    notifier.keep_alive()])


def test_an_unsupported_address_is_a_warning_not_an_error(caplog):
    with caplog.at_level(logging.WARNING, logger="vbot.notify"):
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert "NOTIFY_SOCKET=vsock:2:1234 is not a socket path or @name" in caplog.text


@pytest.mark.parametrize("address", ["/nonexistent/vbot/notify", "@vbot-test-nobody-listens", "/" + "x" * 200])
def test_a_failed_send_is_logged_once_and_never_raises(caplog, address):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"})
    with caplog.at_level(logging.DEBUG, logger="vbot.notify"):
        assert notifier.ready("logged in") is False
        assert notifier.status("still failing") is False
    levels = [record.levelname for record in caplog.records]
    assert levels == ["WARNING", "DEBUG"]
    assert "could not notify systemd (READY=1 STATUS=logged in)" in caplog.records[0].getMessage()


def test_a_receiver_that_went_away_is_a_warning(systemd, caplog):
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket})
    assert notifier.status("one")
    systemd.sock.close()
    if systemd.directory:
        os.unlink(systemd.notify_socket)
    with caplog.at_level(logging.WARNING, logger="vbot.notify"):
        assert notifier.status("two") is False
    assert "could not notify systemd" in caplog.text


@pytest.mark.parametrize("usec", ["9" * 400, "0", "-5", "1e6", str(2**64 - 1), "٣٠"])
def test_a_watchdog_usec_that_is_not_a_duration_is_one_warning(usec, caplog):
    """Issue 18 item 5: 400 digits gave an OverflowError traceback and exit 1."""
    with caplog.at_level(logging.WARNING, logger="vbot.notify"):
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/vbot-test/notify", "WATCHDOG_USEC": usec})
    assert notifier.enabled and notifier.watchdog_interval is None
    assert len(caplog.records) == 1 and "is not a number of microseconds" in caplog.records[0].getMessage()
    assert len(caplog.records[0].getMessage()) < 200
