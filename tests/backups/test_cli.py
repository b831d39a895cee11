"""`atlashub backup …` against the node directly: progress bars on stderr, results on stdout."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.pg.embedded import EmbeddedPostgres
from tests.backups.conftest import create_project
from tests.fixtures.daemon import running_daemon
from tests.fixtures.pg import clean_env, pg_env


async def test_cli_create_list_verify_restore(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        pid = await create_project(atlas)
    config = tmp_path / "atlashub.toml"
    config.write_text(f'[node]\nstate_dir = "{state}"\n[storage]\nfs_root = "{state / "storage"}"\n')
    for key in [k for k in clean_env() if k.startswith("ATLASHUB_")]:
        monkeypatch.delenv(key)
    for key, value in pg_env(pg).items():
        monkeypatch.setenv(key, value)

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["backup", *args, "--config", str(config)])
        out = capsys.readouterr()
        return code, out.out, out.err

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
