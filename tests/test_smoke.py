"""Smoke: the bot answers !version on a real IRC server (ngircd, or miniircd where ngircd is
missing), on miniircd always, and on the scripted Twitch server; a test that needs ngircd is
skipped without it, saying so, unless REQUIRE_NGIRCD=1 (CI) turns that into a failure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import (
    NGIRCD_MISSING,
    REQUIRE_NGIRCD,
    TOKEN,
    BotThread,
    IrcClient,
    Miniircd,
    Ngircd,
    make_config,
    needs_ngircd,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent


def assert_answers_version(port: int) -> None:
    bot = BotThread(make_config(port)).start()
    try:
        alice = IrcClient(port, "alice", f"oauth:{TOKEN}")
        alice.join("#test")
        wait_until(lambda: bot.bot.viewer_count("#test") == 1)
        start = alice.say("#test", "!version")
        assert alice.wait_for_reply("#test", "Version: .*", start).startswith("Version: ")
        alice.close()
    finally:
        assert bot.stop() == 0


def test_version_on_a_real_server(ircd):
    assert_answers_version(ircd.port)


def test_version_on_miniircd(servers):
    """The stand-in for ngircd on a fresh machine, run everywhere (CI has ngircd)."""
    assert_answers_version(servers(Miniircd()).port)


def test_version_on_twitch(twitch):
    bot = BotThread(make_config(twitch.port)).start()
    try:
        twitch.wait_for(r"^JOIN #test$")
        twitch.chat("#test", "ronni", "!version", "badges=;mod=0")
        twitch.wait_for(r"^PRIVMSG #test :Version: ")
        assert twitch.received[:4] == ["CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands",
                                       f"PASS oauth:{TOKEN}", "NICK vbot", "USER vbot 0 * :vbot"]
    finally:
        assert bot.stop() == 0


def test_a_missing_ngircd_fails_with_one_line_saying_how_to_install_it():
    with pytest.raises(pytest.fail.Exception) as failed:
        Ngircd(binary="/nonexistent/ngircd").start()
    assert str(failed.value) == NGIRCD_MISSING
    assert "apt-get install ngircd" in NGIRCD_MISSING and "\n" not in NGIRCD_MISSING


def test_without_ngircd_a_test_that_needs_it_is_skipped_saying_why(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(REQUIRE_NGIRCD, raising=False)
    mark = needs_ngircd("miniircd has no channel operators").mark
    assert mark.args == (True,)
    assert mark.kwargs["reason"] == ("needs ngircd (miniircd has no channel operators), which is not on PATH: "
                                     "apt-get install ngircd")
    monkeypatch.setenv(REQUIRE_NGIRCD, "1")
    assert needs_ngircd("miniircd has no channel operators").mark.args == (False,)  # it runs, and fails (below)


def test_ci_turns_that_skip_into_a_failure_of_one_line_without_traceback(tmp_path):
    """REQUIRE_NGIRCD=1, no ngircd on PATH: pytest reports one line saying how to install it."""
    test = tmp_path / "test_needs_ngircd.py"
    test.write_text("from tests.support import Ngircd, needs_ngircd\n\n"
                    "@needs_ngircd('miniircd has no channel operators')\n"
                    "def test_it():\n    Ngircd().start()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": str(tmp_path), REQUIRE_NGIRCD: "1"}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-o", "addopts=",
                             "--rootdir", str(tmp_path), str(test)],
                            cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60, env=env)
    assert result.returncode == 1, result.stdout
    assert NGIRCD_MISSING in result.stdout and "skipped" not in result.stdout
    assert "Traceback" not in result.stdout and "FileNotFoundError" not in result.stdout
    assert result.stdout.count("apt-get install ngircd") <= 2, result.stdout  # the failure and the summary
