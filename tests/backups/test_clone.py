"""Restore-as-new-project: the clone gets its own roles in owners, grants, default privileges and policies."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from appliance.backups.service import BackupService
from appliance.pg.embedded import EmbeddedPostgres
from tests.backups.conftest import backup, create_project, project_conn, wait_job
from tests.fixtures.daemon import RunningDaemon

# Written by the project's owner, naming its own roles as an app author would.
ROLES_SQL = """
GRANT SELECT ON notes TO proj_{pid}_anon;
GRANT SELECT, INSERT ON notes TO proj_{pid}_authenticated;
GRANT USAGE ON SEQUENCE notes_id_seq TO proj_{pid}_authenticated;
CREATE POLICY notes_public_read ON notes FOR SELECT TO proj_{pid}_anon USING (done);
CREATE POLICY notes_own_insert ON notes AS RESTRICTIVE FOR INSERT TO proj_{pid}_authenticated
    WITH CHECK (owner_id = auth.uid());
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO proj_{pid}_anon;
CREATE FUNCTION open_notes() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER
    AS 'SELECT count(*) FROM public.notes WHERE NOT done';
CREATE VIEW done_notes AS SELECT id, title FROM notes WHERE done;
"""


async def source_project(atlas: RunningDaemon, pg: EmbeddedPostgres) -> str:
    pid = await create_project(atlas, "Source")
    status, body = await atlas.admin(
        "POST",
        f"/admin/api/projects/{pid}/migrations",
        json={"migrations": [{"name": "0002_roles.sql", "sql": ROLES_SQL.format(pid=pid)}]},
    )
    assert status == 200, body
    conn = await project_conn(pg, pid)
    try:  # end users of the project's apps travel with it
        await conn.execute("INSERT INTO atlas_auth.users (email, password_hash) VALUES ('ann@example.com', 'x')")
    finally:
        await conn.close()
    return pid


async def start_clone(atlas: RunningDaemon, pid: str, backup_id: str, name: str) -> dict[str, Any]:
    status, body = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/clone", json={"backup_id": backup_id, "name": name}
    )
    assert status == 202, body
    return await wait_job(atlas, body["job_id"], timeout=120)


async def role_facts(conn: asyncpg.Connection) -> dict[str, Any]:
    return {
        "owner": await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'notes'"),
        "seq_owner": await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'notes_id_seq'"
        ),
        "fn_owner": await conn.fetchval("SELECT pg_get_userbyid(proowner) FROM pg_proc WHERE proname = 'open_notes'"),
        "policies": [
            (r["policyname"], r["permissive"], list(r["roles"]))
            for r in await conn.fetch("SELECT policyname, permissive, roles FROM pg_policies ORDER BY 1")
        ],
        "default_acl": [
            (r["role"], r["acl"])
            for r in await conn.fetch(
                "SELECT pg_get_userbyid(defaclrole) AS role, defaclacl::text AS acl FROM pg_default_acl ORDER BY 1, 2"
            )
        ],
        "acls": await conn.fetchval(
            "SELECT string_agg(coalesce(relacl::text, ''), ' ' ORDER BY relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'atlas', 'atlas_auth')"
        ),
        "schema_acls": await conn.fetchval(
            "SELECT string_agg(coalesce(nspacl::text, ''), ' ' ORDER BY nspname) FROM pg_namespace"
            " WHERE nspname IN ('public', 'atlas', 'auth', 'atlas_auth')"
        ),
        "notes": await conn.fetchval("SELECT count(*) FROM notes"),
        "invoice_no": await conn.fetchval("SELECT last_value FROM invoice_no"),
        "notes_id_seq": await conn.fetchval("SELECT last_value FROM notes_id_seq"),
        "users": await conn.fetchval("SELECT count(*) FROM atlas_auth.users"),
        "migrations": [r[0] for r in await conn.fetch("SELECT name FROM atlas.atlas_migrations ORDER BY 1")],
    }


async def test_clone_maps_owners_grants_and_policies_to_the_new_roles(
    any_backend: RunningDaemon, pg: EmbeddedPostgres
) -> None:
    atlas = any_backend
    pid = await source_project(atlas, pg)
    backup_id = (await backup(atlas, pid))["result"]["id"]
    job = await start_clone(atlas, pid, backup_id, "Source (copy)")
    assert job["state"] == "succeeded", job
    result = job["result"]
    new = result["project_id"]
    assert new != pid and result["project"]["name"] == "Source (copy)" and result["not_applied"] == []
    publishable, secret = result["publishable_key"], result["secret_key"]
    assert publishable.startswith(result["key_prefixes"]["publishable"])
    # The keys are shown once: not on a second read, and never stored with the job.
    _, again = await atlas.admin("GET", f"/admin/api/jobs/{job['id']}")
    assert "secret_key" not in again["result"] and "publishable_key" not in again["result"]
    row = await atlas.daemon.core.store.fetchone("SELECT result_json FROM jobs WHERE id = ?", (job["id"],))
    assert row is not None and secret not in row["result_json"] and publishable not in row["result_json"]

    source_conn, clone_conn = await project_conn(pg, pid), await project_conn(pg, new)
    try:
        before, after = await role_facts(source_conn), await role_facts(clone_conn)
        leftovers = await clone_conn.fetchval(
            "SELECT count(*) FROM (SELECT relacl::text a FROM pg_class UNION ALL SELECT roles::text FROM pg_policies"
            " UNION ALL SELECT defaclacl::text FROM pg_default_acl UNION ALL SELECT nspacl::text FROM pg_namespace) x"
            " WHERE a LIKE $1",
            f"%proj_{pid}_%",
        )
    finally:
        await source_conn.close()
        await clone_conn.close()
    assert after == _renamed(before, pid, new)
    assert after["owner"] == f"proj_{new}_owner" and after["notes"] == 250 and after["invoice_no"] == 1001
    assert ("notes_own_insert", "RESTRICTIVE", [f"proj_{new}_authenticated"]) in after["policies"]
    assert leftovers == 0, "nothing in the clone names the source project's roles"

    # The new keys work, and RLS applies to the clone's anon role: only the done notes are public.
    status, body = await atlas.public("GET", "/v1/db/notes?limit=1000&select=id,done", publishable)
    assert status == 200, body
    rows = body["rows"] if isinstance(body, dict) else body
    assert len(rows) == 125 and all(r["done"] for r in rows)
    status, body = await atlas.public("GET", "/v1/db/notes?limit=1", secret)
    assert status == 200, body
    # The source's keys do not open the clone, and the clone got its daily backup job.
    _, jobs = await atlas.admin("GET", f"/admin/api/cron-jobs?project_id={new}")
    assert [j["action"] for j in jobs["jobs"]] == ["backup_project"]
    # A backup of the clone verifies (its manifest is taken from the mapped database).
    assert (await backup(atlas, new))["result"]["status"] == "verified"


def _renamed(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(f"proj_{old}_", f"proj_{new}_")
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    if isinstance(value, tuple):
        return tuple(_renamed(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    return value


async def cluster_names(pg: EmbeddedPostgres, pid: str) -> tuple[set[str], set[str]]:
    conn = await project_conn(pg, pid)
    try:
        databases = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
        roles = {r[0] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
    finally:
        await conn.close()
    return databases, roles


async def test_a_failed_clone_deletes_the_new_project(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = await create_project(atlas, "Origin")
    backup_id = (await backup(atlas, pid))["result"]["id"]
    before = await cluster_names(pg, pid)

    async def fail(point: str) -> None:
        if point == "clone_before_swap":
            raise RuntimeError("disk full")

    atlas.daemon.core.service(BackupService).fault = fail
    job = await start_clone(atlas, pid, backup_id, "Doomed")
    assert job["state"] == "failed" and "disk full" in job["error"], job
    _, listed = await atlas.admin("GET", "/admin/api/projects")
    assert [p["name"] for p in listed["projects"]] == ["Origin"]
    assert await cluster_names(pg, pid) == before, "no database or role of the half-made clone is left"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"name": "x"}, 400, "invalid_value"),
        ({"backup_id": "bk_nope", "name": "x"}, 404, "backup_not_found"),
        ({"backup_id": "BACKUP", "name": ""}, 400, "invalid_name"),
        ({"backup_id": "BACKUP", "name": "Origin"}, 409, "project_exists"),
    ],
)
async def test_clone_requests_refused_before_a_job_starts(
    atlas: RunningDaemon, payload: dict[str, str], status: int, code: str
) -> None:
    pid = await create_project(atlas, "Origin", schema="CREATE TABLE t (id int);")
    backup_id = (await backup(atlas, pid))["result"]["id"]
    body = {k: (backup_id if v == "BACKUP" else v) for k, v in payload.items()}
    got, answer = await atlas.admin("POST", f"/admin/api/projects/{pid}/clone", json=body)
    assert (got, answer["error"]["code"]) == (status, code), answer
