"""The scheduler loop, driven by a hand-moved clock against a real control-plane file."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.control.store import ControlPlane
from appliance.crypto import SecretBox
from appliance.errors import ServiceUnavailable
from appliance.scheduler.jobs import Job, JobStore, iso
from appliance.scheduler.loop import MAX_SLEEP, Scheduler
from appliance.scheduler.notify import Notice, Notifier
from appliance.scheduler.runs import RunLog, RunOutcome, RunStart
from appliance.scheduler.safehttp import Allowlist

T0 = datetime(2030, 1, 7, 0, 0, 30, tzinfo=UTC)


class FakeClock:
    """Time moves only when a test says so; sleepers wake when their deadline is passed."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self._now + timedelta(seconds=seconds), future)
        if entry[0] <= self._now:
            future.set_result(None)
        self._sleepers.append(entry)
        try:
            await future
        finally:
            self._sleepers.remove(entry)

    @property
    def wake_at(self) -> list[datetime]:
        return sorted(deadline for deadline, future in self._sleepers if not future.done())

    def set(self, when: datetime) -> None:
        self._now = when
        for deadline, future in self._sleepers:
            if deadline <= when and not future.done():
                future.set_result(None)


@dataclass
class FakeExecutor:
    clock: FakeClock
    calls: list[tuple[str, datetime]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    outcome: RunOutcome = field(default_factory=lambda: RunOutcome("success", 5, log_excerpt="ok"))

    async def __call__(self, job: Job) -> RunOutcome:
        self.calls.append((job.name, self.clock.now()))
        if self.gate is not None:
            await self.gate.wait()
        return self.outcome


@dataclass
class Rig:
    store: ControlPlane
    jobs: JobStore
    runs: RunLog
    clock: FakeClock
    executor: FakeExecutor
    scheduler: Scheduler | None = None

    def new_scheduler(self, **kw: Any) -> Scheduler:
        scheduler = Scheduler(self.jobs, self.runs, self.executor, clock=self.clock, **kw)
        self.jobs._on_change = scheduler.job_changed
        self.scheduler = scheduler
        return scheduler

    async def start(self, **kw: Any) -> Scheduler:
        scheduler = self.new_scheduler(**kw)
        await scheduler.start()
        await self.settle()
        return scheduler

    async def settle(self, runs: bool = True) -> None:
        """Wait (in real time) until the loop sleeps again and, if asked, no run is in flight."""
        assert self.scheduler is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            idle = self.scheduler.quiescent and self.clock.wake_at
            if idle and (not runs or self.scheduler.runs_in_flight == 0):
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the scheduler did not settle")

    async def at(self, when: datetime, runs: bool = True) -> None:
        self.clock.set(when)
        await asyncio.sleep(0)
        await self.settle(runs)

    async def job(self, name: str, cron: str, **extra: Any) -> Job:
        body = {"name": name, "type": "platform", "schedule_cron": cron, "action": "cleanup_runs", **extra}
        return await self.jobs.create(body)

    async def statuses(self, job_id: str) -> list[tuple[str, str, str | None]]:
        rows = await self.store.fetchall(
            "SELECT status, trigger, error_text FROM cron_job_runs WHERE job_id = ? ORDER BY started_at, rowid",
            (job_id,),
        )
        return [(r["status"], r["trigger"], r["error_text"]) for r in rows]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = ControlPlane(tmp_path / "control.db")
    await store.open()
    clock = FakeClock(T0)
    jobs = JobStore(store, SecretBox(os.urandom(32)), Allowlist(), now=clock.now)
    state = Rig(store, jobs, RunLog(store), clock, FakeExecutor(clock))
    yield state
    if state.scheduler is not None:
        await state.scheduler.stop()
    await store.close()


def at(hh: int, mm: int, ss: int = 0, day: int = 7) -> datetime:
    return datetime(2030, 1, day, hh, mm, ss, tzinfo=UTC)


async def test_sleeps_until_the_next_due_job_and_fires_in_order(rig: Rig) -> None:
    await rig.job("every-5", "*/5 * * * *")
    await rig.job("hourly", "0 * * * *")
    await rig.job("every-2", "*/2 * * * *")
    await rig.job("off", "* * * * *", enabled=False)
    await rig.start()
    expected = []
    for minute in range(1, 61):
        names = [n for n, step in (("every-5", 5), ("every-2", 2)) if minute % step == 0]
        if minute == 60:
            names = ["hourly", *names]
        expected += [(name, at(0, 0) + timedelta(minutes=minute)) for name in names]
    wakeups = 0
    while rig.clock.now() < at(1, 0):
        # One sleep, until the next due job (at most MAX_SLEEP, to notice wall-clock steps).
        (deadline,) = rig.clock.wake_at
        next_due = min(due for _, due in expected if due > rig.clock.now())
        assert deadline == min(next_due, rig.clock.now() + timedelta(seconds=MAX_SLEEP))
        await rig.at(deadline)
        wakeups += 1
    assert wakeups <= 2 * 60  # never more than twice a minute, whatever the number of jobs
    assert sorted(rig.executor.calls, key=lambda c: (c[1], c[0])) == sorted(expected, key=lambda c: (c[1], c[0]))


async def test_an_overlapping_tick_is_recorded_as_skipped(rig: Rig) -> None:
    job = await rig.job("slow", "* * * * *")
    rig.executor.gate = asyncio.Event()
    await rig.start()
    await rig.at(at(0, 1), runs=False)
    await rig.at(at(0, 2), runs=False)
    assert await rig.statuses(job.id) == [("running", "schedule", None), ("skipped", "schedule", ANY_TEXT)]
    rig.executor.gate.set()
    await rig.settle()
    await rig.at(at(0, 3))
    assert [s for s, _, _ in await rig.statuses(job.id)] == ["success", "skipped", "success"]
    assert len(rig.executor.calls) == 2


class _AnyText:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(other)


ANY_TEXT: Any = _AnyText()


@pytest.mark.parametrize(
    ("policy", "expected_calls", "expected_rows"),
    [
        ("run_once", [("catch-up", at(3, 5))], [("success", "schedule", None)]),
        (
            "skip",
            [],
            [("skipped", "missed", "18 run(s) missed while the scheduler was down (missed_run_policy: skip)")],
        ),
    ],
)
async def test_missed_runs_after_downtime_follow_the_policy(
    rig: Rig, policy: str, expected_calls: list[tuple[str, datetime]], expected_rows: list[tuple[str, str, str | None]]
) -> None:
    job = await rig.job("catch-up", "*/10 * * * *", missed_run_policy=policy)
    await rig.start()
    await rig.scheduler.stop()  # type: ignore[union-attr]
    rig.clock.set(at(3, 5))  # down for three hours: 18 occurrences missed, the latest five minutes ago
    await rig.start()
    assert rig.executor.calls == expected_calls
    assert await rig.statuses(job.id) == expected_rows
    await rig.at(at(3, 10))
    assert rig.executor.calls[-1] == ("catch-up", at(3, 10))
    stored = await rig.jobs.get(job.id)
    assert stored.last_due_at == iso(at(3, 10)) and stored.next_run_at == iso(at(3, 20))


async def test_a_run_left_running_by_a_crash_is_failed_at_start(rig: Rig) -> None:
    job = await rig.job("crashed", "@daily")
    await rig.runs.start(RunStart(job.id, "running", "schedule"), rig.clock.now())
    await rig.start()
    assert await rig.statuses(job.id) == [("fail", "schedule", "interrupted by a restart")]


async def test_stop_fails_runs_in_flight(rig: Rig) -> None:
    job = await rig.job("long", "* * * * *")
    rig.executor.gate = asyncio.Event()
    scheduler = await rig.start()
    await rig.at(at(0, 1), runs=False)
    await scheduler.stop()
    await scheduler.stop()  # idempotent
    assert await rig.statuses(job.id) == [("fail", "schedule", "interrupted by shutdown")]


async def test_runs_only_on_the_master(rig: Rig) -> None:
    job = await rig.job("nope", "* * * * *")
    scheduler = rig.new_scheduler(active=False)
    await scheduler.start()
    rig.clock.set(at(0, 5))
    await asyncio.sleep(0.05)
    assert rig.executor.calls == [] and rig.clock.wake_at == []
    with pytest.raises(ServiceUnavailable):
        await scheduler.run_now(job.id)
    assert await rig.statuses(job.id) == []


async def test_edits_reschedule_at_once(rig: Rig) -> None:
    job = await rig.job("edited", "0 12 * * *")
    other = await rig.job("deleted", "0 6 * * *")
    scheduler = await rig.start()
    assert scheduler.next_due(job.id) == at(12, 0)
    await rig.jobs.update(job.id, {"schedule_cron": "*/3 * * * *"})
    await rig.settle()
    assert scheduler.next_due(job.id) == at(0, 3)
    await rig.jobs.update(job.id, {"enabled": False})
    await rig.jobs.delete(other.id)
    await rig.settle()
    assert rig.scheduler is not None and rig.scheduler.next_due(job.id) is None
    assert rig.scheduler.next_due(other.id) is None
    await rig.at(at(6, 0))
    assert rig.executor.calls == []
    await rig.jobs.update(job.id, {"enabled": True})  # missed runs while disabled are not owed
    await rig.settle()
    await rig.at(at(6, 3))
    assert rig.executor.calls == [("edited", at(6, 3))]


async def test_run_now_and_failure_notices(rig: Rig) -> None:
    sent: list[Notice] = []

    class Recorder:
        name = "recorder"

        async def send(self, notice: Notice) -> None:
            sent.append(notice)

    job = await rig.job("flaky", "@daily")
    scheduler = await rig.start(notifier=Notifier([Recorder()], clock=rig.clock.now))
    rig.executor.outcome = RunOutcome("fail", 3, error_text="HTTP 500", http_status=500)
    first = await scheduler.run_now(job.id)
    await rig.settle()
    rig.executor.outcome = RunOutcome("success", 3)
    await scheduler.run_now(job.id)
    await rig.settle()
    assert first["status"] == "running"
    assert [n.kind for n in sent] == ["failed", "recovered"]
    assert "HTTP 500" in sent[0].text
    assert [s for s, _, _ in await rig.statuses(job.id)] == ["fail", "success"]


async def test_old_history_is_pruned(rig: Rig) -> None:
    job = await rig.job("history", "@daily")
    await rig.runs.start(RunStart(job.id, "skipped", "schedule"), T0 - timedelta(days=40))
    await rig.runs.start(RunStart(job.id, "skipped", "schedule"), T0 - timedelta(days=3))
    await rig.start(run_history_days=30)
    assert len(await rig.statuses(job.id)) == 1
