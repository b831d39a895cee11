"""Admin API of analytics access: enable/disable, connection, views, password, never-exposable tables, tenant roles.

Thin handlers: parse, call :class:`AnalyticsService`, audit, render. The role's password appears
only in the responses of enabling and of rotation, never in the audit log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.analytics.service import AnalyticsService
from appliance.dashboard.adminauth import audit_admin
from appliance.errors import BadRequest
from appliance.projects.model import Project
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()

BASE = "/admin/api/projects/{project_id}/analytics"


async def _context(request: web.Request) -> tuple[AnalyticsService, Project]:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    return core.service(AnalyticsService), project


async def _audit(
    request: web.Request,
    action: str,
    project: Project,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    await audit_admin(request, action, target=target or project.id, project_id=project.id, details=details)


@routes.get(BASE)
async def get_analytics(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response(await service.status(project))


@routes.post(BASE)
async def set_analytics(request: web.Request) -> web.Response:
    service, project = await _context(request)
    enabled = (await read_json_object(request)).get("enabled")
    if not isinstance(enabled, bool):
        raise BadRequest("enabled must be true or false", code="invalid_parameter", details={"field": "enabled"})
    if enabled:
        connection = await service.enable(project)
        await _audit(request, "analytics.enable", project)
        return json_response({"connection": connection})
    await service.disable(project)
    await _audit(request, "analytics.disable", project)
    return json_response({"connection": None})


@routes.post(f"{BASE}/password")
async def rotate_password(request: web.Request) -> web.Response:
    service, project = await _context(request)
    password = await service.rotate_password(project)
    await _audit(request, "analytics.password.rotate", project)
    return json_response({"password": password})


@routes.get(f"{BASE}/views")
async def list_views(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response({"views": await service.list_views(project)})


@routes.post(f"{BASE}/views")
async def create_view(request: web.Request) -> web.Response:
    service, project = await _context(request)
    view = await service.create_view(project, await read_json_object(request))
    await _audit(request, "analytics.view.create", project, target=view["name"], details=view)
    return json_response(view, status=201)


@routes.get(f"{BASE}/views/{{name}}")
async def get_view(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response(await service.get_view(project, request.match_info["name"]))


@routes.delete(f"{BASE}/views/{{name}}")
async def delete_view(request: web.Request) -> web.Response:
    service, project = await _context(request)
    name = request.match_info["name"]
    await service.delete_view(project, name)
    await _audit(request, "analytics.view.delete", project, target=name)
    return web.Response(status=204)


@routes.put(f"{BASE}/never-exposable")
async def set_never_exposable(request: web.Request) -> web.Response:
    service, project = await _context(request)
    tables = await service.set_never_exposable(project, (await read_json_object(request)).get("tables"))
    await _audit(request, "analytics.never_exposable.set", project, details={"tables": tables})
    return json_response({"never_exposable": tables})


# -- tenant-scoped roles -------------------------------------------------------------------


@routes.get(f"{BASE}/tenant-roles")
async def list_tenant_roles(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response({"tenant_roles": await service.tenants.list(project)})


@routes.post(f"{BASE}/tenant-roles")
async def create_tenant_role(request: web.Request) -> web.Response:
    service, project = await _context(request)
    created = await service.tenants.create(project, await read_json_object(request))
    details = {k: created[k] for k in ("tenant_column", "tenant_value", "views", "skipped")}
    await _audit(request, "analytics.tenant_role.create", project, target=created["name"], details=details)
    return json_response(created, status=201)


@routes.get(f"{BASE}/tenant-roles/{{name}}")
async def get_tenant_role(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response(await service.tenants.get(project, request.match_info["name"]))


@routes.delete(f"{BASE}/tenant-roles/{{name}}")
async def delete_tenant_role(request: web.Request) -> web.Response:
    service, project = await _context(request)
    name = request.match_info["name"]
    await service.tenants.delete(project, name)
    await _audit(request, "analytics.tenant_role.delete", project, target=name)
    return web.Response(status=204)


@routes.post(f"{BASE}/tenant-roles/{{name}}/password")
async def rotate_tenant_password(request: web.Request) -> web.Response:
    service, project = await _context(request)
    name = request.match_info["name"]
    password = await service.tenants.rotate_password(project, name)
    await _audit(request, "analytics.tenant_role.password.rotate", project, target=name)
    return json_response({"password": password})
