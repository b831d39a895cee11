"""Admin API for the Nodes page: the cluster's nodes, join tokens, removal, project placement."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.agent.heartbeat import disk_usage, last_backup_at, load_info
from appliance.core import Core
from appliance.dashboard.adminauth import audit_admin
from appliance.errors import BadRequest, Forbidden
from appliance.mesh.admin_forward import AdminRouting
from appliance.mesh.commands import Commands
from appliance.mesh.peers import Mesh, Node
from appliance.mesh.tokens import DEFAULT_TTL_SECONDS, JoinTokens
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()
STATUSES = ("healthy", "unhealthy", "unknown")


def _master_only(mesh: Mesh) -> None:
    if mesh.role != "master":
        raise Forbidden("cluster changes are made on the master", code="not_master")


async def node_view(core: Core, mesh: Mesh, node: Node, counts: Mapping[str, int], ages: Mapping[str, Any]) -> dict:
    health = node.health or {}
    is_self = node.id == mesh.self_id
    handshake = ages.get(node.wg_public or "") if not is_self else None
    if handshake is None and not is_self:
        handshake = health.get("wg_handshake_age_s")
    return {
        "id": node.id,
        "name": node.name,
        "role": node.role,
        "wg_address": node.wg_address,
        "status": "healthy" if is_self else (node.status if node.status in STATUSES else "unknown"),
        "version": node.version,
        "last_heartbeat_at": node.last_heartbeat_at,
        "handshake_age_s": handshake,
        "projects": counts.get(node.id, 0),
        "disk": disk_usage(str(core.config.state_dir)) if is_self else health.get("disk"),
        "load": load_info() if is_self else health.get("load"),
        "last_backup_at": await last_backup_at(core) if is_self else health.get("last_backup_at"),
        "postgres": None if is_self else health.get("postgres"),
    }


@routes.get("/admin/api/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    core = request.app[CORE]
    mesh = core.service(Mesh)
    rows = await core.store.fetchall(
        "SELECT coalesce(node_id, ?) AS node, count(*) AS n FROM projects WHERE status = 'active' GROUP BY 1",
        (mesh.self_id,),
    )
    counts = {r["node"]: r["n"] for r in rows}
    ages = await mesh.wg.handshake_ages()
    nodes = [await node_view(core, mesh, node, counts, ages) for node in await mesh.all()]
    return json_response({"nodes": nodes, "self_id": mesh.self_id})


@routes.post("/admin/api/nodes/tokens")
async def create_token(request: web.Request) -> web.Response:
    core = request.app[CORE]
    mesh = core.service(Mesh)
    _master_only(mesh)
    body = await read_json_object(request) if request.can_read_body else {}
    ttl = body.get("ttl_seconds", DEFAULT_TTL_SECONDS)
    if type(ttl) is not int:
        raise BadRequest("ttl_seconds must be an integer", code="invalid_parameter", details={"field": "ttl_seconds"})
    issued = await JoinTokens(core.store, mesh.self_id).create(ttl)
    await audit_admin(request, "node.token_create", target=issued.id, details={"expires_at": issued.expires_at})
    master_url = core.config.gateway.public_url or "https://<this master's public URL>"
    return json_response(
        {
            "token": issued.token,
            "expires_at": issued.expires_at,
            "join_command": f"atlashub node join --master {master_url} --token {issued.token}",
        },
        status=201,
    )


@routes.delete("/admin/api/nodes/{node_id}")
async def remove_node(request: web.Request) -> web.Response:
    core = request.app[CORE]
    mesh = core.service(Mesh)
    _master_only(mesh)
    node = await mesh.remove(request.match_info["node_id"])
    await audit_admin(request, "node.remove", target=node.id, details={"name": node.name})
    return json_response({"id": node.id, "removed": True})


@routes.post("/admin/api/nodes/{node_id}/projects")
async def place_project(request: web.Request) -> web.Response:
    core = request.app[CORE]
    _master_only(core.service(Mesh))
    body = await read_json_object(request)
    node_id = request.match_info["node_id"]
    created = await core.service(Commands).place_project(node_id, body.get("name"))
    await audit_admin(
        request, "project.create", target=created["id"], details={"name": created["name"], "node_id": node_id}
    )
    return json_response(created, status=201)


# Commands an operator may send to a worker from the admin API (provisioning has its own route).
OPERATOR_COMMANDS = ("backup_project", "restore_project", "job_state", "unit_state", "restart", "upgrade")


@routes.post("/admin/api/nodes/{node_id}/commands")
async def send_command(request: web.Request) -> web.Response:
    """Run one agent command on a worker and answer its result (or its error, as the worker gave it)."""
    core = request.app[CORE]
    _master_only(core.service(Mesh))
    body = await read_json_object(request)
    name, args = body.get("name"), body.get("args") or {}
    if name not in OPERATOR_COMMANDS or not isinstance(args, dict):
        raise BadRequest(
            f"name must be one of {', '.join(OPERATOR_COMMANDS)} and args an object",
            code="invalid_parameter",
            details={"field": "name"},
        )
    node_id = request.match_info["node_id"]
    try:
        result = await core.service(Commands).send(node_id, str(name), args)
    except Exception as exc:
        await audit_admin(
            request, f"node.command.{name}", target=node_id, details={"args": args, "error": type(exc).__name__}
        )
        raise
    await audit_admin(request, f"node.command.{name}", target=node_id, details={"args": args})
    # A job the command started (restore_project) is followed: GET /admin/api/jobs/{id} goes to the worker.
    core.service(AdminRouting).learn(result, node_id)
    return json_response({"node_id": node_id, "name": name, "result": result})
