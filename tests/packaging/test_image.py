"""The appliance image: images/build-rootfs.sh for amd64, made into a disk image by
images/make-image.sh, and booted under systemd-nspawn, twice.

The recipe is the Pi image's (the arm64 build only adds the kernel and firmware). It starts from the
cached debootstrap tree of tests/packaging to keep the run short. The disk image is read back
without mounting it (sfdisk, mtools, debugfs: no loop devices here) and must come out the same,
byte for byte, when made twice from the same tree and SOURCE_DATE_EPOCH. First boot must apply
/boot/firmware/atlashub.toml (name, roles, SSH, firewall, new keys, the admin setup code) and bring
atlashub up; a second boot must not apply a new boot file again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.nspawn import Container, boot, cached_rootfs
from tests.packaging.test_nspawn_deb import wait_ready

ROOT = Path(__file__).resolve().parents[2]
BOOT_FILE = """\
# written by the test
name = "pi-test"
roles = ["gateway", "dashboard", "scheduler", "backups"]
ssh_user = "ops"
ssh_authorized_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKk8xqg2Vf5nVnQjVQ1e1Xq6r3qv0rP0mH2r0nS7oQ9a test@ci"
admin_setup_code = "K7QW-M2XR-9TVB-H4PN"
"""
SETUP_CODE = "K7QW-M2XR-9TVB-H4PN"
PASSWORD = "correct horse battery"
SOURCE_DATE_EPOCH = "1700000000"
MIB = 1024 * 1024
BOOT_START, BOOT_SIZE, ROOT_START = 4 * MIB, 512 * MIB, 516 * MIB  # images/make-image.sh's layout

pytestmark = pytest.mark.system


def built_deb() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "sfdisk", "mkfs.vfat", "mcopy", "debugfs"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y debootstrap systemd-container fdisk dosfstools mtools")
    debs = sorted((ROOT / "dist").glob("atlashub_*_amd64.deb"))
    if not debs:
        pytest.skip(
            "no dist/atlashub_*_amd64.deb here: run packaging/build.sh all (scripts/test does it before pytest)"
        )
    return debs[-1]


def booted(root: Path, log_path: Path) -> contextlib.AbstractContextManager[Container]:
    """Boot ``root`` itself (not a copy) with a private network; power it off afterwards."""
    return boot(
        root, log_path, ["--private-network"], name_prefix="atlashub-image", quiet=False, timeout=180, log_mode="ab"
    )


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


@pytest.fixture(scope="module")
def disk_images(rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The disk image made twice from the same (not yet booted) tree and SOURCE_DATE_EPOCH."""
    out = tmp_path_factory.mktemp("disk")
    boot_toml = out / "atlashub.toml"
    boot_toml.write_text(BOOT_FILE)
    env = {**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "BOOT_TOML": str(boot_toml)}
    made = (out / "first.img", out / "second.img")
    for image in made:
        subprocess.run(
            [str(ROOT / "images" / "make-image.sh"), str(rootfs), str(image)], env=env, check=True, timeout=600
        )
    try:
        yield made
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=120).stdout


def blkid(image: Path, offset: int) -> str:
    """What blkid finds at ``offset``: TYPE, LABEL, UUID… (not the file's name)."""
    out = run("blkid", "-p", "-o", "export", "-O", str(offset), str(image))
    return "\n".join(line for line in out.splitlines() if not line.startswith("DEVNAME="))


def debugfs(image: Path, request: str) -> str:
    """One debugfs request against the image's root partition, read in place."""
    out = subprocess.run(
        ["debugfs", "-R", request, f"{image}?offset={ROOT_START}"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and "not found" not in out.stderr, out.stderr
    return out.stdout


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MIB):
            h.update(chunk)
    return h.hexdigest()


def test_disk_image_layout_contents_and_reproducibility(disk_images: tuple[Path, Path]) -> None:
    image, again = disk_images
    table = json.loads(run("sfdisk", "--json", str(image)))["partitiontable"]
    assert table["label"] == "dos" and table["sectorsize"] == 512
    boot, root = table["partitions"]
    assert (boot["start"] * 512, boot["size"] * 512, boot["type"], boot.get("bootable")) == (
        BOOT_START,
        BOOT_SIZE,
        "c",
        True,
    )
    assert (root["start"] * 512, root["type"]) == (ROOT_START, "83")
    assert (root["start"] + root["size"]) * 512 == image.stat().st_size  # the root partition ends the disk
    # Both file systems carry the labels /etc/fstab and cmdline.txt mount them by.
    probe = {name: blkid(image, offset) for name, offset in (("boot", BOOT_START), ("root", ROOT_START))}
    assert "TYPE=vfat" in probe["boot"] and "LABEL=ATLASBOOT" in probe["boot"], probe
    assert "TYPE=ext4" in probe["root"] and "LABEL=atlasroot" in probe["root"], probe

    # The boot partition: the boot file given at build time, its template, and the kernel command line.
    fat = f"{image}@@{BOOT_START}"
    names = run("mdir", "-b", "-i", fat, "::/").split()
    assert {"::/atlashub.toml", "::/atlashub.toml.example", "::/cmdline.txt"} <= set(names), names
    assert run("mtype", "-i", fat, "::/atlashub.toml") == BOOT_FILE
    assert "root=LABEL=atlasroot " in run("mtype", "-i", fat, "::/cmdline.txt")

    # The root partition: the product, the first-boot units, the fstab; no secret of the build machine.
    assert "Type: symlink" in debugfs(image, "stat /usr/bin/atlashub")
    binary = debugfs(image, "stat /usr/lib/atlashub/atlashub")
    assert "Type: regular" in binary and "Mode:  0755" in binary, binary
    assert "Type: regular" in debugfs(image, "stat /usr/libexec/atlashub/atlashub-firstboot")
    assert "Type: regular" in debugfs(image, "stat /lib/systemd/system/atlashub.service")
    fstab = debugfs(image, "cat /etc/fstab")
    assert "LABEL=atlasroot\t/\text4" in fstab and "LABEL=ATLASBOOT\t/boot/firmware\tvfat" in fstab, fstab
    listing = debugfs(image, "ls -p /boot/firmware").split()
    assert [e.split("/")[5] for e in listing] == [".", ".."], listing  # the mount point only
    assert [e.split("/")[5] for e in debugfs(image, "ls -p /var/lib/atlashub").split()] == [".", ".."]
    assert "Size: 0" in debugfs(image, "stat /etc/machine-id")
    check = subprocess.run(["e2fsck", "-fn", f"{image}?offset={ROOT_START}"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr

    # Same tree, same SOURCE_DATE_EPOCH: the same image, byte for byte (ids, times, layout).
    tables = [json.loads(run("sfdisk", "--json", str(i)))["partitiontable"] for i in disk_images]
    assert tables[0]["id"] == tables[1]["id"] and tables[0]["id"] != "0x00000000"
    assert blkid(again, ROOT_START) == probe["root"] and blkid(again, BOOT_START) == probe["boot"]  # UUIDs, labels
    assert file_digest(again) == file_digest(image)


def digest(c: Container, path: str) -> str:
    return hashlib.sha256((c.root / path.lstrip("/")).read_bytes()).hexdigest()


def setup_admin(c: Container, code: str) -> tuple[int, str]:
    """POST /admin/api/setup from inside the machine, where the dashboard listens (127.0.0.1:8081)."""
    body = json.dumps({"setup_code": code, "username": "ops", "password": PASSWORD})
    out = c.run(
        "curl",
        "-s",
        "-m",
        "10",
        "-w",
        "\n%{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        body,
        "http://127.0.0.1:8081/admin/api/setup",
        check=False,
    ).stdout
    text, _, status = out.rpartition("\n")
    return int(status or 0), text


def test_image_first_boot_applies_the_boot_file_once(
    rootfs: Path, disk_images: tuple[Path, Path], tmp_path: Path
) -> None:
    # disk_images is made first: booting changes the tree.
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
        assert SETUP_CODE not in applied and 'name = "pi-test"' in applied
        assert c.run("cat", "/var/lib/atlashub/admin-setup-code").stdout.strip() == SETUP_CODE
        assert c.run("stat", "-c", "%a %U", "/var/lib/atlashub/admin-setup-code").stdout.strip() == "600 atlashub"
        # The first admin: the code from the boot file is the daemon's setup code (and no other).
        assert setup_admin(c, "AAAA-BBBB-CCCC-DDDD")[0] == 401
        status, text = setup_admin(c, SETUP_CODE)
        assert status == 201, text
        assert json.loads(text)["user"]["name"] == "ops"
        assert c.run("test", "-e", "/var/lib/atlashub/admin-setup-code", check=False).returncode == 1
        assert setup_admin(c, SETUP_CODE)[0] == 409
        journal = c.run("journalctl", "--no-pager", "-u", "atlashub", "-u", "atlashub-firstboot").stdout
        assert "given at first boot" in journal and SETUP_CODE not in journal
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
