"""Smoke: the bot answers !version on ngircd and on the scripted Twitch server; without ngircd,
the tests that need it say how to install it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import (
    NGIRCD_MISSING,
    TOKEN,
    BotThread,
    IrcClient,
    Ngircd,
    make_config,
)

ROOT = Path(__file__).resolve().parent.parent


def test_version_on_ngircd(ngircd):
    bot = BotThread(make_config(ngircd.port)).start()
    try:
        alice = IrcClient(ngircd.port, "alice", f"oauth:{TOKEN}")
        alice.join("#test")
        from tests.support import wait_until
        wait_until(lambda: bot.bot.viewer_count("#test") == 1)
        start = alice.say("#test", "!version")
        assert alice.wait_for_reply("#test", "Version: .*", start).startswith("Version: ")
    finally:
        assert bot.stop() == 0


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


def test_without_ngircd_the_test_fails_with_one_line_saying_how_to_install_it():
    with pytest.raises(pytest.fail.Exception) as failed:
        Ngircd(binary="/nonexistent/ngircd").start()
    assert str(failed.value) == NGIRCD_MISSING
    assert "apt-get install ngircd" in NGIRCD_MISSING and "\n" not in NGIRCD_MISSING


def test_without_ngircd_pytest_shows_no_traceback(tmp_path):
    test = tmp_path / "test_needs_ngircd.py"
    test.write_text("from tests.support import Ngircd\n\n"
                    "def test_it():\n    Ngircd(binary='/nonexistent/ngircd').start()\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                             "--rootdir", str(tmp_path), str(test)],
                            cwd=tmp_path, capture_output=True, text=True, check=False,
                            timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1
    assert NGIRCD_MISSING in result.stdout
    assert "Traceback" not in result.stdout and "FileNotFoundError" not in result.stdout
    assert result.stdout.count("apt-get install ngircd") <= 2, result.stdout  # the failure and the summary
