"""`POST /admin/api/projects/{project_id}/sql`: the SQL editor.

One statement, checked by the SQL guard, run as the project's owner role in that project's
database only. Every run is audited with the statement's SHA-256 and length, not its text:
an admin's SQL is not secret from the admin, but it may hold a password meant for a table.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from appliance.dashboard.adminauth import audit_admin
from appliance.dashboard.sqlexec import run_statement
from appliance.errors import AtlasError, BadRequest
from appliance.settings.service import RuntimeSettings
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()

MAX_SQL_CHARS = 1_000_000


def editor_settings(request: web.Request) -> tuple[int, bool]:
    """(statement timeout in ms, whether CREATE/ALTER/DROP EXTENSION is allowed)."""
    core = request.app[CORE]
    timeout_ms = int(core.service(RuntimeSettings).get("dashboard.sql_timeout_ms"))  # a runtime setting
    return timeout_ms, core.config.dashboard.sql_allow_extensions


@routes.post("/admin/api/projects/{project_id}/sql")
async def run_sql(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    body = await read_json_object(request)
    sql = body.get("sql")
    if not isinstance(sql, str):
        raise BadRequest("sql must be a string", code="invalid_body", details={"field": "sql"})
    if len(sql) > MAX_SQL_CHARS:
        raise BadRequest(f"sql must be at most {MAX_SQL_CHARS} characters", code="invalid_body")
    timeout_ms, allow_extensions = editor_settings(request)
    details: dict[str, Any] = {"sql_sha256": hashlib.sha256(sql.encode()).hexdigest(), "sql_length": len(sql)}
    try:
        from appliance.dashboard.sqlguard import check_editor_sql  # deferred: loads the parser on first use

        statement = check_editor_sql(sql, timeout_s=timeout_ms / 1000, allow_extensions=allow_extensions)
        details["kind"] = statement.kind
        async with core.pools.connection(project.id, "owner") as conn:
            result = await run_statement(conn, sql, timeout_ms=timeout_ms)
    except AtlasError as exc:
        rule = exc.details.get("rule") if isinstance(exc.details, dict) else None
        details.update({"error": exc.code, **({"rule": rule} if rule else {})})
        await _audit(request, project.id, "failure", details)
        raise
    details.update({"rowCount": result.row_count, "durationMs": result.duration_ms, "truncated": result.truncated})
    await _audit(request, project.id, "success", details)
    return json_response(result.to_dict())


async def _audit(request: web.Request, project_id: str, outcome: str, details: dict[str, Any]) -> None:
    await audit_admin(request, "sql.run", target=project_id, project_id=project_id, outcome=outcome, details=details)
