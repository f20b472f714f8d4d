"""What the repository ships besides the code: README and docs/ (a map that stays short, links
that lead somewhere), the systemd unit, .ci/run, .gitignore, and the hint that
``python -m vbot`` gives when run from the folder above a clone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vbot.cli import EXIT_CONFIG, EXIT_LOGIN
from vbot.config import SETTINGS
from vbot.facts import Known, Stream, uptime_text

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_LIMIT = 20 * 1024
"""Bytes: README is the map a newcomer reads in ten minutes; details live in docs/ (issue 17)."""
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
UNIT = ROOT / "contrib" / "vbot.service"


# --- README and docs ------------------------------------------------------------------------------


def test_readme_stays_a_short_map():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md has {size} bytes, over {README_LIMIT}: move details to docs/"


def shell_blocks(text: str) -> list[str]:
    """The contents of the ```sh blocks of a Markdown text."""
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)]


def test_readme_has_one_command_to_run_the_bot_and_one_to_run_the_tests_and_ci_runs_that_one():
    blocks = shell_blocks(README.read_text(encoding="utf-8"))
    assert "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/vbot --console" in blocks
    tests = [block for block in blocks if "pytest" in block]
    assert len(tests) == 1 and "\n" not in tests[0]
    assert tests[0] in (ROOT / ".ci" / "run").read_text().splitlines()


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lowercase, punctuation but ``-`` and ``_``
    dropped, spaces made ``-``.

    >>> github_anchor("Sending limits, duplicates and cooldowns")
    'sending-limits-duplicates-and-cooldowns'
    >>> github_anchor("!count_viewers")
    'count_viewers'
    """
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    return {github_anchor(heading) for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_within_the_repository_leads_somewhere(document):
    text = re.sub(r"^```.*?^```", "", document.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.exists(), f"{document.name}: {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{document.name}: {target}: no such heading"


# --- the systemd unit -----------------------------------------------------------------------------


def unit_settings() -> dict[str, list[str]]:
    """``key`` → every value it is given in contrib/vbot.service, in order."""
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


HARDENING = {  # issue 17 item 2
    "Type": "notify", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "UMask": "0077", "CapabilityBoundingSet": "", "LimitCORE": "0",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "StateDirectory": "vbot", "Restart": "on-failure",
}


def test_the_unit_is_hardened():
    settings = unit_settings()
    assert {key: settings.get(key) for key in HARDENING} == {key: [value] for key, value in HARDENING.items()}
    assert settings["SystemCallFilter"][0] == "@system-service"
    assert int(settings["WatchdogSec"][0]) > 0 and settings["TimeoutStartSec"]
    assert settings["ExecStart"][0].startswith("/opt/vbot/bin/vbot --env-file /etc/vbot/vbot.env")


def test_the_unit_keeps_state_in_its_state_directory_and_is_not_restarted_when_that_cannot_help():
    settings = unit_settings()
    environment = dict(assignment.split("=", 1) for assignment in settings["Environment"][0].split())
    assert set(environment) == {"VBOT_TOKEN_FILE", "VBOT_STATE_FILE"} <= {setting.name for setting in SETTINGS}
    assert all(path.startswith("/var/lib/vbot/") for path in environment.values())  # StateDirectory=vbot
    assert settings["WorkingDirectory"] == ["/var/lib/vbot"]
    assert settings["RestartPreventExitStatus"] == [f"{EXIT_CONFIG} {EXIT_LOGIN}"]


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd)")
def test_systemd_analyze_verify_finds_nothing_wrong_with_the_unit(tmp_path):
    """The unit as installed names /opt/vbot/bin/vbot, which does not exist here (verify
    checks that ExecStart is executable): the copy verified runs this Python instead."""
    unit = UNIT.read_text()
    assert "\nExecStart=/opt/vbot/bin/vbot " in unit
    copy = tmp_path / "vbot.service"
    copy.write_text(unit.replace("\nExecStart=/opt/vbot/bin/vbot ", f"\nExecStart={sys.executable} "))
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "vbot.service" in line]
    assert result.returncode == 0 and complaints == [], result.stdout + result.stderr


# --- small things ---------------------------------------------------------------------------------


IS_GIT_CHECKOUT = shutil.which("git") is not None and (ROOT / ".git").exists()


@pytest.mark.skipif(not IS_GIT_CHECKOUT, reason="needs git and a git checkout")
@pytest.mark.parametrize("name", [
    ".env", "vbot-token.json", "vbot-state.sqlite3", "vbot-state.sqlite3-wal", "commands.toml",
    ".vbot-token.json.0a1b2c3d.tmp",  # vbot/tokens.py writes the token file there first, then renames it
    ".vbot-token.json.lock", ".mybot.json.lock",  # vbot/tokens.py TokenFileLock, beside any VBOT_TOKEN_FILE
])
def test_secrets_and_state_are_git_ignored(name):
    result = subprocess.run(["git", "check-ignore", "--no-index", "--quiet", name], cwd=ROOT, timeout=30, check=False)
    assert result.returncode == 0, f"{name} is not git-ignored"


def test_python_m_vbot_above_a_clone_named_vbot_says_what_to_do_in_one_line(tmp_path):
    """There ``vbot`` is the clone, a namespace package: its __main__.py answers, not vbot's."""
    (tmp_path / "vbot").symlink_to(ROOT, target_is_directory=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "vbot", "--version"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == ("vbot: python -m vbot, run from the folder above the clone, finds the folder vbot/ "
                             "instead of the package: cd vbot first, or run vbot/.venv/bin/vbot\n")


def test_the_systemd_steps_make_the_venv_with_a_python_the_service_user_can_run():
    """Trial: a venv made with root's pyenv Python (under /root) cannot start as the vbot user."""
    steps = next(block for block in shell_blocks((ROOT / "docs" / "operations.md").read_text(encoding="utf-8"))
                 if "useradd" in block)
    venv = [line for line in steps.splitlines() if "-m venv /opt/vbot" in line]
    assert venv and venv[0].startswith("/usr/bin/python3 -m venv /opt/vbot"), venv


def test_readme_uptime_row_names_every_reply_of_uptime():
    """Trial: README said `Live for 2h 14m`, or `Offline`; without Twitch's API's answer it is neither."""
    row = next(line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `!uptime`"))
    for known in (Known(10_000.0, Stream(True, 5, 10_000.0 - 2 * 3600 - 14 * 60)), Known(0.0, Stream(False)), Known()):
        assert f"`{uptime_text(known)}`" in row
