"""What an idle `atlashub serve` keeps out of memory: cryptography (~7 MB resident with its Rust
bindings) and bcrypt load with the first secret unsealed, message signed or password hashed, not
with the daemon. A top-level import of either, anywhere on the start path, fails this test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import appliance
from appliance.core import IDENTITY_FILE
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.daemon import Daemon
from appliance.errors import StartupError
from appliance.mesh.identity import NodeIdentity
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import make_config, running_daemon
from tests.fixtures.pg import clean_env
from tests.fixtures.serve_config import write_serve_config

ROOT = Path(appliance.__file__).resolve().parent.parent
LOADED_ON_FIRST_USE = ("cryptography", "bcrypt")

# The real `serve` command (config file, logging, uvloop, systemd notification): stopped with
# SIGTERM as soon as it reports READY=1, then the modules it ever imported are written out.
SERVE = """
import json, os, signal, socket, sys, threading
from pathlib import Path

config, out = sys.argv[1], Path(sys.argv[2])
address = str(out.with_suffix(".sock"))
listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
listener.bind(address)
os.environ["NOTIFY_SOCKET"] = address

def stop_when_ready():
    while b"READY=1" not in listener.recv(4096).split(b"\\n"):
        pass
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=stop_when_ready, daemon=True).start()
from appliance.cli import main

code = main(["serve", "--config", config])
out.write_text(json.dumps(sorted(sys.modules)))
sys.exit(code)
"""


def serve_once(config: Path, out: Path) -> set[str]:
    out.with_suffix(".sock").unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", SERVE, str(config), str(out)],
        cwd=ROOT,
        env={**clean_env(), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return set(json.loads(out.read_text()))


def first_use_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in LOADED_ON_FIRST_USE)


def test_a_warm_start_of_every_role_loads_neither_cryptography_nor_bcrypt(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    generate_master_key(state / MASTER_KEY_FILE)
    config = write_serve_config(state, pg, name="idle")

    # The first start creates the node's keys, so it needs cryptography: the probe sees it.
    first = serve_once(config, tmp_path / "first.json")
    assert "cryptography.hazmat.bindings._rust" in first

    warm = serve_once(config, tmp_path / "warm.json")
    # Every role really started (these load with their role, not with the command line).
    assert {"appliance.gateway.dbapi", "appliance.dashboard.sqlexec", "appliance.scheduler.loop"} <= warm
    assert {"appliance.agent.heartbeat", "appliance.backups.importexport", "uvloop"} <= warm
    assert first_use_modules(warm) == []


async def test_a_swapped_identity_key_is_still_refused(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    """The control plane remembers the node id with a digest of the key file it came from; a
    different key file must not take that id over."""
    state = tmp_path / "state"
    async with running_daemon(state, pg) as first:
        node_id = first.daemon.core.node_id
    async with running_daemon(state, pg) as again:  # the remembered id: same node
        assert again.daemon.core.node_id == node_id

    (state / IDENTITY_FILE).rename(state / "original.pem")
    stranger = NodeIdentity.generate()
    stranger.save(state / IDENTITY_FILE)
    daemon = Daemon(make_config(state, pg))
    with pytest.raises(StartupError, match=f"belongs to {stranger.node_id}, not to {node_id}"):
        await daemon.start()
