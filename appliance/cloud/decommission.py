"""Decommissioning a provisioned worker: drain, remove from the cluster, delete the server.

Drain: a node that hosts active projects is refused (``node_hosts_projects``, the projects in
``details``) unless ``force``; with ``force`` each project is backed up on the node first
(when the node can be reached; the outcome per project is in the run's ``cleanup``), and
removal goes ahead either way: ``force`` is the operator's word that the node may go.
Only servers this cluster provisioned are deleted (their id is in the provisioning run).
"""

from __future__ import annotations

import logging
from typing import Any

from appliance.cloud.hetzner import HetznerClient
from appliance.cloud.provision import Provisioner, _reason, delete_server
from appliance.cloud.runs import Runs
from appliance.cloud.settings import HETZNER
from appliance.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)


class Decommissioner:
    def __init__(self, provisioner: Provisioner) -> None:
        self.p = provisioner
        self.ctx = provisioner.ctx
        self.runs = Runs(self.ctx.store)

    async def start(self, body: dict[str, Any]) -> str:
        node_id = body.get("node_id")
        if not isinstance(node_id, str) or not node_id:
            raise BadRequest("node_id is required", code="invalid_parameter", details={"field": "node_id"})
        if body.get("confirm") != node_id:
            raise BadRequest(
                "confirm must repeat the node id", code="confirmation_required", details={"field": "confirm"}
            )
        force = body.get("force", False)
        if type(force) is not bool:
            raise BadRequest("force must be true or false", code="invalid_parameter", details={"field": "force"})
        self.p.master_url()
        node = await self.ctx.store.fetchone(
            "SELECT id, name, role FROM nodes WHERE id = ? AND removed_at IS NULL", (node_id,)
        )
        if node is None:
            raise NotFound(f"no node {node_id!r}", code="node_not_found")
        if node_id == self.ctx.master_id or node["role"] != "worker":
            raise Conflict("only workers are decommissioned", code="not_a_worker")
        provisioned = await self.runs.provisioned(node_id)
        if provisioned is None or not provisioned["server_id"]:
            raise Conflict(
                "this node was not provisioned by this cluster: remove it with DELETE /admin/api/nodes/{id}"
                " and delete its machine yourself",
                code="node_not_provisioned",
            )
        projects = await self.projects(node_id)
        if projects and not force:
            raise Conflict(
                f"node {node_id} hosts {len(projects)} project(s); move or back them up, or pass force",
                code="node_hosts_projects",
                details={"projects": projects},
            )
        await self.p.settings.load(HETZNER)  # fail now, not half-way, when no token is set
        return await self.runs.create(
            "decommission", HETZNER, node["name"], node_id=node_id, server_id=provisioned["server_id"]
        )

    async def projects(self, node_id: str) -> list[dict[str, str]]:
        rows = await self.ctx.store.fetchall(
            "SELECT id, name FROM projects WHERE node_id = ? AND status = 'active' ORDER BY created_at", (node_id,)
        )
        return [{"id": r["id"], "name": r["name"]} for r in rows]

    async def run(self, run_id: str) -> dict[str, Any]:
        run = await self.runs.get(run_id)
        node_id, server_id = str(run["node_id"]), int(run["server_id"])
        report: dict[str, Any] = {}
        api: HetznerClient = self.p.client_factory(await self.p.settings.load(HETZNER))
        try:
            await self.runs.update(run_id, step="drain")
            projects = [p["id"] for p in await self.projects(node_id)]
            if projects:
                report["backups"] = await self._drain(node_id, projects)
            await self.runs.update(run_id, step="remove_node", cleanup_json=report)
            await self.ctx.remove_node(node_id)
            await self.runs.update(run_id, step="delete_server")
            report["server"] = await delete_server(
                api, server_id, timeout=self.p.action_timeout, interval=self.p.poll_interval
            )
            await self.runs.update(run_id, step="done", state="done", cleanup_json=report)
            log.info("decommissioned node %s (server %s)", node_id, server_id)
        except Exception as exc:
            log.warning(
                "decommissioning %s failed at %s: %s", node_id, (await self.runs.get(run_id))["step"], _reason(exc)
            )
            await self.runs.update(run_id, state="failed", error=_reason(exc), cleanup_json=report)
        finally:
            await api.close()
        return await self.runs.get(run_id)

    async def _drain(self, node_id: str, projects: list[str]) -> dict[str, str]:
        if self.ctx.drain is None:
            return dict.fromkeys(projects, "skipped: back up from the dashboard (needs the running daemon)")
        try:
            return await self.ctx.drain(node_id, projects)
        except Exception as exc:
            return dict.fromkeys(projects, f"failed: {_reason(exc)}")
