"""The appliance image: images/build-rootfs.sh for amd64, booted under systemd-nspawn, twice.

The recipe is the Pi image's (the arm64 build only adds the kernel and firmware). It starts from the
cached debootstrap tree of tests/packaging to keep the run short. First boot must apply
/boot/firmware/atlashub.toml (name, roles, SSH, firewall, new keys) and bring atlashub up; a second
boot must not apply a new boot file again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.nspawn import Container, _leader_pid, cached_rootfs
from tests.packaging.test_nspawn_deb import wait_ready

ROOT = Path(__file__).resolve().parents[2]
BOOT_FILE = """\
# written by the test
name = "pi-test"
roles = ["gateway", "dashboard", "scheduler", "backups"]
ssh_user = "ops"
ssh_authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk8xqg2Vf5nVnQjVQ1e1Xq6r3qv0rP0mH2r0nS7oQ9a test@ci"
admin_setup_code = "TEST-CODE-ABCD-EFGH"
"""

pytestmark = pytest.mark.system


def built_deb() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y debootstrap systemd-container")
    debs = sorted((ROOT / "dist").glob("atlashub_*_amd64.deb"))
    if not debs:
        pytest.skip(
            "no dist/atlashub_*_amd64.deb here: run packaging/build.sh all (scripts/test does it before pytest)"
        )
    return debs[-1]


@contextlib.contextmanager
def booted(root: Path, log_path: Path) -> Iterator[Container]:
    """Boot ``root`` itself (not a copy) with a private network; power it off afterwards."""
    log = open(log_path, "ab")  # closed in finally
    name = f"atlashub-image-{uuid.uuid4().hex[:8]}"
    proc = subprocess.Popen(
        ["systemd-nspawn", "-D", str(root), "--boot", "--register=no", "--keep-unit", "--private-network", "-M", name],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        container = Container(name, root, proc, _leader_pid(proc.pid))
        container.wait_running(timeout=180)
        yield container
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    deb = built_deb()
    out = tmp_path_factory.mktemp("image") / "rootfs"
    env = {**os.environ, "BASE": str(cached_rootfs()), "DEB": str(deb)}
    subprocess.run([str(ROOT / "images" / "build-rootfs.sh"), "amd64", str(out)], env=env, check=True, timeout=900)
    try:
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)


def digest(c: Container, path: str) -> str:
    return hashlib.sha256((c.root / path.lstrip("/")).read_bytes()).hexdigest()


def test_image_first_boot_applies_the_boot_file_once(rootfs: Path, tmp_path: Path) -> None:
    # The image carries no machine-specific secrets.
    assert not list((rootfs / "var/lib/atlashub").iterdir())
    assert not list((rootfs / "etc/ssh").glob("ssh_host_*"))
    assert (rootfs / "etc/machine-id").read_text() == ""
    boot = rootfs / "boot/firmware"
    (boot / "atlashub.toml").write_text(BOOT_FILE)

    with booted(rootfs, tmp_path / "boot1.log") as c:
        wait_ready(c, timeout=120)
        assert c.run("systemctl", "is-active", "atlashub-firstboot").stdout.strip() == "active"
        config = (rootfs / "etc/atlashub/atlashub.toml").read_text()
        assert 'name = "pi-test"' in config
        assert 'roles = ["gateway", "dashboard", "scheduler", "backups"]' in config
        assert c.run("hostname").stdout.strip() == "pi-test"
        # The boot file is consumed; its record keeps no secret.
        assert not (boot / "atlashub.toml").exists()
        applied = (boot / "atlashub.toml.applied").read_text()
        assert "TEST-CODE" not in applied and 'name = "pi-test"' in applied
        assert c.run("cat", "/var/lib/atlashub/admin-setup-code").stdout.strip() == "TEST-CODE-ABCD-EFGH"
        assert c.run("stat", "-c", "%a %U", "/var/lib/atlashub/admin-setup-code").stdout.strip() == "600 atlashub"
        # SSH: key-only, no root login, the admin's key in place, host keys made here.
        sshd = c.run("sshd", "-T").stdout
        assert "permitrootlogin no" in sshd and "passwordauthentication no" in sshd
        assert "test@ci" in c.run("cat", "/home/ops/.ssh/authorized_keys").stdout
        assert c.run("sh", "-c", "ls /etc/ssh/ssh_host_ed25519_key").returncode == 0
        # Firewall defaults are saved (enabling needs netfilter, which a container may lack).
        rules = c.run("cat", "/etc/ufw/user.rules").stdout
        for port in ("22", "80", "443", "51820"):
            assert f"--dport {port} " in rules, rules
        assert "ENABLED=yes" in c.run("cat", "/etc/ufw/ufw.conf").stdout
        # New keys, made on this machine.
        assert c.run("test", "-s", "/var/lib/atlashub/master.key", check=False).returncode == 0
        first = {p: digest(c, p) for p in ("/var/lib/atlashub/master.key", "/var/lib/atlashub-firstboot/done")}
        # A new boot file on the card: the next boot must leave it alone.
        (boot / "atlashub.toml").write_text(BOOT_FILE.replace("pi-test", "pi-other"))

    with booted(rootfs, tmp_path / "boot2.log") as c:
        wait_ready(c, timeout=120)
        assert "ConditionResult=no" in c.run("systemctl", "show", "-p", "ConditionResult", "atlashub-firstboot").stdout
        assert 'name = "pi-test"' in (rootfs / "etc/atlashub/atlashub.toml").read_text()
        assert (boot / "atlashub.toml").exists()
        assert {p: digest(c, p) for p in first} == first
