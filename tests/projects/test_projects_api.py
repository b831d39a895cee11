"""Projects through the admin API, against real PostgreSQL and the fs storage backend."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
import pytest

from appliance.cli_support import opened_core
from appliance.pg.embedded import EmbeddedPostgres
from appliance.projects.model import ProjectNames
from tests.fixtures.daemon import RunningDaemon, running_daemon


async def create(atlas: RunningDaemon, name: str = "Notes") -> dict:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    return body


async def superuser(pg: EmbeddedPostgres, database: str = "postgres") -> asyncpg.Connection:
    return await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, database=database)


async def pg_state(pg: EmbeddedPostgres, project_id: str) -> tuple[bool, set[str]]:
    names = ProjectNames(project_id)
    conn = await superuser(pg)
    try:
        has_db = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", names.database) == 1
        roles = {
            r[0] for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"proj_{project_id}_%")
        }
    finally:
        await conn.close()
    return has_db, roles


async def test_create_project_provisions_everything(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    body = await create(atlas, "My App")
    assert set(body) == {"id", "name", "db_name", "publishable_key", "secret_key", "created_at"}
    pid = body["id"]
    assert body["db_name"] == f"proj_{pid}"
    assert body["publishable_key"].startswith("ah_pub_") and len(body["publishable_key"]) >= 7 + 43
    assert body["secret_key"].startswith("ah_sec_")
    has_db, roles = await pg_state(pg, pid)
    assert has_db
    assert roles == {f"proj_{pid}_{r}" for r in ("owner", "app", "anon", "authenticated")}
    store = atlas.daemon.core.store
    buckets = [r["name"] for r in await store.fetchall("SELECT name FROM buckets WHERE project_id = ?", (pid,))]
    assert sorted(buckets) == ["private", "uploads"]
    assert await atlas.daemon.core.storage.bucket_exists(f"proj-{pid}")
    creds = await store.fetchall("SELECT password_enc FROM project_db_creds WHERE project_id = ?", (pid,))
    assert len(creds) == 2
    # Only hashes are stored: the keys never appear in the control plane.
    dump = "\n".join(str(tuple(r)) for r in await store.fetchall("SELECT * FROM api_keys"))
    assert body["secret_key"] not in dump and body["publishable_key"] not in dump
    # Keys are shown once: listing shows prefixes only.
    status, listed = await atlas.admin("GET", f"/admin/api/projects/{pid}/keys")
    assert status == 200
    assert {k["type"] for k in listed["keys"]} == {"publishable", "secret"}
    assert body["secret_key"] not in str(listed)
    status, detail = await atlas.admin("GET", f"/admin/api/projects/{pid}")
    assert status == 200 and detail["name"] == "My App" and detail["connection"]["database"] == f"proj_{pid}"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"name": ""}, 400, "invalid_name"),
        ({"name": "   "}, 400, "invalid_name"),
        ({"name": "x" * 65}, 400, "invalid_name"),
        ({"name": "bad\x00name"}, 400, "invalid_name"),
        ({"name": "tab\tname"}, 400, "invalid_name"),
        ({"name": 42}, 400, "invalid_name"),
        ({}, 400, "invalid_name"),
        (["not", "an", "object"], 400, "invalid_body"),
    ],
    ids=["empty", "blank", "too-long", "nul", "control", "number", "missing", "array"],
)
async def test_bad_project_names(atlas: RunningDaemon, payload: object, status: int, code: str) -> None:
    got, body = await atlas.admin("POST", "/admin/api/projects", json=payload)
    assert (got, body["error"]["code"]) == (status, code)
    assert await atlas.daemon.core.store.fetchall("SELECT id FROM projects") == []


async def test_invalid_json_and_missing_auth(atlas: RunningDaemon) -> None:
    status, body = await atlas.admin(
        "POST", "/admin/api/projects", data=b"{nope", headers={"content-type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    async with atlas.http.post(atlas.dashboard_url + "/admin/api/projects", json={"name": "x"}) as resp:
        assert resp.status == 401
    async with atlas.http.get(
        atlas.dashboard_url + "/admin/api/projects", headers={"x-dev-admin-token": "wrong"}
    ) as resp:
        assert resp.status == 401


async def test_duplicate_names_conflict_case_insensitively(atlas: RunningDaemon) -> None:
    await create(atlas, "Shop")
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "shop"})
    assert (status, body["error"]["code"]) == (409, "project_exists")
    status, body = await atlas.admin("GET", "/admin/api/projects")
    assert [p["name"] for p in body["projects"]] == ["Shop"]


async def test_delete_requires_the_typed_confirmation(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = (await create(atlas))["id"]
    for payload in (None, {}, {"confirm": "yes"}, {"confirm": pid.upper()}):
        kwargs = {} if payload is None else {"json": payload}
        status, body = await atlas.admin("DELETE", f"/admin/api/projects/{pid}", **kwargs)
        assert status == 400, payload
        assert (await pg_state(pg, pid))[0], "nothing may be dropped without confirmation"
    status, _ = await atlas.admin("DELETE", f"/admin/api/projects/{pid}", json={"confirm": pid})
    assert status == 204
    assert await pg_state(pg, pid) == (False, set())
    assert not await atlas.daemon.core.storage.bucket_exists(f"proj-{pid}")
    status, body = await atlas.admin("GET", f"/admin/api/projects/{pid}")
    assert (status, body["error"]["code"]) == (404, "project_not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/api/projects/nope",
        "/admin/api/projects/abcdefghijkl/keys",
        "/admin/api/projects/abcdefghijkl/migrations",
    ],
)
async def test_unknown_projects_are_404(atlas: RunningDaemon, path: str) -> None:
    status, body = await atlas.admin("GET", path)
    assert (status, body["error"]["code"]) == (404, "project_not_found")


async def test_key_rotation_grace_and_revocation(atlas: RunningDaemon) -> None:
    created = await create(atlas)
    pid, keys = created["id"], atlas.daemon.core.keys
    old_secret = created["secret_key"]
    status, listed = await atlas.admin("GET", f"/admin/api/projects/{pid}/keys")
    secret_id = next(k["id"] for k in listed["keys"] if k["type"] == "secret")

    status, rotated = await atlas.admin("POST", f"/admin/api/projects/{pid}/keys/{secret_id}/rotate", json={})
    assert status == 200
    assert rotated["old_key"]["status"] == "expiring"
    assert keys.resolve(old_secret) is not None, "the old key keeps working during the grace period"
    assert keys.resolve(rotated["secret"]).id == rotated["key"]["id"]

    status, body = await atlas.admin("POST", f"/admin/api/projects/{pid}/keys/{secret_id}/rotate", json={})
    assert (status, body["error"]["code"]) == (409, "key_already_rotated")

    new_id = rotated["key"]["id"]
    status, zero = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/keys/{new_id}/rotate", json={"grace_seconds": 0}
    )
    assert status == 200
    assert keys.resolve(rotated["secret"]) is None, "grace 0 stops the old key at once"

    newest_id, newest = zero["key"]["id"], zero["secret"]
    status, revoked = await atlas.admin("POST", f"/admin/api/projects/{pid}/keys/{newest_id}/revoke")
    assert status == 200 and revoked["key"]["status"] == "revoked"
    assert keys.resolve(newest) is None
    status, body = await atlas.admin("POST", f"/admin/api/projects/{pid}/keys/{newest_id}/rotate", json={})
    assert (status, body["error"]["code"]) == (409, "key_not_active")

    for path, payload, expected in [
        (f"/admin/api/projects/{pid}/keys/key_nope/revoke", None, (404, "key_not_found")),
        (f"/admin/api/projects/{pid}/keys/key_nope/rotate", {}, (404, "key_not_found")),
        (f"/admin/api/projects/{pid}/keys", {"type": "admin"}, (400, "invalid_key_type")),
        (f"/admin/api/projects/{pid}/keys/{secret_id}/rotate", {"grace_seconds": "soon"}, (400, "invalid_parameter")),
    ]:
        kwargs = {} if payload is None else {"json": payload}
        status, body = await atlas.admin("POST", path, **kwargs)
        assert (status, body["error"]["code"]) == expected, path

    status, audit = await atlas.admin("GET", f"/admin/api/audit?project={pid}")
    actions = [e["action"] for e in audit["entries"]]
    assert {"project.create", "key.rotate", "key.revoke"} <= set(actions)
    assert all(e["actor"] == "dev" for e in audit["entries"])
    assert old_secret not in str(audit) and newest not in str(audit)


async def test_last_used_is_recorded_without_a_write_per_request(atlas: RunningDaemon) -> None:
    created = await create(atlas)
    keys = atlas.daemon.core.keys
    for _ in range(5):
        assert keys.resolve(created["secret_key"]) is not None
    assert await keys.flush_last_used() == 1
    row = await atlas.daemon.core.store.fetchone(
        "SELECT last_used_at FROM api_keys WHERE project_id = ? AND type = 'secret'", (created["id"],)
    )
    assert row["last_used_at"] is not None


async def test_project_migrations(atlas: RunningDaemon) -> None:
    pid = (await create(atlas))["id"]
    path = f"/admin/api/projects/{pid}/migrations"
    files = [
        {"name": "0002_more.sql", "sql": "ALTER TABLE notes ADD COLUMN done boolean NOT NULL DEFAULT false;"},
        {"name": "0001_init.sql", "sql": "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);"},
    ]
    status, body = await atlas.admin("POST", path, json={"migrations": files})
    assert (status, body) == (200, {"applied": ["0001_init.sql", "0002_more.sql"], "skipped": []})
    status, body = await atlas.admin("POST", path, json={"migrations": files})
    assert body == {"applied": [], "skipped": ["0001_init.sql", "0002_more.sql"]}

    changed = [{"name": "0001_init.sql", "sql": "CREATE TABLE notes (id int);"}]
    status, body = await atlas.admin("POST", path, json={"migrations": changed})
    assert (status, body["error"]["code"]) == (409, "migration_changed")
    assert "0001_init.sql" in body["error"]["message"]

    broken = [
        {"name": "0003_ok.sql", "sql": "CREATE TABLE tags (id int);"},
        {"name": "0004_bad.sql", "sql": "CREATE TABLE half (id int); CREAT TABLE oops (x int);"},
    ]
    status, body = await atlas.admin("POST", path, json={"migrations": broken})
    assert (status, body["error"]["code"]) == (422, "migration_failed")
    assert "0004_bad.sql" in body["error"]["message"] and "syntax error" in body["error"]["message"]
    assert body["error"]["details"]["applied"] == ["0003_ok.sql"]
    status, listed = await atlas.admin("GET", path)
    assert [m["name"] for m in listed["migrations"]] == ["0001_init.sql", "0002_more.sql", "0003_ok.sql"]
    async with atlas.daemon.core.pools.connection(pid, "owner") as conn:
        assert await conn.fetchval("SELECT to_regclass('public.half')") is None

    for bad in (
        {},
        {"migrations": []},
        {"migrations": [{"name": "../x.sql", "sql": "select 1"}]},
        {"migrations": [{"name": "a.sql"}]},
        {"migrations": [{"name": "a.sql", "sql": " "}]},
    ):
        status, body = await atlas.admin("POST", path, json=bad)
        assert status == 400, bad


async def test_isolation_between_projects(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    a = (await create(atlas, "A"))["id"]
    b = (await create(atlas, "B"))["id"]
    projects = atlas.daemon.core.projects
    creds_a = await projects.credentials(a, "app")
    owner_a = await projects.credentials(a, "owner")
    for creds in (creds_a, owner_a):
        for database in (f"proj_{b}", "postgres", "template1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await asyncpg.connect(
                    host="127.0.0.1", port=pg.port, user=creds.user, password=creds.password, database=database
                )
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg.port, user=creds_a.user, password=creds_a.password, database=creds_a.database
    )
    await conn.close()
    su = await superuser(pg)
    try:
        await su.execute("CREATE ROLE stranger LOGIN PASSWORD 'stranger-password'")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(
                host="127.0.0.1", port=pg.port, user="stranger", password="stranger-password", database=f"proj_{a}"
            )
    finally:
        await su.execute("DROP ROLE stranger")
        await su.close()
    # The app role cannot create tables in public; the owner can.
    async with atlas.daemon.core.pools.connection(a, "app") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CREATE TABLE sneaky (id int)")


@pytest.mark.parametrize("step", ["database", "bootstrap", "bucket", "keys"])
async def test_a_failure_mid_provisioning_leaves_nothing(atlas: RunningDaemon, pg: EmbeddedPostgres, step: str) -> None:
    async def fault(at: str) -> None:
        if at == step:
            raise RuntimeError(f"injected failure at {at}")

    async def server_objects() -> tuple[set[str], set[str]]:
        su = await superuser(pg)
        try:
            dbs = {r[0] for r in await su.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'proj_%'")}
            roles = {r[0] for r in await su.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE 'proj_%'")}
        finally:
            await su.close()
        return dbs, roles

    before = await server_objects()
    with pytest.raises(RuntimeError):
        await atlas.daemon.core.projects.create("Doomed", fault=fault)
    store = atlas.daemon.core.store
    for table in ("projects", "api_keys", "project_db_creds", "buckets"):
        assert await store.fetchall(f"SELECT * FROM {table}") == [], table
    assert await server_objects() == before
    storage_root = Path(atlas.daemon.config.storage.fs_root)
    assert not any(p.name.startswith("proj-") for p in storage_root.iterdir()) if storage_root.exists() else True
    # And the same name can be used right after.
    await create(atlas, "Doomed")


async def test_a_crash_mid_provisioning_is_cleaned_up_at_next_start(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"

    class Crash(BaseException):
        pass

    async def crash(at: str) -> None:
        if at == "bootstrap":
            raise Crash

    async with running_daemon(state, pg) as atlas:
        projects = atlas.daemon.core.projects
        original = projects._teardown

        async def no_teardown(names: ProjectNames) -> None:  # the process "dies" before undoing anything
            return None

        projects._teardown = no_teardown  # type: ignore[method-assign]
        with pytest.raises(Crash):
            await projects.create("Crashy", fault=crash)
        projects._teardown = original  # type: ignore[method-assign]
        row = await atlas.daemon.core.store.fetchone("SELECT id, status FROM projects")
        assert row["status"] == "provisioning"
        pid = row["id"]
        assert (await pg_state(pg, pid))[0]
        # A shell command opening the node meanwhile leaves it alone: to it, this could be a
        # project the running daemon is creating right now.
        async with opened_core(atlas.daemon.config) as core:
            assert [r["status"] for r in await core.store.fetchall("SELECT status FROM projects")] == ["provisioning"]
        assert (await pg_state(pg, pid))[0]
    async with running_daemon(state, pg) as atlas:
        assert await atlas.daemon.core.store.fetchall("SELECT * FROM projects") == []
        assert await pg_state(pg, pid) == (False, set())


async def test_secrets_never_reach_the_logs(atlas: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = await create(atlas)
    pid = created["id"]
    _, rotated = await atlas.admin("POST", f"/admin/api/projects/{pid}/keys", json={"type": "secret"})
    passwords = [(await atlas.daemon.core.projects.credentials(pid, role)).password for role in ("owner", "app")]
    text = caplog.text
    for secret in (created["secret_key"], created["publishable_key"], rotated["secret"], *passwords):
        assert secret not in text
