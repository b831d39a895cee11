"""Admin actions on a worker's project, served by that worker (docs/protocol.md 5.7).

Master: :func:`admin_forwarding`, a dashboard middleware placed after the admin
authentication. A request under ``/admin/api/projects/{id}/…`` for a project hosted by a
worker (SQL editor, tables, migrations, backups, restore, import/export, analytics, storage,
end users) goes to that worker as a master-signed ``admin-request`` naming the admin (the
audit actor); the worker's answer is streamed back, and a worker that cannot be reached gives
``503 node_unavailable``. Job and backup ids seen in those answers are remembered, so that
``/admin/api/jobs/{id}`` and ``/admin/api/backups/{id}/…`` follow them to the same worker.
API keys stay here: the edge checks them. ``POST /admin/api/projects`` places new projects
(:mod:`appliance.mesh.placement`).

Worker: :func:`admin_request` on the agent listener (WireGuard only) accepts the message
from its master only, and runs the described request through this node's own admin routes
as the named admin, so the worker's audit log names the master's actor.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from appliance import audit
from appliance.core import Core
from appliance.dashboard.adminauth import ADMIN_KEY, AdminIdentity, current_admin, source_ip
from appliance.errors import AtlasError, BadRequest
from appliance.mesh.envelope import ADMIN_REQUEST, decode_forwarded_request, encode_forwarded_request, seal
from appliance.mesh.forward import CONNECT_TIMEOUT, relay, unavailable
from appliance.mesh.peers import Mesh
from appliance.web.errors import Handler
from appliance.web.keys import CORE
from appliance.web.util import json_response

log = logging.getLogger(__name__)

ADMIN_PATH: Final = "/mesh/v1/admin-request"
ADMIN_KEYS: Final = frozenset({"project_id", "actor", "method", "path", "query", "headers"})
ADMIN_HEADERS: Final = frozenset({"accept", "content-type", "range", "user-agent"})
# SQL, restores and exports can take long; the worker's own timeouts bound them.
READ_TIMEOUT: Final = 600.0
REMEMBERED_IDS: Final = 10_000
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
_PROJECT_PATH = re.compile(r"^/admin/api/projects/(?P<project>[^/]+)(?P<rest>/.*)?$")
_FOLLOWED_PATH = re.compile(r"^/admin/api/(?:jobs/(?P<job>[^/]+)|backups/(?P<backup>[^/]+)/(?:verify|download))$")
# Answers that let data leave are audited on the master even though they only read.
_EXPORTS = ("/export", "/export.sql", "/download")
ROUTER = web.AppKey("admin_router", web.Application)


def admin_body_limit(core: Core) -> int:
    config = core.config
    return max(config.gateway.max_body_bytes, config.backups.max_import_bytes) + 64 * 1024


class AdminRouting:
    """``core.service(AdminRouting)``: which node serves an admin path (master side)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.mesh = core.service(Mesh)
        self._followed: OrderedDict[str, str] = OrderedDict()

    async def target(self, path: str) -> tuple[str, str | None] | None:
        """(node id, project id) for a path served by a worker; None when it is served here."""
        match = _PROJECT_PATH.match(path)
        if match:
            rest = match["rest"] or ""
            if rest == "/keys" or rest.startswith("/keys/"):
                return None  # keys are checked at the edge, so they live here
            node_id = await self.mesh.project_node(match["project"])
            return (node_id, match["project"]) if node_id else None
        match = _FOLLOWED_PATH.match(path)
        if match:
            node_id = self._followed.get(match["job"] or match["backup"])
            return (node_id, None) if node_id else None
        return None

    def learn(self, answer: Any, node_id: str) -> None:
        """Remember the job and backup ids of a worker's JSON answer."""
        if not isinstance(answer, dict):
            return
        found = [answer.get("job_id"), answer.get("backup_id")]
        found += [b.get("id") for b in answer.get("backups") or [] if isinstance(b, dict)]
        for value in found:
            if isinstance(value, str) and value:
                self._followed[value] = node_id
                self._followed.move_to_end(value)
        while len(self._followed) > REMEMBERED_IDS:
            self._followed.popitem(last=False)


def _audited(method: str, path: str) -> bool:
    return method not in ("GET", "HEAD") or path.endswith(_EXPORTS)


@web.middleware
async def admin_forwarding(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Register after ``admin_auth_middleware`` (it needs the admin's identity)."""
    if not request.path.startswith("/admin/api/projects") and not _FOLLOWED_PATH.match(request.path):
        return await handler(request)
    core = request.app[CORE]
    mesh = core.service(Mesh)
    if mesh.role != "master":
        return await handler(request)
    if request.method == "POST" and request.path == "/admin/api/projects":
        return await _create_project(request, handler, core, mesh)
    target = await core.service(AdminRouting).target(request.path)
    if target is None:
        return await handler(request)
    node_id, project_id = target
    audited = _audited(request.method, request.path)
    deletes_project = request.method == "DELETE" and project_id is not None and request.path.endswith(project_id)

    async def before_answer(status: int) -> None:
        # Before the answer is relayed: a streamed answer is already on its way afterwards.
        if audited:
            await _audit(request, node_id, project_id, status, None)
        if deletes_project and status < 300:
            assert project_id is not None
            await _forget_project(core, mesh, project_id)

    try:
        response = await forward_admin(request, mesh, node_id, project_id, before_answer)
    except AtlasError as exc:
        if audited:
            await _audit(request, node_id, project_id, exc.status, exc.code)
        raise
    if isinstance(response, web.Response) and response.status < 300 and response.content_type == "application/json":
        try:
            core.service(AdminRouting).learn(json.loads(response.body or b"null"), node_id)  # type: ignore[arg-type]
        except ValueError:
            pass
    return response


async def _audit(request: web.Request, node_id: str, project_id: str | None, status: int, code: str | None) -> None:
    details: dict[str, Any] = {"method": request.method, "path": request.path, "status": status}
    if code:
        details["error"] = code
    await audit.record(
        request.app[CORE].store,
        actor=current_admin(request).name,
        source_ip=source_ip(request),
        action="cluster.admin_request",
        target=node_id,
        project_id=project_id,
        outcome="success" if status < 400 else "failure",
        details=details,
    )


async def forward_admin(
    request: web.Request,
    mesh: Mesh,
    node_id: str,
    project_id: str | None,
    before_answer: Callable[[int], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    node = mesh.active_peer(node_id)
    if node is None:
        await mesh.load()
        node = mesh.active_peer(node_id)
    if node is None:
        raise unavailable(node_id, "removed")
    if not node.agent_url:
        raise unavailable(node_id, "no_address")
    body = await request.read()
    descriptor = {
        "project_id": project_id,
        "actor": current_admin(request).name,
        "source_ip": source_ip(request),
        "method": request.method,
        "path": request.rel_url.raw_path,
        "query": request.rel_url.raw_query_string,
        "headers": [[k.lower(), v] for k, v in request.headers.items() if k.lower() in ADMIN_HEADERS],
    }
    payload = encode_forwarded_request(descriptor, body, ADMIN_KEYS)
    sealed = seal(mesh.identity, node_id, ADMIN_REQUEST, payload)
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    try:
        upstream = await mesh.http.post(
            node.agent_url + ADMIN_PATH, data=payload, headers=sealed.http_headers(), timeout=timeout
        )
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        log.warning("admin request to node %s failed: %r", node_id, exc)
        raise unavailable(node_id, "unreachable") from None
    try:
        if before_answer is not None and upstream.status != 401:
            await before_answer(upstream.status)
        return await relay(request, upstream, node_id)
    finally:
        upstream.release()


async def _forget_project(core: Core, mesh: Mesh, project_id: str) -> None:
    """The worker dropped the project: its record and key hashes at the edge go too."""
    await core.store.execute("DELETE FROM projects WHERE id = ?", (project_id,))
    await core.keys.load()
    mesh.forget_project(project_id)


async def _create_project(request: web.Request, handler: Handler, core: Core, mesh: Mesh) -> web.StreamResponse:
    from appliance.mesh.commands import Commands
    from appliance.mesh.placement import choose_node
    from appliance.web.util import read_json_object

    body = await read_json_object(request)  # cached: the local handler reads it again
    node_id = await choose_node(mesh, body.get("node_id"))
    if node_id == mesh.self_id:
        return await handler(request)
    node = await mesh.get(node_id)
    if node.role != "worker":
        raise BadRequest("projects are placed on the master or a worker", code="not_a_worker")
    try:
        created = await core.service(Commands).place_project(node_id, body.get("name"))
    except AtlasError as exc:
        await audit.record(
            core.store,
            actor=current_admin(request).name,
            source_ip=source_ip(request),
            action="project.create",
            outcome="failure",
            details={"error": exc.code, "node_id": node_id},
        )
        raise
    await audit.record(
        core.store,
        actor=current_admin(request).name,
        source_ip=source_ip(request),
        action="project.create",
        target=created["id"],
        project_id=created["id"],
        details={"name": created["name"], "node_id": node_id},
    )
    return json_response(created, status=201)


# -- worker side -------------------------------------------------------------------------------


def admin_router(core: Core) -> web.Application:
    """This node's admin routes, never served: admin requests from the master resolve here."""
    from appliance.dashboard.routes import route_tables

    app = web.Application(client_max_size=admin_body_limit(core))
    app[CORE] = core
    for table in route_tables():
        app.add_routes(table)
    app.freeze()
    return app


def _check(descriptor: dict[str, Any]) -> None:
    path, project_id = descriptor.get("path"), descriptor.get("project_id")
    match = _PROJECT_PATH.match(path) if isinstance(path, str) else None
    headers = descriptor.get("headers")
    ok = (
        descriptor.get("method") in _METHODS
        and isinstance(path, str)
        and (
            (match is not None and match["project"] == project_id)
            or (project_id is None and _FOLLOWED_PATH.match(path) is not None)
        )
        and isinstance(descriptor.get("query"), str)
        and isinstance(descriptor.get("actor"), str)
        and 0 < len(descriptor["actor"]) <= 200
        and isinstance(descriptor.get("source_ip"), str | None)
        and isinstance(headers, list)
        and all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in headers)
    )
    if not ok:
        raise BadRequest("the admin-request descriptor is invalid", code="invalid_admin_request")


async def admin_request(request: web.Request) -> web.StreamResponse:
    """The agent route: a master-signed admin request, run as the admin it names."""
    import asyncio

    from aiohttp.streams import StreamReader

    from appliance.mesh.agent_server import MESH, from_master

    message = await from_master(request, request.app[MESH], ADMIN_REQUEST)
    descriptor, body = decode_forwarded_request(message.body, ADMIN_KEYS)
    _check(descriptor)
    headers: CIMultiDict[str] = CIMultiDict((k, v) for k, v in descriptor["headers"] if k in ADMIN_HEADERS)
    headers["Content-Length"] = str(len(body))
    query = descriptor["query"]
    url = URL(descriptor["path"] + (f"?{query}" if query else ""), encoded=True)
    remote = str(descriptor.get("source_ip") or request.remote or "")
    inner = request.clone(method=descriptor["method"], rel_url=url, headers=headers, remote=remote)
    payload = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    if body:
        payload.feed_data(body)
    payload.feed_eof()
    inner._payload = payload  # the outer body was consumed to check its signature
    inner[ADMIN_KEY] = AdminIdentity(name=descriptor["actor"], via="mesh")
    router = request.app[ROUTER]
    match_info = await router.router.resolve(inner)
    if match_info.http_exception is not None:
        raise match_info.http_exception
    match_info.add_app(router)
    match_info.freeze()
    inner._match_info = match_info
    log.info("admin request from the master: %s %s as %s", inner.method, inner.path, descriptor["actor"])
    return await match_info.handler(inner)


def add_admin_route(app: web.Application, core: Core) -> None:
    """On a worker's agent listener: the ``admin-request`` route and its router."""
    app[ROUTER] = admin_router(core)
    app.router.add_post(ADMIN_PATH, admin_request)
