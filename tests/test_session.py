"""The connection life cycle (vbot.session) with a fake clock: no sockets, no waiting."""

from __future__ import annotations

import pytest

from tests.support import FakeClock
from vbot.session import Action, Backoff, Phase, Session


def make(interval: float = 60.0, timeout: float = 10.0, first: float = 2.0) -> tuple[Session, FakeClock]:
    clock = FakeClock()
    return Session(interval, timeout, Backoff(first=first, cap=60.0, rng=lambda: 0.999999), clock), clock


def welcomed(session: Session) -> None:
    session.connecting()
    session.connected()
    session.welcomed()


def test_connects_at_once_at_start():
    session, clock = make()
    assert session.phase is Phase.WAITING
    assert session.check(clock()).action is Action.CONNECT


def test_connecting_waits_for_the_connect_to_return():
    session, clock = make()
    session.connecting()
    clock.advance(1000)
    assert session.check(0.0).action is Action.NOTHING


def test_failed_connect_waits_with_growing_backoff():
    session, clock = make(first=2.0)
    delays = []
    for _ in range(4):
        session.connecting()
        delays.append(session.connect_failed())
        assert session.check(clock()).action is Action.NOTHING
        clock.advance(delays[-1])
        assert session.check(clock()).action is Action.CONNECT
    assert delays == pytest.approx([2.0, 4.0, 8.0, 16.0], rel=1e-5)


@pytest.mark.parametrize("silence, expected", [
    (59.9, Action.NOTHING),
    (60.0, Action.PING),
    (70.0, Action.DISCONNECT),
])
def test_keepalive(silence, expected):
    session, clock = make(interval=60, timeout=10)
    welcomed(session)
    last = clock()
    clock.advance(silence)
    step = session.check(last)
    assert step.action is expected
    if expected is Action.DISCONNECT:
        assert step.quit_message == "Ping timeout" and "no data from the server for 70 s" in step.why


def test_one_ping_per_silence():
    session, clock = make(interval=60, timeout=10)
    welcomed(session)
    last = clock()
    clock.advance(61)
    assert session.check(last).action is Action.PING
    clock.advance(1)
    assert session.check(last).action is Action.NOTHING
    last = clock()  # the PONG arrived
    clock.advance(60)
    assert session.check(last).action is Action.PING


def test_no_welcome_within_the_deadline_is_left():
    session, clock = make(interval=1, timeout=1)
    session.connecting()
    session.connected()
    clock.advance(1.9)
    assert session.check(clock()).action is Action.NOTHING  # the server talks, but never welcomes
    clock.advance(0.1)
    step = session.check(clock())
    assert step.action is Action.DISCONNECT and step.quit_message == "Login timeout"


def test_drop_of_a_lasting_connection_waits_from_the_first_delay():
    session, clock = make(first=2.0)
    session.connecting()
    session.connect_failed()
    session.connect_failed()
    welcomed(session)
    clock.advance(60)
    drop = session.dropped()
    assert drop.was_welcomed and not drop.planned
    assert drop.delay == pytest.approx(2.0, rel=1e-5)
    assert session.logins == 1


def test_server_that_drops_right_after_login_is_retried_ever_slower():
    """Issue 9 item 11: the backoff is not reset by a welcome, only by a connection that lasted."""
    session, clock = make(first=2.0)
    delays = []
    for _ in range(5):
        session.connecting()
        session.connected()
        session.welcomed()
        clock.advance(1)
        delays.append(session.dropped().delay)
        clock.advance(delays[-1])
    assert delays == pytest.approx([2.0, 4.0, 8.0, 16.0, 32.0], rel=1e-5)


def test_reconnect_is_at_once_then_paced():
    session, clock = make(first=2.0)
    welcomed(session)
    session.reconnect_requested()
    drop = session.dropped()
    assert drop.planned and drop.delay == 0.0
    assert session.check(clock()).action is Action.CONNECT
    welcomed(session)
    clock.advance(10)  # a second RECONNECT within 30 s goes through the backoff
    session.reconnect_requested()
    drop = session.dropped()
    assert not drop.planned and drop.delay > 0
    clock.advance(drop.delay)
    welcomed(session)
    clock.advance(30)
    session.reconnect_requested()
    assert session.dropped().planned


def test_reconnect_that_cannot_connect_falls_back_to_backoff():
    session, clock = make(first=2.0)
    welcomed(session)
    session.reconnect_requested()
    assert session.dropped().delay == 0.0
    session.connecting()
    assert session.connect_failed() == pytest.approx(2.0, rel=1e-5)
    assert session.backoff.attempt == 1


def test_a_refused_login_is_a_drop_like_any_other():
    """Issue 18 item 1: a login Twitch refused is retried through the backoff, never at once."""
    session, clock = make(first=2.0)
    delays = []
    for _ in range(4):
        session.connecting()
        session.connected()  # PASS and NICK sent; the server answers "Login authentication failed"
        drop = session.dropped()
        assert not drop.planned and not drop.was_welcomed
        delays.append(drop.delay)
        clock.advance(drop.delay)
    assert delays == pytest.approx([2.0, 4.0, 8.0, 16.0], rel=1e-5)


@pytest.mark.parametrize("cause", ["refused", "reconnect", "connect failed"])
def test_never_more_than_20_logins_in_10_s(cause):
    """Issue 18 item 1: a hard sliding window on top of the backoff, whatever asks for the login
    (here a backoff of 0 s, the worst a bug elsewhere could make of it)."""
    clock = FakeClock()
    session = Session(60.0, 10.0, Backoff(first=0.0, cap=0.0), clock, reconnect_at_once_every=0.0)
    attempts = []
    for _ in range(6000):  # 60 s in turns of 10 ms
        if session.check(clock()).action is Action.CONNECT:
            attempts.append(clock())
            session.connecting()
            if cause == "connect failed":
                session.connect_failed()
            else:
                session.connected()
                if cause == "reconnect":
                    session.welcomed()
                    session.reconnect_requested()
                session.dropped()
        clock.advance(0.01)
    most = max(sum(1 for at in attempts if start <= at < start + 10.0) for start in attempts)
    assert most == 20
    assert len(attempts) >= 100  # the window paces, it does not stop the retries


def test_wait_time_until_the_backoff_or_the_login_window_allows_a_connect():
    clock = FakeClock()
    session = Session(60.0, 10.0, Backoff(first=4.0, cap=4.0, rng=lambda: 0.999999), clock, login_limit=2)
    assert session.wait_time() == 0.0
    session.connecting()
    assert session.connect_failed() == pytest.approx(4.0, rel=1e-5)
    assert session.wait_time() == pytest.approx(4.0, rel=1e-5)
    clock.advance(4.0)
    session.connecting()  # the second attempt within 10 s: the window is full until 10 s after the first
    session.connect_failed()
    clock.advance(4.0)
    assert session.check(clock()).action is Action.NOTHING
    assert session.wait_time() == pytest.approx(2.0)
    clock.advance(2.0)
    assert session.wait_time() == 0.0 and session.check(clock()).action is Action.CONNECT
