"""The peer table (``nodes``) and the one process-wide mesh state built from it.

``Mesh`` (``core.service(Mesh)``) owns the node's only :class:`Verifier` (one nonce cache for
every route), the WireGuard handle and the HTTP client session used to reach peers.
``await mesh.load()`` pins every active peer; ``reload()`` re-reads the table so that changes
made by the ``atlashub node`` commands (another process) take effect. Idempotent.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from appliance import __version__
from appliance.control.store import ControlPlane, utcnow
from appliance.errors import Conflict, NotFound
from appliance.mesh.envelope import Verifier
from appliance.mesh.wg import PeerSpec, WireGuard

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    role: str
    ed25519_public: str | None
    wg_public: str | None
    wg_address: str | None
    endpoint: str | None
    gateway_url: str | None
    agent_url: str | None
    status: str
    version: str | None
    last_heartbeat_at: str | None
    health: dict[str, Any] | None
    created_at: str
    removed_at: str | None

    @classmethod
    def from_row(cls, row: Any) -> Node:
        data = dict(row)
        health = json.loads(data.pop("health_json") or "null")
        return cls(**data, health=health)

    def peer_spec(self, *, keepalive: bool = False) -> PeerSpec | None:
        if not (self.wg_public and self.wg_address):
            return None
        return PeerSpec(self.wg_public, self.wg_address, self.endpoint or None, keepalive)


_NODE_COLUMNS = (
    "id, name, role, ed25519_public, wg_public, wg_address, endpoint, gateway_url, agent_url,"
    " status, version, last_heartbeat_at, health_json, created_at, removed_at"
)


def first_host(network: str) -> str:
    return str(next(ipaddress.ip_network(network).hosts()))


async def allocate_address(tx: Any, network: str) -> str:
    """The lowest address of ``network`` that no row has ever held (removed rows keep theirs)."""
    async with tx.execute("SELECT wg_address FROM nodes WHERE wg_address IS NOT NULL") as cursor:
        taken = {row[0] for row in await cursor.fetchall()}
    hosts = ipaddress.ip_network(network).hosts()
    next(hosts)  # the master's
    for host in hosts:
        if str(host) not in taken:
            return str(host)
    raise Conflict(f"no free WireGuard address left in {network}", code="wg_network_full")


class Mesh:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.store: ControlPlane = core.store
        self.identity = core.identity
        self.self_id = core.node_id
        mesh = core.config.mesh
        self.role = mesh.role
        self.verifier = Verifier(self.self_id)
        from appliance.core import WG_KEY_FILE

        self.wg = WireGuard(
            mesh.wg_interface,
            mesh.wg_listen_port,
            core.config.state_dir / WG_KEY_FILE,
            manage=mesh.wg_manage,
        )
        self._session: aiohttp.ClientSession | None = None
        self._project_nodes: dict[str, str | None] = {}
        # Active peers as of the last load(): the hot path (forwarding) reads this, not SQLite.
        self._active: dict[str, Node] = {}
        # node id -> monotonic time until which forwarding answers 503 without trying (forward.py).
        self.down_until: dict[str, float] = {}

    # -- the table -------------------------------------------------------------------------

    async def all(self, *, include_removed: bool = False) -> list[Node]:
        where = "" if include_removed else "WHERE removed_at IS NULL"
        rows = await self.store.fetchall(f"SELECT {_NODE_COLUMNS} FROM nodes {where} ORDER BY created_at, id")
        return [Node.from_row(r) for r in rows]

    async def get(self, node_id: str, *, include_removed: bool = False) -> Node:
        row = await self.store.fetchone(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE id = ?", (node_id,))
        if row is None or (row["removed_at"] is not None and not include_removed):
            raise NotFound(f"no node {node_id!r}", code="node_not_found")
        return Node.from_row(row)

    def active_peer(self, node_id: str) -> Node | None:
        """A pinned peer from memory (as of the last ``load()``); None if unknown or removed."""
        return self._active.get(node_id) if node_id in self.verifier.peers() else None

    def active_master(self) -> Node | None:
        """On a worker: its master, from memory."""
        return next((n for n in self._active.values() if n.role == "master"), None)

    async def master(self) -> Node | None:
        """On a worker: the master it joined (None before the join)."""
        row = await self.store.fetchone(
            f"SELECT {_NODE_COLUMNS} FROM nodes WHERE role = 'master' AND id != ? AND removed_at IS NULL",
            (self.self_id,),
        )
        return Node.from_row(row) if row else None

    async def ensure_self(self) -> Node:
        """Insert or refresh this node's own row (the master holds the network's first address)."""
        from appliance.mesh.identity import WireGuardKeys

        wg_keys = WireGuardKeys.load(self.wg.private_key_path)  # checked at every start
        row = await self.store.fetchone("SELECT ed25519_public, wg_public FROM nodes WHERE id = ?", (self.self_id,))
        if row is None:
            ed25519_public, wg_public = self.identity.public_key_b64(), wg_keys.public_b64
        else:
            # The upsert keeps a row's keys: deriving them again would load cryptography for nothing.
            ed25519_public, wg_public = row["ed25519_public"], row["wg_public"]
        address = first_host(self.core.config.mesh.wg_network) if self.role == "master" else None
        await self.store.execute(
            "INSERT INTO nodes (id, name, role, ed25519_public, wg_public, wg_address, status, version, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 'healthy', ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role,"
            " version = excluded.version, status = 'healthy',"
            " wg_address = coalesce(nodes.wg_address, excluded.wg_address)",
            (
                self.self_id,
                self.core.config.node.name,
                self.role,
                ed25519_public,
                wg_public,
                address,
                __version__,
                utcnow(),
            ),
        )
        return await self.get(self.self_id)

    async def load(self) -> None:
        """Pin every active peer and forget removed ones. Idempotent; cheap enough to poll."""
        active = {n.id: n for n in await self.all() if n.id != self.self_id and n.ed25519_public}
        self._active = active
        for node_id in self.verifier.peers() - set(active):
            self.verifier.remove_peer(node_id)
            log.info("unpinned node %s", node_id)
        for node_id, node in active.items():
            if node_id not in self.verifier.peers():
                assert node.ed25519_public is not None
                self.verifier.add_peer(node_id, node.ed25519_public)
        # Replaced whole, never cleared: the gateway asks for every request, and an empty map
        # would send all requests in flight to SQLite at once after each load (every 2 s).
        rows = await self.store.fetchall("SELECT id, node_id FROM projects")
        self._project_nodes = {row["id"]: self._where(row["node_id"]) for row in rows}

    async def wireguard_peers(self) -> list[PeerSpec]:
        peers = []
        for node in await self.all():
            if node.id == self.self_id:
                continue
            # Workers keep the tunnel to the master open from behind NAT.
            spec = node.peer_spec(keepalive=self.role == "worker")
            if spec is not None:
                peers.append(spec)
        return peers

    async def wireguard_up(self) -> bool:
        """Bring up WireGuard with this node's address and peers, once it has an address."""
        me = await self.get(self.self_id)
        if not me.wg_address:
            return False
        prefix = ipaddress.ip_network(self.core.config.mesh.wg_network).prefixlen
        await self.wg.up(f"{me.wg_address}/{prefix}", await self.wireguard_peers())
        return True

    async def remove(self, node_id: str) -> Node:
        """Revoke a node: unpin its key at once, drop its WireGuard peer, keep its row (and address)."""
        if node_id == self.self_id:
            raise Conflict("a node cannot remove itself", code="node_is_self")
        node = await self.get(node_id)
        await self.store.execute(
            "UPDATE nodes SET removed_at = ?, status = 'removed' WHERE id = ? AND removed_at IS NULL",
            (utcnow(), node_id),
        )
        self.verifier.remove_peer(node_id)
        self._active.pop(node_id, None)
        if node.wg_public:
            try:
                await self.wg.remove_peer(node.wg_public)
            except Exception as exc:
                log.error("could not remove the WireGuard peer of %s: %r", node_id, exc)
        log.info("removed node %s (%s)", node_id, node.name)
        return node

    async def set_status(self, node_id: str, status: str) -> None:
        await self.store.execute(
            "UPDATE nodes SET status = ? WHERE id = ? AND removed_at IS NULL AND status != ?", (status, node_id, status)
        )

    # -- projects --------------------------------------------------------------------------

    async def project_node(self, project_id: str) -> str | None:
        """Where a project lives (None: here). From memory, as of the last ``load()``; a project
        created since then is looked up once."""
        if project_id in self._project_nodes:
            return self._project_nodes[project_id]
        row = await self.store.fetchone("SELECT node_id FROM projects WHERE id = ?", (project_id,))
        where = self._where(row["node_id"] if row else None)
        self._project_nodes[project_id] = where
        return where

    def _where(self, node_id: str | None) -> str | None:
        return None if node_id in (None, self.self_id) else node_id

    def forget_project(self, project_id: str) -> None:
        self._project_nodes.pop(project_id, None)

    # -- HTTP to peers ---------------------------------------------------------------------

    @property
    def http(self) -> aiohttp.ClientSession:
        """One pooled client session (keep-alive to every peer); created on first use."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=256, limit_per_host=64, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
