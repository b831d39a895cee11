"""The analytics admin API: request scenarios (method, URL, body → status, code), nothing created on refusal."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.analytics.conftest import NEVER_EXPOSABLE, SeedProject, connect_as

EVENTS = {"name": "events", "table": "events_raw", "columns": ["id", "event_name"]}

# body → (status, error code); each is refused and leaves the analytics schema empty.
BAD_VIEWS: list[tuple[str, dict[str, Any], int, str]] = [
    ("secret table", {"name": "v", "table": "vf_credentials", "columns": ["id"]}, 400, "never_exposable"),
    ("secret table in sql", {"name": "v", "sql": "SELECT id FROM vf_credentials"}, 400, "never_exposable"),
    (
        "secret in a join",
        {"name": "v", "sql": "SELECT e.id FROM events_raw e JOIN event_write_tokens t ON t.id = e.write_token_id"},
        400,
        "never_exposable",
    ),
    (
        "secret in a filter",
        {
            "name": "v",
            "table": "vf_projects",
            "columns": ["id"],
            "where": "id IN (SELECT vf_project_id FROM vf_credentials)",
        },
        400,
        "never_exposable",
    ),
    ("not a select", {"name": "v", "sql": "DELETE FROM events_raw"}, 400, "sql_rejected"),
    ("multi statement", {"name": "v", "sql": "SELECT 1; SELECT 2"}, 400, "sql_rejected"),
    (
        "data-modifying cte",
        {"name": "v", "sql": "WITH d AS (DELETE FROM tenants RETURNING id) SELECT id FROM d"},
        400,
        "sql_rejected",
    ),
    ("function", {"name": "v", "sql": "SELECT pg_sleep(10)"}, 400, "sql_rejected"),
    ("file read", {"name": "v", "sql": "SELECT pg_read_file('/etc/passwd')"}, 400, "sql_rejected"),
    (
        "function in where",
        {"name": "v", "table": "tenants", "columns": ["id"], "where": "pg_sleep(1) IS NULL"},
        400,
        "sql_rejected",
    ),
    (
        "union in where",
        {"name": "v", "table": "tenants", "columns": ["id"], "where": "true UNION SELECT id FROM vf_projects"},
        400,
        "invalid_view",
    ),
    (
        "statement in where",
        {"name": "v", "table": "tenants", "columns": ["id"], "where": "true; DROP TABLE tenants"},
        400,
        "sql_rejected",
    ),
    ("comment in where", {"name": "v", "table": "tenants", "columns": ["id"], "where": "true --"}, 201, ""),
    ("catalog", {"name": "v", "sql": "SELECT rolname, rolpassword FROM pg_authid"}, 400, "sql_rejected"),
    ("other schema", {"name": "v", "sql": "SELECT * FROM atlas.platform_migrations"}, 400, "sql_rejected"),
    ("other database", {"name": "v", "sql": "SELECT * FROM otherdb.public.tenants"}, 400, "sql_rejected"),
    ("syntax", {"name": "v", "sql": "SELEC 1"}, 400, "sql_syntax_error"),
    ("unknown table", {"name": "v", "table": "nope", "columns": ["id"]}, 404, "unknown_table"),
    ("unknown table in sql", {"name": "v", "sql": "SELECT id FROM nope"}, 404, "unknown_table"),
    ("unknown column", {"name": "v", "table": "tenants", "columns": ["id", "secret"]}, 404, "unknown_column"),
    ("unknown column in sql", {"name": "v", "sql": "SELECT secret FROM tenants"}, 404, "unknown_column"),
    ("bad name", {"name": "Bad-Name", "table": "tenants", "columns": ["id"]}, 400, "invalid_view_name"),
    ("quote in name", {"name": 'a"b', "table": "tenants", "columns": ["id"]}, 400, "invalid_view_name"),
    ("no name", {"table": "tenants", "columns": ["id"]}, 400, "invalid_view_name"),
    ("no columns", {"name": "v", "table": "tenants", "columns": []}, 400, "invalid_view"),
    ("columns not strings", {"name": "v", "table": "tenants", "columns": [1]}, 400, "invalid_view"),
    ("both forms", {"name": "v", "table": "tenants", "columns": ["id"], "sql": "SELECT 1"}, 400, "invalid_view"),
]


async def test_views_need_analytics_enabled(seed: SeedProject) -> None:
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=EVENTS)
    assert (status, body["error"]["code"]) == (409, "analytics_disabled")
    status, body = await seed.atlas.admin("POST", f"{seed.base}/password")
    assert (status, body["error"]["code"]) == (409, "analytics_disabled")
    status, body = await seed.atlas.admin("GET", seed.base)
    assert status == 200 and body == {"enabled": False, "connection": None, "views": [], "never_exposable": []}
    status, body = await seed.atlas.admin("GET", "/admin/api/projects/zzzzzzzzzzzz/analytics")
    assert (status, body["error"]["code"]) == (404, "project_not_found")


async def test_bad_views_are_refused_and_nothing_is_created(seed: SeedProject) -> None:
    status, _ = await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": NEVER_EXPOSABLE})
    assert status == 200
    await seed.enable()
    admin = await seed.superuser()
    try:
        for label, view, want_status, want_code in BAD_VIEWS:
            status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=view)
            assert status == want_status, (label, body)
            if status == 201:
                assert (await seed.atlas.admin("DELETE", f"{seed.base}/views/{view['name']}"))[0] == 204
                continue
            assert body["error"]["code"] == want_code, (label, body)
            assert "SECRET" not in str(body)
            left = await admin.fetch("SELECT relname FROM pg_class WHERE relnamespace = 'analytics'::regnamespace")
            assert left == [], label
    finally:
        await admin.close()
    status, body = await seed.atlas.admin("GET", f"{seed.base}/views")
    assert status == 200 and body == {"views": []}


async def test_user_operators_and_views_over_secrets_are_caught_by_the_catalog(seed: SeedProject) -> None:
    """What the parser cannot judge: a public view reading a secret table, a user-defined operator."""
    sql = (
        "CREATE VIEW public.leaky AS SELECT api_key_encrypted FROM vf_credentials;\n"
        "CREATE FUNCTION public.peek(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT $1 = $2';\n"
        "CREATE OPERATOR public.=== (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.peek);\n"
    )
    migrations = {"migrations": [{"name": "0003_tricks.sql", "sql": sql}]}
    assert (await seed.atlas.admin("POST", f"/admin/api/projects/{seed.id}/migrations", json=migrations))[0] == 200
    await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": NEVER_EXPOSABLE})
    await seed.enable()
    status, body = await seed.atlas.admin(
        "POST", f"{seed.base}/views", json={"name": "v", "sql": "SELECT * FROM leaky"}
    )
    assert (status, body["error"]["code"]) == (400, "never_exposable")
    view = {"name": "v", "sql": "SELECT id FROM tenant_domains WHERE id === 1"}
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=view)
    assert (status, body["error"]["code"]) == (400, "function_not_allowed")


async def test_view_lifecycle(seed: SeedProject) -> None:
    connection = await seed.enable()
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=EVENTS)
    assert status == 201 and body["name"] == "events" and body["columns"] == ["id", "event_name"]
    status, body = await seed.atlas.admin("POST", f"{seed.base}/views", json=EVENTS)
    assert (status, body["error"]["code"]) == (409, "view_exists")
    status, body = await seed.atlas.admin("GET", f"{seed.base}/views/events")
    assert status == 200 and body["table"] == "events_raw" and body["where"] is None
    status, body = await seed.atlas.admin("GET", seed.base)
    assert body["enabled"] is True and [v["name"] for v in body["views"]] == ["events"]
    assert set(body["connection"]) == {"host", "port", "database", "user", "sslmode"}
    # The table is in use: it cannot become never-exposable until the view goes.
    status, body = await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": ["events_raw"]})
    assert (status, body["error"]["code"]) == (409, "table_in_use") and body["error"]["details"]["views"] == ["events"]
    status, body = await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": ["nope"]})
    assert (status, body["error"]["code"]) == (404, "unknown_table")
    status, body = await seed.atlas.admin("PUT", f"{seed.base}/never-exposable", json={"tables": "vf_credentials"})
    assert (status, body["error"]["code"]) == (400, "invalid_tables")
    conn = await connect_as(connection)
    try:
        assert len(await conn.fetch("SELECT * FROM events")) == 3
        assert (await seed.atlas.admin("DELETE", f"{seed.base}/views/events"))[0] == 204
        assert (
            await conn.fetch("SELECT table_name FROM information_schema.tables WHERE table_schema = 'analytics'") == []
        )
    finally:
        await conn.close()
    status, body = await seed.atlas.admin("DELETE", f"{seed.base}/views/events")
    assert (status, body["error"]["code"]) == (404, "view_not_found")
    status, body = await seed.atlas.admin("POST", seed.base, json={"enabled": True})
    assert (status, body["error"]["code"]) == (409, "analytics_already_enabled")
    status, body = await seed.atlas.admin("POST", seed.base, json={"enabled": "yes"})
    assert (status, body["error"]["code"]) == (400, "invalid_parameter")
    entries = await seed.atlas.daemon.core.store.fetchall(
        "SELECT action FROM audit_logs WHERE project_id = ? AND action LIKE 'analytics.%' ORDER BY id", (seed.id,)
    )
    assert [r["action"] for r in entries] == ["analytics.enable", "analytics.view.create", "analytics.view.delete"]


async def test_the_password_is_never_logged_nor_stored_in_clear(
    seed: SeedProject, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = (await seed.enable())["password"]
    status, body = await seed.atlas.admin("POST", f"{seed.base}/password")
    assert status == 200
    rotated = body["password"]
    status, body = await seed.atlas.admin("GET", seed.base)
    assert password not in str(body) and rotated not in str(body)
    assert password not in caplog.text and rotated not in caplog.text
    store = seed.atlas.daemon.core.store
    rows = [*await store.fetchall("SELECT * FROM analytics_access"), *await store.fetchall("SELECT * FROM audit_logs")]
    dump = " ".join(str(tuple(r)) for r in rows)
    assert password not in dump and rotated not in dump
    admin = await seed.superuser()
    try:
        stored = await admin.fetchval(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1", f"proj_{seed.id}_analytics"
        )
    finally:
        await admin.close()
    assert stored.startswith("SCRAM-SHA-256$") and rotated not in stored
