"""The job store against a real control-plane file: validation, sealing, masking, rescheduling."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.control.store import ControlPlane
from appliance.crypto import DecryptionError, SecretBox
from appliance.errors import BadRequest, NotFound
from appliance.scheduler import platform_jobs
from appliance.scheduler.jobs import MASK, JobStore, iso, parse_iso, validate_fields
from appliance.scheduler.safehttp import Allowlist

NOW = datetime(2030, 3, 1, 10, 0, 0, tzinfo=UTC)
ALLOW = Allowlist.parse(["hooks.example.com", "127.0.0.1:8080"])
HTTP = {"name": "ping", "type": "http", "schedule_cron": "*/5 * * * *", "http_url": "https://hooks.example.com/x"}
PLATFORM = {"name": "prune", "type": "platform", "schedule_cron": "@daily", "action": "cleanup_runs"}


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    control = ControlPlane(tmp_path / "control.db")
    await control.open()
    yield control
    await control.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def changes() -> list[str]:
    return []


@pytest.fixture
def jobs(store: ControlPlane, clock: Clock, changes: list[str]) -> JobStore:
    return JobStore(store, SecretBox(os.urandom(32)), ALLOW, now=clock, on_change=changes.append)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (HTTP, {"http_method": "GET", "timezone": "UTC", "enabled": True, "missed_run_policy": "run_once"}),
        ({**HTTP, "http_method": "post", "timezone": None}, {"http_method": "POST", "timezone": "UTC"}),
        ({**HTTP, "schedule_cron": "  0   9 * * 1-5 "}, {"schedule_cron": "0 9 * * 1-5"}),
        ({**HTTP, "name": "  spaced  "}, {"name": "spaced"}),
        ({**HTTP, "action": None, "id": "ignored", "last_run": None}, {"action": None}),
        (PLATFORM, {"http_url": None, "http_method": None, "http_headers": {}, "action_args": {}}),
        ({**PLATFORM, "http_url": "https://hooks.example.com/x"}, {"http_url": None}),
    ],
)
def test_validate_fields_normalizes(body: dict[str, Any], expected: dict[str, Any]) -> None:
    values = validate_fields(body, None, ALLOW)
    assert {key: values[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**HTTP, "schedule_cron": "*/5 * * *"}, "schedule_cron"),
        ({**HTTP, "schedule_cron": "@fortnightly"}, "schedule_cron"),
        ({**HTTP, "timezone": "Europe/Atlantis"}, "timezone"),
        ({**HTTP, "http_url": "http://10.0.0.1/"}, "http_url"),
        ({**HTTP, "http_url": "http://127.0.0.1:8081/"}, "http_url"),
        ({**HTTP, "http_headers": {"Host": "evil"}}, "http_headers"),
        ({**HTTP, "http_headers": {"X-Number": 5}}, "http_headers"),
        ({**HTTP, "http_body": {"y": object()}}, "http_body"),
        ({**HTTP, "retry_backoff_ms": -1}, "retry_backoff_ms"),
        ({**HTTP, "timeout_ms": True}, "timeout_ms"),
        ({**HTTP, "notify_on_failure": 1}, "notify_on_failure"),
        ({**HTTP, "project_id": 7}, "project_id"),
        ({key: value for key, value in HTTP.items() if key != "schedule_cron"}, "schedule_cron"),
        ({**PLATFORM, "action": "rm"}, "action"),
        ({**PLATFORM, "action_args": {"x": "y" * 5000}}, "action_args"),
        ({**PLATFORM, "timeout_ms": 7 * 3600 * 1000}, "timeout_ms"),
    ],
)
def test_validate_fields_names_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        validate_fields(body, None, ALLOW)
    assert info.value.details == {"field": field}


async def test_secrets_are_sealed_per_job_and_masked(jobs: JobStore, store: ControlPlane, changes: list[str]) -> None:
    job = await jobs.create({**HTTP, "http_headers": {"Authorization": "Bearer top"}, "http_body": {"k": "v"}})
    other = await jobs.create(HTTP)
    assert changes == [job.id, other.id]
    assert job.http_headers == {"Authorization": "Bearer top"} and job.http_body == {"k": "v"}
    view = job.view()
    assert view["http_headers"] == {"Authorization": MASK} and view["http_body"] == MASK
    assert other.view()["http_body"] is None
    row = await store.fetchone("SELECT http_headers_enc, http_body_enc FROM cron_jobs WHERE id = ?", (job.id,))
    assert row is not None
    assert b"Bearer top" not in base64.b64decode(row[0]) and b'"k"' not in base64.b64decode(row[1])
    # A sealed value moved to another job does not open: the job id is bound into the ciphertext.
    await store.execute("UPDATE cron_jobs SET http_headers_enc = ? WHERE id = ?", (row[0], other.id))
    with pytest.raises(DecryptionError):
        await jobs.get(other.id)


async def test_patch_keeps_masked_values_and_switches_type(jobs: JobStore) -> None:
    job = await jobs.create({**HTTP, "http_headers": {"Authorization": "a", "X-Env": "prod"}, "http_body": [1, 2]})
    same = await jobs.update(job.id, job.view())  # a client sending back exactly what it was shown
    assert same.http_headers == job.http_headers and same.http_body == [1, 2]
    changed = await jobs.update(job.id, {"http_headers": {"authorization": MASK, "X-Env": "dev"}})
    assert changed.http_headers == {"authorization": "a", "X-Env": "dev"}
    platform = await jobs.update(job.id, {"type": "platform", "action": "cleanup_runs", "action_args": {"days": 3}})
    assert (platform.http_url, platform.http_headers, platform.http_body) == (None, {}, None)
    with pytest.raises(BadRequest) as info:
        await jobs.update(job.id, {"type": "http"})
    assert info.value.details == {"field": "http_url"}


async def test_rescheduling_and_reenabling_forgive_missed_runs(jobs: JobStore, clock: Clock) -> None:
    job = await jobs.create(HTTP)
    assert job.last_due_at == iso(NOW) and job.next_run_at == iso(NOW + timedelta(minutes=5))
    clock.now = NOW + timedelta(hours=2)
    renamed = await jobs.update(job.id, {"name": "renamed", "enabled": False})
    assert renamed.last_due_at == job.last_due_at and renamed.view()["next_run_at"] is None
    clock.now = NOW + timedelta(hours=3, minutes=1)
    enabled = await jobs.update(job.id, {"enabled": True})
    assert parse_iso(enabled.last_due_at) == clock.now
    assert enabled.next_run_at == iso(NOW + timedelta(hours=3, minutes=5))
    moved = await jobs.update(job.id, {"schedule_cron": "0 * * * *", "timezone": "Asia/Kolkata"})
    assert moved.next_run_at == iso(NOW + timedelta(hours=3, minutes=30))  # Kolkata is UTC+5:30


async def test_project_must_exist_and_listing_filters(jobs: JobStore, store: ControlPlane) -> None:
    with pytest.raises(NotFound) as info:
        await jobs.create({**HTTP, "project_id": "p_missing"})
    assert info.value.details == {"field": "project_id"}
    await store.execute(
        "INSERT INTO projects (id, name, db_name, status, created_at) VALUES ('p1', 'One', 'proj_p1', 'active', ?)",
        (iso(NOW),),
    )
    mine = await jobs.create({**HTTP, "project_id": "p1"})
    await jobs.create(PLATFORM)
    assert [j.id for j in await jobs.list_jobs("p1")] == [mine.id]
    assert len(await jobs.list_jobs()) == 2
    await store.execute("DELETE FROM projects WHERE id = 'p1'")
    assert await jobs.find(mine.id) is None  # a project's jobs go with it


async def test_action_registry() -> None:
    async def noop(_ctx: platform_jobs.ActionContext) -> None:
        return None

    platform_jobs.register_action("test_noop", noop, needs_project=True)
    try:
        platform_jobs.register_action("test_noop", noop, needs_project=True)  # the same function again is fine
        with pytest.raises(ValueError, match="already registered"):
            platform_jobs.register_action("test_noop", platform_jobs.cleanup_runs)
        with pytest.raises(BadRequest) as info:
            validate_fields({**PLATFORM, "action": "test_noop"}, None, ALLOW)
        assert info.value.details == {"field": "project_id"}
    finally:
        platform_jobs.unregister_action("test_noop")
    with pytest.raises(ValueError):
        platform_jobs.register_action("Bad Name", noop)
