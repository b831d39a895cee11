"""Admin actions on a worker's project through the master, and placement of new projects.

The master side is the master daemon's admin API rebuilt on a test server with the
``admin_forwarding`` middleware after the admin authentication (as the dashboard registers
it); the worker side is the worker daemon's real agent listener and admin routes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.core import Core
from appliance.dashboard.adminauth import RESOLVERS, admin_auth_middleware, dev_token_resolver
from appliance.dashboard.routes import route_tables
from appliance.mesh.admin_forward import ADMIN_KEYS, ADMIN_PATH, admin_forwarding
from appliance.mesh.envelope import ADMIN_REQUEST, encode_forwarded_request, seal
from appliance.mesh.identity import NodeIdentity
from appliance.mesh.peers import Mesh
from appliance.mesh.placement import Candidate, least_loaded, load_per_cpu
from appliance.pg.embedded import EmbeddedPostgres
from appliance.web.errors import error_middleware
from appliance.web.keys import CORE
from tests.agent.cluster import free_port, join, running_node, wait_for
from tests.fixtures.daemon import RunningDaemon

SCHEMA = "CREATE TABLE todos (id serial PRIMARY KEY, title text NOT NULL);"


def admin_edge(core: Core) -> web.Application:
    app = web.Application(middlewares=[error_middleware, admin_auth_middleware, admin_forwarding])
    app[CORE] = core
    app[RESOLVERS] = [dev_token_resolver]
    for table in route_tables():
        app.add_routes(table)
    return app


@pytest.fixture
async def cluster(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[dict[str, Any]]:
    agent = f"127.0.0.1:{free_port()}"
    async with running_node(tmp_path / "m", pg, "master", "master", heartbeat_seconds=0.5) as master:
        async with running_node(
            tmp_path / "w", pg, "worker", "worker-1", heartbeat_seconds=0.5, agent_listen=agent
        ) as w:
            await join(master, w)
            server = TestServer(admin_edge(master.daemon.core), host="127.0.0.1")
            await server.start_server()
            base = str(server.make_url("")).rstrip("/")

            async def edge(method: str, path: str, **kw: Any) -> tuple[int, Any]:
                async with master.http.request(method, base + path, headers=master.admin_headers, **kw) as resp:
                    raw = await resp.read()
                    return resp.status, json.loads(raw) if resp.content_type == "application/json" else raw

            try:
                yield {"master": master, "worker": w, "edge": edge}
            finally:
                await server.close()


async def _audit(daemon: RunningDaemon, action: str) -> list[Any]:
    rows = await daemon.daemon.core.store.fetchall(
        "SELECT actor, action, project_id FROM audit_logs WHERE action = ?", (action,)
    )
    return [dict(r) for r in rows]


async def test_admin_actions_on_a_worker_project_go_through_the_master(cluster: dict[str, Any]) -> None:
    master, worker, edge = cluster["master"], cluster["worker"], cluster["edge"]
    wid = worker.daemon.core.node_id
    status, project = await edge("POST", "/admin/api/projects", json={"name": "remote", "node_id": wid})
    assert (status, project["node_id"]) == (201, wid), project
    pid = project["id"]
    migration = {"migrations": [{"name": "0001.sql", "sql": SCHEMA}]}
    status, body = await edge("POST", f"/admin/api/projects/{pid}/migrations", json=migration)
    assert status == 200, body
    status, body = await edge(
        "POST", f"/admin/api/projects/{pid}/sql", json={"sql": "INSERT INTO todos (title) VALUES ('a')"}
    )
    assert status == 200, body
    status, body = await edge("POST", f"/admin/api/projects/{pid}/sql", json={"sql": "SELECT title FROM todos"})
    assert status == 200 and "a" in json.dumps(body), body
    status, body = await edge("GET", f"/admin/api/projects/{pid}/tables")
    assert status == 200 and "todos" in json.dumps(body), body
    status, exported = await edge("GET", f"/admin/api/projects/{pid}/tables/todos/export?format=csv")
    assert status == 200 and b"a" in exported, exported
    # A backup runs on the worker; its job is followed there.
    status, body = await edge("POST", f"/admin/api/projects/{pid}/backups")
    assert status == 202, body
    job_id = body["job_id"]

    async def finished() -> Any:
        status, job = await edge("GET", f"/admin/api/jobs/{job_id}")
        assert status == 200, job
        return job if job["state"] in ("succeeded", "failed", "completed", "done") else None

    job = await wait_for(finished, 60, "the backup job on the worker")
    assert job["state"] != "failed", job
    status, body = await edge("GET", f"/admin/api/projects/{pid}/backups")
    assert status == 200 and len(body["backups"]) == 1, body
    # Keys stay at the edge: these are the master's records.
    status, body = await edge("GET", f"/admin/api/projects/{pid}/keys")
    assert status == 200 and len(body["keys"]) == 2, body
    # Both audit logs: the worker's names the master's admin, the master's the forwarded request.
    worker_sql = await _audit(worker, "sql.run") or await _audit(worker, "project.migrate")
    assert worker_sql and {r["actor"] for r in worker_sql} == {"dev"}, worker_sql
    forwarded = await _audit(master, "cluster.admin_request")
    assert len(forwarded) >= 4 and {r["project_id"] for r in forwarded} >= {pid}, forwarded
    # Deleting the project drops it on the worker and forgets it at the edge.
    status, _ = await edge("DELETE", f"/admin/api/projects/{pid}", json={"confirm": pid})
    assert status == 204
    assert await master.daemon.core.store.fetchone("SELECT id FROM projects WHERE id = ?", (pid,)) is None
    status, body = await edge("GET", f"/admin/api/projects/{pid}")
    assert status == 404, body


async def test_worker_down_and_only_the_master_may_send(cluster: dict[str, Any]) -> None:
    master, worker, edge = cluster["master"], cluster["worker"], cluster["edge"]
    wid = worker.daemon.core.node_id
    status, project = await edge("POST", "/admin/api/projects", json={"name": "remote", "node_id": wid})
    assert status == 201, project
    pid = project["id"]
    # Another node's signature is refused by the worker.
    stranger = NodeIdentity.generate()
    descriptor = {"project_id": pid, "actor": "mallory", "method": "POST", "path": f"/admin/api/projects/{pid}/sql"}
    descriptor |= {"query": "", "headers": [["content-type", "application/json"]]}
    payload = encode_forwarded_request(descriptor, b'{"sql": "SELECT 1"}', ADMIN_KEYS)
    sealed = seal(stranger, wid, ADMIN_REQUEST, payload)
    agent_url = (await master.daemon.core.service(Mesh).get(wid)).agent_url
    async with master.http.post(agent_url + ADMIN_PATH, data=payload, headers=sealed.http_headers()) as resp:
        assert resp.status == 401, await resp.text()
    # The worker stops: its project answers 503, local admin paths are fine.
    await worker.daemon.stop()
    status, body = await edge("POST", f"/admin/api/projects/{pid}/sql", json={"sql": "SELECT 1"})
    assert (status, body["error"]["code"]) == (503, "node_unavailable"), body
    status, body = await edge("GET", "/admin/api/projects")
    assert status == 200, body


async def test_default_placement_goes_to_the_least_loaded_healthy_node(cluster: dict[str, Any]) -> None:
    master, worker, edge = cluster["master"], cluster["worker"], cluster["edge"]
    wid = worker.daemon.core.node_id
    mesh = master.daemon.core.service(Mesh)

    async def healthy() -> bool:
        return (await mesh.get(wid)).status == "healthy"

    await wait_for(healthy, 15, "the worker's first heartbeat")
    status, first = await edge(
        "POST", "/admin/api/projects", json={"name": "one", "node_id": master.daemon.core.node_id}
    )
    assert status == 201 and "node_id" not in first, first
    status, second = await edge("POST", "/admin/api/projects", json={"name": "two"})
    assert (status, second.get("node_id")) == (201, wid), second  # the master already has one
    status, body = await edge("POST", "/admin/api/projects", json={"name": "x", "node_id": "n_aaaaaaaaaaaaaaaa"})
    assert (status, body["error"]["code"]) == (404, "node_not_found"), body
    await asyncio.sleep(0)


def test_least_loaded_ranks_projects_then_load_then_id() -> None:
    assert least_loaded([]) is None
    assert least_loaded([Candidate("n_b", 1, 0.1), Candidate("n_a", 2, 0.0)]) == "n_b"
    assert least_loaded([Candidate("n_b", 1, 0.5), Candidate("n_a", 1, 0.9)]) == "n_b"
    assert least_loaded([Candidate("n_b", 1, None), Candidate("n_a", 1, 3.0)]) == "n_a"
    assert least_loaded([Candidate("n_b", 0, 0.2), Candidate("n_a", 0, 0.2)]) == "n_a"
    assert load_per_cpu({"load1": 2.0, "cpus": 4}) == 0.5
    assert load_per_cpu({"load1": True}) is None and load_per_cpu(None) is None


async def test_operator_commands_from_the_admin_api(cluster: dict[str, Any]) -> None:
    master, worker = cluster["master"], cluster["worker"]
    wid = worker.daemon.core.node_id
    status, project = await master.admin("POST", f"/admin/api/nodes/{wid}/projects", json={"name": "remote"})
    assert status == 201, project
    command = {"name": "backup_project", "args": {"project_id": project["id"]}}
    status, body = await master.admin("POST", f"/admin/api/nodes/{wid}/commands", json=command)
    assert status == 200 and body["result"]["backup_id"], body
    status, body = await master.admin("POST", f"/admin/api/nodes/{wid}/commands", json={"name": "drop_project"})
    assert (status, body["error"]["code"]) == (400, "invalid_parameter"), body
    audited = await _audit(master, "node.command.backup_project")
    assert [r["actor"] for r in audited] == ["dev"], audited
