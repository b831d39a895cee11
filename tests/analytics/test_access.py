"""The analytics role seen from a BI tool: it logs in like Metabase and can read the analytics views only."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from appliance.analytics.service import AnalyticsService, RoleLimits
from tests.analytics.conftest import NEVER_EXPOSABLE, SEED_VIEWS, TENANT_A, SeedProject, connect_as, create_seed_project

ENDED = (asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError, asyncpg.InterfaceError, ConnectionError)
DENIED = (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)

# What Metabase's PostgreSQL driver asks while it syncs a database (schemas, tables, fields).
METABASE_SCHEMAS = """
SELECT nspname FROM pg_catalog.pg_namespace
WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND has_schema_privilege(oid, 'USAGE')
ORDER BY 1
"""
METABASE_TABLES = """
SELECT n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON c.relnamespace = n.oid
WHERE c.relkind IN ('r', 'p', 'v', 'f', 'm')
  AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
  AND has_schema_privilege(n.oid, 'USAGE')
  AND (has_table_privilege(c.oid, 'SELECT') OR has_any_column_privilege(c.oid, 'SELECT'))
ORDER BY 1, 2
"""
INFO_TABLES = """
SELECT table_schema, table_name FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2
"""
INFO_COLUMNS = """
SELECT table_schema, table_name, column_name FROM information_schema.columns
WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, ordinal_position
"""


async def setup_seed_analytics(seed: SeedProject) -> dict[str, Any]:
    status, body = await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": NEVER_EXPOSABLE})
    assert status == 200, body
    connection = await seed.enable()
    for view in SEED_VIEWS:
        status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=view)
        assert status == 201, (view, body)
    return connection


async def test_metabase_sync_sees_only_the_analytics_views(seed: SeedProject) -> None:
    connection = await setup_seed_analytics(seed)
    assert set(connection) == {"host", "port", "database", "user", "password", "sslmode"}
    assert connection["user"] == f"proj_{seed.id}_analytics" and connection["database"] == f"proj_{seed.id}"
    conn = await connect_as(connection)
    try:
        names = sorted(v["name"] for v in SEED_VIEWS)
        assert [r[0] for r in await conn.fetch(METABASE_SCHEMAS)] == ["analytics"]
        assert [tuple(r) for r in await conn.fetch(METABASE_TABLES)] == [("analytics", n) for n in names]
        assert [tuple(r) for r in await conn.fetch(INFO_TABLES)] == [("analytics", n) for n in names]
        columns = {(r[1], r[2]) for r in await conn.fetch(INFO_COLUMNS)}
        assert {t for t, _ in columns} == set(names)
        assert ("events", "ip") not in columns and ("events", "props") not in columns
        # The JDBC driver's getTables() with Metabase's privilege filter, by name.
        by_name = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname IN ('public', 'analytics')"
            " AND has_table_privilege(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'SELECT')"
            " AND n.nspname = 'analytics'"
        )
        assert sorted(r[0] for r in by_name) == names
        assert await conn.fetchval("SHOW search_path") == "analytics"
        assert await conn.fetchval("SHOW default_transaction_read_only") == "on"
    finally:
        await conn.close()


async def test_views_return_the_safe_columns_and_nothing_else(seed: SeedProject) -> None:
    conn = await connect_as(await setup_seed_analytics(seed))
    try:
        events = await conn.fetch("SELECT * FROM events ORDER BY id")
        assert list(events[0].keys()) == ["id", "tenant_id", "event_name", "occurred_at"]
        assert len(events) == 3
        usage = await conn.fetch("SELECT * FROM vf_usage_metrics ORDER BY id")
        assert list(usage[0].keys()) == [
            "id",
            "tenant_id",
            "vf_project_id",
            "metric",
            "period_start",
            "sessions",
            "messages",
            "tokens",
        ]
        assert (usage[0]["sessions"], usage[0]["messages"], usage[0]["tokens"]) == (12, 80, 5000)
        pulls = await conn.fetch("SELECT * FROM vf_pulls_status ORDER BY id")
        assert [r["status"] for r in pulls] == ["ok", "failed"]
        assert "error_detail" not in pulls[0].keys() and "rows_pulled" not in pulls[0].keys()
        daily = await conn.fetch("SELECT * FROM events_daily WHERE tenant_id = $1::uuid", TENANT_A)
        assert [(r["event_name"], r["events"]) for r in daily] == [("page_view", 2)]
        rows = [r for view in SEED_VIEWS for r in await conn.fetch(f'SELECT * FROM "{view["name"]}"')]
        everything = " ".join(str(tuple(r)) for r in rows)
        for secret in ("SECRET-VF-KEY", "SECRET-TOKEN-HASH", "203.0.113.7", "Mozilla"):
            assert secret not in everything
        relopts = await conn.fetchval("SELECT reloptions FROM pg_class WHERE relname = 'events'")
        assert relopts == ["security_barrier=true"]
    finally:
        await conn.close()


FORBIDDEN_SQL = [
    "SELECT * FROM public.events_raw",
    "SELECT * FROM public.vf_credentials",
    "SELECT * FROM public.event_write_tokens",
    "SELECT * FROM atlas.platform_migrations",
    "SELECT auth.uid()",
    "SELECT pg_read_file('postgresql.conf')",
    "SELECT * FROM pg_catalog.pg_authid",
    "CREATE TABLE analytics.x (id int)",
    "CREATE TABLE public.x (id int)",
    "CREATE TEMP TABLE x (id int)",
    "CREATE VIEW analytics.v AS SELECT 1",
    "CREATE FUNCTION analytics.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE SCHEMA mine",
    "INSERT INTO events (tenant_id, event_name, occurred_at) VALUES (gen_random_uuid(), 'x', now())",
    "UPDATE events SET event_name = 'x'",
    "DELETE FROM tenants",
    "BEGIN READ WRITE; DELETE FROM events",
    "SET default_transaction_read_only = off; DELETE FROM events",
    "ALTER VIEW events RENAME TO e",
    "DROP VIEW events",
    "GRANT SELECT ON events TO PUBLIC",
    "SET ROLE postgres",
]


async def test_everything_but_reading_views_is_denied(seed: SeedProject) -> None:
    connection = await setup_seed_analytics(seed)
    for sql in FORBIDDEN_SQL:
        conn = await connect_as(connection)
        try:
            with pytest.raises(DENIED):
                await conn.execute(sql)
        except BaseException as exc:
            raise AssertionError(f"not denied: {sql}") from exc
        finally:
            await conn.close()
    admin = await seed.superuser()
    try:
        assert await admin.fetchval("SELECT count(*) FROM events_raw") == 3
        assert await admin.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'mine'") == 0
        assert await admin.fetchval("SELECT count(*) FROM pg_class WHERE relname IN ('x', 'v', 'e')") == 0
    finally:
        await admin.close()


async def test_other_databases_are_out_of_reach(seed: SeedProject) -> None:
    connection = await setup_seed_analytics(seed)
    other = await create_seed_project(seed.atlas, seed.pg, "Other")
    for database in (f"proj_{other.id}", "postgres", "template1"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connect_as(connection, database=database)


async def test_long_queries_are_cancelled(seed: SeedProject) -> None:
    seed.atlas.daemon.core.service(AnalyticsService).limits = RoleLimits(statement_timeout="1s")
    conn = await connect_as(await seed.enable())
    try:
        assert await conn.fetchval("SHOW statement_timeout") == "1s"
        with pytest.raises(asyncpg.QueryCanceledError):
            await conn.fetchval("SELECT count(*) FROM generate_series(1, 1000000000)")
    finally:
        await conn.close()


async def test_other_sessions_queries_are_hidden(seed: SeedProject) -> None:
    conn = await connect_as(await seed.enable())
    owner = await seed.superuser()
    try:
        marker = "SELECT 'secret-marker', pg_sleep(3)"
        running = asyncio.ensure_future(owner.fetch(marker))
        await asyncio.sleep(0.5)
        queries = [r[0] for r in await conn.fetch("SELECT query FROM pg_stat_activity")]
        assert not any("secret-marker" in (q or "") for q in queries)
        assert "<insufficient privilege>" in queries
        await running
    finally:
        await owner.close()
        await conn.close()


async def test_rotation_stops_the_old_password_at_once(seed: SeedProject) -> None:
    connection = await seed.enable()
    session = await connect_as(connection)
    status, body = await seed.atlas.admin("POST", f"{seed.base}/password")
    assert status == 200 and set(body) == {"password"} and body["password"] != connection["password"]
    with pytest.raises(asyncpg.InvalidPasswordError):
        await connect_as(connection)
    with pytest.raises(ENDED):
        await session.fetchval("SELECT 1")
    await session.close()
    conn = await connect_as(connection, password=body["password"])
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()


async def test_disable_drops_role_and_schema_and_enable_again_works(seed: SeedProject) -> None:
    connection = await setup_seed_analytics(seed)
    session = await connect_as(connection)
    status, body = await seed.atlas.admin("POST", seed.base, json={"enabled": False})
    assert status == 200 and body == {"connection": None}
    admin = await seed.superuser()
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", connection["user"]) == 0
        assert await admin.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'analytics'") == 0
    finally:
        await admin.close()
    with pytest.raises(ENDED):
        await session.fetchval("SELECT 1")
    await session.close()
    status, body = await seed.atlas.admin("GET", seed.base)
    assert status == 200
    assert body == {"enabled": False, "connection": None, "views": [], "never_exposable": NEVER_EXPOSABLE}
    again = await seed.enable()
    assert again["password"] != connection["password"]
    conn = await connect_as(again)
    assert await conn.fetch(INFO_TABLES) == []
    await conn.close()
    # Deleting the project removes the analytics role with everything else.
    status, _ = await seed.atlas.admin("DELETE", f"/admin/api/projects/{seed.id}", json={"confirm": seed.id})
    assert status == 204
    admin = await seed.superuser("postgres")
    try:
        assert await admin.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", again["user"]) == 0
    finally:
        await admin.close()
