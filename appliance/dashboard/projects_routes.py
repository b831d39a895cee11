"""Admin API: projects, their keys and their migrations."""

from __future__ import annotations

from aiohttp import web

from appliance.dashboard.adminauth import audit_admin, current_admin, source_ip
from appliance.errors import BadRequest
from appliance.gateway.usage import RequestCounter
from appliance.projects import migrations
from appliance.projects.keys import audit_key_event
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


@routes.post("/admin/api/projects")
async def create_project(request: web.Request) -> web.Response:
    core = request.app[CORE]
    body = await read_json_object(request)
    try:
        created = await core.projects.create(body.get("name"))
    except Exception as exc:
        await audit_admin(
            request,
            "project.create",
            target=None,
            project_id=None,
            outcome="failure",
            details={"error": type(exc).__name__},
        )
        raise
    project = created.project
    await audit_admin(
        request, "project.create", target=project.id, project_id=project.id, details={"name": project.name}
    )
    await core.project_created(project.id)
    return json_response(
        {
            "id": project.id,
            "name": project.name,
            "db_name": project.db_name,
            "publishable_key": created.publishable[1],
            "secret_key": created.secret[1],
            "created_at": project.created_at,
        },
        status=201,
    )


@routes.get("/admin/api/projects")
async def list_projects(request: web.Request) -> web.Response:
    projects = await request.app[CORE].projects.all()
    return json_response({"projects": [p.to_dict() for p in projects]})


@routes.get("/admin/api/projects/{project_id}")
async def get_project(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    pg = core.pg
    data = project.to_dict()
    data["connection"] = {"host": pg.project_host or pg.host, "port": pg.port, "database": project.db_name}
    data["usage"] = {
        **await core.projects.usage(project),
        "requests_24h": core.service(RequestCounter).last_24h(project.id),
    }
    return json_response(data)


@routes.delete("/admin/api/projects/{project_id}")
async def delete_project(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project_id = request.match_info["project_id"]
    body = await read_json_object(request) if request.can_read_body else {}
    try:
        await core.projects.delete(project_id, body.get("confirm"))
    except Exception as exc:
        await audit_admin(
            request,
            "project.delete",
            target=project_id,
            project_id=project_id,
            outcome="failure",
            details={"error": type(exc).__name__},
        )
        raise
    await audit_admin(request, "project.delete", target=project_id, project_id=project_id)
    return web.Response(status=204)


# -- keys ----------------------------------------------------------------------------------


@routes.get("/admin/api/projects/{project_id}/keys")
async def list_keys(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    keys = await core.keys.for_project(project.id)
    return json_response({"keys": [k.to_dict() for k in keys]})


@routes.post("/admin/api/projects/{project_id}/keys")
async def create_key(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    body = await read_json_object(request)
    record, secret = await core.keys.create(project.id, body.get("type"))  # type: ignore[arg-type]
    await audit_key_event(core.store, current_admin(request).name, source_ip(request), "key.create", record)
    return json_response({"key": record.to_dict(), "secret": secret}, status=201)


@routes.post("/admin/api/projects/{project_id}/keys/{key_id}/rotate")
async def rotate_key(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    body = await read_json_object(request) if request.can_read_body else {}
    grace = body.get("grace_seconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
        raise BadRequest(
            "grace_seconds must be an integer", code="invalid_parameter", details={"field": "grace_seconds"}
        )
    new, secret, old = await core.keys.rotate(project.id, request.match_info["key_id"], grace)
    await audit_key_event(core.store, current_admin(request).name, source_ip(request), "key.rotate", old)
    return json_response({"key": new.to_dict(), "secret": secret, "old_key": old.to_dict()})


@routes.post("/admin/api/projects/{project_id}/keys/{key_id}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    record = await core.keys.revoke(project.id, request.match_info["key_id"])
    await audit_key_event(core.store, current_admin(request).name, source_ip(request), "key.revoke", record)
    return json_response({"key": record.to_dict()})


# -- project migrations -------------------------------------------------------------------


@routes.get("/admin/api/projects/{project_id}/migrations")
async def list_migrations(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    async with core.pools.connection(project.id, "owner") as conn:
        rows = await migrations.applied(conn)
    return json_response({"migrations": rows})


@routes.post("/admin/api/projects/{project_id}/migrations")
async def apply_migrations(request: web.Request) -> web.Response:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    files = migrations.parse_migrations(await read_json_object(request))
    try:
        async with core.pools.connection(project.id, "owner") as conn:
            result = await migrations.apply(conn, files)
    except Exception as exc:
        await audit_admin(
            request,
            "project.migrate",
            target=project.id,
            project_id=project.id,
            outcome="failure",
            details={"error": getattr(exc, "code", type(exc).__name__)},
        )
        raise
    core.schema_changed(project.id)
    await audit_admin(request, "project.migrate", target=project.id, project_id=project.id, details=result)
    return json_response(result)
