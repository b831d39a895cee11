"""The signed apt repository: built by packaging/apt/build-repo.sh, installed from by a booted Debian.

The repository is served by a plain HTTP server on the container's own loopback (the server runs
on the host, inside the container's network namespace), added with a ``Signed-By`` keyring, and
``apt-get install atlashub`` brings the daemon up. A Release altered after signing is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.nspawn import Container, booted_container
from tests.packaging.test_nspawn_deb import installed_version, wait_ready

ROOT = Path(__file__).resolve().parents[2]
APT = ROOT / "packaging" / "apt"
PORT = 8788
SOURCES = f"""\
Types: deb
URIs: http://127.0.0.1:{PORT}/
Suites: stable
Components: main
Architectures: amd64 arm64
Signed-By: /etc/apt/keyrings/atlashub.gpg
"""

pytestmark = pytest.mark.system


def built_deb() -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "apt-ftparchive", "gpg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install -y debootstrap systemd-container apt-utils gnupg")
    debs = sorted((ROOT / "dist").glob("atlashub_*.deb"))
    if not debs:
        pytest.skip("no dist/atlashub_*.deb here: run packaging/build.sh all (scripts/test does it before pytest)")
    return debs[-1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    deb = built_deb()
    tmp = tmp_path_factory.mktemp("apt")
    gnupg = tmp / "gnupg"
    key = subprocess.run([str(APT / "make-key.sh"), str(gnupg)], capture_output=True, text=True, check=True)
    fingerprint = key.stdout.strip()
    out = tmp / "repo"
    subprocess.run([str(APT / "build-repo.sh"), str(out), str(gnupg), fingerprint, str(deb)], check=True)
    return out, fingerprint


@contextlib.contextmanager
def served(container: Container, directory: Path) -> Iterator[None]:
    """An HTTP server on 127.0.0.1 of the container's network namespace, stopped afterwards."""
    server = [sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1", "--directory", str(directory)]
    proc = subprocess.Popen(
        ["nsenter", "-t", str(container.leader), "-n", "--", *server],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while container.run("curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/", check=False).returncode:
            assert time.monotonic() < deadline, "the repository's HTTP server did not start"
            time.sleep(0.2)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    built_deb()
    with booted_container(tmp_path_factory.mktemp("nspawn-apt")) as booted:
        yield booted


NONINTERACTIVE = {"DEBIAN_FRONTEND": "noninteractive"}


def test_apt_install_from_the_signed_repository(container: Container, repo: tuple[Path, str]) -> None:
    c = container
    out, fingerprint = repo
    assert (out / "dists/stable/InRelease").read_text().startswith("-----BEGIN PGP SIGNED MESSAGE-----")
    assert (out / "dists/stable/Release.gpg").exists()
    for arch in ("amd64", "arm64"):
        assert (out / f"dists/stable/main/binary-{arch}/Packages.gz").exists()
    # The container has no route to Debian's mirrors; only our repository is configured.
    c.run("rm", "-f", "/etc/apt/sources.list")
    c.run("install", "-d", "-m", "0755", "/etc/apt/keyrings")
    c.copy_in(out / "atlashub-archive-keyring.gpg", "/etc/apt/keyrings/atlashub.gpg")
    (c.root / "etc/apt/sources.list.d/atlashub.sources").write_text(SOURCES)

    with served(c, out):
        update = c.run("apt-get", "update", "-q", env=NONINTERACTIVE)
        assert "NO_PUBKEY" not in update.stdout + update.stderr
        c.run("apt-get", "install", "-y", "-q", "atlashub", env=NONINTERACTIVE, timeout=600)
        assert installed_version(c).startswith("ii ")
        wait_ready(c)
        policy = c.run("apt-cache", "policy", "atlashub").stdout
        assert f"http://127.0.0.1:{PORT} stable/main amd64 Packages" in policy

        # Altered after signing: the InRelease body and the Release that Release.gpg covers.
        for name in ("InRelease", "Release"):
            path = out / "dists/stable" / name
            path.write_text(
                path.read_text().replace("Description: AtlasHub packages", "Description: AtlasHub packages!")
            )
        c.run("rm", "-rf", "/var/lib/apt/lists/partial")
        c.run("sh", "-c", "rm -f /var/lib/apt/lists/*InRelease /var/lib/apt/lists/*Release*")
        refused = c.run("apt-get", "update", "-q", check=False, env=NONINTERACTIVE)
        text = refused.stdout + refused.stderr
        assert refused.returncode != 0, text
        assert "BADSIG" in text or "signatures were invalid" in text, text
        assert fingerprint[-16:] in text or "is not signed" in text, text
