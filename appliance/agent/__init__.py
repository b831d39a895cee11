"""The agent role: this node's part in the cluster.

A background role (no listener in the daemon's list): its one cleanup_ctx pins the peers,
then runs a reconcile loop that brings up WireGuard and the agent's own listener once the
node is in a cluster, and — by role — the heartbeat loop (worker) or the health tracker
(master). Everything it starts is stopped after ``yield``, in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from appliance.agent.health import HealthTracker
from appliance.agent.heartbeat import heartbeat_loop
from appliance.config import Config
from appliance.core import Core
from appliance.mesh.agent_server import AgentServer
from appliance.mesh.commands import Receiver, install_commands
from appliance.mesh.envelope import HEARTBEAT
from appliance.mesh.peers import Mesh
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

RECONCILE_SECONDS = 2.0
AGENT_SERVER = web.AppKey("agent_server", AgentServer)


def setup(app: web.Application, config: Config) -> None:
    """Add this role's one cleanup_ctx to ``app``."""
    app.cleanup_ctx.append(_agent)


class Reconciler:
    """Follows the peer table: pins, WireGuard peers and the listener. Changes made by
    ``atlashub node`` in another process are picked up within RECONCILE_SECONDS."""

    def __init__(self, core: Core, mesh: Mesh, server: AgentServer) -> None:
        self.core = core
        self.mesh = mesh
        self.server = server
        self._wg_state: object = None

    async def clustered(self) -> bool:
        if self.core.config.mesh.agent_listen:
            return True
        if self.mesh.role == "worker":
            return await self.mesh.master() is not None
        return any(n.id != self.mesh.self_id for n in await self.mesh.all())

    async def step(self) -> None:
        await self.mesh.load()
        if not await self.clustered():
            return
        wanted = (tuple(await self.mesh.wireguard_peers()), (await self.mesh.get(self.mesh.self_id)).wg_address)
        if wanted != self._wg_state:
            try:
                if await self.mesh.wireguard_up():
                    self._wg_state = wanted
            except Exception as exc:
                log.error("WireGuard is not configured yet: %r", exc)
        if not self.server.listening:
            await self.server.start()

    async def loop(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:
                log.exception("agent reconcile failed")
            await asyncio.sleep(RECONCILE_SECONDS)


async def _agent(app: web.Application) -> AsyncIterator[None]:
    core = app[CORE]
    mesh = core.service(Mesh)
    await mesh.ensure_self()
    await mesh.load()
    receivers: dict[str, Receiver] = {}
    tasks: list[asyncio.Task[None]] = []
    if mesh.role == "master":
        tracker = HealthTracker(mesh, core.config.mesh.heartbeat_seconds)
        receivers[HEARTBEAT] = tracker.record
        tasks.append(asyncio.create_task(tracker.loop(), name="agent-health"))
    else:
        tasks.append(asyncio.create_task(heartbeat_loop(core, mesh), name="agent-heartbeat"))
    install_commands(core, mesh, receivers)
    server = AgentServer(core, mesh, receivers)
    app[AGENT_SERVER] = server
    reconciler = Reconciler(core, mesh, server)
    await reconciler.step()
    tasks.insert(0, asyncio.create_task(reconciler.loop(), name="agent-reconcile"))
    yield
    for task in reversed(tasks):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await server.stop()
    log.info("agent stopped")
