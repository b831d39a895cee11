"""Per-project backups: pg_dump streamed, encrypted and stored; verified by a real restore.

A backup row goes ``running`` → ``completed`` → ``verified`` (or ``failed``). Only completed and
verified backups are listed as good and may be restored. The object is written under a key
that includes the backup id; a crash leaves a ``running`` row whose object (if any) the next
start deletes (``recover``). Row counts and the schema fingerprint are taken in the very
snapshot pg_dump dumps (``--snapshot``), so verification compares exact numbers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from appliance.backups import pgtools
from appliance.backups.alerts import BackupAlerts
from appliance.backups.crypto_stream import BackupIntegrityError, decrypt_stream, encrypt_stream
from appliance.backups.jobs import NullProgress, Progress, describe_error
from appliance.backups.retention import BackupRef, Policy, to_delete
from appliance.control.store import utcnow
from appliance.errors import AtlasError, BadRequest, Conflict, NotFound, ServiceUnavailable
from appliance.projects.model import ProjectNames
from appliance.settings.service import RuntimeSettings
from appliance.storage.base import ObjectInfo

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

BUCKET = "atlas-backups"
CONTENT_TYPE = "application/octet-stream"
GOOD = ("completed", "verified")
FaultHook = Callable[[str], Awaitable[None]]


class BackupDamaged(AtlasError):
    status = 422
    code = "backup_damaged"


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def backup_to_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "kind": row["kind"],
        "created_at": row["created_at"],
        "finished_at": row["finished_at"],
        "size": row["size"],
        "sha256": row["sha256"],
        "status": row["status"],
        "verified_at": row["verified_at"],
        "error": row["error_text"],
        "manifest": json.loads(row["manifest_json"]) if row["manifest_json"] else None,
    }


def storage_failure(exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"backup storage is unreachable or refused the write ({type(exc).__name__}: {exc})"[:400],
        code="backup_storage_unavailable",
    )


async def ensure_bucket(core: Core) -> None:
    try:
        await core.storage.ensure_bucket(BUCKET)
    except AtlasError:
        raise
    except Exception as exc:
        raise storage_failure(exc) from exc


class BackupService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.fault: FaultHook | None = None  # tests: called at named points ("dump_chunk", "before_swap")
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # -- small helpers -------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        return self.core.box.derive("backup-encryption")

    @staticmethod
    def context(backup_id: str) -> str:
        return f"backup:{backup_id}"

    def lock(self, project_id: str) -> asyncio.Lock:
        """One backup, verify or restore at a time per project (in this process)."""
        return self._locks[project_id]

    @property
    def alerts(self) -> BackupAlerts:
        return self.core.service(BackupAlerts)

    async def _fault(self, point: str) -> None:
        if self.fault is not None:
            await self.fault(point)

    async def get(self, backup_id: str) -> dict[str, Any]:
        row = await self.core.store.fetchone("SELECT * FROM backups WHERE id = ?", (backup_id,))
        if row is None:
            raise NotFound(f"no backup {backup_id!r}", code="backup_not_found")
        return backup_to_dict(row) | {"object_key": row["object_key"]}

    async def list_backups(self, project_id: str | None, *, kind: str = "project") -> list[dict[str, Any]]:
        rows = await self.core.store.fetchall(
            "SELECT * FROM backups WHERE kind = ? AND project_id IS ? ORDER BY created_at DESC", (kind, project_id)
        )
        return [backup_to_dict(r) for r in rows]

    # -- creating ------------------------------------------------------------------------

    async def create_backup(
        self, project_id: str, progress: Progress | None = None, *, job_id: str | None = None
    ) -> dict[str, Any]:
        progress = progress or NullProgress()
        project = await self.core.projects.get(project_id)
        backup_id = "bk_" + secrets.token_hex(10)
        object_key = f"{project.id}/{backup_id}.dump.enc"
        await self.core.store.execute(
            "INSERT INTO backups (id, project_id, kind, created_at, status, object_key, job_id)"
            " VALUES (?, ?, 'project', ?, 'running', ?, ?)",
            (backup_id, project.id, utcnow(), object_key, job_id),
        )
        try:
            async with self.lock(project.id):
                manifest = await self._dump(project.db_name, backup_id, object_key, progress)
        except BaseException as exc:
            await asyncio.shield(self._fail(backup_id, object_key, exc, project_id=project.id))
            raise
        result = await self.get(backup_id)
        if self.core.config.backups.verify:
            result = await self.verify(backup_id, progress)
        await self.apply_retention(project.id)
        return {k: result[k] for k in ("id", "status", "size", "sha256", "verified_at")} | {"manifest": manifest}

    async def _dump(self, database: str, backup_id: str, object_key: str, progress: Progress) -> dict[str, Any]:
        started = time.monotonic()
        await progress.phase("snapshot")
        await ensure_bucket(self.core)
        conn = await self.core.pg.connect(database)
        try:
            tx = conn.transaction(isolation="repeatable_read", readonly=True)
            await tx.start()
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            facts = await pgtools.catalog_facts(conn)
            server_version = await conn.fetchval("SHOW server_version")
            await progress.phase(
                "dump", unit="bytes", total=await conn.fetchval("SELECT pg_database_size($1::text)", database)
            )
            proc = await pgtools.spawn_dump(self.core.pg, database, snapshot=snapshot)
            digest = hashlib.sha256()
            stderr = asyncio.ensure_future(pgtools.read_stderr(proc))
            try:
                info, written = await self._store_stream(object_key, backup_id, proc, digest, progress)
                code = await proc.wait()
                if code != 0:
                    raise pgtools.ToolFailed(f"pg_dump failed (exit {code}): {(await stderr).strip()[-500:]}")
            finally:
                await pgtools.stop(proc)
                stderr.cancel()
            await tx.rollback()
        finally:
            await conn.close()
        if info.size != written:
            raise ServiceUnavailable(
                "the stored backup has another size than what was written", code="backup_storage_mismatch"
            )
        manifest = {
            "format": "pg_dump-custom+aes256gcm-stream-v1",
            "database": database,
            "postgres_version": server_version,
            "duration_s": round(time.monotonic() - started, 3),
            "size": info.size,
            "sha256": digest.hexdigest(),
            **facts.to_manifest(),
        }
        await self.core.store.execute(
            "UPDATE backups SET status = 'completed', finished_at = ?, size = ?, sha256 = ?, manifest_json = ?"
            " WHERE id = ?",
            (utcnow(), info.size, digest.hexdigest(), json.dumps(manifest), backup_id),
        )
        log.info("backup %s of %s: %d bytes in %.1f s", backup_id, database, info.size, manifest["duration_s"])
        return manifest

    async def _store_stream(
        self, object_key: str, backup_id: str, proc: asyncio.subprocess.Process, digest: Any, progress: Progress
    ) -> tuple[ObjectInfo, int]:
        assert proc.stdout is not None
        stdout = proc.stdout
        written = 0

        async def plain() -> AsyncIterator[bytes]:
            first = True
            while chunk := await stdout.read(pgtools.READ_BLOCK):
                yield chunk
                await progress.advance(len(chunk))
                if first:
                    first = False
                    await self._fault("dump_chunk")

        async def sealed() -> AsyncIterator[bytes]:
            nonlocal written
            async for chunk in encrypt_stream(plain(), self.key, self.context(backup_id)):
                digest.update(chunk)
                written += len(chunk)
                yield chunk

        try:
            info = await self.core.storage.put_stream(BUCKET, object_key, sealed(), content_type=CONTENT_TYPE)
        except (AtlasError, asyncio.CancelledError, BackupIntegrityError):
            raise
        except Exception as exc:
            raise storage_failure(exc) from exc
        return info, written

    async def _fail(
        self, backup_id: str, object_key: str | None, exc: BaseException, *, project_id: str | None
    ) -> None:
        message = describe_error(exc)
        await self.core.store.execute(
            "UPDATE backups SET status = 'failed', finished_at = ?, error_text = ? WHERE id = ?",
            (utcnow(), message, backup_id),
        )
        if object_key:
            try:
                await self.core.storage.delete(BUCKET, object_key)
            except Exception as cleanup:
                log.warning("could not delete the partial backup %s: %r", object_key, cleanup)
        if not isinstance(exc, asyncio.CancelledError):
            what = f"project {project_id}" if project_id else "the control plane"
            await self.alerts.send(f"[AtlasHub] Backup of {what} failed", f"backup {backup_id}: {message}")

    # -- reading back ----------------------------------------------------------------------

    async def decrypted(self, backup_id: str) -> AsyncIterator[bytes]:
        """The authenticated plaintext of a good backup; its SHA-256 is checked at the end.

        Raises ``BackupDamaged`` as soon as a chunk fails authentication, before releasing it.
        """
        backup = await self.get(backup_id)
        if backup["status"] not in GOOD:
            raise Conflict(f"backup {backup_id} is {backup['status']}, not usable", code="backup_not_usable")
        digest = hashlib.sha256()

        async def ciphertext() -> AsyncIterator[bytes]:
            try:
                async for chunk in self.core.storage.get_stream(BUCKET, backup["object_key"]):
                    digest.update(chunk)
                    yield chunk
            except NotFound:
                raise BackupDamaged(f"backup {backup_id} is missing from storage", code="backup_missing") from None
            except (AtlasError, asyncio.CancelledError):
                raise
            except Exception as exc:
                raise storage_failure(exc) from exc

        try:
            async for plain in decrypt_stream(ciphertext(), self.key, self.context(backup_id)):
                yield plain
        except BackupIntegrityError as exc:
            raise BackupDamaged(f"backup {backup_id} is damaged: {exc}") from None
        if digest.hexdigest() != backup["sha256"]:
            raise BackupDamaged(f"backup {backup_id} does not match its recorded SHA-256")

    async def verify(self, backup_id: str, progress: Progress | None = None) -> dict[str, Any]:
        """Restore into a scratch database, compare with the manifest, drop it, record the outcome."""
        progress = progress or NullProgress()
        backup = await self.get(backup_id)
        if backup["kind"] != "project" or not backup["project_id"]:
            raise BadRequest("only project backups are verified by restoring them", code="not_a_project_backup")
        names = ProjectNames(backup["project_id"])
        await progress.phase("verify", unit="bytes", total=backup["size"])
        scratch = pgtools.scratch_name(names, "verify")
        try:
            problems = await self._restore_and_compare(names, scratch, backup, progress)
        except BaseException as exc:
            if isinstance(exc, BackupDamaged | pgtools.ToolFailed):
                await self._mark_unverifiable(backup, describe_error(exc))
            raise
        finally:
            await asyncio.shield(self._drop_quietly(scratch))
        if problems:
            await self._mark_unverifiable(backup, "verification failed: " + "; ".join(problems[:10]))
            raise BackupDamaged("verification failed: " + "; ".join(problems[:10]), code="verification_failed")
        now = utcnow()
        await self.core.store.execute(
            "UPDATE backups SET status = 'verified', verified_at = ? WHERE id = ?", (now, backup_id)
        )
        return await self.get(backup_id)

    async def _restore_and_compare(
        self, names: ProjectNames, database: str, backup: dict[str, Any], progress: Progress
    ) -> list[str]:
        """Restore ``backup`` into a new ``database``; return how it differs from the manifest."""
        conn = await self.core.pg.connect()
        try:
            await pgtools.create_database(conn, names, database)
        finally:
            await conn.close()

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in self.decrypted(backup["id"]):
                yield chunk
                await progress.advance(len(chunk))

        await pgtools.restore_into(self.core.pg, database, counted())
        conn = await self.core.pg.connect(database)
        try:
            facts = await pgtools.catalog_facts(conn)
        finally:
            await conn.close()
        return pgtools.compare_facts(backup["manifest"] or {}, facts)

    async def _mark_unverifiable(self, backup: dict[str, Any], message: str) -> None:
        await self.core.store.execute(
            "UPDATE backups SET status = 'failed', error_text = ? WHERE id = ?", (message, backup["id"])
        )
        await self.alerts.send(f"[AtlasHub] Backup {backup['id']} failed verification", message)

    async def _drop_quietly(self, database: str) -> None:
        try:
            conn = await self.core.pg.connect()
            try:
                await pgtools.drop_database(conn, database)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("could not drop the scratch database %s: %r (dropped at the next start)", database, exc)

    # -- retention -------------------------------------------------------------------------

    async def apply_retention(self, project_id: str | None, *, kind: str = "project") -> list[str]:
        settings = self.core.service(RuntimeSettings)  # retention is a runtime setting
        keep = [int(settings.get(f"backups.keep_{period}")) for period in ("daily", "weekly", "monthly")]
        rows = await self.core.store.fetchall(
            "SELECT id, created_at, status, object_key FROM backups WHERE kind = ? AND project_id IS ?"
            " AND status != 'running'",
            (kind, project_id),
        )
        refs = [
            BackupRef(r["id"], parse_time(r["created_at"]), r["status"] in GOOD, r["status"] == "verified")
            for r in rows
        ]
        doomed = set(to_delete(refs, Policy(*keep)))
        for row in rows:
            if row["id"] in doomed:
                if row["object_key"]:
                    await self.core.storage.delete(BUCKET, row["object_key"])
                await self.core.store.execute("DELETE FROM backups WHERE id = ?", (row["id"],))
        if doomed:
            log.info("retention removed %d backup(s) of %s", len(doomed), project_id or kind)
        return sorted(doomed)
