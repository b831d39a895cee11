"""The backups role's platform actions for scheduled jobs: backup_project, backup_control_plane, apply_retention.

They run the operation to its end (so a failure fails the scheduler run and its notice goes out)
and return a one-line summary. Give such cron jobs a timeout that fits the database size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.backups import maintenance
from appliance.backups.jobs import JobManager, JobProgress
from appliance.backups.service import BackupService

if TYPE_CHECKING:
    from appliance.core import Core
    from appliance.scheduler.platform_jobs import ActionContext

ACTION_NAMES = ("backup_project", "backup_control_plane", "apply_retention")


def register_platform_actions(core: Core) -> None:
    """Add the actions to the scheduler's allowlist, bound to ``core``. Idempotent (replaces)."""
    from appliance.scheduler.platform_jobs import register_action

    async def backup_project(ctx: ActionContext) -> str:
        project_id = ctx.project_id or str(ctx.args.get("project_id") or "")
        jobs = core.service(JobManager)
        service = core.service(BackupService)

        async def run(progress: JobProgress) -> dict[str, object]:
            return await service.create_backup(project_id, progress, job_id=progress.job_id)

        job = await jobs.wait(await jobs.start("backup", project_id, run))
        if job["state"] != "succeeded":
            raise RuntimeError(job["error"] or "backup failed")
        result = job["result"] or {}
        return f"backup {result.get('id')} of {project_id}: {result.get('status')}, {result.get('size')} bytes"

    async def backup_control_plane(ctx: ActionContext) -> str:
        result = await maintenance.backup_control_plane(core)
        return f"control-plane backup {result['id']}: {result['status']}, {result['size']} bytes"

    async def apply_retention(ctx: ActionContext) -> str:
        service = core.service(BackupService)
        project_id = ctx.project_id or ctx.args.get("project_id")
        if project_id:
            removed = await service.apply_retention(str(project_id))
        else:
            removed = []
            for project in await core.projects.all():
                removed += await service.apply_retention(project.id)
            removed += await service.apply_retention(None, kind="control")
        return f"retention removed {len(removed)} backup(s)"

    register_action(
        "backup_project",
        backup_project,
        needs_project=True,
        replace=True,
        description="Back up the project's database (encrypted), verify it, apply retention.",
    )
    register_action(
        "backup_control_plane",
        backup_control_plane,
        replace=True,
        description="Back up the control plane (SQLite online backup, encrypted).",
    )
    register_action(
        "apply_retention",
        apply_retention,
        replace=True,
        description="Apply backup retention (one project, or every project and the control plane).",
    )


def unregister_platform_actions() -> None:
    from appliance.scheduler.platform_jobs import unregister_action

    for name in ACTION_NAMES:
        unregister_action(name)
