"""The .deb in a booted Debian: install, serve, control units over D-Bus, upgrade, roll back a
broken release, remove, purge.

Needs root, debootstrap and systemd-nspawn (TESTBED.md) and a built onedir tree in dist/atlashub
(`packaging/build.sh binary`). Three packages are made from that one tree: v1, v2 (same
program, higher version) and a broken v3 whose executable exits 1 at start.

The admin API cannot be reached with a dev token here (only `atlashub dev` sets one), so "data
intact" is checked on the control plane itself: a row written to it, and the node id, survive
the upgrade and the rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.nspawn import Container, booted_container

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "dist" / "atlashub"
ADMIN_PASSWORD = "packaging test password 1"  # a throw-away container's admin

pytestmark = pytest.mark.system


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y debootstrap systemd-container")
    if not (APP_DIR / "atlashub").exists():
        pytest.fail("no onedir build in dist/atlashub: run packaging/build.sh binary first")


def build_deb(version: str, out: Path, app_dir: Path = APP_DIR) -> Path:
    env = {**os.environ, "VERSION": version, "APP_DIR": str(app_dir), "OUT": str(out)}
    subprocess.run([str(ROOT / "packaging" / "build.sh"), "deb"], env=env, check=True, capture_output=True)
    (deb,) = out.glob(f"atlashub_{version}_*.deb")
    return deb


def broken_tree(tmp: Path) -> Path:
    """The same program, except that the executable exits 1 at once."""
    tree = tmp / "broken"
    shutil.copytree(APP_DIR, tree, symlinks=True)
    exe = tree / "atlashub"
    exe.unlink()
    exe.write_text('#!/bin/sh\necho "atlashub: deliberately broken release" >&2\nexit 1\n')
    exe.chmod(0o755)
    return tree


@pytest.fixture(scope="module")
def debs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    _require_tools()
    tmp = tmp_path_factory.mktemp("debs")
    return {
        "v1": build_deb("0.1.0-1", tmp),
        "v2": build_deb("0.1.0-2", tmp),
        "v3": build_deb("0.1.0-3", tmp, broken_tree(tmp)),
    }


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    _require_tools()
    with booted_container(tmp_path_factory.mktemp("nspawn")) as booted:
        yield booted


def installed_version(c: Container) -> str:
    out = c.run("dpkg-query", "-W", "-f=${db:Status-Abbrev} ${Version}", "atlashub", check=False)
    return " ".join(out.stdout.split())


def readyz(c: Container) -> tuple[int, str]:
    out = c.run("curl", "-s", "-m", "5", "-w", "\\n%{http_code}", "http://127.0.0.1:8081/readyz", check=False)
    body, _, code = out.stdout.rpartition("\n")
    return int(code or 0), body


def wait_ready(c: Container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = c.run("systemctl", "is-active", "atlashub", check=False).stdout.strip()
        if active == "active" and readyz(c)[0] == 200:
            return
        time.sleep(0.5)
    status = c.run("systemctl", "status", "--no-pager", "-l", "atlashub", check=False).stdout
    journal = c.run("journalctl", "-u", "atlashub", "--no-pager", "-n", "60", check=False).stdout
    raise AssertionError(f"atlashub not ready\n{status}\n{journal}")


def control(c: Container, sql: str) -> str:
    return c.run("sqlite3", "/var/lib/atlashub/control.db", sql).stdout.strip()


def upgrade_state(c: Container) -> dict[str, str]:
    return dict(json.loads(c.run("cat", "/var/lib/atlashub/upgrade-state.json").stdout))


class Admin:
    """The dashboard's admin API inside the container, signed in as a local admin (curl, cookie jar)."""

    JAR = "/root/admin-cookies"
    BASE = "http://127.0.0.1:8081"

    def __init__(self, c: Container, username: str, password: str) -> None:
        self.c = c
        c.sh(
            f"printf '%s\\n' '{password}' | runuser -u atlashub -- atlashub admin create"
            f" --config /etc/atlashub/atlashub.toml --username {username}"
        )
        status, body = self.call("POST", "/admin/api/session", {"username": username, "password": password})
        assert status == 200 and body["authenticated"], body
        self.csrf = str(body["csrf_token"])

    def call(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, Any]:
        cmd = ["curl", "-s", "-m", "60", "-X", method, "-b", self.JAR, "-c", self.JAR, "-w", "\n%{http_code}"]
        if body is not None:
            cmd += ["-H", "content-type: application/json", "-d", json.dumps(body)]
        if method != "GET" and hasattr(self, "csrf"):
            cmd += ["-H", f"x-csrf-token: {self.csrf}"]
        out = self.c.run(*cmd, self.BASE + path, check=False)
        text, _, code = out.stdout.rpartition("\n")
        return int(code or 0), json.loads(text) if text else None


def unit_show(c: Container, unit: str, prop: str) -> str:
    return c.run("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()


def check_unit_control(c: Container) -> None:
    """The daemon's own D-Bus code, as it runs in production: user atlashub, the hardened unit,
    the system bus, systemd and polkit with the package's rule."""
    assert unit_show(c, "polkit.service", "LoadState") == "loaded"  # started on demand, over D-Bus
    assert c.run("test", "-f", "/usr/share/polkit-1/rules.d/atlashub.rules", check=False).returncode == 0
    admin = Admin(c, "ops", ADMIN_PASSWORD)
    # unit_state reads the real ActiveState: the daemon is running, the (disabled) timer is not.
    status, state = admin.call("GET", "/admin/api/node/units/atlashub.service")
    assert status == 200, state
    assert (state["active_state"], state["sub_state"], state["load_state"]) == ("active", "running", "loaded")
    for unit in ("atlashub-upgrade.timer", "atlashub-upgrade.path"):
        status, state = admin.call("GET", f"/admin/api/node/units/{unit}")
        assert status == 200, state
        assert state["active_state"] == unit_show(c, unit, "ActiveState"), (unit, state)
    assert state["active_state"] == "active"  # the path unit is enabled and started at install

    # A product unit restarts (a new invocation of it), authorized by polkit for user atlashub.
    before = unit_show(c, "atlashub-upgrade.path", "InvocationID")
    status, body = admin.call("POST", "/admin/api/node/units/atlashub-upgrade.path/restart")
    assert status == 202 and body["job"].startswith("/org/freedesktop/systemd1/job/"), body
    deadline = time.monotonic() + 30
    while unit_show(c, "atlashub-upgrade.path", "InvocationID") == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unit_show(c, "atlashub-upgrade.path", "InvocationID") != before
    assert unit_show(c, "atlashub-upgrade.path", "ActiveState") == "active"

    # Other units: refused by the daemon's allow-list before any D-Bus call…
    for method, path in (
        ("POST", "/admin/api/node/units/ssh.service/restart"),
        ("POST", "/admin/api/node/units/systemd-hostnamed.service/restart"),
        ("GET", "/admin/api/node/units/ssh.service"),
    ):
        status, body = admin.call(method, path)
        assert (status, body["error"]["code"]) == (403, "unit_not_allowed"), (path, body)
    # …and by polkit itself: user atlashub may start or restart only the product's units.
    as_atlashub = ("runuser", "-u", "atlashub", "--", "systemctl", "--no-ask-password")
    refused = c.run(*as_atlashub, "restart", "systemd-hostnamed.service", check=False)
    assert refused.returncode != 0 and "Access denied" in refused.stderr, refused.stderr
    refused = c.run(*as_atlashub, "stop", "atlashub-upgrade.path", check=False)
    assert refused.returncode != 0 and "Access denied" in refused.stderr, refused.stderr
    assert unit_show(c, "atlashub-upgrade.path", "ActiveState") == "active"
    c.run(*as_atlashub, "restart", "atlashub-upgrade.path")

    # The daemon restarts itself: the answer arrives, then a new process becomes ready.
    old_pid = unit_show(c, "atlashub", "MainPID")
    status, body = admin.call("POST", "/admin/api/node/units/atlashub.service/restart")
    assert status == 202, body
    deadline = time.monotonic() + 60
    while unit_show(c, "atlashub", "MainPID") in (old_pid, "0") and time.monotonic() < deadline:
        time.sleep(0.2)
    wait_ready(c)
    assert unit_show(c, "atlashub", "MainPID") != old_pid
    assert unit_show(c, "atlashub", "NRestarts") == "0"  # a requested restart, not a crash

    audited = control(
        c, "SELECT target || ' ' || outcome FROM audit_logs WHERE action = 'node.unit_restart' ORDER BY id"
    ).splitlines()
    assert audited == [
        "atlashub-upgrade.path success",
        "ssh.service failure",
        "systemd-hostnamed.service failure",
        "atlashub.service success",
    ], audited


def test_install_upgrade_rollback_remove_purge(container: Container, debs: dict[str, Path]) -> None:
    c = container
    for name, deb in debs.items():
        c.copy_in(deb, f"/root/{name}.deb")

    # --- install v1: user, PostgreSQL role, init, enabled and running, ready.
    c.run("apt-get", "install", "-y", "-q", "/root/v1.deb", env={"DEBIAN_FRONTEND": "noninteractive"})
    assert installed_version(c) == "ii 0.1.0-1"
    wait_ready(c)
    assert c.run("systemctl", "is-enabled", "atlashub").stdout.strip() == "enabled"
    assert c.run("systemctl", "is-enabled", "atlashub-upgrade.path").stdout.strip() == "enabled"
    assert c.run("systemctl", "is-enabled", "atlashub-upgrade.timer", check=False).stdout.strip() == "disabled"
    assert c.run("systemctl", "show", "-p", "User", "--value", "atlashub").stdout.strip() == "atlashub"
    code, body = readyz(c)
    assert code == 200 and json.loads(body)["status"] == "ready"
    assert c.run("readlink", "/usr/bin/atlashub").stdout.strip() == "../lib/atlashub/atlashub"
    assert c.run("atlashub", "version").stdout.startswith("atlashub 0.1.0 (")
    # Permissions: config readable by the service user only; state private.
    assert c.run("stat", "-c", "%a %U:%G", "/etc/atlashub/atlashub.toml").stdout.strip() == "640 root:atlashub"
    assert c.run("stat", "-c", "%a %U:%G", "/var/lib/atlashub").stdout.strip() == "700 atlashub:atlashub"
    assert c.run("stat", "-c", "%a %U", "/var/lib/atlashub/master.key").stdout.strip() == "600 atlashub"
    # The daemon's PostgreSQL role administers the dedicated cluster (decision 0006).
    role = c.run(
        "runuser",
        "-u",
        "postgres",
        "--",
        "psql",
        "-qAtX",
        "-c",
        "SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = 'atlashub'",
    ).stdout.strip()
    assert role.startswith("t|")
    # The sandbox holds: only CAP_NET_ADMIN, no new privileges.
    main_pid = c.run("systemctl", "show", "-p", "MainPID", "--value", "atlashub").stdout.strip()
    status = c.run("cat", f"/proc/{main_pid}/status").stdout
    assert "NoNewPrivs:\t1" in status
    cap_eff = next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:"))
    assert int(cap_eff, 16) == 1 << 12  # CAP_NET_ADMIN
    check_unit_control(c)

    # Data the upgrade must keep: a row written to the control plane, and the node id.
    node_id = control(c, "SELECT value FROM platform_meta WHERE key = 'node_id'")
    assert node_id
    c.run("systemctl", "stop", "atlashub")
    control(c, "INSERT INTO platform_meta (key, value) VALUES ('packaging_test', 'written by v1')")
    marker = "SELECT value FROM platform_meta WHERE key = 'packaging_test'"
    c.run("systemctl", "start", "atlashub")
    wait_ready(c)

    # --- upgrade to v2 through the upgrade script: healthy, recorded, previous release kept.
    out = c.run("/usr/libexec/atlashub/atlashub-upgrade", "/root/v2.deb", env={"ATLASHUB_UPGRADE_STABLE": "5"})
    assert installed_version(c) == "ii 0.1.0-2", out.stderr
    state = upgrade_state(c)
    assert state["outcome"] == "upgraded" and state["from_version"] == "0.1.0-1" and state["to_version"] == "0.1.0-2"
    wait_ready(c)
    assert control(c, "SELECT value FROM platform_meta WHERE key = 'node_id'") == node_id
    assert control(c, marker) == "written by v1"
    kept = c.run("ls", "/var/cache/atlashub/releases").stdout.split()
    assert sorted(kept) == ["atlashub_0.1.0-1_amd64.deb", "atlashub_0.1.0-2_amd64.deb"]

    # --- a broken v3: the gate fails, v2 comes back by itself within 60 s, data intact.
    started = time.monotonic()
    out = c.run(
        "/usr/libexec/atlashub/atlashub-upgrade",
        "/root/v3.deb",
        check=False,
        env={"ATLASHUB_UPGRADE_STABLE": "5"},
        timeout=180,
    )
    elapsed = time.monotonic() - started
    assert out.returncode == 2, out.stderr[-3000:]
    assert elapsed < 60, f"rollback took {elapsed:.0f} s"
    print(f"broken release rolled back in {elapsed:.1f} s")
    assert installed_version(c) == "ii 0.1.0-2"
    state = upgrade_state(c)
    assert state["outcome"] == "rolled_back", state
    assert state["to_version"] == "0.1.0-3" and state["running_version"] == "0.1.0-2"
    wait_ready(c)
    assert control(c, "SELECT value FROM platform_meta WHERE key = 'node_id'") == node_id
    assert control(c, marker) == "written by v1"

    # --- remove keeps configuration and data; purge deletes them.
    c.run("apt-get", "remove", "-y", "-q", "atlashub", env={"DEBIAN_FRONTEND": "noninteractive"})
    assert c.run("systemctl", "is-active", "atlashub", check=False).stdout.strip() != "active"
    assert not c.run("test", "-e", "/usr/lib/atlashub/atlashub", check=False).returncode == 0
    assert c.run("test", "-f", "/var/lib/atlashub/control.db", check=False).returncode == 0
    assert c.run("test", "-f", "/etc/atlashub/atlashub.toml", check=False).returncode == 0
    c.run("apt-get", "purge", "-y", "-q", "atlashub", env={"DEBIAN_FRONTEND": "noninteractive"})
    assert c.run("test", "-e", "/var/lib/atlashub", check=False).returncode != 0
    assert c.run("test", "-e", "/etc/atlashub", check=False).returncode != 0
    assert c.run("dpkg-statoverride", "--list", "/etc/atlashub/atlashub.toml", check=False).returncode != 0
    assert installed_version(c) == ""
