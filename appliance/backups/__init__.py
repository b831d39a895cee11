"""The backups role: one cleanup_ctx that cleans up after a crash, registers the scheduler's
platform actions, and runs the maintenance loop (undo windows, "no verified backup" alerts).

Its admin routes live in ``routes`` and are served by the dashboard role.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from appliance.backups import maintenance
from appliance.backups.actions import register_platform_actions, unregister_platform_actions
from appliance.backups.defaults import ensure_default_jobs
from appliance.backups.jobs import JobManager
from appliance.backups.restore import RestoreService
from appliance.config import Config
from appliance.web.keys import CORE

log = logging.getLogger("appliance.backups")

MAINTENANCE_INTERVAL_S = 600.0


def setup(app: web.Application, config: Config) -> None:
    """Add this role's one cleanup_ctx to ``app``."""
    app.cleanup_ctx.append(_backups_context(config))


def _backups_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def backups_context(app: web.Application) -> AsyncIterator[None]:
        core = app[CORE]
        found = await maintenance.recover(core)
        if found["jobs"] or found["backups"] or found["clones"]:
            log.warning("cleaned up after an interruption: %s", found)
        register_platform_actions(core)
        try:
            await ensure_default_jobs(core)
        except Exception:
            log.exception("could not create the default backup jobs; retrying with the maintenance loop")

        async def on_project(_project_id: str) -> None:
            await ensure_default_jobs(core)

        core.project_created_hooks.append(on_project)
        task = asyncio.get_running_loop().create_task(_maintenance_loop(app), name="backups maintenance")
        try:
            yield
        finally:
            core.project_created_hooks.remove(on_project)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            unregister_platform_actions()
            await core.service(JobManager).aclose()

    return backups_context


async def _maintenance_loop(app: web.Application) -> None:
    core = app[CORE]
    while True:
        await asyncio.sleep(MAINTENANCE_INTERVAL_S)
        try:
            await core.service(RestoreService).expire()
            await maintenance.check_unverified(core)
            await ensure_default_jobs(core)
        except Exception:
            log.exception("backup maintenance failed; retrying in %.0f s", MAINTENANCE_INTERVAL_S)
