"""Commands (master → worker) and their results (worker → master), docs/protocol.md 5.4 and 5.5.

``core.service(Commands)``: the master sends a command and waits for its ``command-result``;
a worker runs each ``command_id`` once (the log is persisted in ``mesh_commands``) and reports.
The worker's command handlers live in :mod:`appliance.agent.commands`.
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

from appliance.control.store import utcnow
from appliance.core import Core
from appliance.errors import AtlasError, BadRequest, Forbidden, ServiceUnavailable
from appliance.mesh.envelope import COMMAND, COMMAND_RESULT, VerifiedMessage, seal
from appliance.mesh.peers import Mesh

log = logging.getLogger(__name__)

Receiver = Callable[[VerifiedMessage], Awaitable[None]]
CommandHandler = Callable[[Core, dict[str, Any]], Awaitable[dict[str, Any] | None]]
COMMAND_TIMEOUT = 120.0
RESULT_RETRIES = 5


class Commands:
    """``core.service(Commands)``. Master: ``send()`` and wait for the result. Worker: run each
    command id once (the log is persisted), then report a ``command-result``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.mesh = core.service(Mesh)
        from appliance.agent.commands import WORKER_COMMANDS  # the agent package imports this module

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
                json.dumps(_redacted(body.get("result"))),
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


# A result may carry secrets meant for the admin's eyes once (a new project's API keys); the
# command log keeps everything but them.
_SECRET_FIELDS = frozenset({"key", "secret_key", "publishable_key", "password"})


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "[redacted]" if k in _SECRET_FIELDS else _redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise BadRequest("a mesh message body must be a JSON object", code="invalid_body")
    return value


def install_commands(core: Core, mesh: Mesh, receivers: dict[str, Receiver]) -> Commands:
    commands = core.service(Commands)
    if mesh.role == "master":
        receivers[COMMAND_RESULT] = commands.on_result
    else:
        receivers[COMMAND] = commands.on_command
    return commands
