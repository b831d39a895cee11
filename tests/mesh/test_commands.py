"""Operator commands to a worker (docs/protocol.md 5.4): backup, then restore a worker's project
from the master, following the restore job with ``job_state`` and with ``GET /admin/api/jobs/{id}``.

The master is a real daemon whose admin API is rebuilt with the forwarding middleware (as the
dashboard registers it); the worker is a real daemon with its real agent listener, both against
the session's PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

from tests.agent.cluster import wait_for
from tests.mesh.test_admin_forward import cluster  # noqa: F401 (the fixture)

SCHEMA = "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);"
DONE = ("succeeded", "failed")


async def test_restore_a_worker_project_by_command(cluster: dict[str, Any]) -> None:  # noqa: F811
    master, worker, edge = cluster["master"], cluster["worker"], cluster["edge"]
    wid = worker.daemon.core.node_id

    async def command(name: str, **args: Any) -> tuple[int, Any]:
        return await edge("POST", f"/admin/api/nodes/{wid}/commands", json={"name": name, "args": args})

    async def sql(pid: str, text: str) -> Any:
        status, body = await edge("POST", f"/admin/api/projects/{pid}/sql", json={"sql": text})
        assert status == 200, body
        return body

    status, project = await edge("POST", "/admin/api/projects", json={"name": "restored", "node_id": wid})
    assert (status, project["node_id"]) == (201, wid), project
    pid = project["id"]
    # The new keys reach the admin once; the master's command log keeps their hashes, not them.
    logged = await master.daemon.core.store.fetchall(
        "SELECT result_json FROM mesh_commands WHERE name = 'provision_project' AND direction = 'sent'"
    )
    assert project["secret_key"] and project["publishable_key"] and logged
    for row in logged:
        assert project["secret_key"] not in row["result_json"] and project["publishable_key"] not in row["result_json"]
        assert "key_hash" in row["result_json"]
    await sql(pid, SCHEMA)
    await sql(pid, "INSERT INTO notes (body) VALUES ('kept')")
    status, body = await command("backup_project", project_id=pid)
    assert status == 200, body
    backup_id = body["result"]["backup_id"]
    await sql(pid, "UPDATE notes SET body = 'after the backup'")

    # Refusals come back as the worker gave them.
    status, body = await command("restore_project", project_id=pid, backup_id=backup_id)
    assert (status, body["error"]["code"]) == (400, "confirmation_required"), body
    status, body = await command("restore_project", project_id=pid, backup_id="bk_missing", confirm=pid)
    assert (status, body["error"]["code"]) == (404, "backup_not_found"), body
    status, body = await command("restore_project", project_id="p_missing", backup_id=backup_id, confirm="p_missing")
    assert (status, body["error"]["code"]) == (404, "project_not_found"), body
    status, body = await command("job_state", job_id="job_missing")
    assert (status, body["error"]["code"]) == (404, "job_not_found"), body

    status, body = await command("restore_project", project_id=pid, backup_id=backup_id, confirm=pid)
    assert status == 200, body
    started = body["result"]
    assert (started["project_id"], started["backup_id"]) == (pid, backup_id) and started["job_id"], started
    job_id = started["job_id"]

    async def finished_by_command() -> Any:
        status, body = await command("job_state", job_id=job_id)
        assert status == 200, body
        return body["result"] if body["result"]["state"] in DONE else None

    job = await wait_for(finished_by_command, 60, "the restore job on the worker")
    assert (job["id"], job["kind"], job["project_id"], job["state"]) == (job_id, "restore", pid, "succeeded"), job
    assert job["result"]["backup_id"] == backup_id and job["result"]["undo_until"], job
    # The same job through the admin API: the master follows the id to the worker.
    status, followed = await edge("GET", f"/admin/api/jobs/{job_id}")
    assert status == 200 and (followed["state"], followed["kind"]) == ("succeeded", "restore"), followed
    # The data is the backup's again.
    rows = await sql(pid, "SELECT body FROM notes ORDER BY id")
    assert "kept" in json.dumps(rows) and "after the backup" not in json.dumps(rows), rows

    audited = await master.daemon.core.store.fetchall(
        "SELECT action, outcome FROM audit_logs WHERE action LIKE 'node.command.%' ORDER BY id"
    )
    assert [r["action"] for r in audited].count("node.command.restore_project") == 4, [dict(r) for r in audited]
    # No job id of this node: the route answers 404 here rather than guessing a worker.
    status, body = await edge("GET", "/admin/api/jobs/job_unknown")
    assert (status, body["error"]["code"]) == (404, "job_not_found"), body
