"""What one run of a job does: a guarded HTTP call, or a registered platform action.

Never raises for a failed job: every failure becomes a ``RunOutcome``. Error texts name the
method, host and status at most — never a header value or the request body.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from appliance.control.store import ControlPlane
from appliance.scheduler import platform_jobs
from appliance.scheduler.jobs import Job
from appliance.scheduler.runs import LOG_BUCKET, LOG_EXCERPT_CHARS, RunOutcome
from appliance.scheduler.safehttp import SafeHttpClient, run_http_job
from appliance.storage.base import StorageBackend

log = logging.getLogger(__name__)


class JobExecutor:
    def __init__(
        self,
        client: SafeHttpClient,
        store: ControlPlane,
        *,
        logs: StorageBackend | None = None,
        run_history_days: int = 30,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._store = store
        self._logs = logs
        self._history_days = run_history_days
        self._now = now

    async def __call__(self, job: Job) -> RunOutcome:
        if job.type == "http":
            return await self._http(job)
        return await self._platform(job)

    async def _http(self, job: Job) -> RunOutcome:
        result = await run_http_job(self._client, job.http_spec())
        excerpt = result.body_excerpt[:LOG_EXCERPT_CHARS] if result.body_excerpt is not None else None
        return RunOutcome(
            status=result.status,
            duration_ms=result.duration_ms,
            http_status=result.http_status,
            error_text=result.error_text,
            attempt=len(result.attempts),
            log_excerpt=excerpt,
            log_object_key=await self._store_full_log(job, result.full_body),
        )

    async def _store_full_log(self, job: Job, body: bytes | None) -> str | None:
        """An answer longer than the excerpt is kept whole in storage; failing to store it only
        costs the full log, never the run."""
        if body is None or self._logs is None:
            return None
        key = f"{job.id}/{secrets.token_hex(8)}.log"

        async def chunks() -> AsyncIterator[bytes]:
            yield body

        try:
            await self._logs.ensure_bucket(LOG_BUCKET)
            await self._logs.put_stream(LOG_BUCKET, key, chunks(), content_type="text/plain")
        except Exception as exc:
            log.warning("could not store the full answer of job %s: %r", job.id, exc)
            return None
        return key

    async def _platform(self, job: Job) -> RunOutcome:
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        action = platform_jobs.get_action(job.action or "")
        if action is None:
            return RunOutcome("fail", 0, error_text=f"platform action {job.action!r} is not available on this node")
        context = platform_jobs.ActionContext(
            store=self._store,
            job_id=job.id,
            project_id=job.project_id,
            args=job.action_args,
            now=self._now(),
            run_history_days=self._history_days,
        )
        try:
            async with asyncio.timeout(job.timeout_ms / 1000):
                summary = await action.fn(context)
        except TimeoutError:
            return RunOutcome("timeout", elapsed(), error_text=f"timed out after {job.timeout_ms} ms")
        except Exception as exc:
            return RunOutcome("fail", elapsed(), error_text=f"{type(exc).__name__}: {exc}"[:500])
        return RunOutcome("success", elapsed(), log_excerpt=summary)
