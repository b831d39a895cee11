"""Faults: kill -9 mid-backup and mid-restore, a failed swap, unreachable storage, tampered files."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from appliance.backups.alerts import BackupAlerts
from appliance.backups.service import BUCKET, BackupService
from appliance.pg.embedded import EmbeddedPostgres
from appliance.storage.s3 import S3Backend
from tests.backups.conftest import backup, create_project, project_conn, wait_job
from tests.fixtures.daemon import RunningDaemon, running_daemon

ROOT = Path(__file__).resolve().parents[2]


async def count_notes(pg: EmbeddedPostgres, pid: str) -> int:
    conn = await project_conn(pg, pid)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM notes"))
    finally:
        await conn.close()


async def scratch_databases(pg: EmbeddedPostgres, pid: str) -> list[str]:
    conn = await project_conn(pg, pid)
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1", f"proj_{pid}_%")
    finally:
        await conn.close()
    return sorted(r[0] for r in rows)


async def run_and_kill(state: Path, pg: EmbeddedPostgres, pid: str, op: str, *extra: str) -> None:
    """Start the operation in a child process, SIGKILL it at its fault point."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.backups.crash_child",
        str(state),
        str(pg.port),
        pg.user,
        str(pg.password_file),
        pid,
        op,
        *extra,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.startswith(b"AT "), line
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()


async def test_kill_9_mid_backup_leaves_nothing_listed_as_good(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        pid = await create_project(atlas)
    await run_and_kill(state, pg, pid, "backup")
    async with running_daemon(state, pg) as atlas:
        _, listed = await atlas.admin("GET", f"/admin/api/projects/{pid}/backups")
        [crashed] = listed["backups"]
        assert crashed["status"] == "failed" and "interrupted" in crashed["error"]
        store = atlas.daemon.core.store
        jobs = await store.fetchall("SELECT state, error FROM jobs")
        assert [j["state"] for j in jobs] == ["failed"]
        parts = list((state / "storage" / BUCKET).rglob("*.part"))
        assert parts == [], "partial uploads are removed at start-up"
        # The next backup works.
        assert (await backup(atlas, pid))["result"]["status"] == "verified"


async def test_kill_9_mid_restore_keeps_the_old_database(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        pid = await create_project(atlas)
        backup_id = (await backup(atlas, pid))["result"]["id"]
    conn = await project_conn(pg, pid)
    await conn.execute("DELETE FROM notes WHERE id > 5")
    await conn.close()
    await run_and_kill(state, pg, pid, "restore", backup_id)
    assert any("_restore_" in d for d in await scratch_databases(pg, pid))
    async with running_daemon(state, pg) as atlas:
        assert await count_notes(pg, pid) == 5, "the project still serves its old database"
        assert await scratch_databases(pg, pid) == [], "the half-restored database is dropped at start-up"
        async with atlas.daemon.core.pools.connection(pid, "owner") as app:
            assert await app.fetchval("SELECT count(*) FROM notes") == 5


async def test_failure_before_the_swap_changes_nothing(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = await create_project(atlas)
    backup_id = (await backup(atlas, pid))["result"]["id"]
    conn = await project_conn(pg, pid)
    await conn.execute("DELETE FROM notes WHERE id > 7")
    await conn.close()

    async def fail(point: str) -> None:
        if point == "before_swap":
            raise RuntimeError("disk full")

    atlas.daemon.core.service(BackupService).fault = fail
    _, body = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/restore", json={"backup_id": backup_id, "confirm": pid}
    )
    job = await wait_job(atlas, body["job_id"])
    assert job["state"] == "failed" and "disk full" in job["error"]
    assert await count_notes(pg, pid) == 7
    assert await scratch_databases(pg, pid) == []


async def test_unreachable_storage_fails_clearly_and_alerts(atlas: RunningDaemon) -> None:
    pid = await create_project(atlas)
    core = atlas.daemon.core
    real = core.storage
    core.storage = S3Backend("127.0.0.1:9", "key", "secret", region="us-east-1", secure=False)
    try:
        _, body = await atlas.admin("POST", f"/admin/api/projects/{pid}/backups")
        job = await wait_job(atlas, body["job_id"])
    finally:
        await core.storage.close()
        core.storage = real
    assert job["state"] == "failed"
    assert "backup storage is unreachable" in job["error"]
    _, listed = await atlas.admin("GET", f"/admin/api/projects/{pid}/backups")
    assert [b["status"] for b in listed["backups"]] == ["failed"]
    assert any("failed" in subject for subject, _ in core.service(BackupAlerts).sent)
    # Next time (storage back) it works.
    assert (await backup(atlas, pid))["result"]["status"] == "verified"


@pytest.mark.parametrize("damage", ["flip", "truncate"])
async def test_tampered_backup_is_detected_and_never_restored(
    atlas: RunningDaemon, pg: EmbeddedPostgres, damage: str
) -> None:
    pid = await create_project(atlas)
    backup_id = (await backup(atlas, pid))["result"]["id"]
    path = atlas.daemon.core.storage.root / BUCKET / pid / f"{backup_id}.dump.enc"  # type: ignore[attr-defined]
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x40
    else:
        del blob[-100:]
    path.write_bytes(bytes(blob))
    conn = await project_conn(pg, pid)
    await conn.execute("DELETE FROM notes WHERE id > 3")
    await conn.close()

    _, body = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/restore", json={"backup_id": backup_id, "confirm": pid}
    )
    job = await wait_job(atlas, body["job_id"])
    assert job["state"] == "failed" and "damaged" in job["error"], job
    assert await count_notes(pg, pid) == 3
    assert await scratch_databases(pg, pid) == []

    async with atlas.http.get(
        f"{atlas.dashboard_url}/admin/api/backups/{backup_id}/download", headers=atlas.admin_headers
    ) as resp:
        if resp.status == 200:  # damage past the first chunk: the stream is cut, never completed
            with pytest.raises(Exception):  # noqa: B017
                await resp.read()
        else:
            assert resp.status == 422
