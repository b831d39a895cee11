"""In-process clusters for tests: a master and workers as real daemons on loopback.

Each node is a full daemon (control plane, gateway, dashboard, agent) against the session's
PostgreSQL. Agents listen on loopback (``mesh.agent_listen``) and WireGuard is not managed
(``mesh.wg_manage = false``): the real tunnel is exercised by test_cluster_netns.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from appliance.config import MeshConfig
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.daemon import Daemon
from appliance.mesh.join import join_master
from appliance.mesh.peers import Mesh
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, make_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mesh_config(role: str, **values: Any) -> MeshConfig:
    merged = {"role": role, "agent_listen": f"127.0.0.1:{free_port()}", "wg_manage": False, **values}
    if role == "worker":
        merged.setdefault("master_url", "http://127.0.0.1:1")
    return MeshConfig(**merged)


@asynccontextmanager
async def running_node(
    state_dir: Path, pg: EmbeddedPostgres, role: str, name: str, *, gateway_port: int = 0, **mesh: Any
) -> AsyncIterator[RunningDaemon]:
    """A daemon of ``role``; pass ``gateway_port`` and ``agent_listen`` to restart it at the same address."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if not (state_dir / MASTER_KEY_FILE).exists():
        generate_master_key(state_dir / MASTER_KEY_FILE)
    port = gateway_port or free_port()
    config = make_config(
        state_dir, pg, node={"name": name, "state_dir": str(state_dir)}, gateway={"listen": f"127.0.0.1:{port}"}
    )
    config = dataclasses.replace(config, mesh=mesh_config(role, **mesh))
    token = "ah_adm_" + secrets.token_urlsafe(16)
    daemon = Daemon(config, dev_admin_token=token)
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield RunningDaemon(daemon, http, token)
    finally:
        await daemon.stop()


async def wait_for(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def join(master: RunningDaemon, worker: RunningDaemon) -> dict[str, Any]:
    """Token from the master's admin API, join from the worker's side, as the CLI does."""
    status, body = await master.admin("POST", "/admin/api/nodes/tokens", json={})
    assert status == 201, body
    core = worker.daemon.core
    wg_public = (await core.service(Mesh).get(core.node_id)).wg_public
    assert wg_public
    answer = await join_master(
        core.config, core.store, core.identity, wg_public, master.gateway_url, body["token"], worker.http
    )
    await core.service(Mesh).load()
    return answer


async def node_status(master: RunningDaemon, node_id: str) -> str | None:
    status, body = await master.admin("GET", "/admin/api/nodes")
    assert status == 200, body
    for node in body["nodes"]:
        if node["id"] == node_id:
            return str(node["status"])
    return None
