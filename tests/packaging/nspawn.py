"""A booted Debian under systemd-nspawn, for tests of the .deb, its units and upgrades.

The rootfs is made once by debootstrap and cached under ``/var/cache/atlashub-test/`` keyed by a
hash of the package list; each test boots a throw-away copy of it with a private network (its
own loopback, so nothing it listens on can collide with the host), and everything is stopped and
removed afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("ATLASHUB_TEST_CACHE", "/var/cache/atlashub-test"))
SUITE = "bookworm"
MIRROR = os.environ.get("ATLASHUB_TEST_MIRROR", "http://deb.debian.org/debian")
# Everything the .deb depends on is in the cached image, so `apt-get install ./atlashub.deb`
# inside a container without network resolves its dependencies against installed packages.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "postgresql",
    "wireguard-tools",
    "curl",
    "sqlite3",
    "ca-certificates",
    "procps",
    "iproute2",
    # Recommended by the .deb: authorizes the daemon's unit control over D-Bus (packaging/polkit/).
    "polkitd",
    "libpam-systemd",  # polkitd's logind (debootstrap does not pick among alternatives)
)


def rootfs_key() -> str:
    text = "\n".join([SUITE, MIRROR, *sorted(PACKAGES)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_rootfs() -> Path:
    """Debootstrap the base image once per package list. Safe to call from parallel runs."""

    def build(partial: Path) -> None:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(partial),
                MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return _cached(rootfs_key(), build)


def _cached(key: str, build: Callable[[Path], None]) -> Path:
    """The cache entry ``key``, made by ``build`` into a partial tree the first time (under one lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / f"rootfs-{SUITE}-{key}"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        build(partial)
        # No cluster started at image-build time; keep the apt cache small and the machine id empty
        # so every boot is a "new" machine.
        (partial / "etc/machine-id").write_text("")
        subprocess.run(["chroot", str(partial), "apt-get", "clean"], check=True)
        (partial / ".complete").write_text("ok\n")
        partial.rename(target)
        return target


@dataclass
class Container:
    name: str
    root: Path
    nspawn: subprocess.Popen[bytes]
    leader: int

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the container (all its namespaces), as root."""
        prefix = ["nsenter", "-t", str(self.leader), "-a", "--"]
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", **(env or {})}
        out = subprocess.run(
            [*prefix, "env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {out.returncode}\nstdout:\n{out.stdout[-4000:]}\nstderr:\n{out.stderr[-4000:]}"
            )
        return out

    def sh(self, script: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.run("bash", "-euo", "pipefail", "-c", script, check=check, timeout=timeout)

    def copy_in(self, src: Path, dest: str) -> None:
        target = self.root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)

    def wait_running(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", check=False, timeout=30).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise AssertionError(f"container did not finish booting: {state!r}")


def _leader_pid(nspawn_pid: int, timeout: float = 30) -> int:
    """The container's PID 1 is the child of systemd-nspawn."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children")
        with contextlib.suppress(OSError):
            pids = children.read_text().split()
            for pid in pids:
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "systemd":
                        return int(pid)
        time.sleep(0.1)
    raise AssertionError("the container's systemd did not start")


@contextlib.contextmanager
def boot(
    root: Path,
    log_path: Path,
    network: list[str],
    *,
    name_prefix: str = "atlashub-test",
    quiet: bool = True,
    timeout: float = 90,
    log_mode: str = "wb",
) -> Iterator[Container]:
    """Boot ``root`` itself with the given nspawn network options, yield it once booted; power it off."""
    name = f"{name_prefix}-{uuid.uuid4().hex[:8]}"
    log = open(log_path, log_mode)  # closed in finally
    proc = subprocess.Popen(
        [
            "systemd-nspawn",
            "-D",
            str(root),
            "--boot",
            "--register=no",
            "--keep-unit",
            *network,
            "-M",
            name,
            *(["-q"] if quiet else []),
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        container = Container(name, root, proc, _leader_pid(proc.pid))
        container.wait_running(timeout=timeout)
        yield container
    finally:
        if proc.poll() is None:
            # nspawn turns SIGTERM into a clean shutdown of the container; SIGKILL it if that hangs.
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def booted_container(workdir: Path) -> Iterator[Container]:
    """Copy the cached image, boot it with a private network, yield it; power it off and remove it."""
    base = cached_rootfs()
    root = workdir / "rootfs"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(root)], check=True)
    try:
        with boot(root, workdir / "nspawn.log", ["--private-network"]) as container:
            yield container
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- A cloud-like image and a container on a veth link to the host (tests of the first-boot script).

# What a Debian cloud image has besides the base packages: cloud-init runs the user data, sshd and
# sudo are what it configures, ufw is the firewall it enables, gnupg for apt keyrings.
CLOUD_PACKAGES = ("cloud-init", "openssh-server", "sudo", "ufw", "gnupg")


def cached_rootfs_with(extra: tuple[str, ...]) -> Path:
    """Like :func:`cached_rootfs`, with more packages, in its own cache entry (same lock)."""
    packages = tuple(sorted({*PACKAGES, *extra}))
    key = hashlib.sha256("\n".join([SUITE, MIRROR, *packages]).encode()).hexdigest()[:16]

    def build(partial: Path) -> None:
        # debootstrap's resolver does not follow virtual packages (cloud-init's python3-cffi-backend-api-*),
        # so it lays down a bootable minimum and apt installs the rest.
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE, str(partial), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        no_starts = partial / "usr/sbin/policy-rc.d"  # nothing starts inside the chroot (sshd on the host's port)
        no_starts.write_text("#!/bin/sh\nexit 101\n")
        no_starts.chmod(0o755)
        subprocess.run(
            ["chroot", str(partial), "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
            check=True,
            stdout=subprocess.DEVNULL,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LANG": "C.UTF-8"},
        )
        no_starts.unlink()

    return _cached(key, build)


@dataclass
class HostLink:
    """A network namespace for a container-to-be, joined to the host by a veth pair."""

    netns: str
    host_if: str
    container_if: str
    host_ip: str
    container_ip: str
    prefix: int = 30


@contextlib.contextmanager
def host_link() -> Iterator[HostLink]:
    """A new network namespace whose only link is a point-to-point veth to the host, on a random
    10.213.x.y/30, configured before the container boots (nspawn joins the namespace as it is).

    No default route is given: from the namespace only the host's address is reachable.
    """
    tag = uuid.uuid4().hex[:6]
    octet, quad = int(tag[:2], 16), int(tag[2:4], 16) % 64 * 4
    link = HostLink(f"ah{tag}", f"ah{tag}h", f"ah{tag}c", f"10.213.{octet}.{quad + 1}", f"10.213.{octet}.{quad + 2}")

    def ip(*args: str, netns: bool = False) -> None:
        prefix = ["ip", "-n", link.netns] if netns else ["ip"]
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    ip("netns", "add", link.netns)
    try:
        ip("link", "add", link.host_if, "type", "veth", "peer", "name", link.container_if, "netns", link.netns)
        ip("addr", "add", f"{link.host_ip}/{link.prefix}", "dev", link.host_if)
        ip("link", "set", link.host_if, "up")
        ip("addr", "add", f"{link.container_ip}/{link.prefix}", "dev", link.container_if, netns=True)
        ip("link", "set", link.container_if, "up", netns=True)
        ip("link", "set", "lo", "up", netns=True)
        yield link
    finally:
        subprocess.run(["ip", "netns", "del", link.netns], check=False, capture_output=True)  # takes the veth along
        subprocess.run(["ip", "link", "del", link.host_if], check=False, capture_output=True)


@contextlib.contextmanager
def booted_container_on(
    workdir: Path, base: Path, link: HostLink, prepare: Callable[[Path], None] | None = None, boot_timeout: float = 90
) -> Iterator[Container]:
    """Copy ``base``, let ``prepare`` change the copy, boot it in ``link``'s network namespace.

    Yields once the boot has finished (every boot job, so a first-boot script has run by then).
    """
    root = workdir / "rootfs"
    subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(root)], check=True)
    if prepare is not None:
        prepare(root)
    network = [
        f"--network-namespace-path=/run/netns/{link.netns}",
        # Its own network namespace, so its own firewall (as --private-network would grant).
        "--capability=CAP_NET_ADMIN",
    ]
    try:
        with boot(root, workdir / "nspawn.log", network, timeout=boot_timeout) as container:
            yield container
    finally:
        shutil.rmtree(root, ignore_errors=True)
