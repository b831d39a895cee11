"""The agent's own listener (port 8082 on the WireGuard address): signed messages between nodes.

Routes accept exactly their own message type. The master takes heartbeats and command
results; a worker takes commands from its master only. ``AgentServer.start()`` binds,
``stop()`` unbinds; both idempotent, both owned by the agent role's cleanup_ctx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from appliance.config import parse_listen
from appliance.control.store import utcnow
from appliance.core import Core
from appliance.errors import AtlasError, BadRequest, Forbidden, PayloadTooLarge, ServiceUnavailable
from appliance.mesh.envelope import (
    COMMAND,
    COMMAND_RESULT,
    HEADER_ENVELOPE,
    HEADER_SIGNATURE,
    HEARTBEAT,
    VerifiedMessage,
    seal,
)
from appliance.mesh.peers import Mesh, mesh_option
from appliance.web.errors import error_middleware
from appliance.web.health import add_health_routes
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 1024 * 1024
Receiver = Callable[[VerifiedMessage], Awaitable[None]]
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
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_MESSAGE_BYTES)
    app[CORE] = core
    app[MESH] = mesh
    app[RECEIVERS] = receivers
    add_health_routes(app)
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
        listen = str(mesh_option(self.core, "agent_listen", "") or "")
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


# -- commands (master → worker) and their results (worker → master) -------------------------

CommandHandler = Callable[[Core, dict[str, Any]], Awaitable[dict[str, Any] | None]]
COMMAND_TIMEOUT = 120.0
RESULT_RETRIES = 5


class Commands:
    """``core.service(Commands)``. Master: ``send()`` and wait for the result. Worker: run each
    command id once (the log is persisted), then report a ``command-result``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.mesh = core.service(Mesh)
        self.handlers: dict[str, CommandHandler] = dict(WORKER_COMMANDS)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._running: set[asyncio.Task[None]] = set()

    # master side

    async def send(
        self, node_id: str, name: str, args: dict[str, Any], *, timeout: float = COMMAND_TIMEOUT
    ) -> dict[str, Any]:
        node = await self.mesh.get(node_id)
        if not node.agent_url:
            raise ServiceUnavailable(f"node {node_id} has no agent address", code="node_unavailable")
        command_id = "cmd_" + secrets.token_hex(10)
        await self.core.store.execute(
            "INSERT INTO mesh_commands (id, node_id, direction, name, args_json, status, created_at)"
            " VALUES (?, ?, 'sent', ?, ?, 'pending', ?)",
            (command_id, node_id, name, json.dumps(args), utcnow()),
        )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        body = json.dumps({"command_id": command_id, "name": name, "args": args}).encode()
        sealed = seal(self.mesh.identity, node_id, COMMAND, body)
        try:
            try:
                async with self.mesh.http.post(
                    node.agent_url + "/mesh/v1/command",
                    data=sealed.body,
                    headers=sealed.http_headers(),
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status != 202:
                        raise ServiceUnavailable(
                            f"node {node_id} refused the command (HTTP {resp.status})", code="node_unavailable"
                        )
            except (aiohttp.ClientError, TimeoutError):
                raise ServiceUnavailable(f"node {node_id} is unreachable", code="node_unavailable") from None
            try:
                result = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise ServiceUnavailable(f"node {node_id} did not finish {name} in time", code="node_timeout") from None
        finally:
            self._waiting.pop(command_id, None)
        if not result.get("ok"):
            error = result.get("error") or {}
            raise AtlasError(
                str(error.get("message", f"{name} failed on {node_id}")),
                code=str(error.get("code", "command_failed")),
                status=int(error.get("status", 500)),
            )
        return dict(result.get("result") or {})

    async def place_project(self, node_id: str, name: object) -> dict[str, Any]:
        """Provision a project on a worker, then record it (and its key hashes) here, the edge."""
        node = await self.mesh.get(node_id)
        if node.role != "worker":
            raise BadRequest("projects are placed on workers", code="not_a_worker")
        result = await self.send(node_id, "provision_project", {"name": name})
        project = result["project"]
        async with self.core.store.transaction() as tx:
            await tx.execute(
                "INSERT INTO projects (id, name, db_name, node_id, status, created_at)"
                " VALUES (?, ?, ?, ?, 'active', ?)",
                (project["id"], project["name"], project["db_name"], node_id, project["created_at"]),
            )
            for key in result["keys"]:
                await tx.execute(
                    "INSERT INTO api_keys (id, project_id, type, key_hash, prefix, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key["id"], project["id"], key["type"], key["key_hash"], key["prefix"], key["created_at"]),
                )
        await self.core.keys.load()
        self.mesh.forget_project(project["id"])
        plain = {k["type"]: k["key"] for k in result["keys"]}
        return {
            **{k: project[k] for k in ("id", "name", "db_name", "created_at")},
            "node_id": node_id,
            "publishable_key": plain.get("publishable"),
            "secret_key": plain.get("secret"),
        }

    async def on_result(self, message: VerifiedMessage) -> None:
        body = _object(message.body)
        command_id = str(body.get("command_id", ""))
        row = await self.core.store.fetchone(
            "SELECT node_id FROM mesh_commands WHERE id = ? AND direction = 'sent'", (command_id,)
        )
        if row is None or row["node_id"] != message.sender:
            raise Forbidden("no such command was sent to this node", code="unknown_command")
        ok = bool(body.get("ok"))
        await self.core.store.execute(
            "UPDATE mesh_commands SET status = ?, result_json = ?, error_json = ?, finished_at = ? WHERE id = ?",
            (
                "ok" if ok else "failed",
                json.dumps(body.get("result")),
                json.dumps(body.get("error")),
                utcnow(),
                command_id,
            ),
        )
        future = self._waiting.get(command_id)
        if future is not None and not future.done():
            future.set_result(body)

    # worker side

    async def on_command(self, message: VerifiedMessage) -> None:
        body = _object(message.body)
        command_id, name, args = body.get("command_id"), body.get("name"), body.get("args") or {}
        if not isinstance(command_id, str) or not isinstance(name, str) or not isinstance(args, dict):
            raise BadRequest("a command needs command_id, name and args", code="invalid_command")
        try:
            await self.core.store.execute(
                "INSERT INTO mesh_commands (id, node_id, direction, name, args_json, status, created_at)"
                " VALUES (?, ?, 'received', ?, ?, 'running', ?)",
                (command_id, message.sender, name, json.dumps(args), utcnow()),
            )
        except sqlite3.IntegrityError:
            log.warning("command %s was already run; not running it again", command_id)
            return
        task = asyncio.create_task(self._run(message.sender, command_id, name, args), name=f"command-{name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, master_id: str, command_id: str, name: str, args: dict[str, Any]) -> None:
        handler = self.handlers.get(name)
        result: dict[str, Any] = {"command_id": command_id, "ok": False, "result": None, "error": None}
        if handler is None:
            result["error"] = {"code": "unknown_command", "message": f"unknown command {name!r}", "status": 400}
        else:
            try:
                result["result"] = await handler(self.core, args)
                result["ok"] = True
            except AtlasError as exc:
                result["error"] = {"code": exc.code, "message": exc.message, "status": exc.status}
            except Exception as exc:
                log.exception("command %s (%s) failed", command_id, name)
                result["error"] = {"code": "command_failed", "message": type(exc).__name__, "status": 500}
        await self.core.store.execute(
            "UPDATE mesh_commands SET status = ?, finished_at = ? WHERE id = ?",
            ("ok" if result["ok"] else "failed", utcnow(), command_id),
        )
        await self._report(master_id, result)

    async def _report(self, master_id: str, result: dict[str, Any]) -> None:
        for attempt in range(RESULT_RETRIES):
            master = await self.mesh.master()
            if master is None or master.id != master_id or not master.agent_url:
                return
            sealed = seal(self.mesh.identity, master_id, COMMAND_RESULT, json.dumps(result).encode())
            try:
                async with self.mesh.http.post(
                    master.agent_url + "/mesh/v1/command-result",
                    data=sealed.body,
                    headers=sealed.http_headers(),
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as resp:
                    if resp.status == 204:
                        return
                    log.warning("the master refused a command result: HTTP %d", resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("sending a command result failed: %r", exc)
            await asyncio.sleep(2**attempt)

    async def aclose(self) -> None:
        for task in list(self._running):
            task.cancel()
        for future in self._waiting.values():
            future.cancel()


def _object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise BadRequest("a mesh message body must be a JSON object", code="invalid_body")
    return value


async def _provision_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    created = await core.projects.create(args.get("name"))
    project = created.project
    keys = [
        {**record.to_dict(), "key_hash": record.key_hash, "key": plaintext}
        for record, plaintext in (created.publishable, created.secret)
    ]
    return {"project": project.to_dict(), "keys": keys}


async def _drop_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    project_id = str(args.get("project_id", ""))
    await core.projects.delete(project_id, project_id)
    return {"project_id": project_id}


async def _restart_unit(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import restart_unit

    return await restart_unit(str(args.get("unit", "")))


async def _unit_state(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import unit_state

    return await unit_state(str(args.get("unit", "")))


async def _upgrade(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.agent.systemd import UPGRADE_UNIT, start_unit

    return await start_unit(UPGRADE_UNIT)


async def _backup_project(core: Core, args: dict[str, Any]) -> dict[str, Any]:
    from appliance.backups.service import BackupService

    backup = await core.service(BackupService).create_backup(str(args.get("project_id", "")))
    return {"backup_id": backup["id"], "status": backup["status"]}


WORKER_COMMANDS: dict[str, CommandHandler] = {
    "backup_project": _backup_project,
    "provision_project": _provision_project,
    "drop_project": _drop_project,
    "restart": _restart_unit,
    "unit_state": _unit_state,
    "upgrade": _upgrade,
}


def install_commands(core: Core, mesh: Mesh, receivers: dict[str, Receiver]) -> Commands:
    commands = core.service(Commands)
    if mesh.role == "master":
        receivers[COMMAND_RESULT] = commands.on_result
    else:
        receivers[COMMAND] = commands.on_command
    return commands
