"""Where a new project goes (docs/CLUSTER.md, "Placement").

An explicit ``node_id`` wins. Otherwise, on a master with workers, the least loaded healthy
node: fewest active projects, then the lowest load per CPU (the workers' last heartbeat, the
master's own load average), then the node id, so equal nodes always pick the same one. The
master itself is a candidate: it hosts projects like any worker. A worker is a candidate only
while it is ``healthy`` (a heartbeat within 3 intervals) and has an agent address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from appliance.agent.heartbeat import load_info
from appliance.errors import BadRequest
from appliance.mesh.peers import Mesh


@dataclass(frozen=True)
class Candidate:
    node_id: str
    projects: int
    load_per_cpu: float | None  # None: unknown, ranked after every known load


def load_per_cpu(load: Any) -> float | None:
    if not isinstance(load, dict):
        return None
    load1, cpus = load.get("load1"), load.get("cpus")
    if not isinstance(load1, int | float) or isinstance(load1, bool):
        return None
    if not isinstance(cpus, int) or isinstance(cpus, bool) or cpus < 1:
        cpus = 1
    return float(load1) / cpus


def least_loaded(candidates: Iterable[Candidate]) -> str | None:
    """The node id to place on (pure: no I/O); None when there is no candidate."""
    ranked = sorted(
        candidates,
        key=lambda c: (c.projects, c.load_per_cpu is None, c.load_per_cpu or 0.0, c.node_id),
    )
    return ranked[0].node_id if ranked else None


async def candidates(mesh: Mesh) -> list[Candidate]:
    """The master and its healthy workers, with their project counts and loads."""
    rows = await mesh.store.fetchall(
        "SELECT coalesce(node_id, ?) AS node, count(*) AS n FROM projects WHERE status = 'active' GROUP BY 1",
        (mesh.self_id,),
    )
    counts = {r["node"]: int(r["n"]) for r in rows}
    found = [Candidate(mesh.self_id, counts.get(mesh.self_id, 0), load_per_cpu(load_info()))]
    for node in await mesh.all():
        if node.id == mesh.self_id or node.role != "worker":
            continue
        if node.status != "healthy" or not node.agent_url:
            continue
        found.append(Candidate(node.id, counts.get(node.id, 0), load_per_cpu((node.health or {}).get("load"))))
    return found


async def choose_node(mesh: Mesh, requested: object) -> str:
    """The node for a new project: ``requested`` when given (checked to exist), else the least loaded."""
    if requested is not None:
        if not isinstance(requested, str) or not requested:
            raise BadRequest("node_id must be a node id", code="invalid_parameter", details={"field": "node_id"})
        return (await mesh.get(requested)).id
    return least_loaded(await candidates(mesh)) or mesh.self_id
