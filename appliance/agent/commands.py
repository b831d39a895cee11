"""The worker's commands: what the master may ask this node to do (docs/protocol.md 5.4).

Each handler takes the core and the command's ``args`` and returns the ``result`` object of the
``command-result``; an ``AtlasError`` becomes its ``error``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from appliance.core import Core
from appliance.mesh.commands import CommandHandler

log = logging.getLogger(__name__)


async def _provision_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    created = await core.projects.create(args.get("name"))
    project = created.project
    keys = [
        {**record.to_dict(), "key_hash": record.key_hash, "key": plaintext}
        for record, plaintext in (created.publishable, created.secret)
    ]
    return {"project": project.to_dict(), "keys": keys}


async def _drop_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    project_id = str(args.get("project_id", ""))
    await core.projects.delete(project_id, project_id)
    return {"project_id": project_id}


# The daemon's own unit: restarting it inline would stop this process before the command's
# result reaches the master, so that restart is queued a moment after the result is sent.
OWN_UNIT = "atlashub.service"
SELF_RESTART_DELAY = 2.0
_deferred: set[asyncio.Task[Any]] = set()


async def _restart_unit(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import check_unit, restart_unit

    unit = check_unit(str(args.get("unit", "")))
    if unit != OWN_UNIT:
        return await restart_unit(unit)

    async def later() -> None:
        await asyncio.sleep(SELF_RESTART_DELAY)
        try:
            await restart_unit(unit)
        except Exception:
            log.exception("restarting %s failed", unit)

    task = asyncio.create_task(later(), name="self-restart")
    _deferred.add(task)
    task.add_done_callback(_deferred.discard)
    return {"unit": unit, "job": None, "deferred_seconds": SELF_RESTART_DELAY}


async def _unit_state(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import unit_state

    return await unit_state(str(args.get("unit", "")))


async def _upgrade(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import UPGRADE_UNIT, start_unit

    return await start_unit(UPGRADE_UNIT)


async def _backup_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.backups.service import BackupService

    backup = await core.service(BackupService).create_backup(str(args.get("project_id", "")))
    return {"backup_id": backup["id"], "status": backup["status"]}


async def _restore_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    """Start the restore job (as ``POST /admin/api/projects/{id}/restore`` does); it can run for
    long, so the result is its job id, read later with ``job_state``."""
    from appliance.backups.restore import start_restore_job

    project_id, backup_id = str(args.get("project_id", "")), args.get("backup_id")
    job_id = await start_restore_job(core, project_id, backup_id, args.get("confirm"))
    return {"job_id": job_id, "project_id": project_id, "backup_id": backup_id}


# Never the job's revealed-once values (a clone's new keys): command results are kept on the master.
JOB_FIELDS = ("id", "kind", "project_id", "state", "phase", "progress", "result", "error")


async def _job_state(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.backups.jobs import JobManager

    job = await core.service(JobManager).get(str(args.get("job_id", "")))
    return {k: job[k] for k in JOB_FIELDS}


WORKER_COMMANDS: dict[str, CommandHandler] = {
    "backup_project": _backup_project,
    "restore_project": _restore_project,
    "job_state": _job_state,
    "provision_project": _provision_project,
    "drop_project": _drop_project,
    "restart": _restart_unit,
    "unit_state": _unit_state,
    "upgrade": _upgrade,
}
