"""Issue 8, end to end: ``python -m vbot`` as a subprocess, against the fake token service
(tests/fake_auth.py) and the scripted Twitch chat server, which accepts only the access
token the fake service deems valid right now.

The keeper's rules are tested in process (tests/test_auth.py, fake clock and the
``wired`` fixture); these tests run the program as a user runs it and measure what the
issue asks for: seconds from RECONNECT to logged in again, refresh calls, PONG delay
while the token service hangs. Each test prints its figures (``pytest -s``); waits are
for conditions, and times are printed, not asserted. Token lifetimes are a few seconds,
VBOT_VALIDATE_INTERVAL fractional, so each test takes seconds.
"""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.support import FakeClock, ScriptedServer, Vbot, wait_until
from tests.test_auth import assert_no_secret, bot_env, passwords, saved_tokens
from vbot.tokens import Tokens, load_tokens, save_tokens

JOINED = r"^JOIN #test$"
MOD = "badges=moderator/1;mod=1;display-name=Moddy"


def measured(what: str, value: float | int, unit: str = "s") -> float | int:
    """Print one figure for the closing note (``pytest -s`` shows it)."""
    print(f"\nmeasured: {what}: {value:.3f} {unit}" if unit == "s" else f"\nmeasured: {what}: {value} {unit}")
    return value


def save(fake: FakeTwitchAuth, tmp_path: Path, lifetime: int) -> Tokens:
    """A token file in ``tmp_path`` as ``vbot login`` leaves it, its access token valid ``lifetime`` s."""
    access, refresh = fake.issue(expires_in=lifetime)
    tokens = Tokens(access, refresh, time.time() + lifetime, CHAT_SCOPES, "vbot", "12345678", CLIENT_ID)
    save_tokens(tmp_path / "vbot-token.json", tokens)
    return tokens


def reconnect(chat: ScriptedServer, vbot: Vbot) -> float:
    """Send Twitch's RECONNECT; returns seconds from sending it to the bot's next JOIN."""
    start = len(chat.received)
    sent_at = time.monotonic()
    chat.send(":tmi.twitch.tv RECONNECT")
    wait_until(lambda: vbot.alive() and any(line == "JOIN #test" for line in chat.received[start:]),
               timeout=15, message="JOIN after RECONNECT")
    return time.monotonic() - sent_at


def start_and_join(vbots, env: dict[str, str], cwd: Path, chat: ScriptedServer, name: str) -> tuple[Vbot, float]:
    """Start a Vbot and wait for its JOIN; returns it and the seconds that took."""
    start, started_at = len(chat.received), time.monotonic()
    vbot = vbots(env, cwd, name)
    wait_until(lambda: vbot.alive() and "JOIN #test" in chat.received[start:], timeout=15, message=f"{name} to join")
    return vbot, time.monotonic() - started_at


@pytest.mark.parametrize("renewal", ["renewed ahead", "renewal failing"])
def test_token_expiring_mid_run_then_reconnect(fake, chat, tmp_path, vbots, renewal):
    """The token vbot logged in with expires while it chats; at Twitch's RECONNECT it logs in with a
    valid one: renewed in the background ahead of expiry, or, when those renewals failed (HTTP 500),
    renewed right before connecting."""
    fake.token_lifetime = 4  # every token lasts 4 s: vbot renews it after half of that
    save(fake, tmp_path, lifetime=4)
    vbot = vbots(bot_env(fake, chat, tmp_path), tmp_path)
    chat.wait_for(JOINED)
    in_use = passwords(chat)[-1]
    if renewal == "renewal failing":
        fake.fail("token", "500")  # the renewal ahead of expiry fails; the next try is 60 s later
    wait_until(lambda: vbot.alive() and not fake.is_valid(in_use), message="the token in use to expire")
    refreshes_before = fake.count("token:refresh")
    seconds = reconnect(chat, vbot)
    assert fake.is_valid(passwords(chat)[-1]) and passwords(chat)[-1] != in_use
    assert vbot.stop() == 0
    log = vbot.log()
    measured(f"{renewal}: RECONNECT with the token in use expired -> JOIN", seconds)
    measured(f"{renewal}: refresh calls answered before RECONNECT", refreshes_before, "calls")
    measured(f"{renewal}: refresh calls from RECONNECT to JOIN", fake.count("token:refresh") - refreshes_before,
             "calls")
    measured(f"{renewal}: failed refresh calls (HTTP 500)", fake.count("token:500"), "calls")
    assert chat.connections == 2
    if renewal == "renewal failing":
        assert fake.count("token:500") >= 1 and "could not renew the token (/token: HTTP 500" in log
    assert "Login authentication failed" not in log
    assert_no_secret(fake, log)


def test_login_refused_then_renewed_and_logged_in(fake, chat, tmp_path, vbots):
    """Twitch refuses the login (the token died early: password changed...) although the keeper
    thought it valid: vbot renews it once and logs in."""
    save(fake, tmp_path, lifetime=14000)
    vbot = vbots(bot_env(fake, chat, tmp_path), tmp_path)
    chat.wait_for(JOINED)
    start = len(chat.received)
    chat.chat("#test", "moddy", "!botstatus", MOD)
    status = chat.wait_for(r"^PRIVMSG #test :Up ", start=start).split(" :", 1)[1]
    print(f"\ncaptured: !botstatus with a token file: {status}")
    assert "token expires in 3h 53m" in status
    fake.expire(passwords(chat)[-1])
    seconds = reconnect(chat, vbot)
    assert vbot.stop() == 0
    log = vbot.log()
    measured("login refused -> renewed -> JOIN, from RECONNECT", seconds)
    measured("refresh calls", fake.count("token:refresh"), "calls")
    assert chat.connections == 3  # refused once, then in
    assert fake.count("token:refresh") == 1 and fake.is_valid(passwords(chat)[-1])
    assert "Twitch refused the login; renewing the token before the next attempt; next attempt in " in log
    assert_no_secret(fake, log + status)


def test_revoked_token_quits_and_exits_3(fake, chat, tmp_path, vbots):
    save(fake, tmp_path, lifetime=14000)
    vbot = vbots(bot_env(fake, chat, tmp_path, VBOT_VALIDATE_INTERVAL="0.5"), tmp_path)
    chat.wait_for(JOINED)
    start = len(chat.received)
    revoked_at = time.monotonic()
    fake.revoke()  # Twitch settings > Connections > Disconnect
    chat.wait_for(r"^QUIT", start=start, timeout=15)
    quit_after = time.monotonic() - revoked_at
    code = vbot.process.wait(15)
    log = vbot.log()
    measured("revoked -> QUIT (validation every 0.5 s)", quit_after)
    measured("refresh calls", fake.count("token:refresh"), "calls")
    assert code == 3, log
    assert 'Twitch refused to renew the token (/token: HTTP 400: Invalid refresh token)' in log
    assert 'run "vbot login" again' in log
    assert chat.connections == 1  # it did not try to log in again
    assert_no_secret(fake, log)


def test_hanging_token_service_does_not_delay_pong_or_replies(fake, chat, tmp_path, vbots):
    save(fake, tmp_path, lifetime=14000)
    vbot = vbots(bot_env(fake, chat, tmp_path, VBOT_VALIDATE_INTERVAL="0.5"), tmp_path)
    chat.wait_for(JOINED)
    fake.fail("validate", "hang")  # the next validation gets no answer (the bot gives up after 10 s)
    wait_until(lambda: vbot.alive() and "validate:hang" in fake.requests, message="a hanging validation")
    hang_started = time.monotonic()
    pong_delays, reply_delays = [], []
    for n in range(5):
        start = len(chat.received)
        sent_at = time.monotonic()
        chat.send(f"PING :hang{n}")
        chat.wait_for(rf"^PONG :?hang{n}$", start=start)
        pong_delays.append(time.monotonic() - sent_at)
        sent_at = time.monotonic()
        chat.chat("#test", "moddy", f"!version {n}", MOD)
        chat.wait_for(r"^PRIVMSG #test :Version: ", start=start)
        reply_delays.append(time.monotonic() - sent_at)
    still_hanging = time.monotonic() - hang_started < 10
    stop_at = time.monotonic()
    code = vbot.stop()
    stop_seconds = time.monotonic() - stop_at
    measured("PONG delay while /validate hangs, max of 5", max(pong_delays))
    measured("!version reply delay while /validate hangs, max of 5", max(reply_delays))
    measured("SIGTERM -> exit while /validate hangs", stop_seconds)
    assert still_hanging  # all of it happened while the validation was hanging
    assert code == 0
    assert_no_secret(fake, vbot.log())


def test_sigkill_right_after_a_refresh_then_a_restart_logs_in(fake, chat, tmp_path, vbots):
    """Killed the moment a renewed pair was saved, three times: each restart renews with the saved
    refresh token (single-use: only the newest works) and logs in."""
    fake.token_lifetime = 3  # renewed every 1.5 s while running, and at every start
    save(fake, tmp_path, lifetime=3)
    path = tmp_path / "vbot-token.json"
    env = bot_env(fake, chat, tmp_path)
    for run in range(3):
        vbot, seconds = start_and_join(vbots, env, tmp_path, chat, f"run{run}")
        measured(f"run {run}: start -> JOIN", seconds)
        saved = load_tokens(path).refresh_token
        wait_until(lambda: vbot.alive() and load_tokens(path).refresh_token != saved,  # noqa: B023
                   message="a renewed pair saved")
        vbot.process.send_signal(signal.SIGKILL)
        vbot.process.wait(10)
        assert fake.is_valid(load_tokens(path).access_token)
    final, seconds = start_and_join(vbots, env, tmp_path, chat, "final")
    measured("restart -> JOIN", seconds)
    assert final.stop() == 0
    measured("refresh calls over 3 killed runs and a restart", fake.count("token:refresh"), "calls")
    assert fake.is_valid(passwords(chat)[-1])
    assert fake.count("token:refresh") >= 7  # each start, and at least one renewal in each run
    for log in tmp_path.glob("*.log"):
        assert "Invalid refresh token" not in log.read_text()
        assert_no_secret(fake, log.read_text())


def test_stops_during_the_start_up_renewal_wait_for_it_and_save_the_new_pair(fake, chat, tmp_path, vbots):
    """The attack: the saved token had expired, so start-up renewed it; a SIGTERM (``systemctl stop``)
    while the service's answer was on its way ended vbot at once, without the new pair: the service had
    spent the refresh token, and the next start exited 3. Now a stop waits for the renewal (at most its
    deadline) as it does while running; a second stop meanwhile changes nothing."""
    old = saved_tokens(fake, tmp_path, expired=True)
    fake.fail("token", "late")  # the renewal is done at once, its answer held back until released
    env = bot_env(fake, chat, tmp_path)
    vbot = vbots(env, tmp_path)
    wait_until(lambda: "token:late" in fake.requests, message="the start-up renewal to be done")
    vbot.process.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping once the token renewal under way ends" in vbot.log(), message="the stop")
    vbot.process.send_signal(signal.SIGTERM)
    fake.release.set()
    assert vbot.process.wait(15) == 0, vbot.log()
    saved = load_tokens(tmp_path / "vbot-token.json")
    assert saved.refresh_token != old.refresh_token and saved.refresh_token in fake.refresh_tokens
    assert chat.connections == 0 and "Traceback" not in vbot.log()
    restarted, seconds = start_and_join(vbots, env, tmp_path, chat, "restart")
    measured("restart after a stop during the start-up renewal -> JOIN", seconds)
    assert restarted.stop() == 0
    assert fake.count("token:refresh") == 1  # the one at the first start: the restart needed none


# --- stopping while the token service hangs ------------------------------------------------------------

HANGING_VALIDATION = """
import sys
from pathlib import Path
from vbot.auth import TokenService
from vbot.keeper import TokenKeeper
from vbot.tokens import load_tokens
path = Path(sys.argv[2])
keeper = TokenKeeper(TokenService(sys.argv[1], timeout=60), load_tokens(path), path, validate_interval=0.1)
while not keeper.busy:  # until the validation is due (0.1 s) and started; it hangs
    keeper.tick()
sys.stdin.readline()  # the test saw the call arrive
keeper.close()
print("closed", flush=True)
"""


def test_a_hanging_validation_does_not_hold_up_the_exit(fake, tmp_path):
    """The process ends at once after ``close()``: a validation has nothing to save, so it is not
    waited for (the library's ThreadPoolExecutor joined its worker at exit: up to the 10 s timeout)."""
    save(fake, tmp_path, lifetime=14000)
    fake.fail("validate", "hang")
    process = subprocess.Popen([sys.executable, "-c", HANGING_VALIDATION, fake.url, str(tmp_path / "vbot-token.json")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: "validate:hang" in fake.requests, message="the validation to arrive")
        process.stdin.write("close\n")
        process.stdin.close()
        assert process.stdout.readline() == "closed\n"
        assert process.wait(timeout=20) == 0  # the call hangs for 60 s
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


def test_close_waits_for_a_refresh_in_flight_so_the_new_pair_is_saved(fake, tmp_path):
    """Twitch has consumed the old refresh token once it answers: the new pair must reach the file
    even when the bot stops meanwhile."""
    from vbot.auth import TokenService
    from vbot.keeper import TokenKeeper

    tokens = save(fake, tmp_path, lifetime=100)
    path = tmp_path / "vbot-token.json"
    release = threading.Event()

    def slow_submit(job):
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            release.wait(10)
            try:
                future.set_result(job())
            except Exception as error:  # noqa: BLE001  (handed to the Future, as an executor does)
                future.set_exception(error)

        threading.Thread(target=run, daemon=True).start()
        return future

    clock = FakeClock(time.time())
    keeper = TokenKeeper(TokenService(fake.url, timeout=5), tokens, path, submit=slow_submit, clock=clock)
    clock.advance(50)  # half the lifetime left: a refresh is due
    keeper.tick()
    assert keeper.busy
    threading.Timer(0.2, release.set).start()  # the service answers a moment after the stop began
    keeper.close()
    assert load_tokens(path).refresh_token != tokens.refresh_token
    assert fake.count("token:refresh") == 1


@pytest.mark.parametrize("interval, says", [(3600, "trying again in 60 s"), (0.5, "trying again in 0.5 s")])
def test_a_failed_validation_says_when_it_is_tried_again(fake, tmp_path, caplog, interval, says):
    from tests.test_auth import run_now
    from vbot.auth import TokenService
    from vbot.keeper import TokenKeeper

    clock = FakeClock(time.time())
    keeper = TokenKeeper(TokenService(fake.url, timeout=5), save(fake, tmp_path, lifetime=14000),
                         tmp_path / "vbot-token.json", validate_interval=interval, clock=clock, submit=run_now)
    fake.fail("validate", "500")
    clock.advance(interval)
    keeper.tick()  # starts the validation (run at once)
    keeper.tick()  # collects its failure
    assert f"could not validate the token (/validate: HTTP 500: Internal Server Error); {says}" in caplog.text


def test_a_token_now_of_another_login_quits_and_exits_3(fake, chat, tmp_path, vbots):
    """Issue 18 item 6, as the user runs it: the token file was replaced by one of another account."""
    save(fake, tmp_path, lifetime=14000)
    vbot = vbots(bot_env(fake, chat, tmp_path, VBOT_VALIDATE_INTERVAL="0.5"), tmp_path)
    chat.wait_for(JOINED)
    start = len(chat.received)
    fake.login = "otherbot"
    chat.wait_for(r"^QUIT", start=start, timeout=15)
    assert vbot.process.wait(15) == 3
    log = vbot.log()
    assert ("ERROR vbot.twitch: cannot log in to Twitch: the token now belongs to otherbot, but the bot is "
            "logged in to chat as vbot") in log
    assert chat.connections == 1
    assert_no_secret(fake, log)
