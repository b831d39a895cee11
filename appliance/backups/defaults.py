"""Scheduled backups by default: every project gets a daily verified backup job, and the node a
daily control-plane backup, once. An admin may change or delete them; they are not recreated.
"""

from __future__ import annotations

import logging

from appliance.core import Core
from appliance.scheduler.loop import job_store

log = logging.getLogger(__name__)

BACKUP_TIMEOUT_MS = 3 * 3600 * 1000
_MARK = "default_backup_job:"


async def ensure_default_jobs(core: Core) -> list[str]:
    """Idempotent. Returns the ids of the jobs it created."""
    store = job_store(core)
    created: list[str] = []
    targets: list[tuple[str | None, str, str, str]] = [
        (None, "Daily control-plane backup", "backup_control_plane", "15 3 * * *"),
    ]
    targets += [(p.id, "Daily backup", "backup_project", "0 3 * * *") for p in await core.projects.all()]
    for project_id, name, action, cron in targets:
        mark = _MARK + (project_id or "control")
        if await core.store.get_meta(mark):
            continue
        job = await store.create(
            {
                "name": name,
                "project_id": project_id,
                "type": "platform",
                "action": action,
                "schedule_cron": cron,
                "timezone": "UTC",
                "timeout_ms": BACKUP_TIMEOUT_MS,
                "missed_run_policy": "run_once",
            }
        )
        await core.store.set_meta(mark, job.id)
        created.append(job.id)
    if created:
        log.info("created %d default backup job(s)", len(created))
    return created
