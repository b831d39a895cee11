"""The worker's first-boot script: valid bash (bash -n, shellcheck), every step present, values quoted,
and UFW opening exactly the ports of the Hetzner firewall. test_cloudinit_nspawn.py runs it under
real cloud-init in a booted Debian against a signed repository and a real master."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from appliance.cloud.cloudinit import WorkerBoot, firewall_rules, render_user_data, worker_config
from tests.cloud.conftest import SSH_KEY

TOKEN = "n_0123456789abcdef.c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI"
BOOT = WorkerBoot(name="worker-1", master_url="https://api.example.com", join_token=TOKEN, ssh_public_key=SSH_KEY)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "user-data.sh"
    path.write_text(render_user_data(BOOT))
    return path


def test_script_is_valid_bash(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_script_passes_shellcheck(script: Path) -> None:
    result = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_script_hardens_ssh_enables_ufw_installs_and_joins(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n") and "set -euo pipefail" in text
    for line in ("PermitRootLogin no", "PasswordAuthentication no", "PubkeyAuthentication yes"):
        assert line in text
    assert SSH_KEY in text and "sshd -t" in text
    assert "ufw default deny incoming" in text and "ufw --force enable" in text
    assert "URIs: https://apt.atlashub.invalid/" in text and "Signed-By: /etc/apt/keyrings/atlashub.gpg" in text
    # The key's name in the repository is the one packaging/apt/build-repo.sh writes.
    assert "curl -fsSL https://apt.atlashub.invalid/atlashub-archive-keyring.gpg -o /etc/apt/keyrings/" in text
    assert (
        "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold atlashub" in text
    )
    join = "atlashub node join --config /etc/atlashub/atlashub.toml \\\n  --master https://api.example.com --token "
    assert join + TOKEN in text
    # Order: SSH before the firewall, the firewall before AtlasHub, the join last.
    steps = [text.index(s) for s in ("PermitRootLogin", "ufw --force enable", "install (keeps", "node join")]
    assert steps == sorted(steps)
    assert "set -x" not in text  # would print the token into the log


def test_ufw_rules_match_the_hetzner_firewall(script: Path) -> None:
    opened = set(re.findall(r"^ufw allow (\d+)/(tcp|udp)$", script.read_text(), re.M))
    assert opened == {(r["port"], r["protocol"]) for r in firewall_rules(51820)}
    assert all(r["direction"] == "in" for r in firewall_rules(51820))
    other = WorkerBoot(**{**BOOT.__dict__, "wg_port": 51999})
    assert "ufw allow 51999/udp" in render_user_data(other)
    assert {"protocol": "udp", "port": "51999"}.items() <= firewall_rules(51999)[-1].items()


def test_worker_config_is_valid_toml_for_a_worker() -> None:
    text = worker_config(BOOT).replace("@ENDPOINT@", '"203.0.113.5:51820"')
    parsed = tomllib.loads(text)
    assert parsed["mesh"] == {
        "role": "worker",
        "master_url": "https://api.example.com",
        "wg_interface": "wg-atlas",
        "wg_listen_port": 51820,
        "endpoint": "203.0.113.5:51820",
    }
    assert parsed["node"]["name"] == "worker-1"
    # The package's PostgreSQL role (peer authentication as the daemon's user), as in its own config.
    packaged = tomllib.loads((Path(__file__).resolve().parents[2] / "packaging/deb/atlashub.toml").read_text())
    assert parsed["postgres"] == packaged["postgres"]
    from appliance.config import Config

    Config().replace(**parsed)  # every key is known to the daemon's config


def test_hostile_values_are_quoted_or_refused() -> None:
    hostile = WorkerBoot(**{**BOOT.__dict__, "master_url": "https://x.example/$(reboot)'\"\nTOML"})
    text = render_user_data(hostile)
    assert "--master 'https://x.example/$(reboot)'\"'\"'\"\nTOML'" in text
    assert 'master_url = "https://x.example/$(reboot)\'\\"\\nTOML"' in text
    with pytest.raises(ValueError):
        render_user_data(WorkerBoot(**{**BOOT.__dict__, "name": "a;reboot"}))
    with pytest.raises(ValueError):
        render_user_data(WorkerBoot(**{**BOOT.__dict__, "ssh_public_key": "ssh-ed25519 AAAA\nrm -rf /"}))
