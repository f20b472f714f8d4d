"""Issue 18 items 2 and 5: a token service that drips its replies, throttles, or sends numbers and
nesting no parser should take, at start, in ``vbot login`` and while the bot runs.

The service is ``tests/fake_auth.py`` on loopback with scripted faults. A call that must end within
its deadline runs in a thread and is waited for with a timeout: vbot 0.2's per-read timeouts let a
dripping service hold it for minutes, which fails the wait instead of hanging the suite.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import pytest

from tests.support import make_config, wait_until
from tests.test_auth import (
    assert_no_secret,
    assert_retried_after,
    device_login,
    file_tokens,
    make_keeper,
    run_now,
    service_for,
    ticks,
)
from tests.test_live_timers import Captured
from tests.test_notify import Systemd
from vbot.auth import ServiceUnavailable
from vbot.bot import VBot
from vbot.commands import builtin_table
from vbot.dispatch import Dispatcher
from vbot.keeper import TokenKeeper
from vbot.notify import Notifier
from vbot.session import Backoff
from vbot.tokens import load_tokens

LONG = "9" * 400


def within(seconds: float, call):
    """``call()`` run in a thread; its result, or its exception raised here. Fails the test when it
    has not returned after ``seconds`` (the thread is left to the dripping service's end)."""
    future: concurrent.futures.Future = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(call())
        except BaseException as error:  # noqa: BLE001  (handed to the Future)
            future.set_exception(error)

    threading.Thread(target=run, daemon=True).start()
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"still waiting for the token service after {seconds} s", pytrace=False)


# --- item 2: a total deadline on every call -------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["validate", "token", "device"])
def test_a_dripping_reply_is_given_up_at_the_deadline(fake, endpoint):
    """One byte every 0.2 s (a reply of ~150 bytes: 30 s); the call gives up at its total deadline."""
    fake.drip_every = 0.2
    fake.fail(endpoint, "drip")
    service = service_for(fake, timeout=0.5)
    access, refresh = fake.issue()
    calls = {"validate": lambda: service.validate(access), "token": lambda: service.refresh(refresh),
             "device": service.start_device_login}
    with pytest.raises(ServiceUnavailable, match="no complete answer within 0.5 s"):
        within(5, calls[endpoint])


def test_start_with_a_dripping_service_connects_anyway(fake, tmp_path, caplog):
    fake.drip_every = 0.2
    fake.fail("validate", "drip")
    tokens, path = file_tokens(fake, tmp_path, time.time)
    keeper = TokenKeeper(service_for(fake, timeout=0.5), tokens, path, submit=run_now)
    assert within(5, keeper.start) is None
    assert "could not validate the token (/validate: no complete answer within 0.5 s); connecting with it anyway" \
        in caplog.text


def test_vbot_login_with_a_dripping_poll_polls_again(fake, tmp_path):
    """Each poll has the deadline: a dripping one counts as unavailable, and the next poll gets the tokens."""
    fake.drip_every = 0.2
    fake.pending_polls = 0
    fake.fail("token", "drip")  # the first poll's answer drips (a 500, one byte every 0.2 s)
    login, service, _ = device_login(fake, tmp_path)
    service.timeout = 0.5
    assert within(5, login.run) == 0
    assert service.polls == [5.0, 10.0]
    assert fake.is_valid(load_tokens(tmp_path / "vbot-token.json").access_token)


def test_the_watchdog_is_kept_while_a_renewal_drips(fake, chat, tmp_path):
    """vbot 0.2 renewed a refused token in the loop's thread before connecting: a dripping service
    held the WATCHDOG=1 pings for up to 39 s (systemd kills the unit after WatchdogSec). Now the
    renewal runs in the background and the loop keeps pinging (every 0.2 s here: WATCHDOG_USEC=0.4 s)."""
    systemd = Systemd(abstract=False)
    captured = Captured(systemd)
    fake.drip_every = 0.1
    tokens, path = file_tokens(fake, tmp_path, time.time)
    keeper = TokenKeeper(service_for(fake, timeout=3), tokens, path, backoff=Backoff(first=0.2, cap=1.0))
    config = make_config(chat.port, token=tokens.access_token)
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": systemd.notify_socket, "WATCHDOG_USEC": "400000"})
    bot = VBot(config, Dispatcher(builtin_table(), config.prefix, config.owners), keeper=keeper, notifier=notifier,
               reconnect=Backoff(first=0.2, cap=1.0))
    thread = threading.Thread(target=bot.run, kwargs={"poll": 0.05}, daemon=True)
    thread.start()
    try:
        chat.wait_for(r"^JOIN #test$")
        fake.fail("token", "drip")  # the renewal after the refusal drips for 3 s (its deadline)
        fake.expire(tokens.access_token)
        chat.send(":tmi.twitch.tv RECONNECT")
        wait_until(lambda: "token:drip" in fake.requests, message="the dripping renewal")
        dripping_since = len(captured.messages())
        wait_until(lambda: captured.messages()[dripping_since:].count("WATCHDOG=1") >= 5 or fake.dripped.is_set(),
                   message="pings while the renewal drips")
        assert not fake.dripped.is_set()  # the five pings came while the renewal was still dripping
        wait_until(lambda: fake.count("token:refresh") == 1 and "JOIN #test" in chat.received[-3:], timeout=15,
                   message="the renewal retried, then a login")
    finally:
        bot.request_stop()
        thread.join(10)
        keeper.close()
        captured.stop()
        systemd.close()
    pings = [at for at, message in captured.datagrams if message == "WATCHDOG=1"]
    gap = max(b - a for a, b in zip(pings, pings[1:], strict=False))
    print(f"\nmeasured: largest gap between WATCHDOG=1 (interval 0.2 s) while the renewal dripped: {gap:.3f} s")


# --- Retry-After ----------------------------------------------------------------------------------------


def test_a_429_with_retry_after_is_honoured_by_the_keeper(fake, tmp_path, caplog):
    fake.retry_after = "120"
    fake.fail("token", "retry_after")
    keeper, clock = make_keeper(fake, tmp_path, expires_in=1200)
    clock.advance(600)
    ticks(keeper)
    assert "could not renew the token (/token: HTTP 429: Too Many Requests); trying again in 120 s" in caplog.text
    assert_retried_after(keeper, clock, 120, lambda: fake.count("token:refresh"))


def test_vbot_login_honours_retry_after(fake, tmp_path):
    fake.retry_after = "30"
    fake.fail("token", "retry_after")
    login, service, _ = device_login(fake, tmp_path)
    assert login.run() == 0
    assert service.polls == [5.0, 35.0, 45.0, 55.0]  # 30 s as asked, then every 10 s (5 s added after a 429)


# --- item 5: numbers and nesting no parser should take ---------------------------------------------------


@pytest.mark.parametrize("raw", ["Infinity", LONG, "1e999", "-1"])
def test_vbot_login_keeps_tokens_whose_expiry_is_absurd(fake, tmp_path, raw):
    """vbot 0.2: OverflowError, and the approved login's tokens were lost (the code is single-use)."""
    fake.pending_polls = 0
    fake.fail("token", f"expires_in={raw}")
    login, _, out = device_login(fake, tmp_path)
    code = login.run()
    assert code == 0, out.getvalue()
    tokens = load_tokens(tmp_path / "vbot-token.json")
    assert fake.is_valid(tokens.access_token) and tokens.expires_at is None  # unknown: validation tells it later
    assert_no_secret(fake, out.getvalue())


@pytest.mark.parametrize("field, raw", [("interval", "Infinity"), ("interval", LONG), ("expires_in", LONG),
                                        ("expires_in", "1e999")])
def test_a_device_reply_with_an_absurd_number_is_one_line(fake, tmp_path, field, raw):
    fake.fail("device", f"{field}={raw}")
    login, _, out = device_login(fake, tmp_path)
    code = login.run()
    assert code in (0, 3) and "Traceback" not in out.getvalue()  # 3: the code "expired" at once


@pytest.mark.parametrize("fault", ["deep_json", f"expires_in={LONG}", "expires_in=Infinity"])
def test_validate_at_start_with_a_hostile_reply(fake, tmp_path, caplog, fault):
    fake.fail("validate", fault)
    tokens, path = file_tokens(fake, tmp_path, time.time)
    keeper = TokenKeeper(service_for(fake), tokens, path, submit=run_now)
    validation = keeper.start()
    if fault == "deep_json":
        assert validation is None and "the reply is JSON nested deeper than 32 levels" in caplog.text
    else:
        assert validation is not None and validation.expires_in == 0
    assert "Traceback" not in caplog.text


def test_a_hostile_refresh_reply_is_one_warning(fake, tmp_path, caplog):
    fake.fail("token", "deep_json")
    keeper, clock = make_keeper(fake, tmp_path, expires_in=1200)
    clock.advance(600)
    assert ticks(keeper) is None
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert warnings == ["could not renew the token (/token: HTTP 200: the reply is JSON nested deeper than 32 "
                        "levels); trying again in 5 s"]
