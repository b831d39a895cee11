"""Cron schedules in an IANA time zone: validation, next runs, catch-up after downtime.

Pure: no I/O and no clock of its own — every function takes the instant it reasons about.

Expressions have five fields (``minute hour day month weekday``) or six with a leading
*seconds* field (``second minute hour day month weekday``, as in node-cron and Quartz), plus
the macros ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually``. Fields are matched against the wall clock of the schedule's zone.

Daylight saving time:

* A wall time that does not exist (spring forward) fires once, at the first instant after the
  gap (03:30 on the night Helsinki jumps from 03:00 to 04:00 fires at 04:00 EEST); several
  matches inside one gap collapse into that single run.
* A wall time that happens twice (fall back) fires once, on its first pass — unless the hour
  field is ``*``: such "every N minutes/seconds" schedules keep running on the clock through
  the repeated hour as well, so they never stall for an hour (Vixie cron treats wildcard jobs
  the same way).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from appliance.errors import BadRequest

MissedRunPolicy = Literal["run_once", "skip"]

MAX_CRON_LENGTH = 200
_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
# Catch-up counts missed runs up to this many; beyond it the count is reported as capped.
MISSED_COUNT_CAP = 10_000
_LOOKBACK_WINDOWS = (
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
    timedelta(days=32),
    timedelta(days=367),
    timedelta(days=5 * 366),
)
_VALIDATION_REFERENCE = datetime(2000, 1, 1)


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def _invalid_cron(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_cron", details={"field": "schedule_cron"})


def validate_schedule(cron: str, timezone: str) -> Schedule:
    """Parse and check a schedule; raise BadRequest (400) naming the offending field."""
    if not isinstance(cron, str) or not cron.strip():
        raise _invalid_cron("schedule_cron is required")
    if len(cron) > MAX_CRON_LENGTH:
        raise _invalid_cron(f"schedule_cron is longer than {MAX_CRON_LENGTH} characters")
    expr = " ".join(cron.split())
    if expr.startswith("@"):
        if expr.lower() not in _MACROS:
            raise _invalid_cron(f"unknown cron macro {expr!r}; use one of {', '.join(sorted(_MACROS))}")
        expr = expr.lower()
    else:
        fields = expr.split(" ")
        if len(fields) not in (5, 6):
            raise _invalid_cron(
                f"schedule_cron must have 5 fields (minute hour day month weekday) or 6 with a "
                f"leading seconds field; got {len(fields)}"
            )
    from croniter import CroniterBadDateError, croniter  # loaded with the first schedule

    if not croniter.is_valid(expr, second_at_beginning=True):
        raise _invalid_cron(f"schedule_cron {expr!r} is not a valid cron expression")
    try:
        croniter(expr, _VALIDATION_REFERENCE, ret_type=datetime, second_at_beginning=True).get_next()
    except CroniterBadDateError:
        raise _invalid_cron(f"schedule_cron {expr!r} never matches a date") from None

    if not isinstance(timezone, str) or timezone not in _zone_names():
        raise BadRequest(
            f"timezone {timezone!r} is not an IANA time zone name (e.g. 'Europe/Helsinki', 'UTC')",
            code="invalid_timezone",
            details={"field": "timezone"},
        )
    return Schedule(cron=expr, timezone=timezone)


def _require_aware(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return dt.astimezone(UTC)


@dataclass(frozen=True)
class Schedule:
    """A validated cron expression bound to a time zone. Build it with ``validate_schedule``."""

    cron: str
    timezone: str
    tz: ZoneInfo = field(init=False, repr=False, compare=False)
    runs_every_hour: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from croniter import croniter

        object.__setattr__(self, "tz", ZoneInfo(self.timezone))
        expanded = croniter(self.cron, _VALIDATION_REFERENCE, second_at_beginning=True).expanded
        object.__setattr__(self, "runs_every_hour", expanded[1] == ["*"])

    @property
    def has_seconds(self) -> bool:
        return not self.cron.startswith("@") and len(self.cron.split(" ")) == 6

    def next_after(self, after: datetime) -> datetime | None:
        """The first run strictly after ``after`` (aware), in UTC; None if there is none."""
        return next(self.iter_after(after), None)

    def preview(self, count: int, after: datetime) -> list[datetime]:
        """The next ``count`` runs strictly after ``after``, in UTC."""
        return list(itertools.islice(self.iter_after(after), max(0, count)))

    def iter_after(self, after: datetime) -> Iterator[datetime]:
        """Runs strictly after ``after``, in increasing order, as UTC datetimes."""
        after = _require_aware(after, "after")
        local = after.astimezone(self.tz)
        naive = local.replace(tzinfo=None, fold=0)
        start = naive
        fold_size = self._fold_size(naive)
        if local.fold == 0 and fold_size:
            # Inside the first pass of a repeated hour: earlier wall times of that hour will fire
            # again on the second pass, which is still ahead of ``after``.
            start = naive - fold_size
        from croniter import CroniterBadDateError, croniter

        matches = croniter(
            self.cron,
            start - timedelta(microseconds=1),
            ret_type=datetime,
            second_at_beginning=True,
        )
        pending: list[datetime] = []
        last: datetime | None = None
        while True:
            try:
                wall: datetime = matches.get_next()
            except CroniterBadDateError:
                break
            primary, extra = self._instants(wall)
            for instant in (primary, extra):
                if instant is not None and instant > after:
                    heapq.heappush(pending, instant)
            # Later matches never map before ``primary``: release everything up to it.
            while pending and pending[0] <= primary:
                instant = heapq.heappop(pending)
                if last is None or instant > last:
                    last = instant
                    yield instant
        while pending:
            instant = heapq.heappop(pending)
            if last is None or instant > last:
                last = instant
                yield instant

    def _fold_size(self, wall: datetime) -> timedelta:
        first = wall.replace(tzinfo=self.tz, fold=0).utcoffset()
        second = wall.replace(tzinfo=self.tz, fold=1).utcoffset()
        assert first is not None and second is not None
        return first - second if first > second else timedelta(0)

    def _exists(self, wall: datetime) -> bool:
        aware = wall.replace(tzinfo=self.tz, fold=0)
        return aware.astimezone(UTC).astimezone(self.tz).replace(tzinfo=None) == wall

    def _instants(self, wall: datetime) -> tuple[datetime, datetime | None]:
        """Map a matching wall time to its run instant (and a second-pass one, if any)."""
        if not self._exists(wall):
            return self._gap_end(wall), None
        primary = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        if self._fold_size(wall) and self.runs_every_hour:
            return primary, wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        return primary, None

    def _gap_end(self, wall: datetime) -> datetime:
        """The first real instant after the gap that swallowed ``wall``."""
        # zoneinfo maps a missing wall time with the offsets from either side of the gap: one
        # reading lands before the transition, the other after it. Bisect between the two.
        a = wall.replace(tzinfo=self.tz, fold=0).astimezone(UTC)
        b = wall.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        lo, hi = min(a, b), max(a, b)
        after_offset = hi.astimezone(self.tz).utcoffset()
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(self.tz).utcoffset() == after_offset:
                hi = mid
            else:
                lo = mid
        return hi.replace(microsecond=0)


@dataclass(frozen=True)
class DueDecision:
    """What the scheduler should do for one job at ``now``.

    ``run``: start a run now, standing for the occurrence ``scheduled_for``.
    ``skipped``: missed occurrences that will not run (``skipped_capped`` if the count stopped
    at MISSED_COUNT_CAP). ``last_due_utc``: the watermark to persist — every occurrence up to
    it has been run or skipped. ``next_due_utc``: when to look again (None: never fires again).
    """

    run: bool
    scheduled_for: datetime | None
    skipped: int
    skipped_capped: bool
    last_due_utc: datetime
    next_due_utc: datetime | None


def due_runs(
    schedule: Schedule,
    last_due_utc: datetime | None,
    now_utc: datetime,
    policy: MissedRunPolicy,
    *,
    grace: timedelta = timedelta(minutes=1),
) -> DueDecision:
    """Decide whether a job runs now, after any amount of downtime.

    Occurrences in ``(last_due_utc, now_utc]`` are due. The latest one counts as on time if it
    is at most ``grace`` old, and then always runs. Older ones were missed: with ``run_once``
    all of them together produce a single run; with ``skip`` they are dropped and the job waits
    for its next occurrence. ``last_due_utc=None`` means no history: nothing is due yet.
    """
    if policy not in ("run_once", "skip"):
        raise ValueError(f"unknown missed-run policy {policy!r}")
    now = _require_aware(now_utc, "now_utc")
    if last_due_utc is None:
        return DueDecision(False, None, 0, False, now, schedule.next_after(now))
    last_due = _require_aware(last_due_utc, "last_due_utc")
    if now <= last_due:
        return DueDecision(False, None, 0, False, last_due, schedule.next_after(last_due))

    latest = _latest_at_or_before(schedule, last_due, now)
    next_due = schedule.next_after(now)
    if latest is None:
        return DueDecision(False, None, 0, False, last_due, next_due)
    due_count, capped = _count_between(schedule, last_due, now)
    on_time = now - latest <= grace
    if on_time or policy == "run_once":
        return DueDecision(True, latest, due_count - 1, capped, latest, next_due)
    return DueDecision(False, None, due_count, capped, latest, next_due)


def _latest_at_or_before(schedule: Schedule, floor: datetime, now: datetime) -> datetime | None:
    """The last occurrence in ``(floor, now]``, looking back in growing windows."""
    for window in _LOOKBACK_WINDOWS:
        start = max(floor, now - window)
        latest = None
        for instant in schedule.iter_after(start):
            if instant > now:
                break
            latest = instant
        if latest is not None or start == floor:
            return latest
    # Longer than the largest window: walk from the floor itself.
    latest = None
    for instant in schedule.iter_after(floor):
        if instant > now:
            break
        latest = instant
    return latest


def _count_between(schedule: Schedule, floor: datetime, now: datetime) -> tuple[int, bool]:
    count = 0
    for instant in schedule.iter_after(floor):
        if instant > now:
            return count, False
        count += 1
        if count >= MISSED_COUNT_CAP:
            return count, True
    return count, False
