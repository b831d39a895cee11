"""The node's shared services, free of HTTP: config, control plane, master key, PostgreSQL.

Lifecycle: ``await core.open()`` before any role starts, ``await core.close()`` after every
role has stopped. Roles reach it through the typed app key ``CORE``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from appliance.config import Config
from appliance.control.store import ControlPlane
from appliance.crypto import SecretBox, find_master_key, load_master_key
from appliance.errors import StartupError
from appliance.mesh.identity import NodeIdentity, WireGuardKeys
from appliance.pg.server import PgServer

log = logging.getLogger(__name__)

CONTROL_DB = "control.db"
IDENTITY_FILE = "node-ed25519.pem"
WG_KEY_FILE = "wireguard.key"
_KEY_CHECK = "master_key_check"
_NODE_ID = "node_id"


def ensure_node_keys(state_dir: Path) -> NodeIdentity:
    """Create the node's Ed25519 identity and WireGuard key once; never replace them."""
    if not (state_dir / WG_KEY_FILE).exists():
        WireGuardKeys.generate().save(state_dir / WG_KEY_FILE)
    path = state_dir / IDENTITY_FILE
    if path.exists():
        return NodeIdentity.load(path)
    identity = NodeIdentity.generate()
    identity.save(path)
    return identity


def check_state_dir(state_dir: Path) -> None:
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StartupError(f"state dir {state_dir} cannot be created: {exc.strerror}") from None
    probe = state_dir / f".write-probe-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"state dir {state_dir} is not writable: {exc.strerror}") from None


@dataclass
class Core:
    config: Config
    dev_admin_token: str | None = None
    store: ControlPlane = field(init=False)
    box: SecretBox = field(init=False)
    pg: PgServer = field(init=False)
    identity: NodeIdentity = field(init=False)

    def __post_init__(self) -> None:
        self.store = ControlPlane(self.config.state_dir / CONTROL_DB)

    async def open(self) -> None:
        check_state_dir(self.config.state_dir)
        key_path = find_master_key(self.config.state_dir)
        fresh = not self.store.path.exists()
        if key_path is None:
            if fresh:
                raise StartupError(
                    f"no master key in {self.config.state_dir} (or $CREDENTIALS_DIRECTORY/master-key); "
                    "run `atlashub init` first"
                )
            raise StartupError(
                f"the master key is missing but {self.store.path} exists and may hold secrets sealed "
                "with it; refusing to start and never generating a new key over old secrets. Put the "
                f"key back at {self.config.state_dir / 'master.key'} or provide it as a systemd credential."
            )
        self.box = SecretBox(load_master_key(key_path))
        if not fresh and not (self.config.state_dir / IDENTITY_FILE).exists():
            raise StartupError(
                f"the node identity key {self.config.state_dir / IDENTITY_FILE} is missing; peers pinned it, "
                "so a new one would detach this node from its cluster. Restore it from a backup."
            )
        self.identity = ensure_node_keys(self.config.state_dir)
        self.pg = PgServer.from_config(self.config.postgres)
        await self.store.open()
        try:
            await self._check_node_id()
            stored = await self.store.get_meta(_KEY_CHECK)
            if stored is None:
                await self.store.set_meta(_KEY_CHECK, self.box.check_value())
            elif stored != self.box.check_value():
                raise StartupError(f"the master key at {key_path} is not the key this control plane was sealed with")
        except BaseException:
            await self.store.close()
            raise

    async def _check_node_id(self) -> None:
        stored = await self.store.get_meta(_NODE_ID)
        if stored is None:
            await self.store.set_meta(_NODE_ID, self.identity.node_id)
        elif stored != self.identity.node_id:
            raise StartupError(f"the node identity key belongs to {self.identity.node_id}, not to {stored}")

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    async def close(self) -> None:
        await self.store.close()

    async def readiness(self) -> dict[str, bool]:
        return {"control_plane": self.store.is_open, "postgres": await self.pg.ping()}
