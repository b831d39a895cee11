"""Projects: provisioning all or nothing, listing, deletion, and recovery after a crash.

A project is created in steps (control row → roles → database → bootstrap → credentials →
bucket → keys → active). Any failure undoes what was done, in reverse. A crash mid-way
leaves a row in status ``provisioning``; ``recover_incomplete()`` at start-up removes
whatever that attempt created.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import SecretBox
from appliance.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from appliance.pg.pools import Credentials, PoolManager
from appliance.pg.server import PgServer
from appliance.projects import dbsetup
from appliance.projects.keys import KeyRecord, KeyService
from appliance.projects.model import PROJECT_ID, Project, ProjectNames, new_project_id, validate_name
from appliance.storage.base import StorageBackend

log = logging.getLogger(__name__)

DEFAULT_BUCKETS = ("private", "uploads")
LOGIN_ROLES = ("owner", "app")

FaultHook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class CreatedProject:
    project: Project
    publishable: tuple[KeyRecord, str]
    secret: tuple[KeyRecord, str]


class ProjectService:
    def __init__(
        self,
        store: ControlPlane,
        box: SecretBox,
        pg: PgServer,
        pools: PoolManager,
        keys: KeyService,
        storage: StorageBackend,
        node_id: str,
    ) -> None:
        self._store = store
        self._box = box
        self._pg = pg
        self._pools = pools
        self._keys = keys
        self._storage = storage
        self._node_id = node_id

    # -- reading ---------------------------------------------------------------------------

    async def get(self, project_id: str, *, active_only: bool = True) -> Project:
        if not PROJECT_ID.match(project_id or ""):
            raise NotFound(f"no project {project_id!r}", code="project_not_found")
        row = await self._store.fetchone("SELECT * FROM projects WHERE id = ?", (project_id,))
        if row is None or (active_only and row["status"] != "active"):
            raise NotFound(f"no project {project_id!r}", code="project_not_found")
        return Project.from_row(row)

    async def all(self) -> list[Project]:
        rows = await self._store.fetchall("SELECT * FROM projects WHERE status = 'active' ORDER BY created_at")
        return [Project.from_row(r) for r in rows]

    async def credentials(self, project_id: str, role: str) -> Credentials:
        """Decrypted login of one project role (the pool manager's loader)."""
        row = await self._store.fetchone(
            "SELECT username, password_enc FROM project_db_creds WHERE project_id = ? AND role = ?",
            (project_id, role),
        )
        if row is None:
            raise NotFound(f"project {project_id} has no {role} role", code="project_not_found")
        password = self._box.decrypt_text(row["password_enc"], context=f"pg:{project_id}:{role}")
        return Credentials(
            host=self._pg.pool_host or self._pg.project_host or self._pg.host,
            port=self._pg.port,
            user=row["username"],
            password=password,
            database=ProjectNames(project_id).database,
        )

    # -- provisioning ----------------------------------------------------------------------

    async def create(self, raw_name: object, *, fault: FaultHook | None = None) -> CreatedProject:
        name = validate_name(raw_name)
        project_id = new_project_id()
        names = ProjectNames(project_id)
        now = utcnow()
        try:
            await self._store.execute(
                "INSERT INTO projects (id, name, db_name, node_id, status, created_at)"
                " VALUES (?, ?, ?, ?, 'provisioning', ?)",
                (project_id, name, names.database, self._node_id, now),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"a project named {name!r} already exists", code="project_exists") from None
        log.info("provisioning project %s", project_id)
        try:
            await self._provision(names, fault)
            async with self._store.transaction() as tx:
                for bucket in DEFAULT_BUCKETS:
                    await tx.execute(
                        "INSERT INTO buckets (project_id, name, created_at) VALUES (?, ?, ?)",
                        (project_id, bucket, now),
                    )
                publishable = await self._keys.create(project_id, "publishable", tx=tx)
                secret = await self._keys.create(project_id, "secret", tx=tx)
                if fault:
                    await fault("keys")
                await tx.execute("UPDATE projects SET status = 'active' WHERE id = ?", (project_id,))
        except BaseException as exc:
            log.warning("provisioning project %s failed (%r); undoing it", project_id, exc)
            self._keys.forget_project(project_id)
            await self._teardown(names)
            if isinstance(exc, asyncpg.PostgresError | OSError):
                raise ServiceUnavailable(
                    "the project could not be provisioned: the database server refused or is unreachable",
                    code="provisioning_failed",
                ) from exc
            raise
        project = await self.get(project_id)
        return CreatedProject(project, publishable, secret)

    async def _provision(self, names: ProjectNames, fault: FaultHook | None) -> None:
        passwords = {role: secrets.token_urlsafe(32) for role in LOGIN_ROLES}
        conn = await self._pg.connect()
        try:
            await dbsetup.create_roles_and_database(conn, names, passwords)
        finally:
            await conn.close()
        if fault:
            await fault("database")
        conn = await self._pg.connect(names.database)
        try:
            await dbsetup.apply_platform_migrations(conn, names)
        finally:
            await conn.close()
        if fault:
            await fault("bootstrap")
        async with self._store.transaction() as tx:
            for role, password in passwords.items():
                await tx.execute(
                    "INSERT INTO project_db_creds (project_id, role, username, password_enc, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        names.project_id,
                        role,
                        names.role(role),
                        self._box.encrypt_text(password, context=f"pg:{names.project_id}:{role}"),
                        utcnow(),
                    ),
                )
        await self._storage.ensure_bucket(names.bucket)
        if fault:
            await fault("bucket")

    async def _teardown(self, names: ProjectNames) -> None:
        """Remove everything of one project. Idempotent; each step is attempted even if one fails."""
        await self._pools.drop_project(names.project_id)
        try:
            await self._storage.delete_bucket(names.bucket, force=True)
        except Exception as exc:
            log.error("could not delete bucket %s: %r", names.bucket, exc)
        try:
            conn = await self._pg.connect()
            try:
                await dbsetup.drop_database_and_roles(conn, names)
            finally:
                await conn.close()
        except Exception as exc:
            log.error("could not drop the database of %s: %r", names.project_id, exc)
        await self._store.execute("DELETE FROM projects WHERE id = ?", (names.project_id,))

    async def delete(self, project_id: str, confirm: Any) -> None:
        project = await self.get(project_id)
        if confirm != project.id:
            raise BadRequest(
                'to delete a project, send {"confirm": "<project id>"}',
                code="confirmation_required",
                details={"field": "confirm"},
            )
        await self._store.execute("UPDATE projects SET status = 'deleting' WHERE id = ?", (project_id,))
        self._keys.forget_project(project_id)
        await self._teardown(project.names)

    async def recover_incomplete(self) -> list[str]:
        """Finish what a crash interrupted: half-provisioned projects go, half-deleted ones too."""
        rows = await self._store.fetchall(
            "SELECT id FROM projects WHERE status IN ('provisioning', 'deleting') AND (node_id = ? OR node_id IS NULL)",
            (self._node_id,),
        )
        for row in rows:
            log.warning("removing project %s left incomplete by an interrupted operation", row["id"])
            self._keys.forget_project(row["id"])
            await self._teardown(ProjectNames(row["id"]))
        return [r["id"] for r in rows]

    async def upgrade_all(self) -> None:
        """Apply new platform migrations (sql/project) to every local project database."""
        for project in await self.all():
            if project.node_id not in (None, self._node_id):
                continue
            conn = await self._pg.connect(project.db_name)
            try:
                await dbsetup.apply_platform_migrations(conn, project.names)
            finally:
                await conn.close()

    async def usage(self, project: Project) -> dict[str, Any]:
        """Sizes for the overview page; cheap catalog queries only."""
        db_size = None
        try:
            conn = await self._pg.connect()
            try:
                db_size = await conn.fetchval("SELECT pg_database_size($1::text)", project.db_name)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            log.warning("could not read the size of %s", project.db_name)
        row = await self._store.fetchone(
            "SELECT coalesce(sum(size), 0) AS bytes FROM file_metadata WHERE project_id = ?", (project.id,)
        )
        return {"db_size_bytes": db_size, "storage_bytes": row["bytes"] if row else 0}
