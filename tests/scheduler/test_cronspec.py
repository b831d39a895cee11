from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.errors import BadRequest
from appliance.scheduler.cronspec import (
    MISSED_COUNT_CAP,
    DueDecision,
    Schedule,
    due_runs,
    validate_schedule,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "timezone", "code", "field"),
    [
        ("", "UTC", "invalid_cron", "schedule_cron"),
        ("* * * *", "UTC", "invalid_cron", "schedule_cron"),
        ("* * * * * * *", "UTC", "invalid_cron", "schedule_cron"),
        ("60 * * * *", "UTC", "invalid_cron", "schedule_cron"),
        ("* * * * * 61", "UTC", "invalid_cron", "schedule_cron"),
        ("a b c d e", "UTC", "invalid_cron", "schedule_cron"),
        ("@reboot", "UTC", "invalid_cron", "schedule_cron"),
        ("0 0 30 2 *", "UTC", "invalid_cron", "schedule_cron"),
        ("*" + " *" * 200, "UTC", "invalid_cron", "schedule_cron"),
        ("*/5 * * * *", "Mars/Olympus_Mons", "invalid_timezone", "timezone"),
        ("*/5 * * * *", "", "invalid_timezone", "timezone"),
        ("*/5 * * * *", "../../etc/passwd", "invalid_timezone", "timezone"),
        ("*/5 * * * *", "Europe", "invalid_timezone", "timezone"),
    ],
)
def test_invalid_schedules_are_400_naming_the_field(cron: str, timezone: str, code: str, field: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_schedule(cron, timezone)
    assert info.value.status == 400
    assert info.value.code == code
    assert info.value.details == {"field": field}


@pytest.mark.parametrize(
    ("cron", "timezone", "normalized", "has_seconds"),
    [
        ("*/5 * * * *", "UTC", "*/5 * * * *", False),
        ("  0   3 * *  1-5 ", "Europe/Helsinki", "0 3 * * 1-5", False),
        ("@Daily", "America/New_York", "@daily", False),
        ("*/2 * * * * *", "UTC", "*/2 * * * * *", True),
    ],
)
def test_valid_schedules(cron: str, timezone: str, normalized: str, has_seconds: bool) -> None:
    schedule = validate_schedule(cron, timezone)
    assert schedule.cron == normalized
    assert schedule.timezone == timezone
    assert schedule.has_seconds is has_seconds


HEL = "Europe/Helsinki"  # 2024: spring 03:00→04:00 on 31 March, fall 04:00→03:00 on 27 October
NYC = "America/New_York"  # 2024: spring 02:00→03:00 on 10 March, fall 02:00→01:00 on 3 November


@pytest.mark.parametrize(
    ("case", "cron", "timezone", "after", "expected"),
    [
        ("plain utc", "0 12 * * *", "UTC", utc(2024, 1, 1), [utc(2024, 1, 1, 12), utc(2024, 1, 2, 12)]),
        ("seconds first", "*/20 * * * * *", "UTC", utc(2024, 1, 1), [utc(2024, 1, 1, 0, 0, s) for s in (20, 40)]),
        (
            "helsinki winter/summer offsets",
            "0 9 * * *",
            HEL,
            utc(2024, 3, 30, 12),
            [utc(2024, 3, 31, 6), utc(2024, 4, 1, 6)],
        ),
        (
            "helsinki gap: 03:30 fires once at 04:00 EEST",
            "30 3 * * *",
            HEL,
            utc(2024, 3, 30, 12),
            [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0, 30)],
        ),
        (
            "helsinki gap: matches inside the gap collapse into one run",
            "*/15 3 * * *",
            HEL,
            utc(2024, 3, 30, 12),
            [utc(2024, 3, 31, 1), utc(2024, 4, 1, 0), utc(2024, 4, 1, 0, 15)],
        ),
        (
            "new york gap: 02:30 fires once at 03:00 EDT",
            "30 2 * * *",
            NYC,
            utc(2024, 3, 9, 12),
            [utc(2024, 3, 10, 7), utc(2024, 3, 11, 6, 30)],
        ),
        (
            "helsinki fold: 03:30 fires once, on the first pass",
            "30 3 * * *",
            HEL,
            utc(2024, 10, 26, 12),
            [utc(2024, 10, 27, 0, 30), utc(2024, 10, 28, 1, 30)],
        ),
        (
            "new york fold: 01:30 fires once, on the first pass",
            "30 1 * * *",
            NYC,
            utc(2024, 11, 2, 12),
            [utc(2024, 11, 3, 5, 30), utc(2024, 11, 4, 6, 30)],
        ),
        (
            "new york fold: hour wildcard keeps the clock through both passes",
            "0,30 * * * *",
            NYC,
            utc(2024, 11, 3, 4, 45),
            [utc(2024, 11, 3, 5), utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 6), utc(2024, 11, 3, 6, 30)],
        ),
        (
            "helsinki fold: starting inside the first pass still sees the second one",
            "0,30 * * * *",
            HEL,
            utc(2024, 10, 27, 0, 40),
            [utc(2024, 10, 27, 1), utc(2024, 10, 27, 1, 30), utc(2024, 10, 27, 2)],
        ),
        (
            "helsinki fold: starting inside the second pass",
            "30 3 * * *",
            HEL,
            utc(2024, 10, 27, 1, 10),
            [utc(2024, 10, 28, 1, 30)],
        ),
    ],
)
def test_preview(case: str, cron: str, timezone: str, after: datetime, expected: list[datetime]) -> None:
    schedule = validate_schedule(cron, timezone)
    assert schedule.preview(len(expected), after) == expected, case
    assert schedule.next_after(after) == expected[0]


def test_next_after_requires_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_schedule("* * * * *", "UTC").next_after(datetime(2024, 1, 1))


def test_seconds_schedule_against_the_real_clock() -> None:
    now = datetime.now(UTC)
    upcoming = validate_schedule("* * * * * *", "UTC").next_after(now)
    assert upcoming is not None
    assert timedelta(0) < upcoming - now <= timedelta(seconds=1)


SCHEDULES = [
    validate_schedule(cron, tz)
    for cron, tz in [
        ("30 3 * * *", HEL),
        ("*/15 * * * *", HEL),
        ("30 1 * * *", NYC),
        ("0,30 * * * *", NYC),
        ("*/15 2-4 * * 0", NYC),
        ("0 0 1 * *", "Australia/Lord_Howe"),
    ]
]


@settings(max_examples=60, deadline=None)
@given(
    schedule=st.sampled_from(SCHEDULES),
    after=st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)),
)
def test_preview_is_strictly_increasing_and_consistent(schedule: Schedule, after: datetime) -> None:
    runs = schedule.preview(5, after)
    assert len(runs) == 5
    assert runs[0] > after
    for earlier, later in itertools.pairwise(runs):
        assert earlier < later
        assert schedule.next_after(earlier) == later
        assert schedule.next_after(earlier + (later - earlier) / 2) == later


HOURLY = validate_schedule("0 * * * *", "UTC")


@pytest.mark.parametrize(
    ("case", "last_due", "now", "policy", "expected"),
    [
        (
            "on time",
            utc(2024, 1, 1, 10),
            utc(2024, 1, 1, 11, 0, 5),
            "skip",
            DueDecision(True, utc(2024, 1, 1, 11), 0, False, utc(2024, 1, 1, 11), utc(2024, 1, 1, 12)),
        ),
        (
            "nothing due yet",
            utc(2024, 1, 1, 10),
            utc(2024, 1, 1, 10, 30),
            "run_once",
            DueDecision(False, None, 0, False, utc(2024, 1, 1, 10), utc(2024, 1, 1, 11)),
        ),
        (
            "downtime, run_once: one run for three missed",
            utc(2024, 1, 1, 10),
            utc(2024, 1, 1, 13, 20),
            "run_once",
            DueDecision(True, utc(2024, 1, 1, 13), 2, False, utc(2024, 1, 1, 13), utc(2024, 1, 1, 14)),
        ),
        (
            "downtime, skip: wait for the next",
            utc(2024, 1, 1, 10),
            utc(2024, 1, 1, 13, 20),
            "skip",
            DueDecision(False, None, 3, False, utc(2024, 1, 1, 13), utc(2024, 1, 1, 14)),
        ),
        (
            "downtime, skip, but the latest is within grace",
            utc(2024, 1, 1, 10),
            utc(2024, 1, 1, 13, 0, 30),
            "skip",
            DueDecision(True, utc(2024, 1, 1, 13), 2, False, utc(2024, 1, 1, 13), utc(2024, 1, 1, 14)),
        ),
        (
            "no history",
            None,
            utc(2024, 1, 1, 13, 20),
            "run_once",
            DueDecision(False, None, 0, False, utc(2024, 1, 1, 13, 20), utc(2024, 1, 1, 14)),
        ),
        (
            "clock went backwards",
            utc(2024, 1, 1, 13),
            utc(2024, 1, 1, 12, 30),
            "run_once",
            DueDecision(False, None, 0, False, utc(2024, 1, 1, 13), utc(2024, 1, 1, 14)),
        ),
        (
            "a year of downtime",
            utc(2023, 1, 1),
            utc(2024, 1, 1, 0, 30),
            "skip",
            DueDecision(False, None, 8760, False, utc(2024, 1, 1), utc(2024, 1, 1, 1)),
        ),
    ],
)
def test_due_runs(case: str, last_due: datetime | None, now: datetime, policy: str, expected: DueDecision) -> None:
    assert due_runs(HOURLY, last_due, now, policy) == expected, case  # type: ignore[arg-type]


def test_due_runs_caps_the_missed_count() -> None:
    every_second = validate_schedule("* * * * * *", "UTC")
    decision = due_runs(every_second, utc(2024, 1, 1), utc(2024, 1, 2, 0, 0, 0), "run_once")
    assert decision.run and decision.scheduled_for == utc(2024, 1, 2)
    assert decision.skipped_capped and decision.skipped == MISSED_COUNT_CAP - 1


def test_due_runs_across_a_dst_gap() -> None:
    schedule = validate_schedule("30 3 * * *", HEL)
    decision = due_runs(schedule, utc(2024, 3, 30, 1, 30), utc(2024, 3, 31, 1, 0, 10), "skip")
    assert decision.run and decision.scheduled_for == utc(2024, 3, 31, 1)


def test_due_runs_rejects_unknown_policy() -> None:
    with pytest.raises(ValueError, match="policy"):
        due_runs(HOURLY, utc(2024, 1, 1), utc(2024, 1, 2), "sometimes")  # type: ignore[arg-type]
