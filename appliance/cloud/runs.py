"""Provisioning and decommissioning runs: one row each in ``provisioning_runs``, updated at
every step so the dashboard (``GET /admin/api/cloud/runs/{id}``) can follow them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from appliance.config import Config
from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import SecretBox
from appliance.errors import NotFound
from appliance.logs import redact

TERMINAL = ("done", "failed")
_COLUMNS = (
    "id, kind, provider, name, server_type, location, server_id, server_ip, ssh_key_id, firewall_id,"
    " token_id, node_id, state, step, error, cleanup_json, created_at, updated_at"
)
_UPDATABLE = {
    "server_id",
    "server_ip",
    "ssh_key_id",
    "firewall_id",
    "token_id",
    "node_id",
    "state",
    "step",
    "error",
    "cleanup_json",
}

# A drain backs up a node's projects before it goes: (node_id, project ids) -> per-project outcome.
Drain = Callable[[str, list[str]], Awaitable[dict[str, str]]]
RemoveNode = Callable[[str], Awaitable[None]]


@dataclass
class CloudContext:
    """What provisioning needs from the node, without HTTP: the daemon and the CLI both build one."""

    store: ControlPlane
    box: SecretBox
    master_id: str
    config: Config
    remove_node: RemoveNode
    drain: Drain | None = None


def new_run_id() -> str:
    return "run_" + secrets.token_hex(8)


def run_to_dict(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["cleanup"] = json.loads(data.pop("cleanup_json") or "null")
    return data


class Runs:
    def __init__(self, store: ControlPlane) -> None:
        self._store = store

    async def create(self, kind: str, provider: str, name: str, **values: Any) -> str:
        run_id = new_run_id()
        now = utcnow()
        await self._store.execute(
            "INSERT INTO provisioning_runs (id, kind, provider, name, server_type, location, server_id, node_id,"
            " state, step, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', 'queued', ?, ?)",
            (
                run_id,
                kind,
                provider,
                name,
                values.get("server_type"),
                values.get("location"),
                values.get("server_id"),
                values.get("node_id"),
                now,
                now,
            ),
        )
        return run_id

    async def update(self, run_id: str, **values: Any) -> None:
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not run columns: {sorted(unknown)}")
        if "error" in values and values["error"] is not None:
            values["error"] = redact(str(values["error"]))[:1000]
        if "cleanup_json" in values and not isinstance(values["cleanup_json"], str | None):
            values["cleanup_json"] = json.dumps(values["cleanup_json"])
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self._store.execute(
            f"UPDATE provisioning_runs SET {assignments}, updated_at = ? WHERE id = ?",
            (*values.values(), utcnow(), run_id),
        )

    async def get(self, run_id: str) -> dict[str, Any]:
        row = await self._store.fetchone(f"SELECT {_COLUMNS} FROM provisioning_runs WHERE id = ?", (run_id,))
        if row is None:
            raise NotFound(f"no provisioning run {run_id!r}", code="run_not_found")
        return run_to_dict(row)

    async def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            f"SELECT {_COLUMNS} FROM provisioning_runs ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [run_to_dict(r) for r in rows]

    async def unfinished(self) -> list[dict[str, Any]]:
        rows = await self._store.fetchall(
            f"SELECT {_COLUMNS} FROM provisioning_runs WHERE state NOT IN ('done', 'failed') ORDER BY created_at"
        )
        return [run_to_dict(r) for r in rows]

    async def provisioned(self, node_id: str) -> dict[str, Any] | None:
        """The run that created ``node_id``'s server, if this cluster provisioned it."""
        row = await self._store.fetchone(
            f"SELECT {_COLUMNS} FROM provisioning_runs WHERE node_id = ? AND kind = 'provision' AND state = 'done'"
            " ORDER BY created_at DESC LIMIT 1",
            (node_id,),
        )
        return run_to_dict(row) if row else None
