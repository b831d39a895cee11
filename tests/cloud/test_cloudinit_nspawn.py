"""The worker's first-boot script, run by real cloud-init in a booted Debian bookworm (systemd-nspawn).

What provisioning sends to Hetzner is rendered here by the same function with the same inputs:
a real one-time join token from a real master (an in-process ``atlashub`` daemon on the host), the
master's URL, an SSH key, a node name, and the apt repository, which is a real signed repository
built from ``dist/atlashub_*_amd64.deb`` by ``packaging/apt/build-repo.sh`` and served over HTTP
from the host. The container is a Debian image with cloud-init; the user data is given to it with
the NoCloud datasource (a seed directory) and the container boots: cloud-init runs the script
exactly as on a new server (``cloud-final`` → ``scripts_user`` → ``part-001``).

The container's only network is a veth to the host (no default route, no Debian mirror): the
packages the script installs from Debian (ufw, curl, gnupg, ...) are in the image, as on Hetzner's
image, so those apt steps resolve to installed packages, while AtlasHub comes from the served
repository, checked against the keyring the script downloaded (``Signed-By``). Test-only cloud-init
settings: NoCloud as the datasource, cloud-init's own network, apt-sources and locale handling off
(Hetzner's datasource brings the network; here the test configures the link before the boot).
``cloud-init schema`` validates ``#cloud-config`` only and this user data is a shell-script part,
so the validation is cloud-init itself: it ran ``part-001`` and reports no errors.

Covered for real: apt's signature check (and its refusal of a wrong key and of an unsigned
repository), the package installed from the repository, the worker configuration's content, owner
and mode, the daemon active and ready, UFW's rules (the Hetzner firewall's ports, enforced: SSH
reachable from the host, the gateway's 8080 not), SSH hardening, and the join itself: the master
consumed the token and knows the worker. Not covered: WireGuard between the worker and the master
(no kernel module here; the mesh test under netns covers the tunnel with wireguard-go), and
Hetzner's metadata service (unreachable here, so the script writes an empty WireGuard endpoint).
"""

from __future__ import annotations

import asyncio
import http.server
import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from appliance.cloud.cloudinit import WorkerBoot, firewall_rules, render_user_data, worker_config
from appliance.mesh.tokens import JoinTokens
from appliance.pg.embedded import EmbeddedPostgres
from tests.agent.cluster import free_port
from tests.cloud.conftest import SSH_KEY
from tests.fixtures.daemon import running_daemon
from tests.packaging.nspawn import (
    CLOUD_PACKAGES,
    Container,
    HostLink,
    booted_container_on,
    cached_rootfs_with,
    host_link,
)
from tests.packaging.test_apt_repo import built_deb
from tests.packaging.test_nspawn_deb import installed_version, readyz

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
APT = ROOT / "packaging" / "apt"
NAME = "worker-1"
NONINTERACTIVE = {"DEBIAN_FRONTEND": "noninteractive"}
# The image is a stand-in for Hetzner's: cloud-init takes the user data from a seed directory and
# leaves the network and apt sources alone (there is no Debian mirror behind the test link), and the
# locale (the minimal image has no `locales` package).
CLOUD_CFG = """\
datasource_list: [NoCloud]
network: {config: disabled}
apt: {preserve_sources_list: true}
locale: false
"""


def make_repo(tmp: Path) -> tuple[Path, str, Path]:
    """(repository, signing key fingerprint, keyring of another key) under ``tmp``/www."""
    deb = built_deb()
    gnupg = tmp / "gnupg"
    fingerprint = subprocess.run(
        [str(APT / "make-key.sh"), str(gnupg)], capture_output=True, text=True, check=True
    ).stdout.strip()
    repo = tmp / "www" / "repo"
    subprocess.run([str(APT / "build-repo.sh"), str(repo), str(gnupg), fingerprint, str(deb)], check=True)
    # The same packages with the signatures taken off, for the refusal of an unsigned repository.
    unsigned = tmp / "www" / "unsigned"
    shutil.copytree(repo, unsigned)
    for name in ("InRelease", "Release.gpg"):
        (unsigned / "dists/stable" / name).unlink()
    other = tmp / "other-gnupg"
    subprocess.run([str(APT / "make-key.sh"), str(other)], capture_output=True, check=True)
    return repo, fingerprint, other / "atlashub-archive-keyring.gpg"


@contextmanager
def served(directory: Path, host: str) -> Iterator[tuple[str, list[str]]]:
    """A threaded HTTP server for ``directory`` on ``host``; yields its base URL and the paths requested."""
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, directory=str(directory), **kw)

        def log_message(self, format: str, *args: Any) -> None:
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def seed(root: Path, user_data: str) -> None:
    """What the test image needs before its first boot: the NoCloud seed and no Debian mirror."""
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/cloud/cloud.cfg.d/99-atlashub-test.cfg").write_text(CLOUD_CFG)
    nocloud = root / "var/lib/cloud/seed/nocloud"
    nocloud.mkdir(parents=True)
    (nocloud / "user-data").write_text(user_data)
    (nocloud / "meta-data").write_text(f"instance-id: i-{NAME}\nlocal-hostname: {NAME}\n")


def tcp_open(host: str, port: int) -> bytes | None:
    """The first bytes a listener sends, b"" if it sends none, None if the connection is not made."""
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.settimeout(3)
            try:
                return sock.recv(64)
            except TimeoutError:
                return b""
    except OSError:
        return None


def apt_update_with(c: Container, sources: str, keyring: str | None) -> subprocess.CompletedProcess[str]:
    """``apt-get update`` of one extra source only, with its own lists (the system's stay untouched)."""
    c.sh("rm -rf /root/neg && mkdir -p /root/neg/sources /root/neg/lists/partial")
    entry = f"Types: deb\nURIs: {sources}\nSuites: stable\nComponents: main\n"
    if keyring:
        entry += f"Signed-By: {keyring}\n"
    (c.root / "root/neg/sources/test.sources").write_text(entry)
    return c.run(
        "apt-get",
        "update",
        "-q",
        "-o",
        "Dir::Etc::SourceList=/nonexistent",
        "-o",
        "Dir::Etc::SourceParts=/root/neg/sources",
        "-o",
        "Dir::State::Lists=/root/neg/lists",
        check=False,
        env=NONINTERACTIVE,
    )


def first_boot(
    tmp: Path, link: HostLink, boot: WorkerBoot, repo: Path, fingerprint: str, other_keyring: Path, base: Path
) -> dict[str, str]:
    """Boot the seeded image (cloud-init runs the script during boot), check the machine it made."""
    user_data = render_user_data(boot)
    facts: dict[str, str] = {}
    tmp.mkdir()
    with booted_container_on(tmp, base, link, lambda root: seed(root, user_data), boot_timeout=300) as c:
        log = c.run("cat", "/var/log/atlashub-provision.log", check=False).stdout
        status = c.run("cloud-init", "status", "--long", check=False)
        assert log.rstrip().endswith("== atlashub-provision: done"), (
            f"{log[-4000:]}\n{status.stdout}\n"
            + c.run("tail", "-n", "80", "/var/log/cloud-init.log", check=False).stdout
        )
        facts["log"] = log
        # cloud-init itself: the user data was a shell-script part, run by scripts_user, no errors.
        assert "status: done" in status.stdout, status.stdout
        # (`cloud-init schema` checks #cloud-config only; this user data is a shell-script part.)
        result = json.loads(c.run("cat", "/var/lib/cloud/data/result.json").stdout)
        assert result["v1"]["errors"] == [], result
        ran = c.run("cat", "/var/log/cloud-init.log").stdout
        assert re.search(r"Running command \['/var/lib/cloud/instance/scripts/part-001'\]", ran), ran[-3000:]

        # apt: the keyring came from the repository, the signature was checked through Signed-By.
        assert (c.root / "etc/apt/keyrings/atlashub.gpg").read_bytes() == (
            repo / "atlashub-archive-keyring.gpg"
        ).read_bytes()
        sources = (c.root / "etc/apt/sources.list.d/atlashub.sources").read_text()
        assert f"URIs: {boot.apt_url}" in sources and "Signed-By: /etc/apt/keyrings/atlashub.gpg" in sources
        update = c.run("apt-get", "update", "-q", env=NONINTERACTIVE)
        assert "NO_PUBKEY" not in update.stdout + update.stderr and "not signed" not in update.stderr
        lists = c.sh("ls /var/lib/apt/lists").stdout
        assert re.search(r"_repo_dists_stable_InRelease$", lists, re.M), lists  # kept only once verified
        policy = c.run("apt-cache", "policy", "atlashub").stdout
        assert f"{boot.apt_url.rstrip('/')} stable/main amd64 Packages" in policy, policy
        version = subprocess.run(
            ["dpkg-deb", "-f", str(built_deb()), "Version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert installed_version(c) == f"ii {version}"
        # The same repository under another key, and without signatures: apt refuses both.
        (c.root / "root/other.gpg").write_bytes(other_keyring.read_bytes())
        wrong = apt_update_with(c, boot.apt_url, "/root/other.gpg")
        assert wrong.returncode != 0 and "NO_PUBKEY" in wrong.stdout + wrong.stderr, wrong
        assert fingerprint[-16:] in wrong.stdout + wrong.stderr
        unsigned = apt_update_with(c, boot.apt_url.replace("/repo/", "/unsigned/"), "/etc/apt/keyrings/atlashub.gpg")
        assert unsigned.returncode != 0 and "is not signed" in unsigned.stderr, unsigned

        # The worker configuration, as rendered (no metadata service here: empty endpoint).
        config = c.run("cat", "/etc/atlashub/atlashub.toml").stdout
        assert config == worker_config(boot).replace("@ENDPOINT@", '""')
        assert c.run("stat", "-c", "%U:%G %a", "/etc/atlashub/atlashub.toml").stdout.split() == ["root:atlashub", "640"]
        assert not (c.root / "etc/atlashub/atlashub.toml.new").exists()

        # The daemon: enabled, active, ready.
        assert c.run("systemctl", "is-enabled", "atlashub").stdout.strip() == "enabled"
        assert c.run("systemctl", "is-active", "atlashub").stdout.strip() == "active"
        code, body = readyz(c)
        assert code == 200, body

        # The join ran as the daemon's user, with the token, against the master.
        joined = re.search(r"^joined master (n_\S+) as (n_\S+) at (\S+)$", log, re.M)
        assert joined, log[-3000:]
        facts["master_id"], facts["node_id"], facts["wg_address"] = joined.groups()
        # The token's copies that cloud-init keeps are gone.
        for path in ("user-data.txt", "user-data.txt.i", "scripts/part-001"):
            assert not (c.root / "var/lib/cloud/instance" / path).exists(), path

        # UFW: active, default deny in, exactly the Hetzner firewall's ports, and enforced.
        ufw = c.run("ufw", "status", "verbose").stdout
        assert "Status: active" in ufw and "Default: deny (incoming), allow (outgoing)" in ufw, ufw
        opened = set(re.findall(r"^(\d+)/(tcp|udp)\s+ALLOW IN\s+Anywhere\s*$", ufw, re.M))
        assert opened == {(str(r["port"]), str(r["protocol"])) for r in firewall_rules(boot.wg_port)}, ufw
        assert re.search(rf"^Anywhere on {re.escape(boot.wg_interface)}\s+ALLOW IN\s+Anywhere\s*$", ufw, re.M), ufw
        rules = c.run("iptables-save").stdout
        for proto, port, _ in [(r["protocol"], r["port"], None) for r in firewall_rules(boot.wg_port)]:
            assert f"-A ufw-user-input -p {proto} -m {proto} --dport {port} -j ACCEPT" in rules, rules
        assert c.sh("ss -Hltn 'sport = :8080' | wc -l").stdout.strip() != "0"  # the gateway listens...
        assert tcp_open(link.container_ip, 8080) is None  # ...and the firewall keeps it from the link
        banner = tcp_open(link.container_ip, 22)
        assert banner is not None and banner.startswith(b"SSH-2.0-OpenSSH"), banner

        # SSH: key-only for the admin user, no root login.
        keys = c.run("cat", "/home/atlas/.ssh/authorized_keys").stdout
        assert keys == SSH_KEY + "\n"
        assert c.run("stat", "-c", "%U %a", "/home/atlas/.ssh/authorized_keys").stdout.split() == ["atlas", "600"]
        sshd = c.run("sshd", "-T").stdout
        for line in ("permitrootlogin no", "passwordauthentication no", "pubkeyauthentication yes"):
            assert line in sshd.splitlines(), line
    return facts


async def test_first_boot_script_under_cloud_init(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    repo, fingerprint, other_keyring = make_repo(tmp_path)
    base = await asyncio.to_thread(cached_rootfs_with, CLOUD_PACKAGES)
    with host_link() as link, served(tmp_path / "www", link.host_ip) as (url, requested):
        mesh = {"role": "master", "wg_manage": False, "agent_listen": f"127.0.0.1:{free_port()}"}
        async with running_daemon(
            tmp_path / "master",
            pg,
            node={"name": "master"},
            gateway={"listen": f"{link.host_ip}:{free_port()}"},
            mesh=mesh,
        ) as master:
            core = master.daemon.core
            # As provisioning does: a one-time token from the master's token code, its URL, its ports.
            issued = await JoinTokens(core.store, core.node_id).create(1800)
            boot = WorkerBoot(
                name=NAME,
                master_url=master.gateway_url,
                join_token=issued.token,
                ssh_public_key=SSH_KEY,
                wg_port=core.config.mesh.wg_listen_port,
                wg_interface=core.config.mesh.wg_interface,
                apt_url=f"{url}/repo/",
            )
            facts = await asyncio.to_thread(
                first_boot, tmp_path / "boot", link, boot, repo, fingerprint, other_keyring, base
            )

            assert "/repo/atlashub-archive-keyring.gpg" in requested
            assert "/repo/dists/stable/InRelease" in requested
            assert any(p.startswith("/repo/pool/main/a/atlashub/atlashub_") for p in requested), requested
            # The master's side: the token is spent, by the node that joined, which it now knows.
            assert facts["master_id"] == core.node_id
            row = await core.store.fetchone("SELECT used_by, used_at FROM join_tokens WHERE id = ?", (issued.id,))
            assert row is not None and row["used_by"] == facts["node_id"] and row["used_at"]
            node = await core.store.fetchone(
                "SELECT name, role, wg_address FROM nodes WHERE id = ?", (facts["node_id"],)
            )
            assert node is not None and dict(node) == {
                "name": NAME,
                "role": "worker",
                "wg_address": facts["wg_address"].split("/")[0],
            }
