"""The master's health tracker: heartbeats recorded, silence noticed after three intervals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance.agent.health import HealthTracker
from appliance.agent.heartbeat import collect, load_info
from appliance.mesh.envelope import VerifiedMessage
from appliance.mesh.peers import Mesh
from appliance.pg.embedded import EmbeddedPostgres
from tests.agent.cluster import running_node


async def test_sweep_and_record(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_node(tmp_path / "m", pg, "master", "m", heartbeat_seconds=30) as master:
        core = master.daemon.core
        mesh = core.service(Mesh)
        tracker = HealthTracker(mesh, 30)
        created = datetime.now(UTC) - timedelta(seconds=60)
        await core.store.execute(
            "INSERT INTO nodes (id, name, role, wg_address, created_at) VALUES ('n_aaaaaaaaaaaaaaaa', 'w', 'worker',"
            " '10.100.0.2', ?)",
            (created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),),
        )
        assert await tracker.sweep() == []  # 60 s of silence < 3 x 30 s
        assert await tracker.sweep(datetime.now(UTC) + timedelta(seconds=31)) == ["n_aaaaaaaaaaaaaaaa"]
        body = json.dumps({"version": "9.9.9", "health": "ok"}).encode()
        await tracker.record(VerifiedMessage("n_aaaaaaaaaaaaaaaa", mesh.self_id, "heartbeat", 0.0, "x", body))
        node = await mesh.get("n_aaaaaaaaaaaaaaaa")
        assert (node.status, node.version, node.health) == ("healthy", "9.9.9", {"version": "9.9.9", "health": "ok"})
        assert await tracker.sweep() == []
        # The master itself is never swept.
        assert (await mesh.get(mesh.self_id)).status == "healthy"


async def test_heartbeat_body(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_node(tmp_path / "w", pg, "worker", "w") as worker:
        core = worker.daemon.core
        body = await collect(core, core.service(Mesh))
        assert body["health"] == "ok" and body["postgres"]["ok"] and body["postgres"]["version"]
        assert body["disk"]["free_bytes"] > 0 and body["wg_handshake_age_s"] is None
        assert set(body) >= {"version", "load", "last_backup_at"}
    assert load_info()["cpus"] >= 1
