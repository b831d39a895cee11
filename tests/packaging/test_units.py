"""The systemd units and the package recipe, checked without booting anything."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
UNITS = ("atlashub.service", "atlashub-upgrade.service", "atlashub-upgrade.timer", "atlashub-upgrade.path")
MAX_EXPOSURE = 2.0


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value in order (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: key outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a key=value line: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{section}.{key} set {len(values)} times"
    return values[0]


def test_service_settings() -> None:
    unit = parse_unit(SYSTEMD / "atlashub.service")
    service = unit["Service"]
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "Restart") == "on-failure"
    assert 0 < int(one(unit, "Service", "WatchdogSec")) <= 120
    assert one(unit, "Service", "User") == "atlashub"
    assert one(unit, "Service", "StateDirectory") == "atlashub"
    assert one(unit, "Service", "ConfigurationDirectory") == "atlashub"
    assert one(unit, "Service", "LoadCredential") == "master-key:/var/lib/atlashub/master.key"
    assert one(unit, "Service", "ExecStart").split()[:2] == ["/usr/bin/atlashub", "serve"]
    # Only the capability WireGuard management needs, nothing else, and no way to gain more.
    assert one(unit, "Service", "CapabilityBoundingSet") == "CAP_NET_ADMIN"
    assert one(unit, "Service", "AmbientCapabilities") == "CAP_NET_ADMIN"
    assert one(unit, "Service", "NoNewPrivileges") == "yes"
    assert one(unit, "Service", "ProtectSystem") == "strict"
    assert "/var/lib/atlashub" in one(unit, "Service", "ReadWritePaths").split()
    for key in ("PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelModules", "RestrictSUIDSGID"):
        assert service[key] == ["yes"], key
    assert "StartLimitBurst" in unit["Unit"], "a crash loop must end in 'failed' for the upgrade gate"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_upgrade_units_fit_together() -> None:
    service = parse_unit(SYSTEMD / "atlashub-upgrade.service")
    timer = parse_unit(SYSTEMD / "atlashub-upgrade.timer")
    path = parse_unit(SYSTEMD / "atlashub-upgrade.path")
    assert one(service, "Service", "Type") == "oneshot"
    exec_start = one(service, "Service", "ExecStart").split()
    assert exec_start == ["/usr/libexec/atlashub/atlashub-upgrade", "--from-request"]
    assert one(timer, "Timer", "Unit") == "atlashub-upgrade.service"
    assert one(path, "Path", "Unit") == "atlashub-upgrade.service"
    # The path unit watches the file the upgrade script consumes.
    script = (ROOT / "packaging/upgrade/atlashub-upgrade").read_text()
    request = one(path, "Path", "PathExists")
    assert f"readonly REQUEST=$STATE_DIR/{Path(request).name}" in script
    assert request.startswith("/var/lib/atlashub/")


def test_package_recipe_installs_what_the_units_run() -> None:
    recipe = (ROOT / "packaging/deb/nfpm.yaml").read_text()
    destinations = set(re.findall(r"dst: (\S+)", recipe))
    for name in UNITS:
        assert f"/lib/systemd/system/{name}" in destinations, name
        assert re.search(rf"src: systemd/{re.escape(name)}\n", recipe), name
    installed = {"/usr/bin/atlashub", "/usr/libexec/atlashub/atlashub-upgrade", "/etc/atlashub/atlashub.toml"}
    assert installed <= destinations
    for dep in ("postgresql", "wireguard-tools", "sqlite3", "curl", "adduser"):
        assert re.search(rf"^  - {dep}\b", recipe, re.M), dep


def test_packaged_config_is_valid() -> None:
    config = load_config(ROOT / "packaging/deb/atlashub.toml", env={})
    assert config.node.state_dir == "/var/lib/atlashub"
    assert config.postgres.user == "atlashub"
    assert config.postgres.host == "/var/run/postgresql"
    assert config.postgres.password_file == ""  # peer authentication: no password exists
    assert config.dashboard.listen.startswith("127.0.0.1:")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in UNITS:
        shutil.copy(SYSTEMD / name, tmp_path / name)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in UNITS)],
        capture_output=True,
        text=True,
        check=False,
    )
    # The executables exist only once the package is installed.
    problems = [
        line
        for line in (out.stdout + out.stderr).splitlines()
        if line.strip() and "is not executable: No such file or directory" not in line
    ]
    assert problems == []


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_security_exposure_at_most_two() -> None:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(SYSTEMD / "atlashub.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for atlashub\.service: (\d+\.\d+)", out.stdout)
    assert match, out.stdout + out.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, out.stdout
