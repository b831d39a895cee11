"""Tenant-scoped analytics roles, seen from a per-tenant BI tool: only its tenant's rows, nothing else."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import pytest

from tests.analytics.conftest import TENANT_A, TENANT_B, SeedProject, connect_as
from tests.analytics.test_access import (
    DENIED,
    ENDED,
    INFO_TABLES,
    METABASE_SCHEMAS,
    METABASE_TABLES,
    setup_seed_analytics,
)

TENANT_VIEWS = ["events", "events_daily", "vf_projects", "vf_usage_metrics"]
NO_TENANT_COLUMN = ["tenants", "vf_pulls_status"]


async def create_tenant(seed: SeedProject, name: str, value: Any, column: str = "tenant_id") -> dict[str, Any]:
    body = {"name": name, "tenant_column": column, "tenant_value": value}
    status, created = await seed.atlas.admin("POST", f"{seed.base}/tenant-roles", json=body)
    assert status == 201, created
    return created


async def leftovers(seed: SeedProject) -> tuple[list[str], list[str]]:
    """Tenant roles and tenant schemas that exist in PostgreSQL."""
    admin = await seed.superuser()
    try:
        role_rows = await admin.fetch(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1) ORDER BY 1", f"proj_{seed.id}_analytics_"
        )
        schema_rows = await admin.fetch(
            "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, 'analytics_') ORDER BY 1"
        )
    finally:
        await admin.close()
    return [r[0] for r in role_rows], [r[0] for r in schema_rows]


async def test_a_tenant_role_reads_only_its_tenants_rows(seed: SeedProject) -> None:
    shared = await setup_seed_analytics(seed)
    acme = await create_tenant(seed, "acme", TENANT_A)
    assert acme["user"] == f"proj_{seed.id}_analytics_acme" and acme["schema"] == "analytics_acme"
    assert acme["views"] == TENANT_VIEWS and acme["skipped"] == NO_TENANT_COLUMN
    assert set(acme["connection"]) == {"host", "port", "database", "user", "password", "sslmode"}
    assert acme["connection"]["user"] == acme["user"]
    globex = await create_tenant(seed, "globex", TENANT_B)
    conn = await connect_as(acme["connection"])
    try:
        assert [r[0] for r in await conn.fetch(METABASE_SCHEMAS)] == ["analytics_acme"]
        assert [tuple(r) for r in await conn.fetch(METABASE_TABLES)] == [("analytics_acme", v) for v in TENANT_VIEWS]
        assert [tuple(r) for r in await conn.fetch(INFO_TABLES)] == [("analytics_acme", v) for v in TENANT_VIEWS]
        assert await conn.fetchval("SHOW search_path") == "analytics_acme"
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
        for view in TENANT_VIEWS:
            rows = await conn.fetch(f'SELECT tenant_id::text FROM "{view}"')
            assert rows and {r[0] for r in rows} == {TENANT_A}, view
        events = await conn.fetch("SELECT * FROM events ORDER BY id")
        assert list(events[0].keys()) == ["id", "tenant_id", "event_name", "occurred_at"] and len(events) == 2
        usage = await conn.fetchrow("SELECT sessions, messages, tokens FROM vf_usage_metrics")
        assert tuple(usage) == (12, 80, 5000)
        # A condition that would fail on another tenant's row is never evaluated on it (security_barrier).
        probe = (
            f"SELECT count(*) FROM events WHERE (CASE WHEN tenant_id = '{TENANT_B}' THEN 1 / (id - id) ELSE 1 END) = 1"
        )
        assert await conn.fetchval(probe) == 2
        relopts = await conn.fetchval("SELECT reloptions FROM pg_class WHERE oid = 'analytics_acme.events'::regclass")
        assert relopts == ["security_barrier=true"]
    finally:
        await conn.close()
    conn = await connect_as(globex["connection"])
    try:
        assert [r[0] for r in await conn.fetch("SELECT event_name FROM events")] == ["signup"]
    finally:
        await conn.close()
    conn = await connect_as(shared)  # the probe does see other tenants' rows where they are readable
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await conn.fetchval(probe)
    finally:
        await conn.close()


def forbidden_sql(other_schema: str) -> list[str]:
    return [
        "SELECT * FROM analytics.events",
        "SELECT * FROM analytics.tenants",
        f"SELECT * FROM {other_schema}.events",
        "SELECT * FROM public.events_raw",
        "SELECT * FROM public.vf_credentials",
        "SELECT * FROM atlas.platform_migrations",
        "CREATE TABLE analytics_acme.x (id int)",
        "CREATE VIEW analytics_acme.v AS SELECT 1",
        "CREATE TABLE public.x (id int)",
        "CREATE TEMP TABLE x (id int)",
        "CREATE FUNCTION analytics_acme.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE SCHEMA mine",
        "DELETE FROM events",
        "BEGIN READ WRITE; DELETE FROM events",
        "DROP VIEW events",
        "ALTER VIEW events RENAME TO e",
        "GRANT SELECT ON events TO PUBLIC",
        "SET ROLE postgres",
    ]


async def test_a_tenant_role_reaches_nothing_else(seed: SeedProject) -> None:
    shared = await setup_seed_analytics(seed)
    acme = await create_tenant(seed, "acme", TENANT_A)
    await create_tenant(seed, "globex", TENANT_B)
    for sql in forbidden_sql("analytics_globex"):
        conn = await connect_as(acme["connection"])
        try:
            with pytest.raises(DENIED):
                await conn.execute(sql)
        except BaseException as exc:
            raise AssertionError(f"not denied: {sql}") from exc
        finally:
            await conn.close()
    # The shared analytics role does not see the tenants' schemas either.
    conn = await connect_as(shared)
    try:
        assert [r[0] for r in await conn.fetch(METABASE_SCHEMAS)] == ["analytics"]
        with pytest.raises(DENIED):
            await conn.fetch("SELECT * FROM analytics_acme.events")
    finally:
        await conn.close()
    for database in ("postgres", "template1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connect_as(acme["connection"], database=database)


async def test_views_published_later_follow_and_deleted_views_go(seed: SeedProject) -> None:
    await setup_seed_analytics(seed)
    acme = await create_tenant(seed, "acme", TENANT_A)
    view = {"name": "domains", "table": "tenant_domains", "columns": ["tenant_id", "domain"]}
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=view)
    assert status == 201, body
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json={"name": "pulls", "sql": "SELECT 1 AS x"})
    assert status == 201, body
    status, body = await seed.atlas.admin("GET", f"{seed.base}/tenant-roles/acme")
    assert status == 200 and "domains" in body["views"] and "pulls" in body["skipped"]
    conn = await connect_as(acme["connection"])
    try:
        assert [r[0] for r in await conn.fetch("SELECT domain FROM domains")] == ["acme.example"]
        assert (await seed.atlas.admin("DELETE", f"{seed.base}/views/domains"))[0] == 204
        assert (await seed.atlas.admin("DELETE", f"{seed.base}/views/events"))[0] == 204
        tables = [r[1] for r in await conn.fetch(INFO_TABLES)]
        assert tables == ["events_daily", "vf_projects", "vf_usage_metrics"]
    finally:
        await conn.close()


BAD_TENANT_ROLES: list[tuple[str, dict[str, Any], int, str]] = [
    (
        "bad name",
        {"name": "Acme", "tenant_column": "tenant_id", "tenant_value": TENANT_A},
        400,
        "invalid_tenant_role_name",
    ),
    ("dash", {"name": "a-b", "tenant_column": "tenant_id", "tenant_value": TENANT_A}, 400, "invalid_tenant_role_name"),
    ("quote", {"name": 'a"b', "tenant_column": "tenant_id", "tenant_value": TENANT_A}, 400, "invalid_tenant_role_name"),
    (
        "too long",
        {"name": "a" * 36, "tenant_column": "tenant_id", "tenant_value": TENANT_A},
        400,
        "invalid_tenant_role_name",
    ),
    ("no name", {"tenant_column": "tenant_id", "tenant_value": TENANT_A}, 400, "invalid_tenant_role_name"),
    ("unknown column", {"name": "t", "tenant_column": "nope", "tenant_value": TENANT_A}, 404, "unknown_column"),
    ("secret column", {"name": "t", "tenant_column": "ip", "tenant_value": "203.0.113.7"}, 404, "unknown_column"),
    ("column not text", {"name": "t", "tenant_column": 1, "tenant_value": TENANT_A}, 400, "invalid_tenant_column"),
    ("not a uuid", {"name": "t", "tenant_column": "tenant_id", "tenant_value": "acme"}, 400, "invalid_tenant_value"),
    ("number for uuid", {"name": "t", "tenant_column": "tenant_id", "tenant_value": 42}, 400, "invalid_tenant_value"),
    (
        "injection",
        {"name": "t", "tenant_column": "tenant_id", "tenant_value": "x' OR true --"},
        400,
        "invalid_tenant_value",
    ),
    ("boolean", {"name": "t", "tenant_column": "tenant_id", "tenant_value": True}, 400, "invalid_tenant_value"),
    ("null", {"name": "t", "tenant_column": "tenant_id", "tenant_value": None}, 400, "invalid_tenant_value"),
    ("object", {"name": "t", "tenant_column": "tenant_id", "tenant_value": {"a": 1}}, 400, "invalid_tenant_value"),
    ("empty", {"name": "t", "tenant_column": "tenant_id", "tenant_value": ""}, 400, "invalid_tenant_value"),
    (
        "extra field",
        {"name": "t", "tenant_column": "tenant_id", "tenant_value": TENANT_A, "where": "true"},
        400,
        "invalid_parameter",
    ),
]


async def test_bad_tenant_roles_are_refused_and_nothing_is_created(seed: SeedProject) -> None:
    status, body = await seed.atlas.admin(
        "POST", f"{seed.base}/tenant-roles", json={"name": "t", "tenant_column": "tenant_id", "tenant_value": TENANT_A}
    )
    assert (status, body["error"]["code"]) == (409, "analytics_disabled")
    await setup_seed_analytics(seed)
    for label, request, want_status, want_code in BAD_TENANT_ROLES:
        status, body = await seed.atlas.admin("POST", f"{seed.base}/tenant-roles", json=request)
        assert (status, body["error"]["code"]) == (want_status, want_code), (label, body)
        assert await leftovers(seed) == ([], []), label
    await create_tenant(seed, "acme", TENANT_A)
    status, body = await seed.atlas.admin(
        "POST",
        f"{seed.base}/tenant-roles",
        json={"name": "acme", "tenant_column": "tenant_id", "tenant_value": TENANT_B},
    )
    assert (status, body["error"]["code"]) == (409, "tenant_role_exists")
    for method, path in (
        ("GET", "tenant-roles/nope"),
        ("DELETE", "tenant-roles/nope"),
        ("POST", "tenant-roles/nope/password"),
    ):
        status, body = await seed.atlas.admin(method, f"{seed.base}/{path}")
        assert (status, body["error"]["code"]) == (404, "tenant_role_not_found"), path
    status, body = await seed.atlas.admin("GET", f"{seed.base}/tenant-roles/Bad-Name")
    assert (status, body["error"]["code"]) == (400, "invalid_tenant_role_name")


async def test_a_quote_in_a_text_value_stays_a_value(seed: SeedProject) -> None:
    await setup_seed_analytics(seed)
    sneaky = await create_tenant(seed, "sneaky", "x' OR true --", column="event_name")
    assert sneaky["views"] == ["events", "events_daily"]
    conn = await connect_as(sneaky["connection"])
    try:
        assert await conn.fetch("SELECT * FROM events") == []
    finally:
        await conn.close()


async def test_tenant_role_lifecycle(seed: SeedProject, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await setup_seed_analytics(seed)
    acme = await create_tenant(seed, "acme", TENANT_A)
    globex = await create_tenant(seed, "globex", TENANT_B)
    password = acme["connection"]["password"]
    status, body = await seed.atlas.admin("GET", f"{seed.base}/tenant-roles")
    assert status == 200 and [t["name"] for t in body["tenant_roles"]] == ["acme", "globex"]
    first = body["tenant_roles"][0]
    assert first["tenant_column"] == "tenant_id" and first["tenant_value"] == TENANT_A and "connection" not in first
    assert password not in str(body)
    # Rotation: the old password stops at once, open sessions end, the new one works.
    session = await connect_as(acme["connection"])
    status, body = await seed.atlas.admin("POST", f"{seed.base}/tenant-roles/acme/password")
    assert status == 200 and set(body) == {"password"}
    rotated = body["password"]
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect_as(acme["connection"])
    with pytest.raises(ENDED):
        await session.fetchval("SELECT 1")
    await session.close()
    conn = await connect_as(acme["connection"], password=rotated)
    assert await conn.fetchval("SELECT count(*) FROM events") == 2
    await conn.close()
    # Deleting one drops its role and schema, not the other's.
    assert (await seed.atlas.admin("DELETE", f"{seed.base}/tenant-roles/acme"))[0] == 204
    assert await leftovers(seed) == ([globex["user"]], ["analytics_globex"])
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
        await connect_as(acme["connection"], password=rotated)
    # Disabling analytics access takes the tenant roles with it.
    assert (await seed.atlas.admin("POST", seed.base, json={"enabled": False}))[0] == 200
    assert await leftovers(seed) == ([], [])
    for secret in (password, rotated, globex["connection"]["password"]):
        assert secret not in caplog.text
    rows = await seed.atlas.daemon.core.store.fetchall("SELECT * FROM audit_logs WHERE project_id = ?", (seed.id,))
    dump = " ".join(str(tuple(r)) for r in rows)
    assert "analytics.tenant_role.create" in dump and "analytics.tenant_role.password.rotate" in dump
    assert password not in dump and rotated not in dump


async def test_deleting_the_project_drops_its_tenant_roles(seed: SeedProject) -> None:
    await setup_seed_analytics(seed)
    acme = await create_tenant(seed, "acme", TENANT_A)
    session = await connect_as(acme["connection"])
    status, _ = await seed.atlas.admin("DELETE", f"/admin/api/projects/{seed.id}", json={"confirm": seed.id})
    assert status == 204
    await session.close()
    admin = await seed.superuser("postgres")
    try:
        found = await admin.fetchval(
            "SELECT count(*) FROM pg_roles WHERE starts_with(rolname, $1)", f"proj_{seed.id}_analytics"
        )
    finally:
        await admin.close()
    assert found == 0
