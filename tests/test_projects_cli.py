"""`atlashub project …` against the node directly, as an operator runs it on a headless node."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from appliance.cli import main
from appliance.cli_support import shell_actor
from appliance.control.store import utcnow
from appliance.core import CONTROL_DB, IDENTITY_FILE
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.mesh.identity import NodeIdentity
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.cli import Cli, node_cli, node_config
from tests.fixtures.daemon import RunningDaemon, running_daemon


def _node(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path, Cli]:
    """A fresh node's state dir (master key only, as `atlashub init` leaves it) and its config."""
    state = tmp_path / "state"
    state.mkdir()
    generate_master_key(state / MASTER_KEY_FILE)
    config = node_config(tmp_path / "atlashub.toml", state, '[logging]\nlevel = "DEBUG"\n')
    return state, config, node_cli("project", config, pg, monkeypatch, capsys)


def _fields(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


class RawLines(logging.Handler):
    """Every log message as emitted, before the product's redacting filter rewrites the record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def raw_log() -> Iterator[RawLines]:
    handler = RawLines()
    root = logging.getLogger()
    root.addHandler(handler)  # first: the CLI's own handler is added after it
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def _complaints(err: str) -> list[str]:
    """The command's own lines on stderr (log lines go there too, with a timestamp first)."""
    return [line for line in err.splitlines() if line.startswith("atlashub")]


def _audit(state: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(state / CONTROL_DB) as db:
        return db.execute("SELECT actor, action, outcome, target FROM audit_logs ORDER BY id").fetchall()


async def test_create_list_keys_and_delete(
    tmp_path: Path,
    pg: EmbeddedPostgres,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    raw_log: RawLines,
) -> None:
    state, config, cli = _node(tmp_path, pg, monkeypatch, capsys)
    actor = shell_actor()
    assert actor.startswith("cli:")

    code, out, err = await asyncio.to_thread(cli, "create", "Shop")
    assert code == 0, err
    printed = _fields(out)
    pid, publishable, secret = printed["id"], printed["publishable_key"], printed["secret_key"]
    assert printed["name"] == "Shop" and publishable.startswith("ah_pub_") and secret.startswith("ah_sec_")
    assert "shown once" in err and "store them now" in err
    assert secret not in err and publishable not in err
    node_id = NodeIdentity.load(state / IDENTITY_FILE).node_id
    assert printed["node_id"] == node_id

    # Only the keys' hashes are kept.
    with sqlite3.connect(state / CONTROL_DB) as db:
        hashes = {row[0] for row in db.execute("SELECT key_hash FROM api_keys WHERE project_id = ?", (pid,))}
    assert hashes == {hashlib.sha256(k.encode()).hexdigest() for k in (publishable, secret)}

    code, out, err = await asyncio.to_thread(cli, "create", "Shop", "--json")
    assert code == 1 and out == ""
    assert _complaints(err) == ["atlashub project create: a project named 'Shop' already exists"]
    code, out, err = await asyncio.to_thread(cli, "create", "   ")
    assert code == 2 and _complaints(err) == ["atlashub project create: name must not be empty"]
    code, out, err = await asyncio.to_thread(cli, "create", "bad\x07name")
    assert code == 2 and "control" in err
    with pytest.raises(SystemExit) as usage:
        await asyncio.to_thread(cli, "create")
    assert usage.value.code == 2

    code, out, err = await asyncio.to_thread(cli, "create", "Blog", "--json")
    assert code == 0, err
    blog = json.loads(out)
    assert set(blog) == {"id", "name", "db_name", "node_id", "created_at", "publishable_key", "secret_key"}
    assert blog["name"] == "Blog" and blog["secret_key"].startswith("ah_sec_") and "shown once" in err

    code, out, err = await asyncio.to_thread(cli, "list")
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split() == ["ID", "NAME", "NODE", "STATUS", "CREATED"]
    assert [line.split()[:4] for line in lines] == [
        [pid, "Shop", node_id, "active"],
        [blog["id"], "Blog", node_id, "active"],
    ]
    code, out, err = await asyncio.to_thread(cli, "list", "--json")
    assert code == 0, err
    listed = json.loads(out)["projects"]
    assert [(p["id"], p["name"], p["node_id"], p["status"]) for p in listed] == [
        (pid, "Shop", node_id, "active"),
        (blog["id"], "Blog", node_id, "active"),
    ]
    assert all(p["created_at"] for p in listed)

    code, out, err = await asyncio.to_thread(cli, "keys", pid)
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split() == ["ID", "TYPE", "PREFIX", "CREATED", "REVOKED", "STATUS"]
    assert sorted(line.split()[1:3] for line in lines) == [
        ["publishable", publishable[:12] + "…"],
        ["secret", secret[:12] + "…"],
    ]
    assert secret not in out and publishable not in out and not any(h in out for h in hashes)
    code, out, err = await asyncio.to_thread(cli, "keys", pid, "--json")
    keys = json.loads(out)["keys"]
    assert code == 0 and {k["type"] for k in keys} == {"publishable", "secret"}
    assert all(k["status"] == "active" and k["revoked_at"] is None for k in keys)
    assert secret not in out and not any(h in out for h in hashes)
    code, out, err = await asyncio.to_thread(cli, "keys", "nosuchproject")
    assert code == 1 and _complaints(err) == ["atlashub project keys: no project 'nosuchproject'"]

    # The secret key opens the project through a daemon on the same state.
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_notes.sql").write_text("CREATE TABLE notes (id serial PRIMARY KEY, title text);")
    code = await asyncio.to_thread(main, ["migrate", "--project", pid, str(folder), "--config", str(config)])
    capsys.readouterr()
    assert code == 0
    async with running_daemon(state, pg) as atlas:
        status, body = await atlas.public("POST", "/v1/db/notes", secret, json={"rows": [{"title": "hello"}]})
        assert status in (200, 201), body
        status, body = await atlas.public("GET", "/v1/db/notes?select=title", secret)
        assert status == 200, body
        assert (body["rows"] if isinstance(body, dict) else body) == [{"title": "hello"}]
        status, body = await atlas.public("GET", "/v1/db/notes", secret[:-2] + "xx")
        assert status == 401, body
        status, body = await atlas.admin("GET", "/admin/api/projects")
        assert {p["id"] for p in body["projects"]} == {pid, blog["id"]}

    # Deletion needs the id typed again.
    code, out, err = await asyncio.to_thread(cli, "delete", pid)
    assert code == 2 and len(_complaints(err)) == 1 and _complaints(err)[0].endswith(f"--confirm {pid}")
    code, out, err = await asyncio.to_thread(cli, "delete", pid, "--confirm", blog["id"])
    assert code == 2 and "is not the project id" in err
    code, out, err = await asyncio.to_thread(cli, "delete", "nosuchproject", "--confirm", "nosuchproject")
    assert code == 1 and "no project 'nosuchproject'" in err
    conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", f"proj_{pid}") == 1
        code, out, err = await asyncio.to_thread(cli, "delete", pid, "--confirm", pid)
        assert code == 0, err
        assert f"deleted project {pid}" in out
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", f"proj_{pid}") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)", f"proj_{pid}_") == 0
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", blog["db_name"]) == 1
    finally:
        await conn.close()
    assert not (state / "storage" / f"proj-{pid}").exists()
    code, out, err = await asyncio.to_thread(cli, "list", "--json")
    assert [p["id"] for p in json.loads(out)["projects"]] == [blog["id"]]
    code, out, err = await asyncio.to_thread(cli, "keys", pid)
    assert code == 1 and "no project" in err
    with sqlite3.connect(state / CONTROL_DB) as db:
        assert db.execute("SELECT count(*) FROM api_keys WHERE project_id = ?", (pid,)).fetchone() == (0,)

    # Audited as the admin API audits, with the shell user as the actor.
    cli_entries = [e for e in _audit(state) if e[0] == actor]
    assert cli_entries == [
        (actor, "project.create", "success", pid),
        (actor, "project.create", "failure", None),
        (actor, "project.create", "success", blog["id"]),
        (actor, "project.delete", "failure", "nosuchproject"),
        (actor, "project.delete", "success", pid),
    ]

    # The keys were printed once and are nowhere else: no log record (before redaction), no file.
    assert any(f"provisioning project {pid}" in line for line in raw_log.lines)
    for plaintext in (publishable, secret, blog["publishable_key"], blog["secret_key"]):
        assert not any(plaintext in line for line in raw_log.lines)
        assert [f for f in state.rglob("*") if f.is_file() and plaintext.encode() in f.read_bytes()] == []


async def test_placement_and_cluster_roles(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _, cli = _node(tmp_path, pg, monkeypatch, capsys)
    code, out, err = await asyncio.to_thread(cli, "list", "--json")
    assert code == 0 and json.loads(out) == {"projects": []}
    node_id = NodeIdentity.load(state / IDENTITY_FILE).node_id

    code, out, err = await asyncio.to_thread(cli, "create", "Here", "--node", node_id, "--json")
    assert code == 0, err
    here = json.loads(out)
    assert here["node_id"] == node_id

    code, out, err = await asyncio.to_thread(cli, "create", "Nowhere", "--node", "nosuchnode")
    assert code == 1 and "no node 'nosuchnode'" in err

    # A worker of this master: placing there needs the running daemon to receive its answer.
    with sqlite3.connect(state / CONTROL_DB) as db:
        db.execute(
            "INSERT INTO nodes (id, name, role, status, agent_url, created_at)"
            " VALUES (?, ?, 'worker', 'healthy', ?, ?)",
            ("worker1", "w1", "http://10.100.0.2:8082", utcnow()),
        )
        db.execute(
            "INSERT INTO projects (id, name, db_name, node_id, status, created_at)"
            " VALUES ('remoteproj01', 'Remote', 'proj_remoteproj01', 'worker1', 'active', ?)",
            (utcnow(),),
        )
    code, out, err = await asyncio.to_thread(cli, "create", "There", "--node", "worker1")
    assert code == 1 and "node worker1 is another node" in err and "POST /admin/api/projects" in err
    code, out, err = await asyncio.to_thread(cli, "list", "--json")
    rows = {p["name"]: p["node_id"] for p in json.loads(out)["projects"]}
    assert rows == {"Here": node_id, "Remote": "worker1"}
    code, out, err = await asyncio.to_thread(cli, "delete", "remoteproj01", "--confirm", "remoteproj01")
    assert code == 1 and "hosted on node worker1" in err
    code, out, err = await asyncio.to_thread(cli, "list")
    assert "remoteproj01" in out and "worker1" in out

    # A worker leaves creating and deleting to its master; it still lists.
    monkeypatch.setenv("ATLASHUB_MESH_ROLE", "worker")
    monkeypatch.setenv("ATLASHUB_MESH_MASTER_URL", "http://127.0.0.1:9")
    code, out, err = await asyncio.to_thread(cli, "create", "Local")
    assert code == 1 and "created by the master" in err
    code, out, err = await asyncio.to_thread(cli, "delete", here["id"], "--confirm", here["id"])
    assert code == 1 and "deleted by the master" in err
    code, out, err = await asyncio.to_thread(cli, "list", "--json")
    assert code == 0 and {p["name"] for p in json.loads(out)["projects"]} == {"Here", "Remote"}


async def _status_becomes(atlas: RunningDaemon, key: str, wanted: int) -> None:
    """Poll the public API until the key gets ``wanted`` (the daemon re-reads keys every few seconds)."""
    async with asyncio.timeout(60):
        while True:
            status, _ = await atlas.public("GET", "/v1/db/no_such_table", key)
            if status == wanted:
                return
            await asyncio.sleep(0.2)


async def test_a_running_daemon_takes_in_created_and_deleted_projects(
    tmp_path: Path, pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _, cli = _node(tmp_path, pg, monkeypatch, capsys)
    async with running_daemon(state, pg) as atlas:
        code, out, err = await asyncio.to_thread(cli, "create", "Live", "--json")
        assert code == 0, err
        created = json.loads(out)
        # Known to the running gateway without a restart: past the key check, the table is unknown.
        await _status_becomes(atlas, created["secret_key"], 404)
        status, body = await atlas.public("GET", "/v1/db/no_such_table", created["secret_key"])
        assert body["error"]["code"] != "invalid_api_key"

        code, out, err = await asyncio.to_thread(cli, "delete", created["id"], "--confirm", created["id"])
        assert code == 0, err
        await _status_becomes(atlas, created["secret_key"], 401)
        status, body = await atlas.admin("GET", "/admin/api/projects")
        assert status == 200 and body["projects"] == []
