"""The agent's own listener (port 8082 on the WireGuard address): signed messages between nodes.

Routes accept exactly their own message type. The master takes heartbeats and command
results; a worker takes commands from its master only. ``AgentServer.start()`` binds,
``stop()`` unbinds; both idempotent, both owned by the agent role's cleanup_ctx.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from appliance.config import parse_listen
from appliance.core import Core
from appliance.errors import Forbidden, PayloadTooLarge
from appliance.mesh.commands import Commands, Receiver, install_commands
from appliance.mesh.envelope import (
    COMMAND,
    COMMAND_RESULT,
    HEADER_ENVELOPE,
    HEADER_SIGNATURE,
    HEARTBEAT,
    VerifiedMessage,
)
from appliance.mesh.peers import Mesh
from appliance.web.errors import error_middleware
from appliance.web.health import add_health_routes
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1024 * 1024
__all__ = ["MESH", "AgentServer", "Commands", "Receiver", "from_master", "install_commands", "read_body", "verified"]
MESH = web.AppKey("mesh", Mesh)
RECEIVERS = web.AppKey("mesh_receivers", dict)


async def read_body(request: web.Request) -> bytes:
    """The whole body, read from the stream (so the request may still be cloned), size-limited."""
    limit = request.app._client_max_size
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(256 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes", code="payload_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def verified(request: web.Request, mesh: Mesh, expected_type: str) -> VerifiedMessage:
    """Read the whole body and check its envelope (the one Verifier of the process)."""
    body = await read_body(request)
    return mesh.verifier.verify(
        request.headers.get(HEADER_ENVELOPE, ""),
        request.headers.get(HEADER_SIGNATURE, ""),
        body,
        expected_type=expected_type,
    )


async def from_master(request: web.Request, mesh: Mesh, expected_type: str) -> VerifiedMessage:
    """A message that only this worker's master may send (another worker's is refused)."""
    message = await verified(request, mesh, expected_type)
    master = mesh.active_master()
    if mesh.role != "worker" or master is None or message.sender != master.id:
        log.warning("mesh message refused: %s from %s, which is not this node's master", expected_type, message.sender)
        raise Forbidden("only the master may send this message", code="not_from_master")
    return message


def _handler(expected_type: str, *, master_only: bool, status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        mesh = request.app[MESH]
        check = from_master if master_only else verified
        message = await check(request, mesh, expected_type)
        receiver = request.app[RECEIVERS].get(expected_type)
        if receiver is None:
            raise Forbidden(f"this node does not take {expected_type} messages", code="unexpected_message")
        await receiver(message)
        return web.Response(status=status)

    return handle


def build_app(core: Core, mesh: Mesh, receivers: dict[str, Receiver]) -> web.Application:
    from appliance.mesh.admin_forward import add_admin_route, admin_body_limit

    limit = max(MAX_MESSAGE_BYTES, admin_body_limit(core)) if mesh.role == "worker" else MAX_MESSAGE_BYTES
    app = web.Application(middlewares=[error_middleware], client_max_size=limit)
    app[CORE] = core
    app[MESH] = mesh
    app[RECEIVERS] = receivers
    add_health_routes(app)
    if mesh.role == "worker":
        add_admin_route(app, core)  # admin requests from the master, run by this node's admin routes
    app.router.add_post("/mesh/v1/heartbeat", _handler(HEARTBEAT, master_only=False, status=204))
    app.router.add_post("/mesh/v1/command-result", _handler(COMMAND_RESULT, master_only=False, status=204))
    app.router.add_post("/mesh/v1/command", _handler(COMMAND, master_only=True, status=202))
    return app


class AgentServer:
    """The listener; it binds only once the node has a WireGuard address (or ``mesh.agent_listen``)."""

    def __init__(self, core: Core, mesh: Mesh, receivers: dict[str, Receiver]) -> None:
        self.core = core
        self.mesh = mesh
        self.receivers = receivers
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    @property
    def listening(self) -> bool:
        return self._runner is not None

    async def bind_address(self) -> tuple[str, int] | None:
        listen = self.core.config.mesh.agent_listen
        if listen:
            return parse_listen(listen)
        me = await self.mesh.get(self.mesh.self_id)
        if not me.wg_address:
            return None
        return me.wg_address, self.core.config.mesh.agent_port

    async def start(self) -> bool:
        """Bind if possible; False when there is no address yet or it cannot be bound (retried later)."""
        if self._runner is not None:
            return True
        address = await self.bind_address()
        if address is None:
            return False
        runner = web.AppRunner(build_app(self.core, self.mesh, self.receivers), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, address[0], address[1])
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            log.warning("agent cannot listen on %s:%d yet: %s", address[0], address[1], exc.strerror)
            return False
        self._runner = runner
        bound = runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        log.info("agent listening on %s:%d", *self.address)
        return True

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            self.address = None
