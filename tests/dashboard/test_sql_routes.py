"""The SQL editor endpoint against real PostgreSQL: deny rules, results, the row cap, the timeout,
error positions, and that it runs only in the project's own database as its owner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appliance import audit
from appliance.pg.embedded import EmbeddedPostgres
from tests.dashboard.test_sqlguard import DENIED
from tests.fixtures.daemon import RunningDaemon, running_daemon

ROLES = {"roles": ("gateway", "dashboard")}


@pytest.fixture
async def atlas(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path / "state", pg, node=ROLES) as running:
        yield running


@pytest.fixture
async def project(atlas: RunningDaemon) -> str:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "sql"})
    assert status == 201, body
    return str(body["id"])


async def run(atlas: RunningDaemon, project: str, sql: Any) -> tuple[int, Any]:
    return await atlas.admin("POST", f"/admin/api/projects/{project}/sql", json={"sql": sql})


async def ok(atlas: RunningDaemon, project: str, sql: str) -> dict[str, Any]:
    status, body = await run(atlas, project, sql)
    assert status == 200, body
    return body


async def test_every_deny_rule_is_refused_before_it_runs(atlas: RunningDaemon, project: str, tmp_path: Path) -> None:
    await ok(atlas, project, "CREATE TABLE t (id int PRIMARY KEY, name text)")
    await ok(atlas, project, "INSERT INTO t VALUES (1, 'one')")
    for case, sql, rule in DENIED:
        sql = sql.replace("/tmp/out.csv", str(tmp_path / "out.csv"))
        status, body = await run(atlas, project, sql)
        assert status == 400, (case, body)
        assert body["error"]["code"] == "sql_rejected" and body["error"]["details"]["rule"] == rule, (case, body)
    assert not (tmp_path / "out.csv").exists()
    # Nothing of the refused statements happened.
    body = await ok(
        atlas, project, "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM pg_proc WHERE proname = 'f')"
    )
    assert body["rows"] == [[1, 0]]
    entries, _ = await audit.entries(atlas.daemon.core.store, project_id=project, limit=500)
    refused = [e for e in entries if e["action"] == "sql.run" and e["outcome"] == "failure"]
    assert len(refused) == len(DENIED)
    assert all(e["details"]["error"] == "sql_rejected" and e["details"]["rule"] for e in refused)


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT 'a;b' AS x;", [["a;b"]]),
        ("/* DROP DATABASE x; */ SELECT 1 AS one -- DROP DATABASE y;", [[1]]),
        ("SELECT $q$DO $$ BEGIN PERFORM 1; END $$$q$ AS s", [["DO $$ BEGIN PERFORM 1; END $$"]]),
        ("SELECT 'pg_read_file(''/etc/passwd'')' AS s", [["pg_read_file('/etc/passwd')"]]),
    ],
)
async def test_tricks_that_are_harmless_run(
    atlas: RunningDaemon, project: str, sql: str, rows: list[list[Any]]
) -> None:
    assert (await ok(atlas, project, sql))["rows"] == rows


async def test_runs_only_in_the_projects_database_as_its_owner(atlas: RunningDaemon, project: str) -> None:
    body = await ok(atlas, project, "SELECT current_database() AS db, current_user AS who")
    assert body["rows"] == [[f"proj_{project}", f"proj_{project}_owner"]]
    status, body = await run(atlas, project, "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS r(x int)")
    assert status == 400 and body["error"]["details"]["rule"] == "cross_database"
    status, body = await run(atlas, "zzzzzzzzzzzz", "SELECT 1")
    assert (status, body["error"]["code"]) == (404, "project_not_found")


async def test_result_shape_and_json_safe_values(atlas: RunningDaemon, project: str) -> None:
    sql = (
        "SELECT 1.50::numeric AS n, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,"
        " '2024-05-01 12:00:00+00'::timestamptz AS at, '\\xdead'::bytea AS b, '{\"k\": [1]}'::jsonb AS j,"
        " 9007199254740993::bigint AS big, 'NaN'::float8 AS nan, ARRAY[1, 2] AS arr, NULL::text AS nothing,"
        " '1 day'::interval AS span, true AS yes, '10.0.0.1'::inet AS ip"
    )
    body = await ok(atlas, project, sql)
    assert set(body) == {"columns", "rows", "rowCount", "truncated", "durationMs", "command"}
    assert [c["name"] for c in body["columns"]][:4] == ["n", "u", "at", "b"]
    assert {c["name"]: c["type"] for c in body["columns"]}["u"] == "uuid"
    assert body["rows"] == [
        [
            "1.50",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "2024-05-01T12:00:00+00:00",
            "\\xdead",
            '{"k": [1]}',
            "9007199254740993",
            "NaN",
            [1, 2],
            None,
            "1 day, 0:00:00",
            True,
            "10.0.0.1",
        ]
    ]
    assert body["rowCount"] == 1 and body["truncated"] is False and body["durationMs"] >= 0
    json.dumps(body, allow_nan=False)


async def test_statements_without_rows_commit_and_report_counts(atlas: RunningDaemon, project: str) -> None:
    body = await ok(atlas, project, "CREATE TABLE notes (id serial PRIMARY KEY, body text)")
    assert body["columns"] == [] and body["rows"] == [] and body["command"] == "CREATE TABLE"
    body = await ok(atlas, project, "INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 3) g")
    assert (body["rowCount"], body["command"]) == (3, "INSERT 0 3")
    body = await ok(atlas, project, "UPDATE notes SET body = upper(body) WHERE id < 3 RETURNING id")
    assert body["rows"] == [[1], [2]] and body["rowCount"] == 2
    # A failing statement rolls back entirely.
    status, body = await run(atlas, project, "INSERT INTO notes (id, body) VALUES (10, 'x'), (1, 'dup')")
    assert (status, body["error"]["code"]) == (400, "sql_error")
    assert body["error"]["details"]["sqlstate"] == "23505"
    assert (await ok(atlas, project, "SELECT count(*) FROM notes"))["rows"] == [[3]]


async def test_rows_are_capped_at_5000(atlas: RunningDaemon, project: str) -> None:
    body = await ok(atlas, project, "SELECT g FROM generate_series(1, 6000) AS g")
    assert (len(body["rows"]), body["rowCount"], body["truncated"]) == (5000, 5000, True)
    assert body["rows"][-1] == [5000]
    body = await ok(atlas, project, "SELECT g FROM generate_series(1, 5000) AS g")
    assert (len(body["rows"]), body["truncated"]) == (5000, False)


async def test_error_message_and_position(atlas: RunningDaemon, project: str) -> None:
    await ok(atlas, project, "CREATE TABLE t (id int)")
    sql = "-- find it\nSELECT id, missing_col FROM t"
    status, body = await run(atlas, project, sql)
    assert (status, body["error"]["code"]) == (400, "sql_error")
    assert "missing_col" in body["error"]["message"]
    assert body["error"]["details"]["position"] == sql.index("missing_col") + 1
    status, body = await run(atlas, project, "SELECT FROM WHERE")
    assert status == 400 and body["error"]["code"] == "sql_syntax_error"
    for bad in (None, 5, ["SELECT 1"]):
        status, body = await run(atlas, project, bad)
        assert (status, body["error"]["code"]) == (400, "invalid_body")


async def test_timeout_cancels_and_the_connection_stays_usable(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_daemon(tmp_path / "state", pg, dashboard={"sql_timeout_ms": 1000}) as atlas:
        status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "timeouts"})
        assert status == 201
        await _timeout_scenario(atlas, body["id"])


async def _timeout_scenario(atlas: RunningDaemon, project: str) -> None:
    # A session-level SET from an earlier request must not outlive it (the pool resets connections).
    await ok(atlas, project, "SET statement_timeout = 0")
    status, body = await run(atlas, project, "SELECT count(*) FROM generate_series(1, 2000000000)")
    assert (status, body["error"]["code"]) == (400, "sql_timeout")
    assert "1 s" in body["error"]["message"]
    status, body = await run(atlas, project, "SELECT pg_sleep(2)")  # longer than the timeout: refused up front
    assert status == 400 and body["error"]["details"]["rule"] == "sleep"
    assert (await ok(atlas, project, "SELECT 1"))["rows"] == [[1]]


async def test_audit_keeps_a_hash_not_the_text(atlas: RunningDaemon, project: str) -> None:
    sql = "SELECT 'hunter2-marker' AS secretish"
    await ok(atlas, project, sql)
    entries, _ = await audit.entries(atlas.daemon.core.store, project_id=project)
    entry = next(e for e in entries if e["action"] == "sql.run")
    assert entry["actor"] == "dev" and entry["outcome"] == "success"
    assert entry["details"]["kind"] == "SelectStmt" and entry["details"]["rowCount"] == 1
    assert entry["details"]["sql_length"] == len(sql) and len(entry["details"]["sql_sha256"]) == 64
    assert "hunter2" not in json.dumps(entries)
