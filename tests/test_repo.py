"""What the repository ships besides the code: the systemd unit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vbot.cli import EXIT_CONFIG, EXIT_LOGIN
from vbot.config import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "contrib" / "vbot.service"


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
