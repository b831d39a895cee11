"""WireGuard control (appliance/mesh/wg.py): the syncconf file, and the real tools on wireguard-go
inside a network namespace made by the test (nothing touches the host's interfaces)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.mesh.identity import WireGuardKeys
from appliance.mesh.wg import PeerSpec, render_conf

REPO = Path(__file__).resolve().parents[2]


def test_render_conf() -> None:
    peers = [
        PeerSpec("A" * 43 + "=", "10.100.0.2", "198.51.100.2:51820"),
        PeerSpec("B" * 43 + "=", "10.100.0.3", None, True),
    ]
    conf = render_conf("K" * 43 + "=", 51820, peers)
    assert conf.splitlines() == [
        "[Interface]",
        "PrivateKey = " + "K" * 43 + "=",
        "ListenPort = 51820",
        "",
        "[Peer]",
        "PublicKey = " + "A" * 43 + "=",
        "AllowedIPs = 10.100.0.2/32",
        "Endpoint = 198.51.100.2:51820",
        "",
        "[Peer]",
        "PublicKey = " + "B" * 43 + "=",
        "AllowedIPs = 10.100.0.3/32",
        "PersistentKeepalive = 25",
    ]


SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from appliance.mesh.wg import PeerSpec, WireGuard

async def main():
    interface, key_path, first, second = sys.argv[1:5]
    wg = WireGuard(interface, 51999, Path(key_path))
    await wg.up("10.100.0.1/24", [PeerSpec(first, "10.100.0.2", "192.0.2.2:51820")])
    await wg.up("10.100.0.1/24", [PeerSpec(first, "10.100.0.2", "192.0.2.2:51820")])  # idempotent
    await wg.set_peer(PeerSpec(second, "10.100.0.3", None, True))
    after_add = await wg.handshake_ages()
    await wg.remove_peer(first)
    print(json.dumps({"after_add": after_add, "after_remove": await wg.handshake_ages()}))

asyncio.run(main())
"""


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    if os.geteuid() != 0 or shutil.which("wireguard-go") is None or shutil.which("wg") is None:
        pytest.skip("needs root, wireguard-go and wireguard-tools")
    tag = secrets.token_hex(2)
    ns, interface = f"ahwg{tag}", f"wgt{tag}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, "wireguard-go", "-f", interface],
        env={**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["ip", "-n", ns, "link", "show", interface], capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "wireguard-go did not create its interface"
            time.sleep(0.1)
        yield ns, interface
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        Path(f"/var/run/wireguard/{interface}.sock").unlink(missing_ok=True)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_up_set_and_remove_peers_on_wireguard_go(netns: tuple[str, str], tmp_path: Path) -> None:
    ns, interface = netns
    key_path = tmp_path / "wireguard.key"
    keys = WireGuardKeys.generate()
    keys.save(key_path)
    first, second = WireGuardKeys.generate().public_b64, WireGuardKeys.generate().public_b64
    result = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, interface, str(key_path), first, second],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    ages = json.loads(result.stdout)
    assert ages["after_add"] == {first: None, second: None}  # never shook hands
    assert ages["after_remove"] == {second: None}
    shown = subprocess.run(["ip", "netns", "exec", ns, "wg", "show", interface, "dump"], capture_output=True, text=True)
    interface_line, *peer_lines = shown.stdout.strip().splitlines()
    assert interface_line.split("\t")[:3] == [keys.private_b64, keys.public_b64, "51999"]
    assert [line.split("\t")[0] for line in peer_lines] == [second]
    assert peer_lines[0].split("\t")[3] == "10.100.0.3/32"
    address = subprocess.run(["ip", "-n", ns, "-j", "address", "show", interface], capture_output=True, text=True)
    assert "10.100.0.1" in address.stdout
