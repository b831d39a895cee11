"""Restore a backup as a new project (a clone), with the new project's roles in place of the source's.

Steps: provision a new project (``core.projects.create``: roles, bootstrapped database, bucket,
keys); decrypt the backup to a spool file (it authenticates end to end before anything is
restored); restore it into a scratch database with ``--no-owner --no-acl`` and without its
policies; run the dump's owner, grant, default-privilege and policy statements rewritten for the
new roles (``rolemap``); check the result against the backup's manifest (row counts, sequences,
and the schema fingerprint with the role names put back); bring the platform schemas up to date;
swap the scratch database in for the new project's empty one. Any failure deletes the new project.

Carried over: schemas, tables, data, sequences, functions, views, triggers, RLS flags and
policies, owners, grants and default privileges (to the new project's roles), the project's end
users (``atlas_auth``) and its migration history. Not carried over: storage objects, cron jobs,
API keys (the clone gets new ones), project settings, and role names written inside function
bodies or other text (they still name the source's roles).

A crash mid-clone: the job is marked failed at the next start and ``recover_clones`` deletes the
project it had created (its id is written to the job row as soon as it exists).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.backups import pgtools
from appliance.backups.jobs import JobManager, NullProgress, Progress
from appliance.backups.restore import RestoreService
from appliance.backups.service import GOOD, BackupDamaged, BackupService
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.projects.dbsetup import apply_platform_migrations
from appliance.projects.model import ProjectNames, validate_name

if TYPE_CHECKING:
    from appliance.core import Core
    from appliance.projects.service import CreatedProject

log = logging.getLogger(__name__)

MAX_SCHEMA_SCRIPT = 256 << 20


class CloneService:
    def __init__(self, core: Core) -> None:
        self.core = core

    @property
    def backups(self) -> BackupService:
        return self.core.service(BackupService)

    async def check_request(self, source_id: str, backup_id: Any, name: Any) -> tuple[dict[str, Any], str]:
        """Everything that can be refused before a job starts: the backup and the new name."""
        source = await self.core.projects.get(source_id)
        if not isinstance(backup_id, str) or not backup_id:
            raise BadRequest("backup_id is required", code="invalid_value", details={"field": "backup_id"})
        backup = await self.backups.get(backup_id)
        if backup["project_id"] != source.id or backup["kind"] != "project":
            raise NotFound(f"project {source.id} has no backup {backup_id!r}", code="backup_not_found")
        if backup["status"] not in GOOD:
            raise Conflict(f"backup {backup_id} is {backup['status']}, not restorable", code="backup_not_usable")
        clean = validate_name(name)
        if await self.core.store.fetchone("SELECT 1 FROM projects WHERE name = ?", (clean,)):
            raise Conflict(f"a project named {clean!r} already exists", code="project_exists")
        return backup, clean

    async def clone(
        self, source_id: str, backup_id: Any, name: Any, progress: Progress | None = None, *, job_id: str | None = None
    ) -> tuple[dict[str, Any], CreatedProject]:
        """Returns the job's result (no secrets) and the created project with its keys."""
        progress = progress or NullProgress()
        backup, clean_name = await self.check_request(source_id, backup_id, name)
        await progress.phase("provision")
        created = await self.core.projects.create(clean_name)
        project = created.project
        if job_id is not None:
            await self.core.store.execute(
                "UPDATE jobs SET result_json = ? WHERE id = ?", (json.dumps({"project_id": project.id}), job_id)
            )
        try:
            async with self.backups.lock(project.id):
                skipped = await self._restore(ProjectNames(source_id), project.names, backup, progress)
        except BaseException as exc:
            why = type(exc).__name__
            log.warning("cloning backup %s failed (%s); deleting project %s", backup["id"], why, project.id)
            await asyncio.shield(self._discard(project.id))
            raise
        log.info("project %s cloned from backup %s of %s", project.id, backup["id"], source_id)
        result = {
            "project": project.to_dict(),
            "project_id": project.id,
            "source_project_id": source_id,
            "backup_id": backup["id"],
            "key_prefixes": {"publishable": created.publishable[0].prefix, "secret": created.secret[0].prefix},
            "not_applied": skipped,
        }
        return result, created

    async def _discard(self, project_id: str) -> None:
        try:
            await self.core.projects.delete(project_id, project_id)
        except NotFound:
            pass
        except Exception:
            log.exception("could not delete the half-made clone %s", project_id)

    async def _restore(
        self, source: ProjectNames, target: ProjectNames, backup: dict[str, Any], progress: Progress
    ) -> list[str]:
        tmp_dir = self.core.config.state_dir / "tmp"
        tmp_dir.mkdir(exist_ok=True, mode=0o700)
        scratch = pgtools.scratch_name(target, "restore")
        swapped = False
        try:
            with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
                dump = Path(work) / "backup.dump"
                await progress.phase("decrypt", unit="bytes", total=backup["size"])
                await self._spool(backup["id"], dump, progress)
                await progress.phase("restore")
                skipped = await self._restore_mapped(source, target, dump, scratch, Path(work), backup)
            await self.backups._fault("clone_before_swap")
            await progress.phase("swap")
            outgoing = pgtools.scratch_name(target, "prev")
            await self.core.service(RestoreService)._swap(target, scratch, outgoing)
            swapped = True
            await self.backups._drop_quietly(outgoing)
        finally:
            if not swapped:
                await asyncio.shield(self.backups._drop_quietly(scratch))
        return skipped

    async def _spool(self, backup_id: str, path: Path, progress: Progress) -> None:
        with path.open("wb") as f:
            async for chunk in self.backups.decrypted(backup_id):
                await asyncio.to_thread(f.write, chunk)
                await progress.advance(len(chunk))

    async def _restore_mapped(
        self, source: ProjectNames, target: ProjectNames, dump: Path, scratch: str, work: Path, backup: dict[str, Any]
    ) -> list[str]:
        pg = self.core.pg
        toc = (await pgtools.run_tool(pg, "postgres", "pg_restore", "--list", str(dump))).decode()
        listing = work / "restore.list"
        listing.write_text(pgtools.without_policies(toc))
        script = await pgtools.run_tool(pg, "postgres", "pg_restore", "--schema-only", "--file=-", str(dump))
        if len(script) > MAX_SCHEMA_SCRIPT:
            raise BadRequest("the backup's schema is too large to clone", code="clone_schema_too_large")
        conn = await pg.connect()
        try:
            await pgtools.create_database(conn, target, scratch)
            existing = [r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")]
        finally:
            await conn.close()
        from appliance.backups import rolemap  # PostgreSQL's parser: loaded by the first clone only

        mapping = rolemap.role_mapping(source, target)
        mapped = rolemap.map_role_statements(script.decode(), mapping, rolemap.server_role_filter(existing))
        await pgtools.run_tool(
            pg,
            scratch,
            "pg_restore",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            "--no-owner",
            "--no-acl",
            f"--use-list={listing}",
            f"--dbname={scratch}",
            str(dump),
        )
        conn = await pg.connect(scratch)
        try:
            async with conn.transaction():
                for statement in mapped.statements:
                    await conn.execute(statement)
            facts = await pgtools.catalog_facts(conn, rename=_renamer(target, source))
            problems = pgtools.compare_facts(backup["manifest"] or {}, facts)
            if problems:
                raise BackupDamaged(
                    "the cloned database does not match the backup's manifest: " + "; ".join(problems[:10]),
                    code="clone_mismatch",
                )
            await apply_platform_migrations(conn, target)
        finally:
            await conn.close()
        return mapped.skipped


def _renamer(target: ProjectNames, source: ProjectNames) -> Callable[[str], str]:
    new, old = f"proj_{target.project_id}_", f"proj_{source.project_id}_"
    return lambda line: line.replace(new, old)


async def recover_clones(core: Core) -> list[str]:
    """Start-up, before jobs are marked interrupted: delete projects that unfinished clones created."""
    rows = await core.store.fetchall(
        "SELECT id, result_json FROM jobs WHERE kind = 'clone' AND state IN ('queued', 'running')"
    )
    removed = []
    for row in rows:
        project_id = json.loads(row["result_json"] or "{}").get("project_id")
        if not project_id:
            continue
        log.warning("deleting project %s, left half-made by the interrupted clone job %s", project_id, row["id"])
        try:
            await core.projects.delete(project_id, project_id)
        except NotFound:
            continue
        removed.append(project_id)
    return removed


async def start_clone_job(core: Core, source_id: str, backup_id: str, name: str) -> str:
    """A clone as a job; the new keys are revealed once, on the first read of the finished job."""
    jobs = core.service(JobManager)
    service = core.service(CloneService)

    async def run(progress: Any) -> dict[str, Any]:
        result, created = await service.clone(source_id, backup_id, name, progress, job_id=progress.job_id)
        jobs.reveal_once(progress.job_id, {"publishable_key": created.publishable[1], "secret_key": created.secret[1]})
        await core.project_created(created.project.id)
        return result

    return await jobs.start("clone", source_id, run)
