"""Admin API for cloud provisioning (the dashboard's Nodes page). Handlers parse, call the
service, audit and render; the token and join tokens never reach an audit entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance import audit
from appliance.cloud.service import CloudService
from appliance.cloud.settings import HETZNER
from appliance.dashboard.adminauth import current_admin, source_ip
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


def _service(request: web.Request) -> CloudService:
    return request.app[CORE].service(CloudService)


async def _audit(request: web.Request, action: str, target: str | None, details: Mapping[str, Any]) -> None:
    await audit.record(
        request.app[CORE].store,
        actor=current_admin(request).name,
        source_ip=source_ip(request),
        action=action,
        target=target,
        details=details,
    )


@routes.get("/admin/api/cloud/hetzner")
async def show_settings(request: web.Request) -> web.Response:
    return json_response(await _service(request).settings.describe(HETZNER))


@routes.put("/admin/api/cloud/hetzner/token")
async def set_token(request: web.Request) -> web.Response:
    shown = await _service(request).set_token(HETZNER, await read_json_object(request))
    await _audit(request, "cloud.token_set", HETZNER, {"api_url": shown.get("api_url")})
    return web.Response(status=204)


@routes.post("/admin/api/cloud/hetzner/servers")
async def provision(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    run_id = await _service(request).provision(body)
    details = {k: body.get(k) for k in ("name", "server_type", "location")}
    await _audit(request, "cloud.provision", run_id, details)
    return json_response({"run_id": run_id}, status=202)


@routes.post("/admin/api/cloud/hetzner/decommission")
async def decommission(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    run_id = await _service(request).decommission(body)
    await _audit(request, "cloud.decommission", body.get("node_id"), {"run_id": run_id, "force": body.get("force")})
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
    await _audit(request, "cloud.cleanup", run["id"], {"cleanup": run.get("cleanup")})
    return json_response(run)
