"""The cron job store: validated CRUD on ``cron_jobs``, secrets sealed at rest. No HTTP here.

Header values and the request body are AES-256-GCM encrypted under the master key with the
context ``cron:<job id>`` (a ciphertext moved to another job does not open). Every view of a
job shows header values and a non-null body as ``••••``; a PATCH that sends ``••••`` back
(for a header, or as the body) keeps the stored value, so a client can round-trip what it was
shown without ever seeing a secret.

A change to a job is announced through ``on_change(job_id)`` so the scheduler loop can
reschedule it at once.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from appliance.control.store import ControlPlane
from appliance.crypto import SecretBox
from appliance.errors import BadRequest, NotFound
from appliance.scheduler import platform_jobs
from appliance.scheduler.cronspec import Schedule, validate_schedule
from appliance.scheduler.safehttp import Allowlist, HttpJobSpec, validate_http_job

MASK = "••••"
MAX_NAME = 200
MAX_BODY_BYTES = 64 * 1024
EDITABLE = (
    "name",
    "project_id",
    "type",
    "schedule_cron",
    "timezone",
    "http_url",
    "http_method",
    "http_headers",
    "http_body",
    "action",
    "action_args",
    "enabled",
    "timeout_ms",
    "retries",
    "retry_backoff_ms",
    "missed_run_policy",
    "notify_on_failure",
)
# Shown in responses; a client that sends a job back as it got it is not refused for them.
READ_ONLY = frozenset({"id", "next_run_at", "last_run", "created_at", "updated_at"})
DEFAULTS: dict[str, Any] = {
    "project_id": None,
    "timezone": "UTC",
    "http_url": None,
    "http_method": "GET",
    "http_headers": {},
    "http_body": None,
    "action": None,
    "action_args": {},
    "enabled": True,
    "timeout_ms": 10_000,
    "retries": 0,
    "retry_backoff_ms": 1_000,
    "missed_run_policy": "run_once",
    "notify_on_failure": True,
}
# Platform actions (a backup) may run far longer than an HTTP call.
_PLATFORM_TIMEOUT_MAX = 6 * 3600 * 1000


@lru_cache(maxsize=4096)
def compiled_schedule(cron: str, timezone: str) -> Schedule:
    """Parsing with croniter costs about a millisecond: stored schedules are parsed once."""
    return validate_schedule(cron, timezone)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str | None) -> datetime | None:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if text else None


def _bad(field_name: str, message: str, code: str = "invalid_value") -> BadRequest:
    return BadRequest(message, code=code, details={"field": field_name})


@dataclass
class Job:
    """One job, decrypted. Never render it directly: ``view()`` masks the secrets."""

    id: str
    name: str
    type: str
    schedule_cron: str
    project_id: str | None = None
    timezone: str = "UTC"
    http_url: str | None = None
    http_method: str | None = None
    http_headers: dict[str, str] = field(default_factory=dict, repr=False)
    http_body: Any = field(default=None, repr=False)
    action: str | None = None
    action_args: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    timeout_ms: int = 10_000
    retries: int = 0
    retry_backoff_ms: int = 1_000
    missed_run_policy: str = "run_once"
    notify_on_failure: bool = True
    next_run_at: str | None = None
    last_due_at: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def schedule(self) -> Schedule:
        return compiled_schedule(self.schedule_cron, self.timezone)

    def http_spec(self) -> HttpJobSpec:
        return HttpJobSpec(
            url=self.http_url or "",
            method=self.http_method or "GET",
            headers=self.http_headers,
            json_body=self.http_body,
            timeout_ms=self.timeout_ms,
            retries=self.retries,
            retry_backoff_ms=self.retry_backoff_ms,
            jitter=0.1,
        )

    def editable(self) -> dict[str, Any]:
        data = asdict(self)
        return {key: data[key] for key in EDITABLE}

    def view(self, last_run: Mapping[str, Any] | None = None) -> dict[str, Any]:
        shown = self.editable()
        shown["http_headers"] = {name: MASK for name in self.http_headers} if self.type == "http" else None
        shown["http_body"] = MASK if self.http_body is not None else None
        shown.update(
            id=self.id,
            next_run_at=self.next_run_at if self.enabled else None,
            last_run=dict(last_run) if last_run else None,
            created_at=self.created_at,
            updated_at=self.updated_at,
        )
        return shown


def _check_int(values: dict[str, Any], key: str, low: int, high: int) -> None:
    number = values[key]
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise _bad(key, f"{key} must be an integer from {low} to {high}")


def _unmask_headers(sent: Any, stored: Mapping[str, str]) -> Any:
    """Replace ``••••`` values by the stored value of the same header (names are case-insensitive)."""
    if not isinstance(sent, dict):
        return sent
    by_lower = {name.lower(): value for name, value in stored.items()}
    result: dict[str, Any] = {}
    for name, value in sent.items():
        if value == MASK:
            if not isinstance(name, str) or name.lower() not in by_lower:
                raise _bad("http_headers", f"header {name!r} is masked but has no stored value")
            value = by_lower[name.lower()]
        result[name] = value
    return result


def validate_fields(body: Mapping[str, Any], current: Job | None, allowlist: Allowlist) -> dict[str, Any]:
    """Merge ``body`` over the current job (or the defaults) and check the whole result.

    Returns the editable fields, normalized. BadRequest (400) names the first bad field.
    """
    for key in body:
        if key not in EDITABLE and key not in READ_ONLY:
            raise _bad(key, f"unknown field {key!r}", "unknown_field")
    values = current.editable() if current else dict(DEFAULTS)
    for key in EDITABLE:
        if key in body:
            values[key] = body[key]
    if current is not None and "http_headers" in body:
        values["http_headers"] = _unmask_headers(body["http_headers"], current.http_headers)
    if current is not None and body.get("http_body") == MASK:
        values["http_body"] = current.http_body
    for key in ("name", "type", "schedule_cron"):
        if values.get(key) is None:
            raise _bad(key, f"{key} is required", "required")
    name = values["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise _bad("name", f"name must be a non-empty string of at most {MAX_NAME} characters")
    values["name"] = name.strip()
    if values["project_id"] is not None and not isinstance(values["project_id"], str):
        raise _bad("project_id", "project_id must be a string or null")
    if values["type"] not in ("http", "platform"):
        raise _bad("type", "type must be 'http' or 'platform'")
    if values["timezone"] is None:
        values["timezone"] = "UTC"
    schedule = validate_schedule(values["schedule_cron"], values["timezone"])
    values["schedule_cron"] = schedule.cron
    if values["missed_run_policy"] not in ("run_once", "skip"):
        raise _bad("missed_run_policy", "missed_run_policy must be 'run_once' or 'skip'")
    for key in ("enabled", "notify_on_failure"):
        if not isinstance(values[key], bool):
            raise _bad(key, f"{key} must be true or false")
    high = 300_000 if values["type"] == "http" else _PLATFORM_TIMEOUT_MAX
    _check_int(values, "timeout_ms", 1, high)
    _check_int(values, "retries", 0, 10)
    _check_int(values, "retry_backoff_ms", 0, 3_600_000)
    if values["type"] == "http":
        _validate_http(values, allowlist)
    else:
        values["action"], values["action_args"] = platform_jobs.validate_action(
            values["action"], values["action_args"], values["project_id"]
        )
        values.update(http_url=None, http_method=None, http_headers={}, http_body=None)
    return values


def _validate_http(values: dict[str, Any], allowlist: Allowlist) -> None:
    if not isinstance(values["http_url"], str) or not values["http_url"]:
        raise _bad("http_url", "http_url is required for an http job", "required")
    method = values["http_method"] if values["http_method"] is not None else "GET"
    if not isinstance(method, str):
        raise _bad("http_method", "http_method must be a string")
    headers = values["http_headers"] if values["http_headers"] is not None else {}
    if not isinstance(headers, dict):
        raise _bad("http_headers", "http_headers must be an object of header names to string values")
    try:
        json_body = json.dumps(values["http_body"])
    except (TypeError, ValueError):
        raise _bad("http_body", "http_body must be JSON") from None
    if len(json_body.encode()) > MAX_BODY_BYTES:
        raise _bad("http_body", f"http_body is larger than {MAX_BODY_BYTES} bytes")
    spec = HttpJobSpec(url=values["http_url"], method=method, headers=headers, timeout_ms=values["timeout_ms"])
    try:
        spec = validate_http_job(spec, allowlist)
    except BadRequest as exc:
        if isinstance(exc.details, dict) and exc.details.get("field") == "http_headers_json":
            exc.details = {"field": "http_headers"}
        raise
    values.update(http_method=spec.method, http_headers=dict(headers), action=None, action_args={})


class JobStore:
    """CRUD on cron jobs. ``now`` is injectable; ``on_change`` hears every created/edited/deleted id."""

    def __init__(
        self,
        store: ControlPlane,
        box: SecretBox,
        allowlist: Allowlist,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self._box = box
        self._allowlist = allowlist
        self._now = now
        self._on_change = on_change or (lambda _job_id: None)

    # -- reading ----------------------------------------------------------------------------

    def _from_row(self, row: sqlite3.Row) -> Job:
        context = f"cron:{row['id']}"
        sealed_headers, sealed_body = row["http_headers_enc"], row["http_body_enc"]
        headers = json.loads(self._box.decrypt_text(sealed_headers, context)) if sealed_headers else {}
        body = json.loads(self._box.decrypt_text(sealed_body, context)) if sealed_body else None
        return Job(
            id=row["id"],
            name=row["name"],
            type=row["type"],
            schedule_cron=row["schedule_cron"],
            project_id=row["project_id"],
            timezone=row["timezone"],
            http_url=row["http_url"],
            http_method=row["http_method"],
            http_headers=headers,
            http_body=body,
            action=row["action"],
            action_args=json.loads(row["action_args_json"]) if row["action_args_json"] else {},
            enabled=bool(row["enabled"]),
            timeout_ms=row["timeout_ms"],
            retries=row["retries"],
            retry_backoff_ms=row["retry_backoff_ms"],
            missed_run_policy=row["missed_run_policy"],
            notify_on_failure=bool(row["notify_on_failure"]),
            next_run_at=row["next_run_at"],
            last_due_at=row["last_due_at"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def find(self, job_id: str) -> Job | None:
        row = await self.store.fetchone("SELECT * FROM cron_jobs WHERE id = ?", (job_id,))
        return self._from_row(row) if row else None

    async def get(self, job_id: str) -> Job:
        job = await self.find(job_id)
        if job is None:
            raise NotFound(f"cron job {job_id!r} does not exist", code="job_not_found")
        return job

    async def list_jobs(self, project_id: str | None = None, *, enabled_only: bool = False) -> list[Job]:
        clauses, params = [], []
        if project_id:
            clauses.append("project_id = ?")
            params.append(project_id)
        if enabled_only:
            clauses.append("enabled = 1")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self.store.fetchall(f"SELECT * FROM cron_jobs {where} ORDER BY created_at, id", params)
        return [self._from_row(row) for row in rows]

    async def get_many(self, job_ids: list[str]) -> list[Job]:
        if not job_ids:
            return []
        marks = ",".join("?" * len(job_ids))
        rows = await self.store.fetchall(f"SELECT * FROM cron_jobs WHERE id IN ({marks})", job_ids)
        return [self._from_row(row) for row in rows]

    # -- writing ----------------------------------------------------------------------------

    async def _check_project(self, project_id: str | None) -> None:
        if project_id is None:
            return
        row = await self.store.fetchone("SELECT 1 FROM projects WHERE id = ?", (project_id,))
        if row is None:
            raise NotFound(
                f"project {project_id!r} does not exist", code="project_not_found", details={"field": "project_id"}
            )

    def _columns(self, job_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The stored form of validated fields: secrets sealed, flags as integers."""
        context = f"cron:{job_id}"
        headers, body = values["http_headers"], values["http_body"]
        platform = values["type"] == "platform"
        return {
            "project_id": values["project_id"],
            "name": values["name"],
            "type": values["type"],
            "schedule_cron": values["schedule_cron"],
            "timezone": values["timezone"],
            "http_url": values["http_url"],
            "http_method": values["http_method"],
            "http_headers_enc": self._box.encrypt_text(json.dumps(headers), context) if headers else None,
            "http_body_enc": self._box.encrypt_text(json.dumps(body), context) if body is not None else None,
            "action": values["action"],
            "action_args_json": json.dumps(values["action_args"]) if platform else None,
            "enabled": int(values["enabled"]),
            "timeout_ms": values["timeout_ms"],
            "retries": values["retries"],
            "retry_backoff_ms": values["retry_backoff_ms"],
            "missed_run_policy": values["missed_run_policy"],
            "notify_on_failure": int(values["notify_on_failure"]),
        }

    async def create(self, body: Mapping[str, Any]) -> Job:
        values = validate_fields(body, None, self._allowlist)
        await self._check_project(values["project_id"])
        job_id = "cj_" + secrets.token_hex(8)
        now = self._now()
        next_run = Schedule(values["schedule_cron"], values["timezone"]).next_after(now)
        columns = self._columns(job_id, values)
        columns.update(
            id=job_id,
            next_run_at=iso(next_run) if next_run and values["enabled"] else None,
            last_due_at=iso(now),
            created_at=iso(now),
            updated_at=iso(now),
        )
        # Column names are the constants above, never input.
        await self.store.execute(
            f"INSERT INTO cron_jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            list(columns.values()),
        )
        self._on_change(job_id)
        return await self.get(job_id)

    async def update(self, job_id: str, patch: Mapping[str, Any]) -> Job:
        current = await self.get(job_id)
        values = validate_fields(patch, current, self._allowlist)
        if values["project_id"] != current.project_id:
            await self._check_project(values["project_id"])
        now = self._now()
        last_due = current.last_due_at
        rescheduled = (values["schedule_cron"], values["timezone"]) != (current.schedule_cron, current.timezone)
        if rescheduled or (values["enabled"] and not current.enabled):
            # Runs missed under the old schedule, or while disabled, are not owed.
            last_due = iso(now)
        floor = parse_iso(last_due) or now
        next_run = Schedule(values["schedule_cron"], values["timezone"]).next_after(max(floor, now))
        columns = self._columns(job_id, values)
        columns.update(
            next_run_at=iso(next_run) if next_run and values["enabled"] else None,
            last_due_at=last_due,
            updated_at=iso(now),
        )
        await self.store.execute(
            f"UPDATE cron_jobs SET {', '.join(f'{name} = ?' for name in columns)} WHERE id = ?",
            [*columns.values(), job_id],
        )
        self._on_change(job_id)
        return await self.get(job_id)

    async def delete(self, job_id: str) -> Job:
        job = await self.get(job_id)
        await self.store.execute("DELETE FROM cron_jobs WHERE id = ?", (job_id,))
        self._on_change(job_id)
        return job
