"""Admin API over a project's end users: list and search, disable/enable, revoke sessions, delete."""

from __future__ import annotations

from aiohttp import web

from appliance.auth.service import AuthService
from appliance.dashboard.adminauth import audit_admin
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int

routes = web.RouteTableDef()
BASE = "/admin/api/projects/{project_id}/users"


async def _project_and_service(request: web.Request) -> tuple[str, AuthService]:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    return project.id, core.service(AuthService)


async def _audit(request: web.Request, action: str, project_id: str, user_id: str) -> None:
    await audit_admin(request, action, target=user_id, project_id=project_id)


@routes.get(BASE)
async def list_users(request: web.Request) -> web.Response:
    project_id, service = await _project_and_service(request)
    search = request.query.get("search", "").strip()[:254] or None
    limit = query_int(request, "limit", 50, minimum=1, maximum=500)
    offset = query_int(request, "offset", 0, minimum=0)
    found, total = await service.list_users(project_id, search, limit, offset)
    return json_response({"users": [u.to_dict() for u in found], "total": total})


@routes.post(BASE + "/{user_id}/disable")
async def disable_user(request: web.Request) -> web.Response:
    project_id, service = await _project_and_service(request)
    user = await service.set_disabled(project_id, request.match_info["user_id"], True)
    await _audit(request, "auth.user.disable", project_id, user.id)
    return json_response({"user": user.to_dict()})


@routes.post(BASE + "/{user_id}/enable")
async def enable_user(request: web.Request) -> web.Response:
    project_id, service = await _project_and_service(request)
    user = await service.set_disabled(project_id, request.match_info["user_id"], False)
    await _audit(request, "auth.user.enable", project_id, user.id)
    return json_response({"user": user.to_dict()})


@routes.post(BASE + "/{user_id}/revoke-sessions")
async def revoke_sessions(request: web.Request) -> web.Response:
    project_id, service = await _project_and_service(request)
    user_id = request.match_info["user_id"]
    revoked = await service.revoke_sessions(project_id, user_id)
    await _audit(request, "auth.user.revoke_sessions", project_id, user_id)
    return json_response({"revoked": revoked})


@routes.delete(BASE + "/{user_id}")
async def delete_user(request: web.Request) -> web.Response:
    project_id, service = await _project_and_service(request)
    user_id = request.match_info["user_id"]
    await service.delete_user(project_id, user_id)
    await _audit(request, "auth.user.delete", project_id, user_id)
    return web.Response(status=204)
