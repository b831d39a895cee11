"""Forwarding: the master validates at the edge, the worker serves over a signed forwarded-request.

The master side is a small edge app calling ``maybe_forward`` exactly as the public handlers
do; the worker side is the worker daemon's real gateway (its /mesh/v1/forwarded-request
route re-enters its real /v1/db handlers against a real project database).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.core import Core
from appliance.gateway.context import api_context, install_rate_limits
from appliance.mesh.envelope import FORWARDED_REQUEST, HEARTBEAT, encode_forwarded_request, seal
from appliance.mesh.forward import FORWARD_PATH, maybe_forward
from appliance.mesh.identity import NodeIdentity
from appliance.mesh.peers import Mesh
from appliance.pg.embedded import EmbeddedPostgres
from appliance.web.errors import error_middleware
from appliance.web.keys import CORE
from appliance.web.util import json_response
from tests.agent.cluster import free_port, join, running_node, wait_for
from tests.fixtures.daemon import RunningDaemon

SCHEMA = "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL, done boolean NOT NULL DEFAULT false);"


async def edge(request: web.Request) -> web.StreamResponse:
    context = await api_context(request, with_user=False)
    forwarded = await maybe_forward(request, context.project_id, context.key.type)
    if forwarded is not None:
        return forwarded
    return json_response({"served_by": "here", "project_id": context.project_id})


def edge_app(core: Core) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[CORE] = core
    install_rate_limits(app, 1000, 1000)
    app.router.add_route("*", "/v1/{tail:.*}", edge)
    return app


async def call(
    daemon: RunningDaemon, url: str, method: str, path: str, key: str, **kw: Any
) -> tuple[int, Any, dict[str, str]]:
    async with daemon.http.request(method, url + path, headers={"x-api-key": key}, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, body, dict(resp.headers)


@pytest.fixture
async def cluster(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[dict[str, Any]]:
    ports: dict[str, Any] = {"gateway_port": free_port(), "agent_listen": f"127.0.0.1:{free_port()}"}
    async with running_node(tmp_path / "m", pg, "master", "master", heartbeat_seconds=0.5) as master:
        async with running_node(tmp_path / "w", pg, "worker", "worker-1", heartbeat_seconds=0.5, **ports) as worker:
            await join(master, worker)
            wid = worker.daemon.core.node_id
            status, project = await master.admin("POST", f"/admin/api/nodes/{wid}/projects", json={"name": "remote"})
            assert status == 201, project
            assert project["node_id"] == wid
            migration = {"migrations": [{"name": "0001.sql", "sql": SCHEMA}]}
            status, body = await worker.admin("POST", f"/admin/api/projects/{project['id']}/migrations", json=migration)
            assert status == 200, body
            server = TestServer(edge_app(master.daemon.core), host="127.0.0.1")
            await server.start_server()
            try:
                yield {
                    "master": master,
                    "worker": worker,
                    "project": project,
                    "edge": str(server.make_url("")),
                    "ports": ports,
                    "tmp": tmp_path,
                }
            finally:
                await server.close()


async def test_crud_through_the_master(cluster: dict[str, Any]) -> None:
    master, project, url = cluster["master"], cluster["project"], cluster["edge"]
    secret = project["secret_key"]
    status, rows, _ = await call(
        master, url, "POST", "/v1/db/todos", secret, json={"rows": [{"title": "a"}, {"title": "b"}]}
    )
    assert status == 201, rows
    assert [r["title"] for r in rows] == ["a", "b"]
    status, rows, _ = await call(master, url, "GET", "/v1/db/todos?select=id,title&order=id.desc", secret)
    assert status == 200 and [r["title"] for r in rows] == ["b", "a"], rows
    status, rows, _ = await call(
        master, url, "PATCH", "/v1/db/todos?eq.title=a", secret, json={"values": {"done": True}}
    )
    assert status == 200 and rows[0]["done"] is True, rows
    status, body, _ = await call(master, url, "DELETE", "/v1/db/todos?eq.title=b", secret)
    assert status == 200 and body["deleted"] == 1, body
    # The publishable key keeps its own (anon) rights on the worker: no grant, no rows.
    status, body, _ = await call(master, url, "GET", "/v1/db/todos", project["publishable_key"])
    assert status in (401, 403, 404), body
    # Unknown keys are refused at the edge, never forwarded.
    status, body, _ = await call(master, url, "GET", "/v1/db/todos", "ah_sec_nope")
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")
    # Storage calls go the same way.
    status, body, _ = await call(master, url, "GET", "/v1/storage/list?bucket=private", secret)
    assert status == 200, body


async def test_local_projects_are_served_here_and_workers_refuse_direct_traffic(cluster: dict[str, Any]) -> None:
    master, url = cluster["master"], cluster["edge"]
    status, local = await master.admin("POST", "/admin/api/projects", json={"name": "local"})
    assert status == 201
    status, body, _ = await call(master, url, "GET", "/v1/db/anything", local["secret_key"])
    assert (status, body["served_by"]) == (200, "here")

    worker = cluster["worker"]
    server = TestServer(edge_app(worker.daemon.core), host="127.0.0.1")
    await server.start_server()
    try:
        status, body, _ = await call(
            worker, str(server.make_url("")), "GET", "/v1/db/todos", cluster["project"]["secret_key"]
        )
        assert (status, body["error"]["code"]) == (403, "forward_required")
    finally:
        await server.close()


def _forwarded(project_id: str) -> bytes:
    descriptor = {
        "project_id": project_id,
        "key_type": "secret",
        "method": "GET",
        "path": "/v1/db/todos",
        "query": "",
        "headers": [["accept", "application/json"]],
    }
    return encode_forwarded_request(descriptor, b"")


async def test_forged_forwarded_requests_are_refused(cluster: dict[str, Any]) -> None:
    master, worker, project = cluster["master"], cluster["worker"], cluster["project"]
    master_identity = master.daemon.core.identity
    wid = worker.daemon.core.node_id
    url = worker.gateway_url + FORWARD_PATH
    body = _forwarded(project["id"])

    async def post(sealed_headers: dict[str, str], data: bytes) -> tuple[int, Any]:
        async with worker.http.post(url, data=data, headers=sealed_headers) as resp:
            return resp.status, await resp.json()

    good = seal(master_identity, wid, FORWARDED_REQUEST, body)
    status, rows = await post(good.http_headers(), good.body)
    assert status == 200 and rows == [], rows
    cases = {
        "replayed": (good.http_headers(), good.body),
        "body_mismatch": (seal(master_identity, wid, FORWARDED_REQUEST, body).http_headers(), body + b"x"),
        "stale": (seal(master_identity, wid, FORWARDED_REQUEST, body, now=time.time() - 120).http_headers(), body),
        "from_future": (
            seal(master_identity, wid, FORWARDED_REQUEST, body, now=time.time() + 120).http_headers(),
            body,
        ),
        "wrong_recipient": (
            seal(master_identity, master_identity.node_id, FORWARDED_REQUEST, body).http_headers(),
            body,
        ),
        "unknown_sender": (seal(NodeIdentity.generate(), wid, FORWARDED_REQUEST, body).http_headers(), body),
        "unknown_type": (seal(master_identity, wid, HEARTBEAT, body).http_headers(), body),
    }
    for reason, (headers, data) in cases.items():
        status, answer = await post(headers, data)
        assert (status, answer["error"]["details"]["reason"]) == (401, reason), (reason, answer)
    status, answer = await post({}, body)
    assert (status, answer["error"]["details"]["reason"]) == (401, "malformed")
    # A well-signed request for a non-public path is refused.
    sneaky = json.loads(body.split(b"\n")[0]) | {"path": "/mesh/v1/forwarded-request"}
    sneaky_body = encode_forwarded_request(sneaky, b"")
    sealed = seal(master_identity, wid, FORWARDED_REQUEST, sneaky_body)
    status, answer = await post(sealed.http_headers(), sealed.body)
    assert (status, answer["error"]["code"]) == (400, "invalid_forwarded_request")


async def test_worker_down_then_back(cluster: dict[str, Any], pg: EmbeddedPostgres) -> None:
    master, worker, project, url = cluster["master"], cluster["worker"], cluster["project"], cluster["edge"]
    status, local = await master.admin("POST", "/admin/api/projects", json={"name": "stays-up"})
    secret = project["secret_key"]
    status, _, _ = await call(master, url, "GET", "/v1/db/todos", secret)
    assert status == 200
    await worker.daemon.stop()
    status, body, headers = await call(master, url, "GET", "/v1/db/todos", secret)
    assert (status, body["error"]["code"]) == (503, "node_unavailable"), body
    assert headers.get("Retry-After") == "5"
    status, body, _ = await call(master, url, "GET", "/v1/db/x", local["secret_key"])
    assert (status, body["served_by"]) == (200, "here")
    # Right after a failure the master answers at once instead of trying the dead peer again.
    started = time.monotonic()
    status, body, _ = await call(master, url, "GET", "/v1/db/todos", secret)
    assert (status, body["error"]["details"]["reason"]) == (503, "unreachable")
    assert time.monotonic() - started < 0.5
    async with running_node(cluster["tmp"] / "w", pg, "worker", "worker-1", heartbeat_seconds=0.5, **cluster["ports"]):

        async def serving() -> bool:
            return (await call(master, url, "GET", "/v1/db/todos", secret))[0] == 200

        await wait_for(serving, what="the worker serving again")
    mesh = master.daemon.core.service(Mesh)
    assert worker.daemon.core.node_id in mesh.verifier.peers()
