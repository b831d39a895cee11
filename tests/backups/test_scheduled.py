"""The scheduler's backup actions run through the default cron jobs; the control-plane backup
round trip; the "no verified backup for N hours" alert."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.backups.alerts import BackupAlerts
from appliance.backups.maintenance import check_unverified
from appliance.backups.service import BackupService, parse_time
from tests.backups.conftest import backup, create_project
from tests.fixtures.daemon import RunningDaemon


async def cron_job(atlas: RunningDaemon, project_id: str | None, action: str) -> dict[str, Any]:
    _, body = await atlas.admin("GET", "/admin/api/cron-jobs")
    [job] = [j for j in body["jobs"] if j["project_id"] == project_id and j["action"] == action]
    return dict(job)


async def run_job(atlas: RunningDaemon, job_id: str, timeout: float = 90) -> dict[str, Any]:
    status, body = await atlas.admin("POST", f"/admin/api/cron-jobs/{job_id}/run")
    assert status == 202, body
    run_id = body["run_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, runs = await atlas.admin("GET", f"/admin/api/cron-jobs/{job_id}/runs?limit=50")
        run = next((r for r in runs["runs"] if r["id"] == run_id), None)
        if run is not None and run["status"] != "running":
            return dict(run)
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def test_default_daily_backup_job_backs_up_verifies_and_applies_retention(atlas: RunningDaemon) -> None:
    pid = await create_project(atlas)
    job = await cron_job(atlas, pid, "backup_project")
    assert job["name"] == "Daily backup"
    run = await run_job(atlas, job["id"])
    assert run["status"] == "success", run
    assert "verified" in run["log_excerpt"]
    _, listed = await atlas.admin("GET", f"/admin/api/projects/{pid}/backups")
    assert [b["status"] for b in listed["backups"]] == ["verified"]

    status, retention = await atlas.admin(
        "POST",
        "/admin/api/cron-jobs",
        json={"name": "Retention", "type": "platform", "action": "apply_retention", "schedule_cron": "0 5 * * *"},
    )
    assert status == 201, retention
    run = await run_job(atlas, retention["id"])
    assert run["status"] == "success" and "retention removed 0 backup(s)" in run["log_excerpt"], run


async def test_a_failing_scheduled_backup_fails_the_run(atlas: RunningDaemon) -> None:
    pid = await create_project(atlas)
    job = await cron_job(atlas, pid, "backup_project")

    async def fail(point: str) -> None:
        if point == "dump_chunk":
            raise RuntimeError("disk full")

    atlas.daemon.core.service(BackupService).fault = fail
    run = await run_job(atlas, job["id"])
    assert run["status"] != "success" and "disk full" in (run["error_text"] or ""), run
    assert any("failed" in subject for subject, _ in atlas.daemon.core.service(BackupAlerts).sent)


async def test_control_plane_backup_round_trip(atlas: RunningDaemon, tmp_path: Path) -> None:
    pid = await create_project(atlas, "In the control plane")
    job = await cron_job(atlas, None, "backup_control_plane")
    assert job["name"] == "Daily control-plane backup"
    run = await run_job(atlas, job["id"])
    assert run["status"] == "success", run
    core = atlas.daemon.core
    [made] = await core.service(BackupService).list_backups(None, kind="control")
    assert made["status"] == "verified" and made["manifest"]["format"].startswith("sqlite+zlib")
    stored = b"".join([c async for c in core.storage.get_stream("atlas-backups", f"control/{made['id']}.sqlite.z.enc")])
    assert stored.startswith(b"AHBK") and pid.encode() not in stored

    status, packed = await atlas.admin("GET", f"/admin/api/backups/{made['id']}/download")
    assert status == 200
    copy = tmp_path / "control.db"
    copy.write_bytes(zlib.decompress(packed))
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT name FROM projects WHERE id = ?", (pid,)).fetchone() == ("In the control plane",)
        counts = {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in made["manifest"]["row_counts"]}
    finally:
        conn.close()
    assert counts == made["manifest"]["row_counts"]


async def test_no_verified_backup_alert(atlas: RunningDaemon) -> None:
    core = atlas.daemon.core
    hours = core.config.backups.alert_unverified_hours
    status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "Watched"})
    assert status == 201
    pid = project["id"]
    created = parse_time(project["created_at"])
    alerts = core.service(BackupAlerts)

    assert await check_unverified(core, now=created + timedelta(hours=hours - 1)) == [], "too young to alert"
    late = created + timedelta(hours=hours + 1)
    assert await check_unverified(core, now=late) == [pid]
    subjects = [s for s, _ in alerts.sent if pid in s]
    assert subjects == [f"[AtlasHub] No verified backup of project {pid}"]
    assert await check_unverified(core, now=late) == [pid]
    assert len([s for s, _ in alerts.sent if pid in s]) == 1, "repeated at most once per period"

    await backup(atlas, pid)
    now = datetime.now(UTC)
    assert await check_unverified(core, now=now + timedelta(hours=1)) == []
    assert await check_unverified(core, now=now + timedelta(hours=hours + 1)) == [pid], "the last one is too old"
