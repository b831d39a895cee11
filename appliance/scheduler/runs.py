"""Run history (``cron_job_runs``) and the scheduler's per-job watermark. No HTTP here.

A run row is written ``running`` before the work starts and finished afterwards; a row left
``running`` by a crash is closed by ``fail_unfinished`` when the scheduler starts. Runs page
newest first; the cursor ``before`` is the id of the last run of the previous page.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from appliance.control.store import ControlPlane
from appliance.errors import BadRequest, NotFound
from appliance.scheduler import platform_jobs
from appliance.scheduler.jobs import Job, iso
from appliance.storage.base import StorageBackend

log = logging.getLogger(__name__)

LOG_EXCERPT_CHARS = 64 * 1024
# Full answers of HTTP jobs longer than the run's excerpt (cron_job_runs.log_object_key).
LOG_BUCKET = "atlas-cron-logs"
RunStatus = Literal["success", "fail", "timeout", "skipped", "running"]
_RUN_COLUMNS = (
    "id, job_id, trigger, scheduled_for, started_at, finished_at, status, http_status, duration_ms,"
    " error_text, attempt, log_excerpt, log_object_key"
)


def new_run_id() -> str:
    return "cr_" + secrets.token_hex(10)


@dataclass(frozen=True)
class RunStart:
    """A run row to open: ``running`` (work follows) or ``skipped`` (closed at once)."""

    job_id: str
    status: Literal["running", "skipped"]
    trigger: str  # "schedule" | "manual" | "missed"
    scheduled_for: datetime | None = None
    error_text: str | None = None
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", new_run_id())


@dataclass(frozen=True)
class Tick:
    """The scheduler's decision for one due job: new watermark, next due time, maybe a run."""

    job: Job
    last_due: datetime
    next_due: datetime | None
    runs: tuple[RunStart, ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    status: Literal["success", "fail", "timeout"]
    duration_ms: int
    http_status: int | None = None
    error_text: str | None = None
    attempt: int = 1
    log_excerpt: str | None = None
    log_object_key: str | None = None


def _run_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "job_id": row["job_id"],
        "trigger": row["trigger"],
        "scheduled_for": row["scheduled_for"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
        "status": row["status"],
        "http_status": row["http_status"],
        "duration_ms": row["duration_ms"],
        "error_text": row["error_text"],
        "attempt": row["attempt"],
        "log_excerpt": row["log_excerpt"],
        "has_full_log": row["log_object_key"] is not None,
    }


class RunLog:
    def __init__(self, store: ControlPlane, logs: StorageBackend | None = None) -> None:
        self.store = store
        self.logs = logs

    async def apply_ticks(self, ticks: Iterable[Tick], now: datetime) -> None:
        """Persist a batch of decisions in one transaction (1,000 due jobs cost one commit).

        A job edited since it was read keeps its new watermark: the edit wins.
        """
        stamp = iso(now)
        ticks = list(ticks)
        progress = [
            (iso(t.last_due), iso(t.next_due) if t.next_due else None, t.job.id, t.job.updated_at) for t in ticks
        ]
        inserts = [_insert_run(run, stamp)[1] for t in ticks for run in t.runs]
        async with self.store.transaction() as tx:
            await tx.executemany(
                "UPDATE cron_jobs SET last_due_at = ?, next_run_at = ? WHERE id = ? AND updated_at = ?", progress
            )
            if inserts:
                await tx.executemany(_INSERT_RUN, inserts)

    async def start(self, run: RunStart, now: datetime) -> str:
        await self.store.execute(*_insert_run(run, iso(now)))
        return run.id

    async def finish(self, run_id: str, outcome: RunOutcome, now: datetime) -> None:
        excerpt = outcome.log_excerpt[:LOG_EXCERPT_CHARS] if outcome.log_excerpt is not None else None
        await self.store.execute(
            "UPDATE cron_job_runs SET status = ?, finished_at = ?, http_status = ?, duration_ms = ?, error_text = ?,"
            " attempt = ?, log_excerpt = ?, log_object_key = ? WHERE id = ? AND status = 'running'",
            (
                outcome.status,
                iso(now),
                outcome.http_status,
                outcome.duration_ms,
                outcome.error_text,
                outcome.attempt,
                excerpt,
                outcome.log_object_key,
                run_id,
            ),
        )

    async def fail_unfinished(self, reason: str, now: datetime, run_ids: Iterable[str] | None = None) -> int:
        """Close ``running`` rows (all of them, or the given ones) as failed with ``reason``."""
        sql = "UPDATE cron_job_runs SET status = 'fail', finished_at = ?, error_text = ? WHERE status = 'running'"
        params: list[Any] = [iso(now), reason]
        if run_ids is not None:
            ids = list(run_ids)
            if not ids:
                return 0
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            params += ids
        return await self.store.execute(sql, params)

    async def page(
        self, job_id: str, *, limit: int = 25, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; ``before`` is a run id from the previous page."""
        params: list[Any] = [job_id]
        where = "job_id = ?"
        if before:
            cursor = await self.store.fetchone(
                "SELECT started_at, id FROM cron_job_runs WHERE id = ? AND job_id = ?", (before, job_id)
            )
            if cursor is None:
                raise BadRequest(
                    "before is not a run of this job", code="invalid_parameter", details={"field": "before"}
                )
            where += " AND (started_at, id) < (?, ?)"
            params += [cursor["started_at"], cursor["id"]]
        rows = await self.store.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM cron_job_runs WHERE {where} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*params, limit + 1],
        )
        runs = [_run_view(row) for row in rows[:limit]]
        return runs, (runs[-1]["id"] if len(rows) > limit else None)

    async def get(self, run_id: str) -> dict[str, Any] | None:
        row = await self.store.fetchone(f"SELECT {_RUN_COLUMNS} FROM cron_job_runs WHERE id = ?", (run_id,))
        return _run_view(row) if row else None

    async def log_object_key(self, job_id: str, run_id: str) -> str | None:
        row = await self.store.fetchone(
            "SELECT log_object_key FROM cron_job_runs WHERE id = ? AND job_id = ?", (run_id, job_id)
        )
        if row is None:
            raise NotFound(f"no run {run_id} of job {job_id}", code="run_not_found")
        return row["log_object_key"]

    async def last_runs(self, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The newest run of each job (for job listings)."""
        if not job_ids:
            return {}
        marks = ",".join("?" * len(job_ids))
        rows = await self.store.fetchall(
            f"SELECT {_RUN_COLUMNS} FROM cron_job_runs AS r WHERE job_id IN ({marks}) AND id = ("
            " SELECT id FROM cron_job_runs WHERE job_id = r.job_id ORDER BY started_at DESC, id DESC LIMIT 1)",
            job_ids,
        )
        return {row["job_id"]: _run_view(row) for row in rows}

    async def previously_failing(self, job_id: str, run_id: str) -> bool:
        """Whether the job's last finished run before ``run_id`` failed (recovery notices survive restarts)."""
        row = await self.store.fetchone(
            "SELECT status FROM cron_job_runs WHERE job_id = ? AND id != ? AND status IN ('success', 'fail', 'timeout')"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            (job_id, run_id),
        )
        return row is not None and row["status"] != "success"

    async def prune(self, older_than: datetime) -> int:
        """Delete finished runs that started before ``older_than``, and their full logs; return how many went."""
        if self.logs is not None:
            rows = await self.store.fetchall(
                "SELECT log_object_key FROM cron_job_runs"
                " WHERE started_at < ? AND status != 'running' AND log_object_key IS NOT NULL",
                (iso(older_than),),
            )
            for row in rows:
                try:
                    await self.logs.delete(LOG_BUCKET, row["log_object_key"])
                except Exception as exc:  # a stale object costs space, never the pruning
                    log.warning("could not delete a run's full log: %r", exc)
        return await platform_jobs.prune_runs(self.store, older_than)


# A job deleted meanwhile gets no row, rather than failing the whole batch on the foreign key.
_INSERT_RUN = (
    "INSERT INTO cron_job_runs (id, job_id, trigger, scheduled_for, started_at, finished_at, status,"
    " duration_ms, error_text, attempt) SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ? FROM cron_jobs WHERE id = ?"
)


def _insert_run(run: RunStart, stamp: str) -> tuple[str, tuple[Any, ...]]:
    finished = stamp if run.status == "skipped" else None
    duration = 0 if run.status == "skipped" else None
    return (
        _INSERT_RUN,
        (
            run.id,
            run.trigger,
            iso(run.scheduled_for) if run.scheduled_for else None,
            stamp,
            finished,
            run.status,
            duration,
            run.error_text,
            0 if run.status == "skipped" else 1,
            run.job_id,
        ),
    )
