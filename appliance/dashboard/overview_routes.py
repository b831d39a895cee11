"""`GET /admin/api/overview` and `GET /admin/api/audit`."""

from __future__ import annotations

from aiohttp import web

from appliance import __version__, audit
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int

routes = web.RouteTableDef()


@routes.get("/admin/api/overview")
async def overview(request: web.Request) -> web.Response:
    core = request.app[CORE]
    row = await core.store.fetchone("SELECT count(*) AS n FROM projects WHERE status = 'active'")
    return json_response(
        {
            "version": __version__,
            "node": {"id": core.node_id, "name": core.config.node.name, "roles": list(core.config.node.roles)},
            "projects": row["n"] if row else 0,
        }
    )


@routes.get("/admin/api/audit")
async def audit_log(request: web.Request) -> web.Response:
    core = request.app[CORE]
    limit = query_int(request, "limit", 50, minimum=1, maximum=500)
    before = query_int(request, "before", 0, minimum=0) or None
    entries, next_before = await audit.entries(
        core.store, project_id=request.query.get("project") or None, limit=limit, before=before
    )
    return json_response({"entries": entries, "next_before": next_before})
