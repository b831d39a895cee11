"""The admin API of cloud provisioning on a running daemon, against the local Hetzner API."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from appliance.cloud.service import CloudService
from appliance.pg.embedded import EmbeddedPostgres
from tests.cloud.conftest import SSH_KEY, joined_token
from tests.cloud.fake_hetzner import FakeHetzner
from tests.fixtures.daemon import RunningDaemon, running_daemon

NODE = "n_bbbbbbbbbbbbbbbb"


async def wait_run(atlas: RunningDaemon, service: CloudService, run_id: str) -> dict[str, Any]:
    await service.wait(run_id)
    status, run = await atlas.admin("GET", f"/admin/api/cloud/runs/{run_id}")
    assert status == 200
    return run


async def test_token_provision_and_decommission_through_the_admin_api(
    tmp_path: Path, pg: EmbeddedPostgres, fake: tuple[FakeHetzner, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api, url = fake
    async with running_daemon(tmp_path / "state", pg, gateway={"public_url": "https://api.example.com"}) as atlas:
        service = atlas.daemon.core.service(CloudService)
        service.poll_interval, service.join_timeout = 0.02, 2.0
        seen: list[str] = []

        async def boot(server: dict[str, Any]) -> None:
            from appliance.mesh.tokens import JoinTokens, parse_token

            token = joined_token(server["_user_data"])
            seen.append(token)
            store = service.core.store
            async with store.transaction() as tx:
                await JoinTokens(store, service.core.node_id).consume(parse_token(token)[1], NODE, tx=tx)
                await tx.execute(
                    "INSERT INTO nodes (id, name, role, status, created_at) VALUES (?, ?, 'worker', 'unknown', 'now')",
                    (NODE, server["name"]),
                )

        # No token yet: refused before anything is created.
        status, body = await atlas.admin(
            "POST", "/admin/api/cloud/hetzner/servers", json={"name": "w1", "server_type": "cx22", "location": "fsn1"}
        )
        assert status == 409 and body["error"]["code"] == "cloud_token_missing"

        status, body = await atlas.admin(
            "PUT", "/admin/api/cloud/hetzner/token", json={"token": "wrong", "api_url": url}
        )
        assert status == 400 and body["error"]["code"] == "cloud_token_invalid"
        status, _ = await atlas.admin(
            "PUT",
            "/admin/api/cloud/hetzner/token",
            json={"token": api.token, "api_url": url, "ssh_public_key": SSH_KEY},
        )
        assert status == 204
        status, shown = await atlas.admin("GET", "/admin/api/cloud/hetzner")
        assert status == 200 and shown["token_set"] is True and api.token not in json.dumps(shown)

        api.on_server_created = boot
        status, body = await atlas.admin(
            "POST", "/admin/api/cloud/hetzner/servers", json={"name": "w1", "server_type": "cx22", "location": "fsn1"}
        )
        assert status == 202
        run = await wait_run(atlas, service, body["run_id"])
        assert run["state"] == "done" and run["node_id"] == NODE and run["server_id"] in api.servers

        # A project on the node: refused without force.
        await service.core.store.execute(
            "INSERT INTO projects (id, name, db_name, node_id, status, created_at)"
            " VALUES ('p1', 'shop', 'proj_p1', ?, 'active', 'now')",
            (NODE,),
        )
        status, body = await atlas.admin("POST", "/admin/api/cloud/hetzner/decommission", json={"node_id": NODE})
        assert status == 400 and body["error"]["code"] == "confirmation_required"
        status, body = await atlas.admin(
            "POST", "/admin/api/cloud/hetzner/decommission", json={"node_id": NODE, "confirm": NODE}
        )
        assert status == 409 and body["error"]["code"] == "node_hosts_projects"
        assert body["error"]["details"]["projects"] == [{"id": "p1", "name": "shop"}]

        drained: list[tuple[str, list[str]]] = []

        async def drain(node_id: str, projects: list[str]) -> dict[str, str]:
            drained.append((node_id, projects))
            return dict.fromkeys(projects, "backed up (bk_test)")

        service.drain = drain  # type: ignore[method-assign]
        status, body = await atlas.admin(
            "POST", "/admin/api/cloud/hetzner/decommission", json={"node_id": NODE, "confirm": NODE, "force": True}
        )
        assert status == 202
        run = await wait_run(atlas, service, body["run_id"])
        assert run["state"] == "done" and run["cleanup"]["backups"] == {"p1": "backed up (bk_test)"}
        assert drained == [(NODE, ["p1"])]
        assert api.servers == {}
        node = await service.core.store.fetchone("SELECT removed_at FROM nodes WHERE id = ?", (NODE,))
        assert node is not None and node["removed_at"] is not None

        status, listing = await atlas.admin("GET", "/admin/api/cloud/runs")
        assert status == 200 and len(listing["runs"]) == 2
        rows = await service.core.store.fetchall(
            "SELECT action, details_json FROM audit_logs WHERE action LIKE 'cloud.%'"
        )
        assert {r["action"] for r in rows} == {"cloud.token_set", "cloud.provision", "cloud.decommission"}
        audit_text = json.dumps([dict(r) for r in rows])
        log_text = caplog.text
        for secret in [api.token, *seen, *(t.split(".")[1] for t in seen)]:
            assert secret not in audit_text and secret not in log_text
