"""The first-boot script of a new worker (cloud-init user data) and the firewall it lives behind.

The user data is a ``#!/bin/bash`` script that cloud-init runs once, as root, on first boot:
SSH key-only without root login, UFW, AtlasHub from the apt repository, the worker's
``atlashub.toml``, then ``atlashub node join``. The public ports come from ONE list,
:func:`public_ports`, which also produces the Hetzner Cloud Firewall rules, so the network
edge and the host firewall stay in step (seed 000).

The join token is in the user data: the API and the machine's metadata service show it, so it
is one-time and expires with the provisioning timeout; the script deletes its own copy.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

DEFAULT_APT_URL = "https://apt.atlashub.invalid/"
# The repository's public key, at the top of the repository (packaging/apt/build-repo.sh).
APT_KEYRING_NAME = "atlashub-archive-keyring.gpg"
ADMIN_USER = "atlas"
WORKER_ROLES = ("gateway", "dashboard", "backups", "agent")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( [^\n\r]*)?$")
ANYWHERE = ["0.0.0.0/0", "::/0"]


@dataclass(frozen=True)
class WorkerBoot:
    name: str
    master_url: str
    join_token: str
    ssh_public_key: str
    wg_port: int = 51820
    wg_interface: str = "wg-atlas"
    apt_url: str = DEFAULT_APT_URL


def valid_name(name: str) -> bool:
    """A server name Hetzner accepts and a hostname: lower-case letters, digits and dashes."""
    return bool(_NAME.match(name))


def valid_ssh_key(key: str) -> bool:
    return bool(_SSH_KEY.match(key.strip()))


def public_ports(wg_port: int) -> list[tuple[str, str, str]]:
    """(protocol, port, why): the only inbound traffic a worker accepts from the internet."""
    return [
        ("tcp", "22", "SSH"),
        ("tcp", "80", "HTTP (Caddy, ACME)"),
        ("tcp", "443", "HTTPS (Caddy)"),
        ("udp", str(wg_port), "WireGuard"),
    ]


def firewall_rules(wg_port: int) -> list[dict[str, object]]:
    """The Hetzner Cloud Firewall rules (inbound only; outbound stays open)."""
    return [
        {"direction": "in", "protocol": proto, "port": port, "source_ips": ANYWHERE, "description": why}
        for proto, port, why in public_ports(wg_port)
    ]


def ufw_commands(wg_port: int, wg_interface: str) -> list[str]:
    commands = ["ufw --force reset", "ufw default deny incoming", "ufw default allow outgoing"]
    commands += [f"ufw allow {port}/{proto}" for proto, port, _ in public_ports(wg_port)]
    commands += [f"ufw allow in on {shlex.quote(wg_interface)}", "ufw --force enable"]
    return commands


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset TOML accepts)."""
    return json.dumps(value)


def worker_config(boot: WorkerBoot) -> str:
    roles = ", ".join(toml_string(r) for r in WORKER_ROLES)
    return "\n".join(
        [
            "# Written by AtlasHub cloud provisioning at first boot.",
            "[node]",
            f"name = {toml_string(boot.name)}",
            f"roles = [{roles}]",
            "",
            "[gateway]",
            "# Reachable over WireGuard only: UFW and the Hetzner firewall keep 8080 closed.",
            'listen = "0.0.0.0:8080"',
            "",
            "# The package's PostgreSQL: the role atlashub, by peer authentication over the socket.",
            "[postgres]",
            'host = "/var/run/postgresql"',
            "port = 5432",
            'user = "atlashub"',
            'database = "postgres"',
            'project_host = "127.0.0.1"',
            "",
            "[mesh]",
            'role = "worker"',
            f"master_url = {toml_string(boot.master_url)}",
            f"wg_interface = {toml_string(boot.wg_interface)}",
            f"wg_listen_port = {int(boot.wg_port)}",
            "endpoint = @ENDPOINT@",
            "",
        ]
    )


def render_user_data(boot: WorkerBoot) -> str:
    """The whole ``#!/bin/bash`` user data; every value from outside is shell- or TOML-quoted."""
    if not valid_name(boot.name):
        raise ValueError("invalid server name")
    if not valid_ssh_key(boot.ssh_public_key):
        raise ValueError("invalid SSH public key")
    q = shlex.quote
    apt_url = boot.apt_url.rstrip("/") + "/"
    ufw = "\n".join(ufw_commands(boot.wg_port, boot.wg_interface))
    return f"""#!/bin/bash
# AtlasHub worker first boot (cloud-init user data). Runs once, as root.
set -euo pipefail
exec >>/var/log/atlashub-provision.log 2>&1
export DEBIAN_FRONTEND=noninteractive
step() {{ echo "== atlashub-provision: $*"; }}
trap 'echo "== atlashub-provision: FAILED at line $LINENO"' ERR

step "ssh: key-only, no root login; admin user {ADMIN_USER}"
if ! id {ADMIN_USER} >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups sudo {ADMIN_USER}
fi
install -d -m 0700 -o {ADMIN_USER} -g {ADMIN_USER} /home/{ADMIN_USER}/.ssh
printf '%s\\n' {q(boot.ssh_public_key.strip())} >/home/{ADMIN_USER}/.ssh/authorized_keys
chown {ADMIN_USER}:{ADMIN_USER} /home/{ADMIN_USER}/.ssh/authorized_keys
chmod 0600 /home/{ADMIN_USER}/.ssh/authorized_keys
echo '{ADMIN_USER} ALL=(ALL) NOPASSWD:ALL' >/etc/sudoers.d/90-atlashub-admin
chmod 0440 /etc/sudoers.d/90-atlashub-admin
install -d -m 0755 /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/10-atlashub.conf <<'SSHD'
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
SSHD
sshd -t
systemctl reload ssh || systemctl reload sshd

step "firewall: ufw, the same ports as the Hetzner Cloud Firewall"
apt-get update -q
apt-get install -y -q ufw curl ca-certificates gnupg
{ufw}

step "atlashub: apt repository"
install -d -m 0755 /etc/apt/keyrings
curl -fsSL {q(apt_url + APT_KEYRING_NAME)} -o /etc/apt/keyrings/atlashub.gpg
cat >/etc/apt/sources.list.d/atlashub.sources <<'SRC'
Types: deb
URIs: {apt_url}
Suites: stable
Components: main
Signed-By: /etc/apt/keyrings/atlashub.gpg
SRC

step "atlashub: worker configuration"
ENDPOINT=""
if PUBLIC_IP=$(curl -fsS --max-time 5 http://169.254.169.254/hetzner/v1/metadata/public-ipv4); then
  ENDPOINT="$PUBLIC_IP:{int(boot.wg_port)}"
fi
install -d -m 0755 /etc/atlashub
cat >/etc/atlashub/atlashub.toml.new <<'TOML'
{worker_config(boot)}TOML
sed "s|@ENDPOINT@|\\"$ENDPOINT\\"|" /etc/atlashub/atlashub.toml.new >/etc/atlashub/atlashub.toml
rm -f /etc/atlashub/atlashub.toml.new

step "atlashub: install (keeps the configuration written above)"
apt-get update -q
apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold atlashub
chgrp atlashub /etc/atlashub/atlashub.toml
chmod 0640 /etc/atlashub/atlashub.toml
systemctl restart atlashub
for _ in $(seq 1 60); do
  if curl -fsS --max-time 2 http://127.0.0.1:8081/healthz >/dev/null; then break; fi
  sleep 2
done

step "atlashub: join the master"
runuser -u atlashub -- atlashub node join --config /etc/atlashub/atlashub.toml \\
  --master {q(boot.master_url)} --token {q(boot.join_token)}
# The token is spent; do not keep a copy on disk.
rm -f /var/lib/cloud/instance/user-data.txt /var/lib/cloud/instance/user-data.txt.i \\
  /var/lib/cloud/instance/scripts/part-001 || true
step "done"
"""
