"""The scheduler loop: sleeps until the next due job, runs it, records it. No HTTP server here.

Design:

* A heap of (next due time, job id) over the enabled jobs; the loop sleeps until the top is
  due or until a job changes (``job_changed`` sets an event), never polling every job. Stale
  heap entries are skipped lazily: ``_due`` holds each job's one current due time.
* Every due job of a wake-up is decided with ``cronspec.due_runs`` (missed-run policy after
  downtime) and the whole batch is written in one transaction.
* One run of a job at a time: a tick that finds the job still running is recorded ``skipped``.
* Runs only where ``active`` (the master node). On start, rows left ``running`` by a crash are
  closed as failed ("interrupted by a restart"); on stop, runs in flight are cancelled and
  closed as failed ("interrupted by shutdown").
* Run history older than ``run_history_days`` is pruned hourly.

The clock is injectable (``Clock``): tests drive time by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from appliance.errors import ServiceUnavailable
from appliance.scheduler.cronspec import DueDecision, MissedRunPolicy, Schedule, due_runs
from appliance.scheduler.jobs import Job, JobStore, parse_iso
from appliance.scheduler.notify import JobRunNotice, Notifier
from appliance.scheduler.runs import RunLog, RunOutcome, RunStart, Tick
from appliance.scheduler.safehttp import Allowlist

log = logging.getLogger("appliance.scheduler")

# Wake at least this often, so a wall-clock step (NTP, suspend) is noticed within seconds.
MAX_SLEEP = 30.0
PRUNE_INTERVAL = timedelta(hours=1)
ERROR_PAUSE = 1.0
# A due job whose occurrence is at most this old runs as on time (cronspec.due_runs' grace).
GRACE = timedelta(minutes=1)

Executor = Callable[[Job], Awaitable[RunOutcome]]


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class Scheduler:
    """Lifecycle: ``await start()`` then ``await stop()`` (idempotent)."""

    def __init__(
        self,
        jobs: JobStore,
        runs: RunLog,
        execute: Executor,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        active: bool = True,
        run_history_days: int = 30,
    ) -> None:
        self.jobs = jobs
        self.runs = runs
        self._execute = execute
        self._clock = clock or SystemClock()
        self._notifier = notifier
        self.active = active
        self._history = timedelta(days=run_history_days)
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, datetime] = {}
        self._versions: dict[str, str] = {}  # job id -> updated_at its due time was computed from
        self._dirty: set[str] = set()
        self._changed = asyncio.Event()
        self._running: dict[str, str] = {}  # job id -> run id in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._waiting = False
        self._next_prune: datetime | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.active:
            log.info("scheduler idle: cron jobs run on the master node only")
            return
        closed = await self.runs.fail_unfinished("interrupted by a restart", self._clock.now())
        if closed:
            log.warning("marked %d run(s) left running by a previous process as failed", closed)
        self._task = asyncio.create_task(self._main(), name="scheduler-loop")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        in_flight = list(self._running.values())
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._running.clear()
        if in_flight:
            await self.runs.fail_unfinished("interrupted by shutdown", self._clock.now(), in_flight)
            log.info("cancelled %d run(s) in flight", len(in_flight))

    def job_changed(self, job_id: str) -> None:
        """A job was created, edited or deleted: reschedule it at the next wake-up (now)."""
        self._dirty.add(job_id)
        self._changed.set()

    @property
    def quiescent(self) -> bool:
        """The loop waits for time to pass with no change pending (runs may be in flight)."""
        return self._waiting and not self._dirty and not self._changed.is_set()

    @property
    def runs_in_flight(self) -> int:
        return len(self._tasks)

    def next_due(self, job_id: str) -> datetime | None:
        return self._due.get(job_id)

    # -- run now -----------------------------------------------------------------------------

    async def run_now(self, job_id: str) -> dict[str, Any]:
        """Start a manual run; one already in flight makes this one ``skipped``."""
        if not self.active or self._task is None:
            raise ServiceUnavailable("cron jobs run on the master node only", code="scheduler_inactive")
        job = await self.jobs.get(job_id)
        run = self._open(job, "manual", None)
        await self.runs.start(run, self._clock.now())
        if run.status == "running":
            self._launch(job, run.id)
        return {"run_id": run.id, "status": run.status}

    def _open(self, job: Job, trigger: str, scheduled_for: datetime | None) -> RunStart:
        if job.id in self._running:
            return RunStart(job.id, "skipped", trigger, scheduled_for, "the previous run was still running")
        run = RunStart(job.id, "running", trigger, scheduled_for)
        self._running[job.id] = run.id
        return run

    # -- the loop ----------------------------------------------------------------------------

    async def _main(self) -> None:
        memo: dict[tuple[Schedule, datetime], datetime | None] = {}
        for count, job in enumerate(await self.jobs.list_jobs(enabled_only=True), 1):
            self._schedule(job, self._clock.now(), memo)
            if count % 100 == 0:
                await asyncio.sleep(0)  # croniter is slow: let requests through while loading
        log.info("scheduler started with %d enabled job(s)", len(self._due))
        while True:
            self._changed.clear()
            popped: list[str] = []
            try:
                if self._dirty:
                    await self._reload()
                now = self._clock.now()
                due_now: dict[str, datetime] = {}
                while self._heap and self._heap[0][0] <= now:
                    due, job_id = heapq.heappop(self._heap)
                    if self._due.get(job_id) == due:
                        del self._due[job_id]
                        due_now[job_id] = due
                        popped.append(job_id)
                if due_now:
                    await self._fire(due_now, now)
                if self._next_prune is None or now >= self._next_prune:
                    await self._prune(now)
                delay = MAX_SLEEP
                if self._heap:
                    delay = min(delay, (self._heap[0][0] - self._clock.now()).total_seconds())
            except Exception:
                log.exception("scheduler iteration failed; retrying")
                self._dirty.update(popped)
                delay = ERROR_PAUSE
            await self._wait(max(0.0, delay))

    async def _wait(self, delay: float) -> None:
        if self._changed.is_set():
            return
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        changed = asyncio.ensure_future(self._changed.wait())
        self._waiting = True
        try:
            await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiting = False
            sleeper.cancel()
            changed.cancel()

    def _schedule(self, job: Job, now: datetime, memo: dict[tuple[Schedule, datetime], datetime | None]) -> None:
        """Put the job's next due time on the heap (or drop it when disabled or finished)."""
        self._due.pop(job.id, None)
        if not job.enabled:
            return
        last_due = parse_iso(job.last_due_at)
        due = _next_after(job.schedule, last_due, memo) if last_due else now
        if due is not None:
            self._push(job, due)

    def _push(self, job: Job, due: datetime) -> None:
        self._due[job.id] = due
        self._versions[job.id] = job.updated_at
        heapq.heappush(self._heap, (due, job.id))

    def _decide(
        self, job: Job, due: datetime, now: datetime, memo: dict[tuple[Schedule, datetime], datetime | None]
    ) -> DueDecision:
        """``due_runs``, with a fast path for the common case: one occurrence, on time.

        The fast path needs the due time to come from this very version of the job; it costs
        one (memoized) next-time computation instead of the half dozen of the general case.
        """
        last_due = parse_iso(job.last_due_at)
        if self._versions.get(job.id) == job.updated_at and last_due is not None and last_due < due <= now:
            following = _next_after(job.schedule, due, memo)
            if now - due <= GRACE and (following is None or following > now):
                return DueDecision(True, due, 0, False, due, following)
        policy: MissedRunPolicy = "skip" if job.missed_run_policy == "skip" else "run_once"
        return due_runs(job.schedule, last_due, now, policy, grace=GRACE)

    async def _reload(self) -> None:
        ids, self._dirty = list(self._dirty), set()
        found = {job.id: job for job in await self.jobs.get_many(ids)}
        now = self._clock.now()
        memo: dict[tuple[Schedule, datetime], datetime | None] = {}
        for job_id in ids:
            job = found.get(job_id)
            if job is None:
                self._due.pop(job_id, None)
                self._versions.pop(job_id, None)
                if self._notifier is not None:
                    self._notifier.forget(job_id)
            else:
                self._schedule(job, now, memo)
        if len(self._heap) > 2 * len(self._due) + 64:  # many edits leave stale entries behind
            self._heap = [(due, job_id) for job_id, due in self._due.items()]
            heapq.heapify(self._heap)

    async def _fire(self, due_now: dict[str, datetime], now: datetime) -> None:
        ticks: list[Tick] = []
        launches: list[tuple[Job, str]] = []
        memo: dict[tuple[Schedule, datetime], datetime | None] = {}
        try:
            for job in await self.jobs.get_many(list(due_now)):
                if not job.enabled:
                    continue
                decision = self._decide(job, due_now[job.id], now, memo)
                runs: list[RunStart] = []
                if decision.skipped and not decision.run:
                    more = "+" if decision.skipped_capped else ""
                    runs.append(
                        RunStart(
                            job.id,
                            "skipped",
                            "missed",
                            decision.last_due_utc,
                            f"{decision.skipped}{more} run(s) missed while the scheduler was down"
                            " (missed_run_policy: skip)",
                        )
                    )
                if decision.run:
                    run = self._open(job, "schedule", decision.scheduled_for)
                    runs.append(run)
                    if run.status == "running":
                        launches.append((job, run.id))
                ticks.append(Tick(job, decision.last_due_utc, decision.next_due_utc, tuple(runs)))
                if decision.next_due_utc is not None:
                    self._push(job, decision.next_due_utc)
            await self.runs.apply_ticks(ticks, now)
        except BaseException:
            for job, _run_id in launches:
                self._running.pop(job.id, None)
            raise
        for job, run_id in launches:
            self._launch(job, run_id)

    def _launch(self, job: Job, run_id: str) -> None:
        task = asyncio.create_task(self._run(job, run_id), name=f"cron-run-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job, run_id: str) -> None:
        started = time.monotonic()
        try:
            try:
                outcome = await self._execute(job)
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"[:500]
                outcome = RunOutcome("fail", int((time.monotonic() - started) * 1000), error_text=text)
            await self.runs.finish(run_id, outcome, self._clock.now())
        finally:
            self._running.pop(job.id, None)
        log.info("cron job %s run %s: %s", job.id, run_id, outcome.status)
        if self._notifier is not None and job.notify_on_failure:
            previously_failing = await self.runs.previously_failing(job.id, run_id)
            notice = JobRunNotice(
                job_id=job.id,
                job_name=job.name,
                status=outcome.status,
                project_id=job.project_id,
                http_status=outcome.http_status,
                error_text=outcome.error_text,
            )
            await self._notifier.run_finished(notice, previously_failing=previously_failing)

    async def _prune(self, now: datetime) -> None:
        self._next_prune = now + PRUNE_INTERVAL
        removed = await self.runs.prune(now - self._history)
        if removed:
            log.info("pruned %d cron run(s) older than %d day(s)", removed, self._history.days)


def _next_after(
    schedule: Schedule, after: datetime, memo: dict[tuple[Schedule, datetime], datetime | None]
) -> datetime | None:
    """``schedule.next_after`` memoized for one batch: many jobs share a schedule and a due time."""
    key = (schedule, after)
    if key not in memo:
        memo[key] = schedule.next_after(after)
    return memo[key]


class SchedulerSlot:
    """The node's running scheduler, if any, shared as ``core.service(SchedulerSlot)``.

    The admin API is served by the dashboard's application, the loop runs in the background
    one; they meet here. The role's cleanup_ctx fills the slot and empties it on shutdown.
    """

    def __init__(self, _core: object) -> None:
        self.scheduler: Scheduler | None = None


def job_store(core: Any) -> JobStore:
    """The job store as the admin API and other roles use it: changes wake the running loop."""
    scheduler = core.service(SchedulerSlot).scheduler
    allowlist = Allowlist.parse(core.config.scheduler.http_allowlist)
    on_change = scheduler.job_changed if scheduler is not None else None
    return JobStore(core.store, core.box, allowlist, on_change=on_change)
