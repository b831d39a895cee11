"""Start-up cleanup, the "no verified backup" check, and backups of the control plane itself.

``recover`` is the answer to a kill -9: jobs and backups left running are marked failed, their
objects deleted, scratch databases dropped, pending restores settled. Idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import sqlite3
import tempfile
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.backups.alerts import BackupAlerts
from appliance.backups.clone import recover_clones
from appliance.backups.crypto_stream import encrypt_stream
from appliance.backups.jobs import INTERRUPTED, JobManager, NullProgress, Progress
from appliance.backups.restore import RestoreService
from appliance.backups.service import BUCKET, CONTENT_TYPE, BackupService, ensure_bucket, parse_time, storage_failure
from appliance.control.store import utcnow
from appliance.errors import AtlasError
from appliance.settings.service import RuntimeSettings

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

READ_BLOCK = 1 << 20


async def recover(core: Core) -> dict[str, Any]:
    """Clean up after a crash. Call once at start-up, before any backup job starts."""
    clones = await recover_clones(core)
    interrupted_jobs = await core.service(JobManager).recover()
    rows = await core.store.fetchall("SELECT id, object_key FROM backups WHERE status = 'running'")
    for row in rows:
        log.warning("backup %s was interrupted; removing what it wrote", row["id"])
        if row["object_key"]:
            try:
                await core.storage.delete(BUCKET, row["object_key"])
            except Exception as exc:
                log.warning("could not delete %s: %r (retried at the next start)", row["object_key"], exc)
                continue
        await core.store.execute(
            "UPDATE backups SET status = 'failed', finished_at = ?, error_text = ? WHERE id = ?",
            (utcnow(), INTERRUPTED, row["id"]),
        )
    if rows:
        await asyncio.to_thread(_remove_fs_partials, core)
    try:
        conn = await core.pg.connect(timeout=5)
    except Exception as exc:
        log.warning("PostgreSQL unreachable; scratch databases are cleaned up at the next start (%r)", exc)
    else:
        try:
            await core.service(RestoreService).recover(conn)
        finally:
            await conn.close()
    return {"jobs": interrupted_jobs, "backups": [r["id"] for r in rows], "clones": clones}


def _remove_fs_partials(core: Core) -> None:
    """The fs backend keeps an upload in progress under ``<bucket>/.tmp/``; a killed backup leaves
    its part file there. Only backups write to this bucket, so after an interrupted backup every
    part file in it is stale. (On S3, an abort-incomplete-multipart lifecycle rule does this.)"""
    root = getattr(core.storage, "root", None)
    if core.storage.kind != "fs" or not isinstance(root, Path):
        return
    for part in (root / BUCKET / ".tmp").glob("*.part"):
        log.warning("removing the partial upload %s of an interrupted backup", part.name)
        part.unlink(missing_ok=True)


async def check_unverified(core: Core, now: datetime | None = None) -> list[str]:
    """Alert for each active project without a verified backup in ``alert_unverified_hours``."""
    hours = int(core.service(RuntimeSettings).get("backups.alert_unverified_hours"))
    now = now or datetime.now(UTC)
    cutoff = now - timedelta(hours=hours)
    stale = []
    for project in await core.projects.all():
        if parse_time(project.created_at) > cutoff:
            continue  # too young to have missed a backup
        row = await core.store.fetchone(
            "SELECT max(verified_at) AS last FROM backups WHERE project_id = ? AND status = 'verified'", (project.id,)
        )
        last = row["last"] if row else None
        if last is None or parse_time(last) < cutoff:
            stale.append(project.id)
            await core.service(BackupAlerts).send(
                f"[AtlasHub] No verified backup of project {project.id}",
                f"project {project.id} ({project.name}) has had no verified backup for {hours} hours"
                + (f"; the last one was verified at {last}" if last else ""),
                dedupe_key=f"unverified:{project.id}",
                every_s=hours * 3600,
            )
    return stale


async def _file_chunks(path: Path, compress: bool) -> AsyncIterator[bytes]:
    packer = zlib.compressobj(6) if compress else None
    with path.open("rb") as f:
        while block := await asyncio.to_thread(f.read, READ_BLOCK):
            out = packer.compress(block) if packer else block
            if out:
                yield out
    if packer:
        yield packer.flush()


async def backup_control_plane(core: Core, progress: Progress | None = None) -> dict[str, Any]:
    """SQLite online backup → zlib → the backup stream format → storage; checked before it counts."""
    progress = progress or NullProgress()
    service = core.service(BackupService)
    backup_id = "bk_" + secrets.token_hex(10)
    object_key = f"control/{backup_id}.sqlite.z.enc"
    await core.store.execute(
        "INSERT INTO backups (id, project_id, kind, created_at, status, object_key)"
        " VALUES (?, NULL, 'control', ?, 'running', ?)",
        (backup_id, utcnow(), object_key),
    )
    started = time.monotonic()
    tmp_dir = core.config.state_dir / "tmp"
    tmp_dir.mkdir(exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
        snapshot = Path(work) / "control.db"
        try:
            await progress.phase("snapshot")
            await core.store.backup_to(snapshot)
            counts = await asyncio.to_thread(_table_counts, snapshot)
            await ensure_bucket(core)
            await progress.phase("upload", unit="bytes", total=snapshot.stat().st_size)
            digest = hashlib.sha256()

            async def sealed() -> AsyncIterator[bytes]:
                async for chunk in encrypt_stream(
                    _file_chunks(snapshot, True), service.key, service.context(backup_id)
                ):
                    digest.update(chunk)
                    await progress.advance(len(chunk))
                    yield chunk

            try:
                info = await core.storage.put_stream(BUCKET, object_key, sealed(), content_type=CONTENT_TYPE)
            except AtlasError:
                raise
            except Exception as exc:
                raise storage_failure(exc) from exc
        except BaseException as exc:
            await asyncio.shield(service._fail(backup_id, object_key, exc, project_id=None))
            raise
    manifest = {
        "format": "sqlite+zlib+aes256gcm-stream-v1",
        "duration_s": round(time.monotonic() - started, 3),
        "size": info.size,
        "sha256": digest.hexdigest(),
        "row_counts": counts,
    }
    await core.store.execute(
        "UPDATE backups SET status = 'completed', finished_at = ?, size = ?, sha256 = ?, manifest_json = ?"
        " WHERE id = ?",
        (utcnow(), info.size, digest.hexdigest(), json.dumps(manifest), backup_id),
    )
    if core.config.backups.verify:
        await verify_control_plane(core, backup_id)
    await service.apply_retention(None, kind="control")
    return await service.get(backup_id)


def _table_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise ValueError("the control-plane snapshot failed its integrity check")
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables}
    finally:
        conn.close()


async def verify_control_plane(core: Core, backup_id: str) -> dict[str, Any]:
    """Decrypt and inflate into a temp file, integrity-check it and compare row counts."""
    service = core.service(BackupService)
    backup = await service.get(backup_id)
    tmp_dir = core.config.state_dir / "tmp"
    with tempfile.TemporaryDirectory(dir=tmp_dir) as work:
        target = Path(work) / "control.db"
        inflater = zlib.decompressobj()
        with target.open("wb") as f:
            async for chunk in service.decrypted(backup_id):
                await asyncio.to_thread(f.write, inflater.decompress(chunk))
            f.write(inflater.flush())
        counts = await asyncio.to_thread(_table_counts, target)
    expected = (backup["manifest"] or {}).get("row_counts")
    if counts != expected:
        message = "control-plane backup does not match its manifest"
        await service._mark_unverifiable(backup, message)
        raise AtlasError(message, code="verification_failed", status=422)
    await core.store.execute(
        "UPDATE backups SET status = 'verified', verified_at = ? WHERE id = ?", (utcnow(), backup_id)
    )
    return await service.get(backup_id)
