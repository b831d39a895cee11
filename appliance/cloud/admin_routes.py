"""Admin API for cloud provisioning (the dashboard's Nodes page). Handlers parse, call the
service, audit and render; the token and join tokens never reach an audit entry."""

from __future__ import annotations

from aiohttp import web

from appliance.cloud.service import CloudService
from appliance.cloud.settings import HETZNER
from appliance.dashboard.adminauth import audit_admin
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


def _service(request: web.Request) -> CloudService:
    return request.app[CORE].service(CloudService)


@routes.get("/admin/api/cloud/hetzner")
async def show_settings(request: web.Request) -> web.Response:
    return json_response(await _service(request).settings.describe(HETZNER))


@routes.put("/admin/api/cloud/hetzner/token")
async def set_token(request: web.Request) -> web.Response:
    shown = await _service(request).set_token(HETZNER, await read_json_object(request))
    await audit_admin(request, "cloud.token_set", target=HETZNER, details={"api_url": shown.get("api_url")})
    return web.Response(status=204)


@routes.post("/admin/api/cloud/hetzner/servers")
async def provision(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    run_id = await _service(request).provision(body)
    details = {k: body.get(k) for k in ("name", "server_type", "location")}
    await audit_admin(request, "cloud.provision", target=run_id, details=details)
    return json_response({"run_id": run_id}, status=202)


@routes.post("/admin/api/cloud/hetzner/decommission")
async def decommission(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    run_id = await _service(request).decommission(body)
    await audit_admin(
        request,
        "cloud.decommission",
        target=body.get("node_id"),
        details={"run_id": run_id, "force": body.get("force")},
    )
    return json_response({"run_id": run_id}, status=202)


@routes.get("/admin/api/cloud/runs")
async def list_runs(request: web.Request) -> web.Response:
    return json_response({"runs": await _service(request).runs.recent()})


@routes.get("/admin/api/cloud/runs/{run_id}")
async def show_run(request: web.Request) -> web.Response:
    return json_response(await _service(request).runs.get(request.match_info["run_id"]))


@routes.post("/admin/api/cloud/runs/{run_id}/cleanup")
async def cleanup_run(request: web.Request) -> web.Response:
    run = await _service(request).cleanup(request.match_info["run_id"])
    await audit_admin(request, "cloud.cleanup", target=run["id"], details={"cleanup": run.get("cleanup")})
    return json_response(run)
