"""The table browser: `GET /admin/api/projects/{id}/tables` and `.../tables/{table}/rows`.

Read-only, as the project's owner role. Reading is not audited row by row (the audit log is for
actions); running SQL is, in :mod:`appliance.dashboard.sql_routes`.
"""

from __future__ import annotations

from aiohttp import web

from appliance.dashboard import tables
from appliance.dashboard.sql_routes import editor_settings
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int

routes = web.RouteTableDef()

DEFAULT_LIMIT = 50


@routes.get("/admin/api/projects/{project_id}/tables")
async def list_tables(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    async with core.pools.connection(project.id, "owner") as conn:
        found = await tables.list_tables(conn)
    return json_response({"tables": found})


@routes.get("/admin/api/projects/{project_id}/tables/{table}/rows")
async def table_rows(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    limit = query_int(request, "limit", DEFAULT_LIMIT, minimum=1, maximum=tables.MAX_LIMIT)
    offset = query_int(request, "offset", 0, minimum=0)
    timeout_ms, _ = editor_settings(request)
    async with core.pools.connection(project.id, "owner") as conn:
        page = await tables.fetch_rows(
            conn,
            request.query.get("schema") or "public",
            request.match_info["table"],
            limit=limit,
            offset=offset,
            order=request.query.get("order") or None,
            timeout_ms=timeout_ms,
        )
    return json_response(page)
