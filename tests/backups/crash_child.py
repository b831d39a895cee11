"""Run one backup operation in a separate process and stop at a fault point, so a test can kill -9 it.

Usage: python -m tests.backups.crash_child STATE_DIR PG_PORT PG_USER PG_PASSWORD_FILE PROJECT_ID OP [BACKUP_ID]
where OP is backup or restore.
Prints "AT <point>" when the operation reaches the fault point, then waits forever.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace

from appliance.backups.jobs import JobManager, JobProgress
from appliance.backups.restore import RestoreService
from appliance.backups.service import BackupService
from appliance.core import Core
from tests.fixtures.daemon import make_config


async def main(argv: list[str]) -> None:
    state_dir, port, user, password_file, project_id, op, *rest = argv
    pg = SimpleNamespace(port=int(port), user=user, password_file=Path(password_file))
    core = Core(make_config(Path(state_dir), pg))  # type: ignore[arg-type]
    await core.open()
    point = "dump_chunk" if op == "backup" else "before_swap"

    async def fault(name: str) -> None:
        if name == point:
            print(f"AT {name}", flush=True)
            await asyncio.Event().wait()

    core.service(BackupService).fault = fault

    async def run(progress: JobProgress) -> dict[str, object]:
        if op == "backup":
            return await core.service(BackupService).create_backup(project_id, progress, job_id=progress.job_id)
        return await core.service(RestoreService).restore(project_id, rest[0], project_id, progress)

    jobs = core.service(JobManager)
    await jobs.wait(await jobs.start(op, project_id, run))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
