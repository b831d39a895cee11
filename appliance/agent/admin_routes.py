"""Admin API: this node's own systemd units (the Nodes page), through the agent's D-Bus code.

``GET /admin/api/node/units/{unit}`` reads a unit's state; ``POST …/restart`` restarts it.
Only the units :func:`appliance.agent.systemd.check_unit` allows (this product's and
PostgreSQL's); a refused or failed restart is audited too. A worker's units are reached from
the master with the ``unit_state`` and ``restart`` commands (``/admin/api/nodes/{id}/commands``).
"""

from __future__ import annotations

from aiohttp import web

from appliance.agent import systemd
from appliance.dashboard.adminauth import audit_admin
from appliance.errors import AtlasError
from appliance.web.util import json_response

routes = web.RouteTableDef()


@routes.get("/admin/api/node/units/{unit}")
async def unit_state(request: web.Request) -> web.Response:
    return json_response(await systemd.unit_state(request.match_info["unit"]))


@routes.post("/admin/api/node/units/{unit}/restart")
async def restart_unit(request: web.Request) -> web.Response:
    unit = request.match_info["unit"]
    try:
        result = await systemd.restart_unit(unit)
    except AtlasError as exc:
        await audit_admin(
            request, "node.unit_restart", target=unit[:200], outcome="failure", details={"error": exc.code}
        )
        raise
    await audit_admin(request, "node.unit_restart", target=unit, details={"job": result["job"]})
    return json_response(result, status=202)
