"""The audit log: who did what to what, from where, and how it ended. Never holds a secret."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from appliance.control.store import ControlPlane, utcnow
from appliance.errors import BadRequest
from appliance.logs import redact


async def record(
    store: ControlPlane,
    *,
    actor: str,
    action: str,
    outcome: str = "success",
    source_ip: str | None = None,
    target: str | None = None,
    project_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    payload = redact(json.dumps(details, default=str)) if details else None
    await store.execute(
        "INSERT INTO audit_logs (at, actor, source_ip, action, target, project_id, outcome, details_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (utcnow(), actor, source_ip, action, target, project_id, outcome, payload),
    )


async def entries(
    store: ControlPlane, *, project_id: str | None = None, limit: int = 50, before: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; ``before`` is the id of the last entry of the previous page."""
    if not 1 <= limit <= 500:
        raise BadRequest("limit must be between 1 and 500", code="invalid_parameter", details={"field": "limit"})
    clauses: list[str] = []
    params: list[object] = []
    if project_id:
        clauses.append("project_id = ?")
        params.append(project_id)
    if before is not None:
        clauses.append("id < ?")
        params.append(before)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await store.fetchall(
        "SELECT id, at, actor, source_ip, action, target, project_id, outcome, details_json"
        f" FROM audit_logs {where} ORDER BY id DESC LIMIT ?",
        (*params, limit + 1),
    )
    page = [
        {
            "id": r["id"],
            "at": r["at"],
            "actor": r["actor"],
            "source_ip": r["source_ip"],
            "action": r["action"],
            "target": r["target"],
            "project_id": r["project_id"],
            "outcome": r["outcome"],
            "details": json.loads(r["details_json"]) if r["details_json"] else None,
        }
        for r in rows[:limit]
    ]
    next_before = page[-1]["id"] if len(rows) > limit else None
    return page, next_before
