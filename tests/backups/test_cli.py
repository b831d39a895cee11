"""`atlashub backup …` against the node directly: progress bars on stderr, results on stdout."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.backups.conftest import backup, create_project, project_conn
from tests.fixtures.cli import node_cli, node_config
from tests.fixtures.daemon import running_daemon


async def test_cli_create_list_verify_restore(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        pid = await create_project(atlas)
    config = node_config(tmp_path / "atlashub.toml", state)
    cli = node_cli("backup", config, pg, monkeypatch, capsys)

    code, out, err = await asyncio.to_thread(cli, "create", "--project", pid, "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["status"] == "verified"
    assert "dump" in err and "verify" in err and "%" in err  # progress bars went to stderr

    code, out, err = await asyncio.to_thread(cli, "list", "--project", pid)
    assert code == 0 and created["id"] in out and "verified" in out

    code, out, err = await asyncio.to_thread(cli, "verify", "--backup", created["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "verified"

    code, out, err = await asyncio.to_thread(cli, "restore", "--project", pid, "--yes", "--json")
    assert code == 0, err
    assert json.loads(out)["backup_id"] == created["id"]

    code, out, err = await asyncio.to_thread(cli, "create", "--project", "nosuchproject")
    assert code == 1 and "no project" in err


async def test_cli_clone_prints_the_new_project_and_its_keys_once(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        pid = await create_project(atlas)
        backup_id = (await backup(atlas, pid))["result"]["id"]
        await create_project(atlas, "Taken", "SELECT 1")
    config = node_config(tmp_path / "atlashub.toml", state)
    cli = node_cli("backup", config, pg, monkeypatch, capsys)

    code, out, err = await asyncio.to_thread(cli, "clone", pid, "--name", "Shop copy")
    assert code == 0, err
    assert "decrypt" in err and "restore" in err and "swap" in err and "%" in err  # progress bars on stderr
    assert "shown once" in err
    printed = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line and not line.startswith(" "))
    new, secret = printed["project_id"], printed["secret_key"]
    assert new != pid and printed["name"] == "Shop copy" and printed["backup_id"] == backup_id
    assert printed["source_project_id"] == pid and printed["publishable_key"].startswith("ah_")

    # --project, the newest good backup by default, JSON out.
    code, out, err = await asyncio.to_thread(cli, "clone", "--project", pid, "--name", "Shop copy 2", "--json")
    assert code == 0, err
    second = json.loads(out)
    assert second["backup_id"] == backup_id and second["project_id"] not in (pid, new)

    code, out, err = await asyncio.to_thread(cli, "clone", pid, "--name", "Taken")
    assert code == 1 and "already exists" in err
    code, out, err = await asyncio.to_thread(cli, "clone", pid, "--backup", "nosuchbackup", "--name", "Other")
    assert code == 1 and "no backup" in err
    code, out, err = await asyncio.to_thread(cli, "clone", "--name", "Other")
    assert code == 2 and "required" in err

    # Back in the daemon: the clone is a project like any other, with the rows, and the printed
    # key opens it; the keys are nowhere in the control plane in clear.
    async with running_daemon(state, pg) as atlas:
        status, body = await atlas.admin("GET", "/admin/api/projects")
        assert status == 200
        names = {p["id"]: p["name"] for p in body["projects"]}
        assert (
            names[new] == "Shop copy" and names[second["project_id"]] == "Shop copy 2" and "Other" not in names.values()
        )
        status, rows = await atlas.public("GET", "/v1/db/notes?limit=1000&select=id", secret)
        assert status == 200, rows
        assert len(rows["rows"] if isinstance(rows, dict) else rows) == 250
        status, _ = await atlas.public("GET", "/v1/db/notes?limit=1", second["secret_key"])
        assert status == 200
    conn = await project_conn(pg, new)
    try:
        assert await conn.fetchval("SELECT count(*) FROM notes") == 250
    finally:
        await conn.close()
    written = [f for f in state.rglob("*") if f.is_file() and secret.encode() in f.read_bytes()]
    assert written == []
