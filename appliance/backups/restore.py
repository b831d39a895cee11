"""Restore a backup into a new database, then swap it in for the project; undo within a window.

The swap is one transaction of two ``ALTER DATABASE … RENAME`` statements, run after new
connections to the project database are refused, its pools dropped and its sessions ended. Until
that transaction commits the project serves its old database; a crash before leaves only a
scratch database, which the next start drops. The replaced database is kept as
``proj_<id>_prev_<hex>`` until the undo window ends. A restore point is written ``pending``
before the swap, so the next start can tell whether a crash came before or after it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from appliance.backups import pgtools
from appliance.backups.jobs import NullProgress, Progress
from appliance.backups.service import GOOD, BackupDamaged, BackupService
from appliance.control.store import utcnow
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.projects.model import ProjectNames
from appliance.sqlident import quote_ident

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

SWAP_ATTEMPTS = 20


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RestoreService:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def backups(self) -> BackupService:
        return self.core.service(BackupService)

    async def restore(
        self, project_id: str, backup_id: Any, confirm: Any, progress: Progress | None = None
    ) -> dict[str, Any]:
        progress = progress or NullProgress()
        project = await self.core.projects.get(project_id)
        self.check_request(project.id, backup_id, confirm)
        backup = await self.backups.get(backup_id)
        if backup["project_id"] != project.id or backup["kind"] != "project":
            raise NotFound(f"project {project.id} has no backup {backup_id!r}", code="backup_not_found")
        if backup["status"] not in GOOD:
            raise Conflict(f"backup {backup_id} is {backup['status']}, not restorable", code="backup_not_usable")
        names = project.names
        async with self.backups.lock(project.id):
            incoming = pgtools.scratch_name(names, "restore")
            swapped = False
            try:
                await progress.phase("restore", unit="bytes", total=backup["size"])
                problems = await self.backups._restore_and_compare(names, incoming, backup, progress)
                if problems:
                    raise BackupDamaged(
                        "the restored database does not match the backup's manifest: " + "; ".join(problems[:10])
                    )
                await self.backups._fault("before_swap")
                await progress.phase("swap")
                point = await self._swap_in(names, incoming, backup_id)
                swapped = True
            finally:
                if not swapped:
                    await asyncio.shield(self.backups._drop_quietly(incoming))
        log.warning(
            "project %s restored from backup %s; undo possible until %s", project.id, backup_id, point["expires_at"]
        )
        return {"project_id": project.id, "backup_id": backup_id, "undo_until": point["expires_at"]}

    @staticmethod
    def check_request(project_id: str, backup_id: Any, confirm: Any) -> None:
        if not isinstance(backup_id, str) or not backup_id:
            raise BadRequest("backup_id is required", code="invalid_value", details={"field": "backup_id"})
        if confirm != project_id:
            raise BadRequest(
                'to restore, send {"confirm": "<project id>"}: the current database will be replaced',
                code="confirmation_required",
                details={"field": "confirm"},
            )

    async def _swap_in(self, names: ProjectNames, incoming: str, backup_id: str) -> dict[str, Any]:
        outgoing = pgtools.scratch_name(names, "prev")
        now = datetime.now(UTC)
        point = {
            "id": "rp_" + secrets.token_hex(8),
            "expires_at": _stamp(now + timedelta(hours=self.core.config.backups.undo_window_hours)),
        }
        await self.core.store.execute(
            "INSERT INTO restore_points (id, project_id, backup_id, replaced_db, state, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, 'pending', ?, ?)",
            (point["id"], names.project_id, backup_id, outgoing, _stamp(now), point["expires_at"]),
        )
        try:
            await self._swap(names, incoming, outgoing)
        except BaseException:
            await asyncio.shield(self.core.store.execute("DELETE FROM restore_points WHERE id = ?", (point["id"],)))
            raise
        older = await self.core.store.fetchall(
            "SELECT id, replaced_db FROM restore_points WHERE project_id = ? AND state = 'active'", (names.project_id,)
        )
        await self.core.store.execute("UPDATE restore_points SET state = 'active' WHERE id = ?", (point["id"],))
        for row in older:  # only the latest restore can be undone
            await self._retire(row["id"], row["replaced_db"], "expired")
        return point

    async def _swap(self, names: ProjectNames, incoming: str, outgoing: str) -> None:
        """Rename ``proj_<id>`` to ``outgoing`` and ``incoming`` to ``proj_<id>`` in one transaction."""
        q = quote_ident
        current = names.database
        conn = await self.core.pg.connect()
        try:
            await conn.execute(f"ALTER DATABASE {q(current)} WITH ALLOW_CONNECTIONS false")
            try:
                for attempt in range(SWAP_ATTEMPTS):
                    await self.core.pools.drop_project(names.project_id)
                    await conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = ANY($1::text[]) AND pid <> pg_backend_pid()",
                        [current, incoming],
                    )
                    try:
                        async with conn.transaction():
                            await conn.execute(f"ALTER DATABASE {q(current)} RENAME TO {q(outgoing)}")
                            await conn.execute(f"ALTER DATABASE {q(incoming)} RENAME TO {q(current)}")
                        break
                    except asyncpg.ObjectInUseError:
                        await asyncio.sleep(0.05 * (attempt + 1))
                else:
                    raise Conflict("the project database stayed busy; nothing was swapped", code="database_busy")
            finally:
                # The name now belongs to the new database, or still to the old one: either way it serves.
                await conn.execute(f"ALTER DATABASE {q(current)} WITH ALLOW_CONNECTIONS true")
        finally:
            await conn.close()
        await self.core.pools.drop_project(names.project_id)
        self.core.schema_changed(names.project_id)

    async def undo(self, project_id: str) -> dict[str, Any]:
        """Put back the database the latest restore replaced (within the undo window)."""
        project = await self.core.projects.get(project_id)
        row = await self.core.store.fetchone(
            "SELECT * FROM restore_points WHERE project_id = ? AND state = 'active' AND expires_at > ?",
            (project.id, utcnow()),
        )
        if row is None:
            raise Conflict(
                "there is no restore to undo for this project (or its window has passed)", code="nothing_to_undo"
            )
        names = project.names
        async with self.backups.lock(project.id):
            undone = pgtools.scratch_name(names, "undone")
            await self._swap(names, row["replaced_db"], undone)
            await self._retire(row["id"], undone, "undone")
        log.warning("project %s: restore %s undone", project.id, row["id"])
        return {"project_id": project.id, "backup_id": row["backup_id"], "undone": True}

    async def _retire(self, point_id: str, database: str, state: str) -> None:
        await self.backups._drop_quietly(database)
        await self.core.store.execute(
            "UPDATE restore_points SET state = ?, finished_at = ? WHERE id = ?", (state, utcnow(), point_id)
        )

    async def expire(self) -> list[str]:
        """Drop replaced databases whose undo window has passed."""
        rows = await self.core.store.fetchall(
            "SELECT id, replaced_db FROM restore_points WHERE state = 'active' AND expires_at <= ?", (utcnow(),)
        )
        for row in rows:
            await self._retire(row["id"], row["replaced_db"], "expired")
        return [r["id"] for r in rows]

    async def recover(self, conn: asyncpg.Connection) -> None:
        """Start-up: settle restore points a crash left pending, reopen project databases."""
        existing = {
            r["datname"]: r["datallowconn"] for r in await conn.fetch("SELECT datname, datallowconn FROM pg_database")
        }
        for row in await self.core.store.fetchall("SELECT id, replaced_db FROM restore_points WHERE state = 'pending'"):
            if row["replaced_db"] in existing:
                await self.core.store.execute("UPDATE restore_points SET state = 'active' WHERE id = ?", (row["id"],))
            else:
                await self.core.store.execute("DELETE FROM restore_points WHERE id = ?", (row["id"],))
        kept = {
            r["replaced_db"]
            for r in await self.core.store.fetchall("SELECT replaced_db FROM restore_points WHERE state = 'active'")
        }
        for name, allowed in existing.items():
            if pgtools.PROJECT_DB.match(name) and not allowed:
                log.warning("reopening %s, left closed by an interrupted restore", name)
                await conn.execute(f"ALTER DATABASE {quote_ident(name)} WITH ALLOW_CONNECTIONS true")
            elif pgtools.SCRATCH_DB.match(name) and name not in kept:
                log.warning("dropping %s, left behind by an interrupted backup operation", name)
                await pgtools.drop_database(conn, name)


async def start_restore_job(core: Core, project_id: str, backup_id: Any, confirm: Any) -> str:
    """Check a restore request, then run the restore as a job; returns the job id.

    The one way in for the admin API (``POST /admin/api/projects/{id}/restore``) and the
    worker's ``restore_project`` command alike."""
    from appliance.backups.jobs import JobManager

    project = await core.projects.get(project_id)
    RestoreService.check_request(project.id, backup_id, confirm)
    backup = await core.service(BackupService).get(backup_id)
    if backup["project_id"] != project.id:
        raise NotFound(f"backup {backup['id']} belongs to another project", code="backup_not_found")
    restorer = core.service(RestoreService)

    async def run(progress: Any) -> dict[str, Any]:
        return await restorer.restore(project.id, backup["id"], confirm, progress)

    return await core.service(JobManager).start("restore", project.id, run)
