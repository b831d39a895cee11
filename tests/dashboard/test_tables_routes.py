"""The table browser against real PostgreSQL: listing, pages, sorting, totals, and names it refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon

ROLES = {"roles": ("gateway", "dashboard")}


@pytest.fixture
async def atlas(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path / "state", pg, node=ROLES) as running:
        yield running


@pytest.fixture
async def project(atlas: RunningDaemon) -> str:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "tables"})
    assert status == 201, body
    pid = str(body["id"])
    for sql in (
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(8,2))",
        "INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 120) g",
        "CREATE SCHEMA shop",
        'CREATE TABLE shop."we""ird" ("a b" text, n int)',
        "INSERT INTO shop.\"we\"\"ird\" VALUES ('x', 2), ('y', 1), (NULL, 3)",
        "CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10",
    ):
        status, body = await atlas.admin("POST", f"/admin/api/projects/{pid}/sql", json={"sql": sql})
        assert status == 200, (sql, body)
    return pid


async def rows(atlas: RunningDaemon, project: str, table: str, **query: Any) -> tuple[int, Any]:
    return await atlas.admin("GET", f"/admin/api/projects/{project}/tables/{table}/rows", params=query)


async def test_lists_user_tables_only(atlas: RunningDaemon, project: str) -> None:
    status, body = await atlas.admin("GET", f"/admin/api/projects/{project}/tables")
    assert status == 200
    found = {(t["schema"], t["name"]): t for t in body["tables"]}
    assert set(found) == {("public", "items"), ("public", "cheap"), ("shop", 'we"ird')}
    assert found[("public", "items")]["kind"] == "table"
    assert found[("public", "cheap")] == {"schema": "public", "name": "cheap", "kind": "view", "estimated_rows": None}


async def test_pages_sorting_and_totals(atlas: RunningDaemon, project: str) -> None:
    status, body = await rows(atlas, project, "items", limit=10, offset=20)
    assert status == 200, body
    assert body["columns"] == [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "text"},
        {"name": "price", "type": "numeric(8,2)"},
    ]
    assert [r[0] for r in body["rows"]] == list(range(21, 31))  # primary-key order by default
    assert body["rows"][0] == [21, "item 21", "31.50"]
    assert (body["total"], body["total_exact"]) == (120, True)
    status, body = await rows(atlas, project, "items", limit=3, order="price.desc")
    assert [r[0] for r in body["rows"]] == [120, 119, 118]
    status, body = await rows(atlas, project, 'we"ird', schema="shop", order="a b.asc")
    assert status == 200, body
    assert body["rows"] == [["x", 2], ["y", 1], [None, 3]] and body["total"] == 3
    status, body = await rows(atlas, project, "cheap", order="id.desc", limit=2)
    assert body["rows"] == [[6, "item 6"], [5, "item 5"]]


@pytest.mark.parametrize(
    ("table", "query", "status", "code"),
    [
        ("nope", {}, 404, "table_not_found"),
        ("items", {"schema": "shop"}, 404, "table_not_found"),
        ("platform_migrations", {"schema": "atlas"}, 404, "table_not_found"),
        ("pg_authid", {"schema": "pg_catalog"}, 404, "table_not_found"),
        ("items", {"order": "missing.asc"}, 400, "invalid_parameter"),
        ("items", {"order": "id.sideways"}, 400, "invalid_parameter"),
        ("items", {"order": "id; DROP TABLE items.asc"}, 400, "invalid_parameter"),
        ("items", {"limit": "501"}, 400, "invalid_parameter"),
        ("items", {"limit": "0"}, 400, "invalid_parameter"),
        ("items", {"offset": "-1"}, 400, "invalid_parameter"),
    ],
)
async def test_refused_requests(
    atlas: RunningDaemon, project: str, table: str, query: dict[str, str], status: int, code: str
) -> None:
    got, body = await rows(atlas, project, table, **query)
    assert (got, body["error"]["code"]) == (status, code), body
    _, check = await atlas.admin(
        "POST", f"/admin/api/projects/{project}/sql", json={"sql": "SELECT count(*) FROM items"}
    )
    assert check["rows"] == [[120]]


async def test_unknown_project(atlas: RunningDaemon) -> None:
    status, body = await atlas.admin("GET", "/admin/api/projects/zzzzzzzzzzzz/tables")
    assert (status, body["error"]["code"]) == (404, "project_not_found")
