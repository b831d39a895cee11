"""schemathesis against /v1/openapi.json: whatever it generates, the public API never answers 5xx.

Runs the real `st` command against a real daemon with a project whose table matches the
schema's examples, with the secret key (everything reachable) and with the publishable key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import running_daemon

ST = shutil.which("st", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(ST is None, reason="schemathesis is installed by scripts/test (the test extra)")
@pytest.mark.parametrize("key_type", ["secret", "publishable"])
async def test_no_server_errors_whatever_the_input(tmp_path: Path, pg: EmbeddedPostgres, key_type: str) -> None:
    limits = {"rate_limit_per_second": 100000.0, "rate_limit_burst": 100000}
    async with running_daemon(tmp_path / "state", pg, gateway=limits) as atlas:
        status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "contract"})
        assert status == 201
        sql = (
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, qty int CHECK (qty >= 0),"
            " created_at timestamptz DEFAULT now());"
            f"GRANT SELECT ON items TO proj_{project['id']}_anon;"
        )
        await atlas.admin(
            "POST",
            f"/admin/api/projects/{project['id']}/migrations",
            json={"migrations": [{"name": "0001.sql", "sql": sql}]},
        )
        key = project[f"{key_type}_key"]
        # The published schema, with the table path parameter pinned to the real table so the
        # generated requests reach the query parser, the SQL builder and PostgreSQL.
        async with atlas.http.get(atlas.gateway_url + "/v1/openapi.json") as resp:
            spec = await resp.json()
        for item in spec["paths"].values():
            for operation in item.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "table":
                        parameter["schema"] = {"type": "string", "enum": ["items"]}
        spec_file = tmp_path / "openapi.json"
        spec_file.write_text(json.dumps(spec))
        command = [
            str(ST),
            "run",
            str(spec_file),
            "--url",
            atlas.gateway_url,
            "--checks",
            "not_a_server_error",
            "-H",
            f"x-api-key: {key}",
            "--max-examples",
            "25",
            "--generation-deterministic",
            "--request-timeout",
            "10",
            "--no-color",
        ]
        process = await _run(command)
        assert process.returncode == 0, process.stdout[-4000:]
        assert "Tested: 12" in process.stdout and "Missing test data" not in process.stdout, process.stdout[-3000:]


async def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    import asyncio

    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 300)
    return subprocess.CompletedProcess(command, proc.returncode or 0, out.decode(errors="replace"), "")
