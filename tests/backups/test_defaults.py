"""Every project gets a daily backup job once; the node a daily control-plane backup."""

from __future__ import annotations

from appliance.backups.defaults import ensure_default_jobs
from tests.fixtures.daemon import RunningDaemon


async def test_default_backup_jobs_are_created_once(atlas: RunningDaemon) -> None:
    status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "backed up"})
    assert status == 201
    status, body = await atlas.admin("GET", "/admin/api/cron-jobs")
    jobs = {(j["project_id"], j["action"]): j for j in body["jobs"]}
    daily = jobs[(project["id"], "backup_project")]
    assert daily["type"] == "platform" and daily["enabled"] and daily["schedule_cron"] == "0 3 * * *"
    assert (None, "backup_control_plane") in jobs
    # The admin may delete it; it is not recreated behind their back.
    status, _ = await atlas.admin("DELETE", f"/admin/api/cron-jobs/{daily['id']}")
    assert status == 204
    assert await ensure_default_jobs(atlas.daemon.core) == []
    status, body = await atlas.admin("GET", f"/admin/api/cron-jobs?project_id={project['id']}")
    assert body["jobs"] == []
