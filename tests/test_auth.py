"""Tokens: Twitch's token service client, the token file, ``vbot login``, the TokenKeeper, start-up checks.

Everything talks to ``tests/fake_auth.py``, a loopback fake of Twitch's token
service, over real HTTP. Timing is tested with a fake clock (``sleep`` moves it);
the TokenKeeper's background calls run at once (``run_now``) or when the test says
(``HeldJobs``), except where a real worker thread is the point.
"""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.support import (
    BotHarness,
    BotThread,
    FakeClock,
    ScriptedServer,
    TwoClocks,
    free_port,
    make_config,
    run_vbot,
    start_vbot,
    wait_until,
)
from tests.test_secrets import untrusted_tls_server  # noqa: F401  (a fixture)
from vbot.auth import ServiceRefused, ServiceUnavailable, TokenService
from vbot.bot import TOKEN_ASK_EVERY, VBot
from vbot.commands import builtin_table
from vbot.config import ConfigError, load_config, read_settings
from vbot.dispatch import Dispatcher
from vbot.keeper import CannotLogIn, TokenKeeper
from vbot.login import DeviceLogin
from vbot.session import Backoff
from vbot.tokens import (
    TokenFileError,
    TokenFileMissing,
    Tokens,
    load_tokens,
    save_tokens,
)

BASE = {"VBOT_USERNAME": "mybot", "VBOT_TOKEN": "x" * 30, "VBOT_CHANNEL": "test"}


def service_for(fake: FakeTwitchAuth, timeout: float = 2.0) -> TokenService:
    return TokenService(fake.url, CLIENT_ID, timeout=timeout)


def assert_no_secret(fake: FakeTwitchAuth, text: str) -> None:
    leaked = [secret for secret in fake.secrets if secret in text or secret[:12] in text]
    assert not leaked, "a token, refresh token or device code was printed"


# --- the token service client -------------------------------------------------------------------


def test_device_code_then_pending_then_tokens(fake):
    service = service_for(fake)
    code = service.start_device_login()
    assert code.user_code in code.verification_uri and code.interval == 5 and code.expires_in == 1800
    for _ in range(2):
        with pytest.raises(ServiceRefused) as pending:
            service.poll_device(code.device_code)
        assert (pending.value.status, pending.value.message) == (400, "authorization_pending")
    grant = service.poll_device(code.device_code)
    assert grant.scopes == CHAT_SCOPES and grant.expires_in == 14000
    with pytest.raises(ServiceRefused, match="invalid device code"):  # exchanged once
        service.poll_device(code.device_code)
    assert_no_secret(fake, f"{code!r} {grant!r}")


def test_refresh_tokens_are_single_use(fake):
    service = service_for(fake)
    _, refresh = fake.issue()
    grant = service.refresh(refresh)
    assert fake.is_valid(grant.access_token) and grant.refresh_token != refresh
    with pytest.raises(ServiceRefused) as refused:
        service.refresh(refresh)
    assert refused.value.status == 400 and "Invalid refresh token" in str(refused.value)
    assert_no_secret(fake, str(refused.value))


def test_validate(fake):
    service = service_for(fake)
    access, _ = fake.issue(expires_in=3000)
    validation = service.validate(access)
    assert (validation.login, validation.user_id, validation.client_id) == ("vbot", "12345678", CLIENT_ID)
    assert validation.missing_scopes() == [] and 2990 <= validation.expires_in <= 3000
    fake.expire(access)
    with pytest.raises(ServiceRefused) as refused:
        service.validate(access)
    assert refused.value.status == 401 and "invalid access token" in str(refused.value)


@pytest.mark.parametrize("fault, status, text", [
    ("500", 500, "Internal Server Error"),
    ("429", 429, "Too Many Requests"),
    ("hang", None, "/validate: no complete answer within 0.3 s"),
    ("bad_json", 200, "the reply is not JSON"),
])
def test_unavailable_service(fake, fault, status, text):
    access, _ = fake.issue()
    fake.fail("validate", fault)
    with pytest.raises(ServiceUnavailable) as caught:
        service_for(fake, timeout=0.3).validate(access)
    assert caught.value.status == status and text in str(caught.value)
    assert "\n" not in str(caught.value)
    assert_no_secret(fake, str(caught.value))


def test_redirects_are_not_followed(fake):
    access, _ = fake.issue()
    fake.fail("validate", "redirect")
    with pytest.raises(ServiceUnavailable, match="HTTP 302"):
        service_for(fake).validate(access)
    assert fake.requests == ["validate:redirect"]  # the token was not sent anywhere else


def test_nothing_listening_is_unavailable():
    with pytest.raises(ServiceUnavailable, match="refused"):
        TokenService(f"http://127.0.0.1:{free_port()}/oauth2", CLIENT_ID).validate("x" * 30)


def test_tls_certificate_is_verified(untrusted_tls_server):  # noqa: F811
    (host, port), received = untrusted_tls_server
    with pytest.raises(ServiceUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        TokenService(f"https://{host}:{port}/oauth2", CLIENT_ID).validate("x" * 30)
    assert received == []  # the token never left


# --- the token file -------------------------------------------------------------------------------


def some_tokens(**changes) -> Tokens:
    fields = {"access_token": "a" * 30, "refresh_token": "r" * 50, "expires_at": 1_800_000_000.0,
              "scopes": CHAT_SCOPES, "login": "vbot", "user_id": "12345678", "client_id": CLIENT_ID}
    return Tokens(**{**fields, **changes})


def test_token_file_round_trip_is_private(tmp_path):
    path = tmp_path / "vbot-token.json"
    save_tokens(path, some_tokens())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_tokens(path) == some_tokens()
    os.chmod(path, 0o644)  # replacing a file made public by hand makes it private again
    save_tokens(path, some_tokens(login="other"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_tokens(path).login == "other"
    assert sorted(os.listdir(tmp_path)) == ["vbot-token.json"]  # no temporary file left
    assert "a" * 30 not in repr(some_tokens()) and "r" * 50 not in repr(some_tokens())


def test_failed_replace_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "vbot-token.json"
    save_tokens(path, some_tokens())

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(TokenFileError, match="No space left on device"):
        save_tokens(path, some_tokens(access_token="b" * 30))
    monkeypatch.undo()
    assert load_tokens(path) == some_tokens()
    assert sorted(os.listdir(tmp_path)) == ["vbot-token.json"]


SAVE_FOREVER = """
import sys
from pathlib import Path
from vbot.tokens import Tokens, save_tokens
path, n = Path(sys.argv[1]), 0
while True:
    n += 1
    save_tokens(path, Tokens(str(n) * 30, "r" * 50, 1.0 * n, ("chat:read",), "vbot", "1", "c"))
    if n == 20:
        print("saving", flush=True)
"""


def test_sigkill_while_saving_leaves_a_complete_file(tmp_path):
    path = tmp_path / "vbot-token.json"
    for _ in range(3):
        process = subprocess.Popen([sys.executable, "-c", SAVE_FOREVER, str(path)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline() == "saving\n"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stdout.close()
        tokens = load_tokens(path)  # complete, whichever save it is
        assert tokens.access_token == str(int(tokens.expires_at)) * 30


@pytest.mark.parametrize("content, cause", [
    (b"", "not JSON"),
    (b"{\"access_token\": ", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", "not a JSON object"),
    (b"{}", "no 'expires_at'"),
    (json.dumps({**json.loads(some_tokens().to_json()), "refresh_token": None}).encode(), "refresh_token"),
    (json.dumps({**json.loads(some_tokens().to_json()), "access_token": ""}).encode(), "access_token"),
    (json.dumps({**json.loads(some_tokens().to_json()), "access_token": "abc\x1b[2Jdef"}).encode(), "access_token"),
    (json.dumps({**json.loads(some_tokens().to_json()), "refresh_token": "abc\u00e9"}).encode(), "refresh_token"),
    (json.dumps({**json.loads(some_tokens().to_json()), "scopes": "chat:read"}).encode(), "scopes"),
    (json.dumps({**json.loads(some_tokens().to_json()), "expires_at": "soon"}).encode(), "expires_at"),
    (json.dumps({**json.loads(some_tokens().to_json()), "version": 9}).encode(), "version"),
])
def test_a_broken_token_file_is_one_line_naming_it_and_the_fix(tmp_path, content, cause):
    path = tmp_path / "vbot-token.json"
    path.write_bytes(content)
    with pytest.raises(TokenFileError) as caught:
        load_tokens(path)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError) and not isinstance(caught.value, TokenFileMissing)
    assert "\n" not in message and str(path) in message and 'run "vbot login"' in message and cause in message


def test_missing_and_unreadable_token_files(tmp_path):
    with pytest.raises(TokenFileMissing, match='no such file; run "vbot login"'):
        load_tokens(tmp_path / "nothing.json")
    with pytest.raises(TokenFileError, match="cannot read it"):
        load_tokens(tmp_path)  # a folder
    with pytest.raises(TokenFileError, match="cannot write"):
        save_tokens(tmp_path / "no-such-folder" / "vbot-token.json", some_tokens())


def test_a_token_file_others_can_read_is_loaded_with_a_warning(tmp_path, caplog):
    path = tmp_path / "vbot-token.json"
    save_tokens(path, some_tokens())
    os.chmod(path, 0o644)
    assert load_tokens(path) == some_tokens()
    assert any("chmod 600" in record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)


# --- settings --------------------------------------------------------------------------------------


def test_auth_settings_and_their_defaults():
    config = load_config(BASE)
    assert (config.client_id, config.token_file, config.auth_url, config.auth_url_set, config.validate_interval) == (
        None, Path("vbot-token.json"), "https://id.twitch.tv/oauth2", False, 3600.0)
    assert config.validates_token
    config = load_config({**BASE, "VBOT_CLIENT_ID": CLIENT_ID, "VBOT_TOKEN_FILE": "/tmp/t.json",
                          "VBOT_AUTH_URL": "http://127.0.0.1:8080/oauth2/", "VBOT_VALIDATE_INTERVAL": "60",
                          "VBOT_HOST": "127.0.0.1"})
    assert (config.client_id, config.token_file, config.auth_url, config.validate_interval) == (
        CLIENT_ID, Path("/tmp/t.json"), "http://127.0.0.1:8080/oauth2", 60.0)
    assert config.validates_token  # VBOT_AUTH_URL set explicitly
    assert not load_config({**BASE, "VBOT_HOST": "127.0.0.1"}).validates_token  # a plain IRC server
    assert not load_config({**BASE, "VBOT_USERNAME": "justinfan1", "VBOT_TOKEN": ""}).validates_token


@pytest.mark.parametrize("overrides, variable", [
    ({"VBOT_CLIENT_ID": "not a client id"}, "VBOT_CLIENT_ID"),
    ({"VBOT_AUTH_URL": "http://id.example.test/oauth2"}, "VBOT_AUTH_URL"),  # clear text to another host
    ({"VBOT_AUTH_URL": "id.twitch.tv/oauth2"}, "VBOT_AUTH_URL"),
    ({"VBOT_VALIDATE_INTERVAL": "0"}, "VBOT_VALIDATE_INTERVAL"),
    ({"VBOT_VALIDATE_INTERVAL": "3601"}, "VBOT_VALIDATE_INTERVAL"),
    ({"VBOT_VALIDATE_INTERVAL": "hourly"}, "VBOT_VALIDATE_INTERVAL"),
])
def test_auth_setting_errors(overrides, variable):
    with pytest.raises(ConfigError) as caught:
        load_config({**BASE, **overrides})
    assert variable in str(caught.value) and "\n" not in str(caught.value)


def test_username_and_token_are_optional_when_the_token_is_validated():
    config = load_config({"VBOT_CHANNEL": "test"})  # Twitch's host: the login comes from /validate
    assert config.username == "" and config.token is None and config.validates_token


def test_auth_settings_are_documented_and_the_example_file_loads(tmp_path):
    root = Path(__file__).parent.parent
    example, readme = (root / "config.example.env").read_text(), (root / "README.md").read_text()
    for name in ("VBOT_CLIENT_ID", "VBOT_TOKEN_FILE", "VBOT_AUTH_URL", "VBOT_VALIDATE_INTERVAL"):
        assert f"\n{name}=" in example and f"| `{name}` |" in readme
    (tmp_path / ".env").write_text(example.replace("VBOT_CHANNEL=\n", "VBOT_CHANNEL=mychannel\n"))
    config = load_config(read_settings(tmp_path / ".env", environ={}))
    assert config.validates_token and config.auth_url == "https://id.twitch.tv/oauth2"


# --- vbot login: the flow, on a fake clock ----------------------------------------------------------


class PollClock(TokenService):
    """A TokenService that notes the fake clock's time of each poll."""

    def __init__(self, url: str, clock: FakeClock):
        super().__init__(url, CLIENT_ID, timeout=2.0)
        self.clock, self.polls = clock, []

    def poll_device(self, device_code, scopes=CHAT_SCOPES):
        self.polls.append(self.clock() - 1000.0)
        return super().poll_device(device_code, scopes)


def device_login(fake, tmp_path, tty=False, sleep=None, **options):
    clock = FakeClock()
    service = PollClock(fake.url, clock)
    out = io.StringIO()
    login = DeviceLogin(service, tmp_path / "vbot-token.json", out, is_tty=tty, clock=clock,
                        sleep=sleep or clock.advance, wall_clock=clock, **options)
    return login, service, out


def test_login_polls_every_interval_until_approved(fake, tmp_path):
    login, service, out = device_login(fake, tmp_path)
    assert login.run() == 0
    assert service.polls == [5.0, 10.0, 15.0]  # pending, pending, approved
    text = out.getvalue()
    code = next(line for line in text.splitlines() if line.startswith("Open ")).split()[-1]
    assert f"Open https://www.twitch.tv/activate and enter {code}\n" in text
    assert f"https://www.twitch.tv/activate?public=true&device-code={code}" in text
    assert f"Logged in as vbot; token saved to {tmp_path / 'vbot-token.json'}" in text
    tokens = load_tokens(tmp_path / "vbot-token.json")
    assert fake.is_valid(tokens.access_token) and tokens.expires_at == 1015.0 + 14000
    assert (tokens.login, tokens.user_id, tokens.client_id, tokens.scopes) == ("vbot", "12345678", CLIENT_ID,
                                                                              CHAT_SCOPES)
    assert_no_secret(fake, text)


@pytest.mark.parametrize("fault", ["slow_down", "429"])
def test_login_slows_down_by_5_seconds(fake, tmp_path, fault):
    fake.fail("token", fault)
    login, service, _ = device_login(fake, tmp_path)
    assert login.run() == 0
    assert service.polls == [5.0, 15.0, 25.0, 35.0]  # the fault, then every 10 s: two pending, approved


@pytest.mark.parametrize("setup, code, text", [
    (lambda fake: setattr(fake, "pending_polls", 10**6), 3, "the code expired after 1m without approval"),
    (lambda fake: fake.fail("token", "denied"), 3, "denied"),
    (lambda fake: setattr(fake, "client_id", "someoneelse"), 3, "VBOT_CLIENT_ID"),
    (lambda fake: fake.fail("token", "500", "500", "500"), 1, "lost Twitch's token service"),
    (lambda fake: fake.fail("device", "500"), 1, "cannot reach Twitch's token service"),
    (lambda fake: (setattr(fake, "pending_polls", 0), fake.fail("token", 'access_token="' + "A" * 500 + '"')), 3,
     "the token service's answer is not usable (/token: HTTP 200: the reply is not a usable Grant: an access token"),
])
def test_login_failures(fake, tmp_path, setup, code, text):
    fake.code_lifetime = 60
    setup(fake)
    login, service, out = device_login(fake, tmp_path)
    assert login.run() == code
    assert text in out.getvalue() and "Logged in" not in out.getvalue()
    assert not (tmp_path / "vbot-token.json").exists()
    assert all(b - a >= 5 for a, b in itertools.pairwise(service.polls))
    if "expired" in text:
        assert service.polls == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0]
    assert_no_secret(fake, out.getvalue())


def test_login_ctrl_c_stops_cleanly(fake, tmp_path):
    def interrupted(seconds):
        raise KeyboardInterrupt

    login, _, out = device_login(fake, tmp_path, tty=True, sleep=interrupted)
    assert login.run() == 130
    assert out.getvalue().endswith("(Ctrl-C to stop)\x1b[K\r\x1b[Kvbot login: stopped; not logged in\n")


def test_login_countdown_on_a_terminal_and_a_line_a_minute_otherwise(fake, tmp_path):
    fake.pending_polls = 30  # approved at the 31st poll, 155 s in
    login, _, out = device_login(fake, tmp_path, tty=True)
    assert login.run() == 0
    assert "\rWaiting for approval; the code is valid for 30:00 more" in out.getvalue()
    assert "\rWaiting for approval; the code is valid for 27:26 more" in out.getvalue()  # once a second
    assert out.getvalue().count("\rWaiting") == 155
    fake.pending_polls = 30
    login, _, out = device_login(fake, tmp_path, tty=False)
    assert login.run() == 0
    waiting = [line for line in out.getvalue().splitlines() if line.startswith("Waiting")]
    assert waiting == [f"Waiting for approval; the code is valid for {m}m more (Ctrl-C to stop)"
                       for m in (30, 29, 28)]


@pytest.mark.parametrize("before, says", [
    ("someoneelse", " (replaced the token of someoneelse)"),
    ("vbot", ""),  # the same account: nothing to point out
    (None, ""),
    ("broken", ""),  # unreadable: there is no login to name
])
def test_login_says_when_it_replaces_another_accounts_token(fake, tmp_path, before, says):
    if before == "broken":
        (tmp_path / "vbot-token.json").write_text("{")
    elif before:
        old = Tokens("a" * 30, "r" * 30, None, CHAT_SCOPES, before, "1", CLIENT_ID)
        save_tokens(tmp_path / "vbot-token.json", old)
    login, _, out = device_login(fake, tmp_path)
    assert login.run() == 0
    assert f"Logged in as vbot; token saved to {tmp_path / 'vbot-token.json'}{says}\n" in out.getvalue()
    assert load_tokens(tmp_path / "vbot-token.json").login == "vbot"


START = ("start the bot the way you ran this without 'login' (e.g. .venv/bin/vbot), "
         "or systemctl restart vbot for a service")


@pytest.mark.parametrize("options, last", [
    ({"channels": ("#test",)}, f"S{START[1:]}: it renews the token by itself. Keep the token file private."),
    ({}, f"Still to do: set VBOT_CHANNEL in .env to the channel(s) to join; then {START}."),
    ({"settings_file": "/etc/vbot/vbot.env"},
     f"Still to do: set VBOT_CHANNEL in /etc/vbot/vbot.env to the channel(s) to join; then {START}."),
    ({"channels": ("#test",), "username": "vbot"}, f"S{START[1:]}: it renews the token by itself. Keep the token "
                                                   "file private."),
    ({"channels": ("#test",), "username": "someoneelse"},
     f"Still to do: set VBOT_USERNAME=vbot or remove it (it says someoneelse, you approved as vbot); then {START}."),
    ({"channels": ("#test",), "pasted_token": True},
     f"Still to do: remove VBOT_TOKEN: the token file replaces it; then {START}."),
])
def test_login_ends_with_what_is_still_missing_and_only_that(fake, tmp_path, options, last):
    login, _, out = device_login(fake, tmp_path, **options)
    assert login.run() == 0
    assert out.getvalue().splitlines()[-1] == last


def test_login_that_could_not_save_exits_2_before_anyone_approves(fake, tmp_path):
    login, _, out = device_login(fake, tmp_path / "missing-folder")
    assert login.run() == 2
    assert "missing-folder does not exist" in out.getvalue()
    assert fake.requests == []
    assert_no_secret(fake, out.getvalue())


# --- vbot login: the program ------------------------------------------------------------------------


def login_env(fake: FakeTwitchAuth, **more: str) -> dict[str, str]:
    return {"VBOT_CLIENT_ID": CLIENT_ID, "VBOT_AUTH_URL": fake.url, **more}


def test_vbot_login_end_to_end(tmp_path):
    with FakeTwitchAuth(interval=1) as fake:
        result = run_vbot(login_env(fake, VBOT_CHANNEL="test"), "login", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Open https://www.twitch.tv/activate and enter " in result.stdout
    assert f"Logged in as vbot; token saved to {tmp_path / 'vbot-token.json'}" in result.stdout
    last = result.stdout.splitlines()[-1]
    assert last.startswith("Start the bot the way you ran this") and "VBOT_CHANNEL" not in last  # it is set
    assert fake.requests == ["device", "token:device", "token:device", "token:device", "validate"]
    assert stat.S_IMODE((tmp_path / "vbot-token.json").stat().st_mode) == 0o600
    assert fake.is_valid(load_tokens(tmp_path / "vbot-token.json").access_token)
    assert_no_secret(fake, result.stdout + result.stderr)


@pytest.mark.parametrize("env, code, text", [
    ({"VBOT_CLIENT_ID": None}, 2, "VBOT_CLIENT_ID is not set"),
    ({"VBOT_CLIENT_ID": "someoneelse"}, 3, "Twitch refused to start a login"),
    ({"VBOT_AUTH_URL": "unreachable"}, 1, "cannot reach Twitch's token service"),
    ({"VBOT_TOKEN_FILE": "missing-folder/vbot-token.json"}, 2, "missing-folder does not exist"),
    ({"VBOT_TOKEN_FILE": "."}, 2, "is a folder"),
])
def test_vbot_login_errors_are_one_line(tmp_path, env, code, text):
    """A token file that cannot be written is said before anyone approves anything (trial)."""
    with FakeTwitchAuth(interval=1, pending_polls=0) as fake:
        if env.get("VBOT_AUTH_URL") == "unreachable":
            env = {"VBOT_AUTH_URL": f"http://127.0.0.1:{free_port()}/oauth2"}
        settings = {key: value for key, value in {**login_env(fake), **env}.items() if value is not None}
        result = run_vbot(settings, "login", cwd=tmp_path)
    assert result.returncode == code, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1 and text in result.stderr
    assert_no_secret(fake, result.stdout + result.stderr)
    if "VBOT_TOKEN_FILE" in env:
        assert fake.requests == []


def test_vbot_login_ctrl_c(tmp_path):
    with FakeTwitchAuth(interval=1, pending_polls=10**6) as fake:
        process = start_vbot(login_env(fake), "login", cwd=tmp_path)
        try:
            lines = [process.stdout.readline() for _ in range(3)]
            assert lines[2].startswith("Waiting for approval"), lines
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
        finally:
            process.kill()
    assert process.returncode == 130
    assert stderr == "vbot login: stopped; not logged in\n"
    assert not (tmp_path / "vbot-token.json").exists()


# --- TokenKeeper, on a fake clock ------------------------------------------------------------------


def run_now(job) -> concurrent.futures.Future:
    """A ``submit`` that runs the job at once, in the caller's thread."""
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(job())
    except Exception as error:  # noqa: BLE001  (handed to the Future, as an executor does)
        future.set_exception(error)
    return future


class HeldJobs:
    """A ``submit`` that holds each job until ``run()``: a background call still in flight."""

    def __init__(self):
        self.jobs: list[tuple] = []

    def __call__(self, job) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.jobs.append((job, future))
        return future

    def run(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job, future in jobs:
            future.set_result(job())


def file_tokens(fake, tmp_path, clock, expires_in=14000, scopes=None) -> tuple[Tokens, Path]:
    """Tokens issued by ``fake`` expiring ``expires_in`` s after ``clock()``, saved to a file."""
    access, refresh = fake.issue(expires_in=expires_in, scopes=scopes)
    tokens = Tokens(access, refresh, clock() + expires_in, scopes or CHAT_SCOPES, "vbot", "12345678", CLIENT_ID)
    path = tmp_path / "vbot-token.json"
    save_tokens(path, tokens)
    return tokens, path


def make_keeper(fake, tmp_path, expires_in=14000, submit=run_now, pasted=False, **options):
    """A keeper on a TwoClocks (``clock()`` monotonic, ``clock.wall()`` the wall clock), over a token
    file from ``fake``; its refresh retries wait 5 s, 10 s, 20 s, ... up to 60 s (no jitter)."""
    clock = options.pop("clock", None) or TwoClocks()
    tokens, path = file_tokens(fake, tmp_path, clock.wall, expires_in)
    if pasted:
        tokens, path = Tokens(tokens.access_token, None, options.pop("expires_at", None)), None
    options.setdefault("validate_interval", 10**9)
    options.setdefault("backoff", Backoff(first=5.0, cap=60.0, rng=lambda: 0.999999))
    keeper = TokenKeeper(service_for(fake, timeout=0.5), tokens, path, clock=clock, wall_clock=clock.wall,
                         submit=submit, **options)
    return keeper, clock


def assert_retried_after(keeper: TokenKeeper, clock: FakeClock, seconds: float, calls) -> None:
    """The next call (``calls()`` counts them) comes ``seconds`` after now, not a moment earlier."""
    before = calls()
    clock.advance(seconds - 0.1)
    ticks(keeper)
    assert calls() == before
    clock.advance(0.1)
    ticks(keeper)
    assert calls() == before + 1


def ticks(keeper: TokenKeeper, count: int = 3) -> CannotLogIn | None:
    """Tick ``count`` times without moving the clock (a job started is collected on the next tick)."""
    for _ in range(count):
        stop = keeper.tick()
        if stop is not None:
            return stop
    return None


@pytest.mark.parametrize("lifetime, due", [(14000, 13400), (1200, 600), (600, 300), (60, 30), (0, 0)])
def test_refresh_is_due_ahead_of_expiry(fake, tmp_path, lifetime, due):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=lifetime)
    first = keeper.password
    if due:
        clock.advance(due - 1)
        assert ticks(keeper) is None and fake.count("token:refresh") == 0
        clock.advance(1)
    assert ticks(keeper) is None
    assert fake.count("token:refresh") == 1
    assert keeper.password != first and fake.is_valid(keeper.tokens.access_token)
    assert load_tokens(tmp_path / "vbot-token.json") == keeper.tokens
    assert keeper.tokens.expires_at == clock() + 14000


def test_a_new_pair_is_saved_and_learned_before_it_is_used(fake, tmp_path):
    seen = []

    def learn(secret):
        if keeper is not None:  # after construction: the new tokens are on disk, not yet in use
            on_disk = load_tokens(tmp_path / "vbot-token.json")
            seen.append((secret in (on_disk.access_token, on_disk.refresh_token), keeper.password))

    keeper = None
    keeper, clock = make_keeper(fake, tmp_path, expires_in=100, on_new_secret=learn)
    old = keeper.password
    clock.advance(50)
    ticks(keeper)
    assert seen == [(True, old), (True, old)]  # access token, refresh token
    assert keeper.password != old


@pytest.mark.parametrize("interval", [60, 3600])
def test_validation_every_interval(fake, tmp_path, interval):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=interval)
    for round_ in (1, 2, 3):
        clock.advance(interval - 1)
        ticks(keeper)
        assert fake.count("validate") == round_ - 1
        clock.advance(1)
        ticks(keeper)
        assert fake.count("validate") == round_


def aged(fake, seconds: float) -> None:
    """Move the fake service's tokens ``seconds`` closer to expiry (it reads the real clock, not the test's)."""
    for token in fake.access_tokens.values():
        token.expires_at -= seconds


@pytest.mark.parametrize("interval", [60, 100, 149])
def test_validations_never_postpone_the_refresh_of_a_short_lived_token(fake, tmp_path, interval):
    """A token with 10 minutes left is renewed at half of them (+300 s). Each validation used to plan
    again at half the time then left (+330, +389, ...): with validations more often than every
    150 s the refresh slipped on until the token had expired (r2 of the attack trial)."""
    keeper, clock = make_keeper(fake, tmp_path, expires_in=600, validate_interval=interval)
    while clock() + interval < 1000 + 300:
        clock.advance(interval)
        aged(fake, interval)
        assert ticks(keeper) is None
    assert fake.count("validate") >= 2 and fake.count("token:refresh") == 0
    aged(fake, 1000 + 300 - clock())
    clock.advance(1000 + 300 - clock())
    assert ticks(keeper) is None
    assert fake.count("token:refresh") == 1 and keeper.expires_in() > 13000  # renewed before it expired


def test_a_validation_that_finds_an_earlier_expiry_brings_the_refresh_forward(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=14000, validate_interval=60)
    aged(fake, 14000 - 300)  # Twitch says 5 minutes left, not the file's 3 h 53 min
    clock.advance(60)
    assert ticks(keeper) is None and fake.count("validate") == 1 and fake.count("token:refresh") == 0
    clock.advance(150)  # half of the 5 minutes left at the validation
    aged(fake, 150)
    assert ticks(keeper) is None and fake.count("token:refresh") == 1


def test_unavailable_validation_is_retried_after_60_s(fake, tmp_path, caplog):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    fake.fail("validate", "500")
    clock.advance(3600)
    assert ticks(keeper) is None
    assert fake.requests[-1] == "validate:500"
    assert any("could not validate the token" in record.getMessage() for record in caplog.records)
    assert_retried_after(keeper, clock, 60, lambda: fake.count("validate"))


def test_401_on_validation_refreshes_and_carries_on(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    fake.expire(keeper.tokens.access_token)  # e.g. the password was changed
    clock.advance(3600)
    assert ticks(keeper) is None
    assert fake.requests[-2:] == ["validate", "token:refresh"]
    assert fake.is_valid(keeper.tokens.access_token)


def test_revoked_while_running_means_quit(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    fake.revoke()  # Twitch settings > Connections > Disconnect
    clock.advance(3600)
    stop = ticks(keeper)
    assert isinstance(stop, CannotLogIn)
    assert 'run "vbot login" again' in str(stop) and "HTTP 400" in str(stop)
    assert fake.requests[-2:] == ["validate", "token:refresh"]
    assert_no_secret(fake, str(stop))


def test_unavailable_refresh_is_retried_with_backoff(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=1200)
    fake.fail("token", "500", "500")
    clock.advance(600)
    ticks(keeper)
    assert fake.requests == ["token:500"]
    assert_retried_after(keeper, clock, 5, lambda: len(fake.requests))
    assert_retried_after(keeper, clock, 10, lambda: len(fake.requests))
    assert fake.count("token:refresh") == 1 and fake.is_valid(keeper.tokens.access_token)


def test_only_one_call_at_a_time(fake, tmp_path):
    held = HeldJobs()
    keeper, clock = make_keeper(fake, tmp_path, expires_in=100, submit=held)
    old = keeper.password
    clock.advance(100)  # expired, and validation due too
    keeper.tick()
    keeper.tick()
    assert len(held.jobs) == 1 and keeper.busy
    assert keeper.before_connect() is None  # a refresh is in flight: not yet, and no second one
    assert len(held.jobs) == 1 and fake.count("token:refresh") == 0
    held.run()
    assert keeper.before_connect() not in (old, None)
    assert fake.count("token:refresh") == 1 and not keeper.busy


def test_a_hanging_service_never_blocks_tick(fake, tmp_path, caplog):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=100, submit=None)  # a real worker thread
    try:
        fake.fail("token", "hang")
        clock.advance(50)
        assert keeper.tick() is None
        assert keeper.busy  # returned while the call hangs (it times out after 0.5 s)
        wait_until(lambda: keeper.tick() is None and not keeper.busy, message="the refresh to time out")
        assert any("could not renew the token (/token: no complete answer within 0.5 s)" in record.getMessage()
                   for record in caplog.records)
        clock.advance(60)
        keeper.tick()
        wait_until(lambda: keeper.tick() is None and not keeper.busy and fake.count("token:refresh"))
        assert fake.is_valid(keeper.tokens.access_token)
    finally:
        keeper.close()


def test_before_connect_renews_an_expired_token(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=3000)
    old = keeper.password
    clock.advance(2940)  # within a minute of expiry: a login now could fail
    new = keeper.before_connect()
    assert new != old and new == keeper.password and fake.count("token:refresh") == 1
    assert keeper.before_connect() == new and fake.count("token:refresh") == 1


def test_before_connect_with_the_service_down_uses_the_token_it_has(fake, tmp_path, caplog):
    keeper, _ = make_keeper(fake, tmp_path, expires_in=60)
    old = keeper.password
    fake.fail("token", "500")
    assert keeper.before_connect() == old  # it expires within a minute, but may still work
    assert [record.getMessage() for record in caplog.records] == [
        "could not renew the token (/token: HTTP 500: Internal Server Error); trying again in 5 s"]


def test_before_connect_with_a_revoked_token_raises(fake, tmp_path):
    keeper, _ = make_keeper(fake, tmp_path, expires_in=0)
    fake.revoke()
    with pytest.raises(CannotLogIn, match='run "vbot login" again'):
        keeper.before_connect()


def test_login_failed_renews_once(fake, tmp_path):
    keeper, _ = make_keeper(fake, tmp_path)
    old = keeper.password
    assert keeper.login_failed() is None
    assert keeper.before_connect() != old and fake.count("token:refresh") == 1
    stop = keeper.login_failed()  # refused again with the renewed token
    assert isinstance(stop, CannotLogIn) and "again" in str(stop)
    keeper.logged_in()
    assert keeper.login_failed() is None  # a later refusal is renewed once again


def test_login_failed_with_the_service_down_waits_for_the_renewal(fake, tmp_path, caplog):
    """Issue 18 item 1: a refused token is never sent again; the renewal is retried with its own
    backoff (5 s, 10 s, ...), one WARNING per attempt, however often the bot asks."""
    keeper, clock = make_keeper(fake, tmp_path)
    fake.fail("token", "500", "500")
    assert keeper.login_failed() is None
    for _ in range(1000):  # the bot asks on every turn of its loop
        assert keeper.before_connect() is None
        clock.advance(0.01)  # 10 s in all
    assert fake.requests == ["token:500", "token:500"]  # at 0 s and 5 s; the next at 15 s
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2 and "not logging in until it is renewed; trying again in 10 s" in warnings[1]
    clock.advance(5)
    new = keeper.before_connect()
    assert new == keeper.password and fake.is_valid(keeper.tokens.access_token)
    assert keeper.login_failed() is not None  # the renewed token refused too: a second refusal


def test_login_failed_with_a_pasted_token_says_how_to_get_a_lasting_one(fake, tmp_path):
    keeper, _ = make_keeper(fake, tmp_path, pasted=True)
    stop = keeper.login_failed()
    assert isinstance(stop, CannotLogIn) and "vbot login" in str(stop) and "VBOT_TOKEN" in str(stop)


def test_renewed_tokens_that_cannot_be_saved_are_kept_and_saved_later(fake, tmp_path, caplog):
    folder = tmp_path / "tokens"
    folder.mkdir()
    keeper, clock = make_keeper(fake, folder, expires_in=100)
    (folder / "vbot-token.json").unlink()
    folder.rmdir()
    clock.advance(50)
    ticks(keeper)
    assert fake.is_valid(keeper.tokens.access_token)  # in use, though not saved
    assert any(record.levelno == logging.ERROR and "could not save the renewed token" in record.getMessage()
               for record in caplog.records)
    folder.mkdir()
    clock.advance(60)
    ticks(keeper)
    assert load_tokens(folder / "vbot-token.json") == keeper.tokens
    assert fake.count("token:refresh") == 1


def test_pasted_token_expiry_is_a_warning_not_a_stop(fake, tmp_path, caplog):
    keeper, clock = make_keeper(fake, tmp_path, pasted=True, validate_interval=3600, expires_at=1100)
    clock.advance(100)
    assert ticks(keeper) is None
    assert [record.getMessage() for record in caplog.records].count(
        'VBOT_TOKEN has expired: vbot stays in chat, but cannot log in again after a disconnect; '
        'run "vbot login" once for a token vbot keeps fresh (README: Getting a token)') == 1
    fake.expire(keeper.tokens.access_token)
    clock.advance(3600)
    assert ticks(keeper) is None and fake.count("validate") == 1


def test_pasted_token_revoked_while_running_means_quit(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, pasted=True, validate_interval=3600)
    keeper.start()
    fake.revoke()
    clock.advance(3600)
    stop = ticks(keeper)
    assert isinstance(stop, CannotLogIn) and "revoked" in str(stop) and "vbot login" in str(stop)


# --- TokenKeeper.start: before the bot is built ---------------------------------------------------


def test_start_validates_and_learns_the_login(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    validation = keeper.start()
    assert validation is not None and validation.login == "vbot"
    assert fake.requests == ["validate"]
    clock.advance(3600)
    ticks(keeper)
    assert fake.requests == ["validate", "validate"]


@pytest.mark.parametrize("how", ["by the clock", "by Twitch (401)"])
def test_start_renews_an_expired_token(fake, tmp_path, how):
    keeper, clock = make_keeper(fake, tmp_path, expires_in=1000)
    if how == "by the clock":
        clock.advance(1000)
    fake.expire(keeper.tokens.access_token)
    assert keeper.start() is not None
    assert fake.count("token:refresh") == 1 and fake.is_valid(keeper.tokens.access_token)
    saved = load_tokens(tmp_path / "vbot-token.json")
    assert (saved.access_token, saved.refresh_token) == (keeper.tokens.access_token, keeper.tokens.refresh_token)


def test_start_with_a_revoked_token(fake, tmp_path):
    keeper, _ = make_keeper(fake, tmp_path)
    fake.revoke()
    with pytest.raises(CannotLogIn, match='run "vbot login" again'):
        keeper.start()


@pytest.mark.parametrize("fault", ["500", "hang"])
def test_start_with_the_service_unavailable_warns_and_goes_on(fake, tmp_path, caplog, fault):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    fake.fail("validate", fault)
    assert keeper.start() is None
    assert any(record.levelno == logging.WARNING and "connecting with it anyway" in record.getMessage()
               for record in caplog.records)
    clock.advance(60)
    ticks(keeper)
    assert fake.count("validate") == 1  # tried again a minute later, not an hour


@pytest.mark.parametrize("scopes, missing", [(("chat:read",), "chat:edit scope"),
                                             ((), "chat:read and chat:edit scopes")])
def test_start_names_a_missing_scope(fake, tmp_path, scopes, missing):
    tokens, path = file_tokens(fake, tmp_path, time.time, scopes=scopes or ("user:read:email",))
    keeper = TokenKeeper(service_for(fake), tokens, path, submit=run_now)
    with pytest.raises(CannotLogIn, match=missing):
        keeper.start()


def test_start_with_a_pasted_token_warns_with_its_expiry(fake, tmp_path, caplog):
    keeper, _ = make_keeper(fake, tmp_path, pasted=True)
    assert keeper.start() is not None
    assert keeper.tokens.login == "vbot" and keeper.tokens.expires_at is not None
    warning = next(record.getMessage() for record in caplog.records if record.levelno == logging.WARNING)
    assert "VBOT_TOKEN is a pasted token: it expires in 3h 53m" in warning
    assert "vbot cannot renew it" in warning and "vbot login" in warning


def test_start_with_an_invalid_pasted_token(fake, tmp_path):
    keeper, _ = make_keeper(fake, tmp_path, pasted=True)
    fake.revoke()
    with pytest.raises(CannotLogIn, match="cannot renew a pasted token; run \"vbot login\""):
        keeper.start()


# --- start-up through the program, with the scripted Twitch chat server -----------------------------


def bot_env(fake: FakeTwitchAuth, chat: ScriptedServer, tmp_path: Path, **more: str) -> dict[str, str]:
    return {"VBOT_CHANNEL": "test", "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(chat.port), "VBOT_TLS": "false",
            "VBOT_AUTH_URL": fake.url, "VBOT_LOG_LEVEL": "DEBUG", "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3"),
            **more}


def saved_tokens(fake, tmp_path, expired=False, scopes=None) -> Tokens:
    """A token file in ``tmp_path`` as ``vbot login`` leaves it (its access token expired if asked)."""
    access, refresh = fake.issue(scopes=scopes)
    tokens = Tokens(access, refresh, time.time() - 10 if expired else time.time() + 14000,
                    scopes or CHAT_SCOPES, "vbot", "12345678", CLIENT_ID)
    if expired:
        fake.expire(access)
    save_tokens(tmp_path / "vbot-token.json", tokens)
    return tokens


def run_until_joined(env: dict[str, str], chat: ScriptedServer, tmp_path: Path) -> str:
    """Start ``python -m vbot``, wait for its JOIN, stop it with SIGTERM; its stderr (exit code 0 checked)."""
    process = start_vbot(env, cwd=tmp_path)
    try:
        chat.wait_for(r"^JOIN #test$", timeout=15)
        process.terminate()
        _, stderr = process.communicate(timeout=15)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    return stderr


def test_start_renews_an_expired_saved_token_then_logs_in(fake, chat, tmp_path):
    old = saved_tokens(fake, tmp_path, expired=True)
    stderr = run_until_joined(bot_env(fake, chat, tmp_path), chat, tmp_path)
    new = load_tokens(tmp_path / "vbot-token.json")
    assert new.access_token != old.access_token and fake.is_valid(new.access_token)
    assert f"PASS oauth:{new.access_token}" in chat.received
    assert "NICK vbot" in chat.received  # the login came from /validate
    assert fake.requests == ["token:refresh", "validate"]
    assert "token renewed; it expires in 3h 53m" in stderr
    assert "[REDACTED]" in stderr  # the PASS line at DEBUG
    assert_no_secret(fake, stderr)


@pytest.mark.parametrize("case, text", [
    ("revoked", "Twitch refused to renew the token (/token: HTTP 400: Invalid refresh token)"),
    ("no chat:edit", "the token lacks the chat:edit scope"),
    ("unusable", "the token service renewed the token, but vbot cannot use the answer (/token: HTTP 200: the reply "
                 "is not a usable Grant: an access token of 500 characters, too long for chat"),
])
def test_start_exits_3_without_connecting(fake, chat, tmp_path, case, text):
    """Unusable: the attack's renewal with a 500-character access token spent the refresh token; vbot
    retried with it and exited 3 blaming "another vbot on a copy of the token file"."""
    if case == "revoked":
        saved_tokens(fake, tmp_path, expired=True)
        fake.revoke()
    elif case == "unusable":
        saved_tokens(fake, tmp_path, expired=True)
        fake.fail("token", 'access_token="' + "A" * 500 + '"')
    else:
        saved_tokens(fake, tmp_path, scopes=("chat:read",))
    result = run_vbot(bot_env(fake, chat, tmp_path), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "ERROR vbot.cli: cannot log in to Twitch: " in result.stderr
    assert text in result.stderr and 'run "vbot login" again' in result.stderr
    assert chat.connections == 0 and fake.requests.count("token:refresh") <= 1
    assert "Traceback" not in result.stderr
    assert_no_secret(fake, result.stdout + result.stderr)


@pytest.mark.parametrize("unavailable", ["500", "nothing listening"])
def test_start_with_the_service_unavailable_connects_anyway(fake, chat, tmp_path, unavailable):
    saved_tokens(fake, tmp_path)
    env = bot_env(fake, chat, tmp_path)
    if unavailable == "500":
        fake.fail("validate", "500")
    else:
        env["VBOT_AUTH_URL"] = f"http://127.0.0.1:{free_port()}/oauth2"
    stderr = run_until_joined(env, chat, tmp_path)
    assert "WARNING vbot.keeper: could not validate the token (/validate: " in stderr
    assert "connecting with it anyway" in stderr
    assert "NICK vbot" in chat.received  # the login saved in the file


@pytest.mark.parametrize("prefix", ["", "oauth:"])
def test_start_with_a_pasted_token(fake, chat, tmp_path, prefix):
    """On a host other than Twitch's with VBOT_AUTH_URL too, a token pasted with ``oauth:`` is taken as
    on Twitch's host: /validate gets it without (it refused it, and the bot exited 3)."""
    access, _ = fake.issue()
    stderr = run_until_joined(bot_env(fake, chat, tmp_path, VBOT_TOKEN=prefix + access), chat, tmp_path)
    assert "WARNING vbot.keeper: VBOT_TOKEN is a pasted token: it expires in 3h 53m" in stderr
    assert "vbot cannot renew it" in stderr
    assert f"PASS oauth:{access}" in chat.received
    assert fake.requests == ["validate"]
    assert_no_secret(fake, stderr)


def test_token_file_wins_over_vbot_token_with_a_warning(fake, chat, tmp_path):
    tokens = saved_tokens(fake, tmp_path)
    pasted, _ = fake.issue()
    stderr = run_until_joined(bot_env(fake, chat, tmp_path, VBOT_TOKEN=pasted), chat, tmp_path)
    assert "WARNING vbot.cli: both VBOT_TOKEN and the token file vbot-token.json are set: using the token file" \
        in stderr
    assert f"PASS oauth:{tokens.access_token}" in chat.received


@pytest.mark.parametrize("setup, text", [
    ("mismatch", "VBOT_USERNAME=someoneelse, but the token belongs to vbot: set VBOT_USERNAME=vbot"),
    ("corrupt", 'VBOT_TOKEN_FILE=vbot-token.json: not a vbot token file (not JSON); run "vbot login" again'),
    ("none", ('no token: VBOT_TOKEN is not set and VBOT_TOKEN_FILE=vbot-token.json does not exist; '
              'run "vbot login"')),
])
def test_start_configuration_errors_exit_2(fake, chat, tmp_path, setup, text):
    env = bot_env(fake, chat, tmp_path)
    if setup == "mismatch":
        saved_tokens(fake, tmp_path)
        env["VBOT_USERNAME"] = "someoneelse"
    elif setup == "corrupt":
        (tmp_path / "vbot-token.json").write_text("{")
    result = run_vbot(env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"vbot: configuration error: {text}")
    assert result.stderr.count("\n") == 1 or setup == "mismatch"  # that one was validated first (DEBUG lines)
    assert chat.connections == 0
    assert_no_secret(fake, result.stdout + result.stderr)


def test_a_plain_irc_server_changes_nothing(tmp_path):
    """Without Twitch's host or VBOT_AUTH_URL, no token file is read and no token service asked."""
    (tmp_path / "vbot-token.json").write_text("{")  # would be an error if it were read
    server = ScriptedServer().start()
    try:
        env = {"VBOT_USERNAME": "vbot", "VBOT_TOKEN": f"oauth:{server.token}", "VBOT_CHANNEL": "test",
               "VBOT_HOST": "127.0.0.1", "VBOT_PORT": str(server.port), "VBOT_TLS": "false",
               "VBOT_STATE_FILE": str(tmp_path / "state.sqlite3")}
        stderr = run_until_joined(env, server, tmp_path)
    finally:
        server.stop()
    assert "vbot.keeper" not in stderr and "vbot-token.json" not in stderr
    assert f"PASS oauth:{server.token}" in server.received


# --- the keeper driven by a running bot: the wiring described for vbot/bot.py, in a test subclass ------


@pytest.fixture
def wired(fake, chat, tmp_path):
    """Start a VBot with a TokenKeeper on the chat server with a token file from ``fake``; yields a starter."""
    runs: list[BotThread] = []

    def start(lifetime: int = 14000, validate_interval: float = 3600, timeout: float = 2.0) -> BotThread:
        access, refresh = fake.issue(expires_in=lifetime)
        tokens = Tokens(access, refresh, time.time() + lifetime, CHAT_SCOPES, "vbot", "12345678", CLIENT_ID)
        save_tokens(tmp_path / "vbot-token.json", tokens)
        keeper = TokenKeeper(service_for(fake, timeout=timeout), tokens, tmp_path / "vbot-token.json",
                             validate_interval=validate_interval)
        config = make_config(chat.port, token=access)
        run = BotThread.__new__(BotThread)
        run.dispatcher = Dispatcher(builtin_table(), config.prefix, config.owners)
        run.bot = VBot(config, run.dispatcher, keeper=keeper, reconnect=Backoff(first=0.2, cap=1.0))
        run.exit_code = None
        run.thread = threading.Thread(target=run._run, daemon=True)
        runs.append(run.start())
        chat.wait_for(r"^JOIN #test$")
        return run

    yield start
    for run in runs:
        run.stop()
        run.bot.keeper.close()


def passwords(chat: ScriptedServer) -> list[str]:
    return [line.split(":", 1)[1] for line in chat.received if line.startswith("PASS oauth:")]


def test_wired_token_expiring_mid_run_then_reconnect(fake, chat, wired):
    fake.token_lifetime = 4  # every renewed token lasts 4 s: renewed every 2 s
    run = wired(lifetime=4)
    first = passwords(chat)[0]
    wait_until(lambda: not fake.is_valid(first), message="the first token to expire")
    start = len(chat.received)
    chat.send(":tmi.twitch.tv RECONNECT")
    chat.wait_for(r"^JOIN #test$", start=start)
    assert run.exit_code is None and chat.connections == 2
    assert passwords(chat)[-1] != first and fake.count("token:refresh") >= 1


def test_wired_login_refused_then_renewed(fake, chat, wired):
    run = wired()
    fake.expire(passwords(chat)[0])  # e.g. the account's password was changed: Twitch refuses the login
    start = len(chat.received)
    chat.send(":tmi.twitch.tv RECONNECT")
    chat.wait_for(r"^JOIN #test$", start=start)
    assert run.exit_code is None and chat.connections == 3  # refused once, then in with a renewed token
    assert fake.count("token:refresh") == 1 and fake.is_valid(passwords(chat)[-1])


def test_wired_revoked_token_quits_with_3(fake, chat, wired, caplog):
    run = wired(validate_interval=0.5)
    fake.revoke()
    run.thread.join(10)
    assert run.exit_code == 3
    chat.wait_for(r"^QUIT")
    assert any('run "vbot login" again' in record.getMessage() for record in caplog.records)


def test_wired_hanging_token_service_does_not_delay_pong(fake, chat, wired):
    fake.fail("validate", "hang")
    run = wired(validate_interval=0.5, timeout=5)
    wait_until(lambda: "validate:hang" in fake.requests, message="a hanging validation")
    start = len(chat.received)
    chat.send("PING :tmi.twitch.tv")
    chat.wait_for(r"^PONG ", start=start, timeout=2)
    assert run.bot.keeper.busy  # still waiting for the token service


KEEP_RENEWING = """
import sys
import time
from pathlib import Path
from vbot.auth import TokenService
from vbot.keeper import TokenKeeper
from vbot.tokens import load_tokens
path = Path(sys.argv[2])
keeper = TokenKeeper(TokenService(sys.argv[1], timeout=5), load_tokens(path), path)
while True:
    keeper.login_failed()
    while keeper.before_connect() is None:
        time.sleep(0.001)
    keeper.logged_in()
    print("renewed", flush=True)
"""


def test_sigkill_right_after_refreshes_then_a_restart_logs_in(fake, chat, tmp_path):
    saved_tokens(fake, tmp_path)
    process = subprocess.Popen([sys.executable, "-c", KEEP_RENEWING, fake.url, str(tmp_path / "vbot-token.json")],
                               stdout=subprocess.PIPE, text=True)
    for _ in range(10):
        assert process.stdout.readline() == "renewed\n"
    process.send_signal(signal.SIGKILL)  # at any point of a refresh
    process.wait(10)
    process.stdout.close()
    stderr = run_until_joined(bot_env(fake, chat, tmp_path), chat, tmp_path)
    assert fake.count("token:refresh") >= 10
    assert fake.is_valid(passwords(chat)[-1])
    assert_no_secret(fake, stderr)


# --- a token service that sends what Twitch never would ------------------------------------------------


class HostileAuth(FakeTwitchAuth):
    """The fake service, but ``hostile(path, form)`` may answer first (status, JSON body)."""

    def __init__(self, hostile, **options):
        super().__init__(**options)
        self.hostile = hostile

    def answer(self, method, path, form, headers):
        return self.hostile(path, form) or super().answer(method, path, form, headers)


@pytest.mark.parametrize("bad_token", ["acc\r\nPRIVMSG #chan :SECRETinj", "acc SECRETspace", "acc\x00SECRETnul", ""])
def test_a_token_that_could_split_a_line_is_never_accepted(bad_token):
    """Issue 8 trial: a token with a line break or space would split the PASS line or a header."""
    def hostile(path, form):
        if path == "/oauth2/token":
            return 200, {"access_token": bad_token, "refresh_token": "refreshSECRET", "expires_in": 14000,
                         "scope": list(CHAT_SCOPES), "token_type": "bearer"}
        return None

    with HostileAuth(hostile) as fake:
        with pytest.raises(ServiceUnavailable) as caught:
            service_for(fake).refresh("oldrefreshSECRET")
    assert "SECRET" not in str(caught.value) and "SECRET" not in repr(caught.value)


def test_a_service_message_repeating_the_secret_sent_is_masked():
    def hostile(path, form):
        if path == "/oauth2/token":
            return 400, {"status": 400, "message": f"bad token {form.get('refresh_token')}\x1b[2J"}
        return None

    with HostileAuth(hostile) as fake:
        with pytest.raises(ServiceRefused) as caught:
            service_for(fake).refresh("refreshSECRET0123456789")
    assert "refreshSECRET" not in str(caught.value) and "[REDACTED]" in str(caught.value)
    assert "\x1b" not in str(caught.value)


def test_a_secret_the_message_cut_would_split_is_masked_too():
    """The service's message is cut to 200 characters: a secret it repeats across the cut is masked
    before the cut, so not even its first characters reach the log."""

    def hostile(path, form):
        if path == "/oauth2/token":
            return 400, {"status": 400, "message": "x" * 190 + f" {form.get('refresh_token')}"}
        return None

    with HostileAuth(hostile) as fake:
        with pytest.raises(ServiceRefused) as caught:
            service_for(fake).refresh("refreshSECRET0123456789")
    assert "refr" not in str(caught.value)


@pytest.mark.parametrize("field, value", [("user_code", "ABCD\x1b[2JEFGH"), ("verification_uri", "https://x\r\ny"),
                                          ("verification_uri", "javascript:alert(1)")])
def test_a_device_code_reply_with_terminal_controls_is_refused(field, value):
    def hostile(path, form):
        if path == "/oauth2/device":
            reply = {"device_code": "devSECRET", "expires_in": 1800, "interval": 5, "user_code": "ABCDEFGH",
                     "verification_uri": "https://www.twitch.tv/activate"}
            return 200, {**reply, field: value}
        return None

    with HostileAuth(hostile) as fake:
        with pytest.raises(ServiceUnavailable):
            service_for(fake).start_device_login()


def test_an_access_token_too_long_for_the_pass_line_is_refused_saying_why(fake):
    """The attack: the service renewed with a 512-character access token; vbot saved it, and every
    connect after failed on the 525-byte PASS line. ``PASS oauth:<token>`` and CR LF must fit in 512."""
    _, refresh = fake.issue()
    fake.fail("token", 'access_token="' + "A" * 500 + '"')
    with pytest.raises(ServiceUnavailable) as caught:
        service_for(fake).refresh(refresh)
    assert str(caught.value) == (
        "/token: HTTP 200: the reply is not a usable Grant: an access token of 500 characters, too long for "
        "chat: 'PASS oauth:<token>' and CR LF must fit in IRC's 512-byte line, so it may have 499"
    )
    _, refresh = fake.issue()
    fake.fail("token", 'access_token="' + "A" * 499 + '"')
    assert service_for(fake).refresh(refresh).access_token == "A" * 499


def test_a_refused_login_is_left_and_retried_even_if_the_server_keeps_it_open(fake, tmp_path):
    """Trial: the renewal happened, but the bot sat on the refused connection until the login deadline."""
    tokens = saved_tokens(fake, tmp_path)
    keeper = TokenKeeper(service_for(fake), tokens, tmp_path / "vbot-token.json", submit=run_now)
    harness = BotHarness(make_config(6667, token=tokens.access_token), keeper=keeper)
    assert f"PASS oauth:{tokens.access_token}" in harness.sent()
    fake.expire(tokens.access_token)
    harness.feed(":tmi.twitch.tv NOTICE * :Login authentication failed")  # and the server keeps the socket open
    harness.advance(2)  # the backoff's first wait: then it connects again, with the renewed token
    assert harness.connects == 2 and harness.bot.exit_code is None
    passes = [line for line in harness.sent() if line.startswith("PASS ")]
    assert passes and fake.is_valid(passes[-1].removeprefix("PASS oauth:"))
    assert fake.count("token:refresh") == 1
    keeper.close()


def test_no_login_storm_when_twitch_refuses_and_the_token_service_fails(fake, tmp_path, caplog):
    """Issue 18 item 1: Twitch refuses every login and the token service answers 500. vbot 0.2
    logged in again at once, thousands of times in 10 s (Twitch allows 20), with as many calls to
    /token and WARNING lines. Now the refused token is never sent again until it is renewed, and
    the renewal waits for the service with its own backoff (tests/test_session.py has the window)."""
    tokens = saved_tokens(fake, tmp_path)
    keeper = TokenKeeper(service_for(fake), tokens, tmp_path / "vbot-token.json", submit=run_now)
    harness = BotHarness(make_config(6667, token=tokens.access_token), keeper=keeper)
    fake.fail("token", *["500"] * 100_000)
    fake.expire(tokens.access_token)  # e.g. the password was changed: Twitch refuses it
    refused = 0
    for _ in range(1000):  # 10 s of the bot's clock, in turns of 10 ms
        if harness.connects > refused:
            refused = harness.connects
            harness.feed(":tmi.twitch.tv NOTICE * :Login authentication failed")
        harness.advance(0.01)
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    print(f"\nmeasured: logins in 10 s while refused and the token service fails: {harness.connects}; "
          f"/token calls: {len(fake.requests)}; WARNING lines: {len(warnings)}")
    assert harness.connects == 1  # the refused token is never sent again; no renewed one yet
    with harness.bot.reactor.mutex:
        assert harness.bot._step() == TOKEN_ASK_EVERY  # the loop waits for the keeper, it does not spin
    assert len(fake.requests) == 1  # the token service's own backoff: the next try is 5 s later (real time)
    assert len(warnings) == 2  # the refusal (with the drop), the failed renewal
    assert harness.bot.exit_code is None


@pytest.mark.parametrize("jump", [-3600, 3600, -86400 * 365])
def test_a_wall_clock_that_steps_moves_no_validation_or_renewal(fake, tmp_path, jump):
    """Issue 18 item 3: after the wall clock stepped back one hour (NTP at boot, a resumed VM), vbot
    0.2 validated and renewed nothing for the next 80 s. The schedule is on the monotonic clock; the
    wall clock only converts the expiry saved in the file."""
    keeper, clock = make_keeper(fake, tmp_path, expires_in=1200, validate_interval=60)
    clock.jump(jump)
    for minute in (1, 2, 3):
        clock.advance(60)
        assert ticks(keeper) is None
        assert fake.count("validate") == minute
    renewing, clock = make_keeper(fake, tmp_path, expires_in=1200)  # no validation to correct the expiry
    clock.jump(jump)
    clock.advance(599)
    assert ticks(renewing) is None and fake.count("token:refresh") == 0
    clock.advance(1)  # 600 s before expiry: the refresh ahead of expiry is due
    assert ticks(renewing) is None and fake.count("token:refresh") == 1
    assert renewing.expires_in() == 14000
    assert load_tokens(tmp_path / "vbot-token.json").expires_at == clock.wall() + 14000  # in the file: wall time


@pytest.mark.parametrize("change, says", [
    ("login", "the token now belongs to someoneelse, but the bot is logged in to chat as vbot; "
              'run "vbot login" again as vbot, or set VBOT_USERNAME=someoneelse and restart'),
    ("scope", 'the token now lacks the chat:edit scope (needed for chat); run "vbot login" again'),
])
def test_a_validation_naming_another_login_or_lacking_a_scope_ends_the_session(fake, tmp_path, change, says):
    """Issue 18 item 6: vbot 0.2 read only the expiry of a mid-run validation and chatted on."""
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    keeper.chat_login = "vbot"
    if change == "login":
        fake.login = "someoneelse"
    else:
        fake.access_tokens[keeper.tokens.access_token].scopes = ("chat:read",)
    clock.advance(3600)
    stop = ticks(keeper)
    assert isinstance(stop, CannotLogIn) and str(stop) == says
