"""The node's shared services, free of HTTP: config, control plane, master key, PostgreSQL.

Lifecycle: ``await core.open()`` before any role starts, ``await core.close()`` after every
role has stopped. Roles reach it through the typed app key ``CORE``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from appliance.config import Config
from appliance.control.store import ControlPlane
from appliance.crypto import SecretBox, find_master_key, load_master_key
from appliance.errors import StartupError
from appliance.mesh.identity import NodeIdentity, WireGuardKeys
from appliance.pg.pools import Credentials, PoolManager
from appliance.pg.server import PgServer
from appliance.projects import dbsetup
from appliance.projects.keys import KeyService
from appliance.projects.model import ProjectNames
from appliance.projects.service import ProjectService
from appliance.settings.service import RuntimeSettings
from appliance.sqlident import quote_ident
from appliance.storage.base import StorageBackend
from appliance.storage.factory import build_storage

log = logging.getLogger(__name__)
T = TypeVar("T")

CONTROL_DB = "control.db"
IDENTITY_FILE = "node-ed25519.pem"
WG_KEY_FILE = "wireguard.key"
_KEY_CHECK = "master_key_check"
_NODE_ID = "node_id"
_NODE_KEY_DIGEST = "node_key_digest"


def ensure_node_keys(state_dir: Path) -> NodeIdentity:
    """Create the node's Ed25519 identity and WireGuard key once; never replace them."""
    if not (state_dir / WG_KEY_FILE).exists():
        WireGuardKeys.generate().save(state_dir / WG_KEY_FILE)
    path = state_dir / IDENTITY_FILE
    if path.exists():
        return NodeIdentity.deferred(path)
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
    storage: StorageBackend = field(init=False)
    pools: PoolManager = field(init=False)
    keys: KeyService = field(init=False)
    projects: ProjectService = field(init=False)
    _services: dict[type, Any] = field(init=False, default_factory=dict)
    # Called with a project id after DDL through the admin API (migrations, SQL editor).
    schema_listeners: list[Callable[[str], None]] = field(init=False, default_factory=list)
    # Awaited with a project id after a project was created (roles add their defaults).
    project_created_hooks: list[Callable[[str], Awaitable[None]]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.store = ControlPlane(self.config.state_dir / CONTROL_DB)

    async def open(self, *, finish_interrupted_work: bool = True) -> None:
        """Open everything. The daemon finishes interrupted work (half-made projects, project
        schema upgrades); a command run from a shell next to a running daemon must not, or it
        would take a project the daemon is creating at that moment for a crashed one."""
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
            # Before any role starts: roles read their live values from it.
            await self.service(RuntimeSettings).load()
            self.storage = build_storage(self.config, self.box)
            self.keys = KeyService(self.store, grace_seconds=self.config.keys.rotation_grace_seconds)
            await self.keys.load()
            pgc = self.config.postgres
            self.pools = PoolManager(
                self._credentials, max_pools=pgc.max_pools, pool_max=pgc.pool_max, idle_seconds=pgc.pool_idle_seconds
            )
            self.projects = ProjectService(
                self.store, self.box, self.pg, self.pools, self.keys, self.storage, self.node_id
            )
            await self._prepare_postgres(finish_interrupted_work)
        except BaseException:
            await self.close()
            raise

    async def _credentials(self, project_id: str, role: str) -> Credentials:
        """Pool logins. ``anon`` is the app login switched for good into the anon role (reads
        with the publishable key need no transaction); API pools carry the statement timeout."""
        if role not in ("app", "anon"):
            return await self.projects.credentials(project_id, role)
        creds = await self.projects.credentials(project_id, "app")
        init = f"SET statement_timeout = {int(self.config.gateway.statement_timeout_ms)}"
        if role == "anon":
            init = f"SET ROLE {quote_ident(ProjectNames(project_id).anon)}; {init}"
        return dataclasses.replace(creds, init_sql=init)

    async def _prepare_postgres(self, finish_interrupted_work: bool) -> None:
        """Harden the server and finish interrupted work. PostgreSQL may be down: then /readyz says so."""
        try:
            conn = await self.pg.connect(timeout=5)
        except Exception as exc:
            log.warning("PostgreSQL is not reachable at start-up (%r); serving, not ready", exc)
            return
        try:
            await dbsetup.harden_server(conn)
        except asyncpg.PostgresError as exc:
            log.warning("could not revoke CONNECT on the shared databases (%s); project isolation relies on it", exc)
        finally:
            await conn.close()
        if finish_interrupted_work:
            await self.projects.recover_incomplete()
            await self.projects.upgrade_all()

    async def _check_node_id(self) -> None:
        stored = await self.store.get_meta(_NODE_ID)
        digest = await self.store.get_meta(_NODE_KEY_DIGEST)
        if stored is not None and digest is not None:
            # The same key file as at the last start: its node id is known without parsing the key.
            self.identity.adopt_node_id(stored, digest)
        if stored is None:
            await self.store.set_meta(_NODE_ID, self.identity.node_id)
        elif stored != self.identity.node_id:
            raise StartupError(f"the node identity key belongs to {self.identity.node_id}, not to {stored}")
        if digest != self.identity.key_digest:
            await self.store.set_meta(_NODE_KEY_DIGEST, self.identity.key_digest)

    def gateway_bound(self, url: str) -> None:
        """The gateway's address is known only once it listens: signed fs URLs point at it."""
        signer = getattr(self.storage, "signer", None)
        if signer is not None and not self.config.gateway.public_url:
            signer.set_public_base_url(url)

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    async def project_created(self, project_id: str) -> None:
        for hook in self.project_created_hooks:
            try:
                await hook(project_id)
            except Exception:
                log.exception("a project-created hook failed for %s", project_id)

    def schema_changed(self, project_id: str) -> None:
        for listener in self.schema_listeners:
            listener(project_id)

    def service(self, cls: type[T]) -> T:
        """One shared instance of a role's service, built as ``cls(core)`` on first use.

        Services with an ``async aclose()`` are closed by ``close()``, newest first.
        """
        found = self._services.get(cls)
        if found is None:
            found = self._services[cls] = cls(self)  # type: ignore[call-arg]
        return found

    async def close(self) -> None:
        """Idempotent; role services, pools and storage first, the control plane last."""
        for service in reversed(list(self._services.values())):
            closer = getattr(service, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("closing %s failed", type(service).__name__)
        self._services.clear()
        if hasattr(self, "pools"):
            await self.pools.close()
        if hasattr(self, "storage"):
            await self.storage.close()
        await self.store.close()

    async def readiness(self) -> dict[str, bool]:
        return {"control_plane": self.store.is_open, "postgres": await self.pg.ping()}
