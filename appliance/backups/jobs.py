"""Long operations as jobs: a task per job, its state and progress persisted in the ``jobs`` table.

Lifecycle: ``JobManager(core)`` is a core service. ``recover()`` runs once at start-up, before
new jobs: a job still ``queued``/``running`` in the table belongs to a process that died, so it
is marked failed. ``aclose()`` cancels running jobs and waits for them; each records its own
failure. Progress writes are throttled (at most one per ``flush_interval`` per job).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from appliance.control.store import ControlPlane, utcnow
from appliance.errors import AtlasError, NotFound

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

REVEAL_WINDOW_S = 24 * 3600
INTERRUPTED = "interrupted: the daemon stopped while this job was running"


class Progress(Protocol):
    """What an operation reports while it runs (a job row, a CLI progress bar, or nothing)."""

    async def phase(self, name: str, *, total: int | None = None, unit: str | None = None) -> None: ...

    async def advance(self, amount: int) -> None: ...


class NullProgress:
    async def phase(self, name: str, *, total: int | None = None, unit: str | None = None) -> None:
        return None

    async def advance(self, amount: int) -> None:
        return None


class JobProgress:
    """Progress of one job, written to its row (throttled; phase changes are written at once)."""

    def __init__(self, store: ControlPlane, job_id: str, flush_interval: float) -> None:
        self._store = store
        self.job_id = job_id
        self._interval = flush_interval
        self.name = "queued"
        self.done = 0
        self.total: int | None = None
        self.unit: str | None = None
        self._last_flush = 0.0

    async def phase(self, name: str, *, total: int | None = None, unit: str | None = None) -> None:
        self.name, self.done, self.total, self.unit = name, 0, total, unit
        await self.flush()

    async def advance(self, amount: int) -> None:
        self.done += amount
        if time.monotonic() - self._last_flush >= self._interval:
            await self.flush()

    async def flush(self) -> None:
        self._last_flush = time.monotonic()
        await self._store.execute(
            "UPDATE jobs SET phase = ?, progress_done = ?, progress_total = ?, progress_unit = ?, updated_at = ?"
            " WHERE id = ?",
            (self.name, self.done, self.total, self.unit, utcnow(), self.job_id),
        )


JobFn = Callable[[JobProgress], Awaitable[dict[str, Any]]]


def job_to_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "kind": row["kind"],
        "project_id": row["project_id"],
        "state": row["state"],
        "phase": row["phase"],
        "progress": {"done": row["progress_done"], "total": row["progress_total"], "unit": row["progress_unit"]},
        "result": json.loads(row["result_json"]) if row["result_json"] else None,
        "error": row["error"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def describe_error(exc: BaseException) -> str:
    """A message fit for the job row and the admin: AtlasError texts are written for clients."""
    if isinstance(exc, AtlasError):
        return exc.message
    if isinstance(exc, asyncio.CancelledError):
        return INTERRUPTED
    return f"{type(exc).__name__}: {exc}"[:500]


class JobManager:
    def __init__(self, core: Core, *, flush_interval: float = 0.5) -> None:
        self._store = core.store
        self._interval = flush_interval
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._once: dict[str, tuple[float, dict[str, Any]]] = {}

    async def recover(self) -> list[str]:
        """Mark jobs a dead process left unfinished as failed. Idempotent."""
        rows = await self._store.fetchall("SELECT id FROM jobs WHERE state IN ('queued', 'running')")
        ids = [r["id"] for r in rows if r["id"] not in self._tasks]
        for job_id in ids:
            await self._finish(job_id, "failed", error=INTERRUPTED)
            log.warning("job %s was interrupted by a restart; marked failed", job_id)
        return ids

    async def start(self, kind: str, project_id: str | None, fn: JobFn) -> str:
        job_id = "job_" + secrets.token_hex(10)
        now = utcnow()
        await self._store.execute(
            "INSERT INTO jobs (id, kind, project_id, state, phase, created_at, updated_at)"
            " VALUES (?, ?, ?, 'queued', 'queued', ?, ?)",
            (job_id, kind, project_id, now, now),
        )
        task = asyncio.get_running_loop().create_task(self._run(job_id, fn), name=f"job {kind} {job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))
        return job_id

    async def _run(self, job_id: str, fn: JobFn) -> None:
        progress = JobProgress(self._store, job_id, self._interval)
        try:
            await self._store.execute(
                "UPDATE jobs SET state = 'running', updated_at = ? WHERE id = ?", (utcnow(), job_id)
            )
            result = await fn(progress)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(job_id, "failed", error=INTERRUPTED, progress=progress))
            raise
        except Exception as exc:
            if not isinstance(exc, AtlasError):
                log.exception("job %s failed", job_id)
            await self._finish(job_id, "failed", error=describe_error(exc), progress=progress)
        else:
            await self._finish(job_id, "succeeded", result=result, progress=progress)

    async def _finish(
        self,
        job_id: str,
        state: str,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        progress: JobProgress | None = None,
    ) -> None:
        phase = "done" if state == "succeeded" else (progress.name if progress else None)
        await self._store.execute(
            "UPDATE jobs SET state = ?, error = ?, result_json = ?, phase = coalesce(?, phase), updated_at = ?"
            " WHERE id = ?",
            (state, error, json.dumps(result) if result is not None else None, phase, utcnow(), job_id),
        )

    def reveal_once(self, job_id: str, secrets_: dict[str, Any]) -> None:
        """Values (new keys) added to the job's result on its first read once it succeeded, then
        forgotten. Kept in memory only: never written to the jobs table, lost with a restart, and
        dropped unread after ``REVEAL_WINDOW_S``."""
        now = time.monotonic()
        for stale in [k for k, (at, _) in self._once.items() if now - at > REVEAL_WINDOW_S]:
            del self._once[stale]
        self._once[job_id] = (now, secrets_)

    async def get(self, job_id: str, *, reveal: bool = False) -> dict[str, Any]:
        row = await self._store.fetchone("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        job = job_to_dict(row)
        if job["state"] == "failed":
            self._once.pop(job_id, None)
        elif reveal and job["state"] == "succeeded" and job_id in self._once:
            job["result"] = {**(job["result"] or {}), **self._once.pop(job_id)[1]}
        return job

    async def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Wait for a job of this process to end; return its row."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        return await self.get(job_id)

    def running(self) -> list[str]:
        return list(self._tasks)

    async def aclose(self) -> None:
        """Cancel running jobs and wait for them to record their failure. Idempotent."""
        self._once.clear()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
