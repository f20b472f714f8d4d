"""Issue 18 item 4 (and the token file's part of item 5): one process per token file, leftovers of an
interrupted save, symbolic links, files that are not token files, a folder where nothing can be saved.

Real files, real processes (``python -m vbot`` against tests/fake_auth.py and the scripted chat server).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.fake_auth import CHAT_SCOPES, CLIENT_ID, FakeTwitchAuth
from tests.support import run_vbot, wait_until
from tests.test_auth import assert_no_secret, bot_env, make_keeper, some_tokens, ticks
from tests.test_live_tokens import JOINED, save, start_and_join
from tests.test_token_hostile import within
from vbot.keeper import CannotLogIn
from vbot.tokens import TokenFileError, TokenFileLock, Tokens, load_tokens, save_tokens

# --- one process per token file -------------------------------------------------------------------------


def test_a_second_vbot_on_the_same_token_file_stops_at_start_naming_the_first(fake, chat, tmp_path, vbots):
    """vbot 0.2 ran both: at the first renewal one reused the other's spent refresh token and
    stopped with exit 3 and "access was revoked", the wrong cause and advice."""
    save(fake, tmp_path, lifetime=14000)
    env = bot_env(fake, chat, tmp_path)
    first = vbots(env, tmp_path, "first")
    chat.wait_for(JOINED)
    second = subprocess.run([sys.executable, "-m", "vbot"], env={**os.environ, **env}, cwd=tmp_path, text=True,
                            capture_output=True, timeout=30)
    assert second.returncode == 2, second.stderr
    assert second.stderr.splitlines()[-1] == (
        f"vbot: configuration error: VBOT_TOKEN_FILE=vbot-token.json is in use by another vbot "
        f"(pid {first.process.pid}): two processes renewing one token lock each other out of it (refresh "
        "tokens work once); stop the other one, or give each bot its own token file")
    assert chat.connections == 1 and first.alive()
    assert first.stop() == 0
    assert_no_secret(fake, second.stderr)


def test_a_token_file_with_two_hard_links_is_refused_at_start(fake, chat, tmp_path):
    """Two vbots on two hard links to one token file both ran (each locks the name it was given),
    and after one renewed, the other exited 3 (j1 of the attack trial). A renewal replaces the
    file, which breaks hard links anyway: one name, or symbolic links, which vbot follows."""
    save(fake, tmp_path, lifetime=14000)
    os.link(tmp_path / "vbot-token.json", tmp_path / "b.json")
    for name in ("vbot-token.json", "b.json"):
        env = {**os.environ, **bot_env(fake, chat, tmp_path, VBOT_TOKEN_FILE=name)}
        result = subprocess.run([sys.executable, "-m", "vbot"], env=env, cwd=tmp_path, text=True,
                                capture_output=True, timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"vbot: configuration error: VBOT_TOKEN_FILE={name}: the file has 2 hard links; vbot replaces it at "
            "each renewal, which leaves the other names with a spent token (and two vbots on two names would "
            "spend each other's): keep one name (remove the other links), or make the others symbolic links to it")
        assert_no_secret(fake, result.stderr)
    assert chat.connections == 0 and fake.requests == []
    (tmp_path / "b.json").unlink()
    (tmp_path / "b.json").symlink_to("vbot-token.json")
    assert load_tokens(tmp_path / "b.json") == load_tokens(tmp_path / "vbot-token.json")


def test_the_lock_is_shared_through_a_symbolic_link_and_released_by_its_holder(tmp_path):
    save_tokens(tmp_path / "vbot-token.json", some_tokens())
    (tmp_path / "link.json").symlink_to(tmp_path / "vbot-token.json")
    held = TokenFileLock(tmp_path / "vbot-token.json")
    held.acquire()
    script = "import sys; from pathlib import Path; from vbot.tokens import TokenFileLock; " \
             "TokenFileLock(Path(sys.argv[1])).acquire()"
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path / "link.json")], capture_output=True, text=True,
                           timeout=30)
    assert other.returncode == 1 and f"is in use by another vbot (pid {os.getpid()})" in other.stderr
    held.release()
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path / "link.json")], capture_output=True, text=True,
                           timeout=30)
    assert other.returncode == 0, other.stderr


def test_a_refused_refresh_token_says_what_can_cause_it(fake, tmp_path):
    keeper, clock = make_keeper(fake, tmp_path, validate_interval=3600)
    fake.refresh_tokens.clear()  # e.g. another process on a copy of the file used it
    fake.expire(keeper.tokens.access_token)
    clock.advance(3600)
    stop = ticks(keeper)
    assert isinstance(stop, CannotLogIn)
    assert str(stop) == ("Twitch refused to renew the token (/token: HTTP 400: Invalid refresh token): the refresh "
                         "token was already used (by another vbot on a copy of the token file?), access was revoked, "
                         'or it went unused for 30 days; run "vbot login" again')


# --- leftovers of a save interrupted by SIGKILL --------------------------------------------------------------


def leftover(folder: Path, name: str, tokens: Tokens | None = None, text: str | None = None) -> Path:
    path = folder / f".vbot-token.json.{name}.tmp"
    path.write_text(text if text is not None else tokens.to_json())
    return path


def test_a_leftover_holding_a_newer_pair_is_adopted_and_the_others_removed(tmp_path, caplog):
    path = tmp_path / "vbot-token.json"
    save_tokens(path, some_tokens(expires_at=1000.0))
    newer = some_tokens(access_token="n" * 30, refresh_token="m" * 50, expires_at=2000.0)
    leftover(tmp_path, "0123abcd", newer)
    leftover(tmp_path, "4567abcd", some_tokens(access_token="o" * 30, expires_at=500.0))  # older
    leftover(tmp_path, "89abcdef", text='{"access_token": "half')  # cut mid-write
    leftover(tmp_path, "feedbeef", some_tokens(expires_at=3000.0, client_id="anotherapp"))  # not ours
    (tmp_path / ".other.json.0123abcd.tmp").write_text("{}")  # not a token file's leftover: kept
    lock = TokenFileLock(path)
    lock.acquire()
    lock.release()
    assert load_tokens(path) == newer
    assert sorted(os.listdir(tmp_path)) == [".other.json.0123abcd.tmp", ".vbot-token.json.lock", "vbot-token.json"]
    assert "adopted the renewed token that an interrupted save left in .vbot-token.json.0123abcd.tmp" in caplog.text


def test_a_restart_after_a_sigkill_between_writing_and_renaming_logs_in(fake, chat, tmp_path, vbots):
    """vbot 0.2 left a .vbot-token.json.*.tmp in 12 of 60 kills during a save, and when the kill came
    after the write and before the rename, that file held the only valid pair: the restart renewed
    with the file's spent refresh token and stopped with exit 3. Here the kill leaves exactly that."""
    fake.token_lifetime = 4  # renewed every 2 s while running
    save(fake, tmp_path, lifetime=4)
    path = tmp_path / "vbot-token.json"
    env = bot_env(fake, chat, tmp_path)
    vbot, _ = start_and_join(vbots, env, tmp_path, chat, "killed")
    before = path.read_text()
    wait_until(lambda: vbot.alive() and path.read_text() != before, message="a renewed pair saved")
    vbot.process.send_signal(signal.SIGKILL)
    vbot.process.wait(10)
    leftover(tmp_path, "0a1b2c3d", text=path.read_text())  # written and fsync'ed, not yet renamed ...
    path.write_text(before)  # ... over the file, whose refresh token Twitch has consumed
    restarted, _ = start_and_join(vbots, env, tmp_path, chat, "restarted")
    assert restarted.stop() == 0
    assert sorted(entry.name for entry in tmp_path.iterdir() if entry.name.startswith(".")) == [
        ".vbot-token.json.lock"]
    assert "adopted the renewed token that an interrupted save left in .vbot-token.json.0a1b2c3d.tmp" \
        in restarted.log()
    assert "Invalid refresh token" not in restarted.log()


# --- symbolic links, FIFOs, devices, big and hostile files -------------------------------------------------------


def test_a_symbolic_link_is_written_through(tmp_path, fake):
    """vbot 0.2 replaced the link with a regular file at the first renewal; the target kept the spent
    refresh token."""
    real = tmp_path / "secrets"
    real.mkdir()
    (tmp_path / "bot").mkdir()
    link = tmp_path / "bot" / "vbot-token.json"
    keeper, clock = make_keeper(fake, real, expires_in=1200)
    link.symlink_to(real / "vbot-token.json")
    keeper.token_file = link
    clock.advance(600)
    ticks(keeper)
    assert fake.count("token:refresh") == 1
    assert link.is_symlink() and load_tokens(link) == keeper.tokens == load_tokens(real / "vbot-token.json")
    assert sorted(os.listdir(tmp_path / "bot")) == ["vbot-token.json"]
    assert sorted(os.listdir(real)) == ["vbot-token.json"]


@pytest.mark.parametrize("kind", ["fifo", "device", "big", "deep", "huge number", "Infinity"])
def test_a_token_file_that_is_not_one_is_one_line(tmp_path, kind):
    path = tmp_path / "vbot-token.json"
    good = json.loads(some_tokens().to_json())
    if kind == "fifo":
        os.mkfifo(path)  # vbot 0.2 waited for a writer forever
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "big":
        path.write_text(json.dumps({**good, "padding": "x" * 70_000}))
    elif kind == "deep":
        path.write_text("[" * 20_000 + "]" * 20_000)
    elif kind == "huge number":
        path.write_text(json.dumps(good).replace('"expires_at": ', '"expires_at": 1' + "0" * 400 + ", \"x\": "))
    else:
        path.write_text(json.dumps(good).replace('"expires_at": ', '"expires_at": Infinity, "x": '))
    with pytest.raises(TokenFileError) as caught:
        within(5, lambda: load_tokens(path))
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"VBOT_TOKEN_FILE={path}: ") and "vbot login" in message
    expected = {"fifo": "(a FIFO, not a file)", "device": "(a device, not a file)", "big": "larger than 64 KiB",
                "deep": "nested deeper than 32 levels", "huge number": "JSON number of 401 characters",
                "Infinity": "JSON number Infinity is not allowed"}[kind]
    assert expected in message


def test_an_access_token_too_long_for_the_pass_line_is_one_line(tmp_path):
    """The irc library refuses a PASS line over 512 bytes: the file's token is refused at start instead."""
    path = tmp_path / "vbot-token.json"
    path.write_text(some_tokens(access_token="a" * 500).to_json())
    with pytest.raises(TokenFileError) as caught:
        load_tokens(path)
    assert str(caught.value) == (
        f"VBOT_TOKEN_FILE={path}: not a vbot token file (an access token of 500 characters, too long for chat: "
        "'PASS oauth:<token>' and CR LF must fit in IRC's 512-byte line, so it may have 499); "
        'run "vbot login" again to replace it'
    )
    path.write_text(some_tokens(access_token="a" * 499).to_json())
    assert load_tokens(path).access_token == "a" * 499


def test_expires_at_out_of_range_is_one_line(tmp_path):
    path = tmp_path / "vbot-token.json"
    path.write_text(some_tokens(expires_at=1e300).to_json())
    with pytest.raises(TokenFileError, match="'expires_at' is not a time in epoch seconds"):
        load_tokens(path)


# --- a folder where renewed tokens cannot be saved ---------------------------------------------------------------


def without_root_override() -> None:
    """A ``preexec_fn``: the child, even as root, obeys file modes (Linux drops CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH and CAP_FOWNER from its capability bounding set: PR_CAPBSET_DROP)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):
        libc.prctl(24, capability, 0, 0, 0)


def test_a_folder_where_renewals_cannot_be_saved(fake, chat):
    """vbot 0.2 noticed only at the first renewal (~4 h after start) and said nothing at stop. Now:
    one WARNING at start, an ERROR for each renewal that could not be saved, and one again at stop."""
    folder = Path(tempfile.mkdtemp(prefix="vbot-readonly-"))
    try:
        fake.token_lifetime = 2
        access, refresh = fake.issue(expires_in=30)
        tokens = Tokens(access, refresh, time.time() + 30, CHAT_SCOPES, "vbot", "12345678", CLIENT_ID)
        save_tokens(folder / "vbot-token.json", tokens)
        folder.chmod(0o555)  # the token file can be read, nothing can be created beside it
        env = {**{key: value for key, value in os.environ.items() if not key.startswith("VBOT_")},
               **bot_env(fake, chat, folder), "VBOT_STATE_FILE": "/nonexistent-vbot-state/state.sqlite3"}
        log_path = Path(tempfile.mkdtemp(prefix="vbot-log-")) / "vbot.log"
        with open(log_path, "w") as log_file:
            process = subprocess.Popen([sys.executable, "-m", "vbot"], env=env, cwd=folder, stdout=log_file,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       preexec_fn=without_root_override)
        try:
            chat.wait_for(JOINED, timeout=15)
            wait_until(lambda: fake.count("token:refresh") >= 2, timeout=20,
                       message="two renewals (each could not be saved)")
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        finally:
            process.kill()
        log = log_path.read_text()
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)
    lines = log.splitlines()
    assert sum("WARNING" in line and "renewed tokens cannot be saved in" in line for line in lines) == 1
    assert all(" ERROR " in line for line in lines if "could not save the renewed token" in line)
    assert "ERROR vbot.keeper: stopping with a renewed token that was never saved" in log
    assert "Traceback" not in log
    assert_no_secret(fake, log)


def test_vbot_login_on_a_token_file_a_running_vbot_holds_refuses_before_saying_anything_else(tmp_path):
    """Trial: the "Asking for ... too" lines came first, as if the login were going ahead."""
    (tmp_path / "commands.toml").write_text('[filters]\nmode = "log"\n[x]\nreply = "{followage}"\n')
    held = TokenFileLock(tmp_path / "vbot-token.json")
    held.acquire()
    try:
        with FakeTwitchAuth(interval=1, pending_polls=0) as fake:
            result = run_vbot({"VBOT_CLIENT_ID": CLIENT_ID, "VBOT_AUTH_URL": fake.url}, "login", cwd=tmp_path)
    finally:
        held.release()
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"vbot login: VBOT_TOKEN_FILE=vbot-token.json is in use by another vbot (pid {os.getpid()}): two processes "
        "renewing one token lock each other out of it (refresh tokens work once); stop the other one, or give each "
        "bot its own token file"]
    assert fake.requests == []
