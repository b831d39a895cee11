"""Table import/export through the admin API: CSV and JSON, mapping, upsert, all-or-nothing errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.backups.conftest import create_project, project_conn
from tests.fixtures.daemon import RunningDaemon

PEOPLE = """
CREATE TABLE people (id integer PRIMARY KEY, name text NOT NULL, age integer, joined date, tags jsonb);
INSERT INTO people VALUES (1, 'Ada', 36, '2024-01-02', '["a"]'), (2, 'Linus', NULL, NULL, NULL);
"""


async def rows(pg: EmbeddedPostgres, pid: str) -> list[tuple]:
    conn = await project_conn(pg, pid)
    try:
        return [tuple(r) for r in await conn.fetch("SELECT id, name, age FROM people ORDER BY id")]
    finally:
        await conn.close()


async def test_export_csv_and_json(atlas: RunningDaemon) -> None:
    pid = await create_project(atlas, schema=PEOPLE)
    status, body = await atlas.admin("GET", f"/admin/api/projects/{pid}/tables/people/export?format=csv")
    assert status == 200
    parsed = list(csv.reader(io.StringIO(body.decode())))
    assert parsed[0] == ["id", "name", "age", "joined", "tags"]
    assert parsed[1][:3] == ["1", "Ada", "36"] and parsed[2][2] == ""
    status, body = await atlas.admin("GET", f"/admin/api/projects/{pid}/tables/people/export?format=json")
    assert status == 200
    assert body[0] == {"id": 1, "name": "Ada", "age": 36, "joined": "2024-01-02", "tags": ["a"]}
    assert len(body) == 2
    status, body = await atlas.admin("GET", f"/admin/api/projects/{pid}/tables/nope/export?format=csv")
    assert (status, body["error"]["code"]) == (404, "table_not_found")


async def test_import_csv_with_mapping_and_upsert(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = await create_project(atlas, schema=PEOPLE)
    url = f"/admin/api/projects/{pid}/tables/people/import"
    data = 'ident,full name,years,ignored\n3,Grace,85,x\n4,"Hopper, G.",,y\n'
    mapping = json.dumps({"ident": "id", "full name": "name", "years": "age", "ignored": None})
    status, body = await atlas.admin("POST", url, params={"format": "csv", "columns": mapping}, data=data.encode())
    assert (status, body) == (200, {"inserted": 2, "updated": 0})
    upsert = json.dumps([{"id": 1, "name": "Ada L.", "age": 37}, {"id": 5, "name": "Barbara", "age": None}])
    status, body = await atlas.admin("POST", url, params={"format": "json", "mode": "upsert"}, data=upsert.encode())
    assert (status, body) == (200, {"inserted": 1, "updated": 1})
    assert await rows(pg, pid) == [
        (1, "Ada L.", 37),
        (2, "Linus", None),
        (3, "Grace", 85),
        (4, "Hopper, G.", None),
        (5, "Barbara", None),
    ]


@pytest.mark.parametrize(
    ("body", "fmt", "row", "column"),
    [
        ("id,name,age\n10,A,1\n11,B,2\n12,C,old\n", "csv", 3, "age"),
        ("id,name,age\n10,A,1\n11,,2\n", "csv", 2, "name"),
        ('[{"id": 10, "name": "A"}, {"id": 1, "name": "dup"}]', "json", 2, None),
        ('[{"id": 10, "name": "A", "joined": "yesterday-ish"}]', "json", 1, "joined"),
    ],
    ids=["bad-integer", "not-null", "duplicate-key", "bad-date"],
)
async def test_import_errors_name_the_row_and_leave_nothing(
    atlas: RunningDaemon, pg: EmbeddedPostgres, body: str, fmt: str, row: int, column: str | None
) -> None:
    pid = await create_project(atlas, schema=PEOPLE)
    before = await rows(pg, pid)
    status, got = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/tables/people/import", params={"format": fmt}, data=body.encode()
    )
    assert (status, got["error"]["code"]) == (422, "import_failed"), got
    assert got["error"]["details"]["row"] == row
    if column:
        assert got["error"]["details"]["column"] == column
        assert f"column '{column}'" in got["error"]["message"]
    assert f"row {row}" in got["error"]["message"]
    assert await rows(pg, pid) == before, "all or nothing"


async def test_import_is_all_or_nothing_when_the_connection_dies(atlas: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = await create_project(atlas, schema=PEOPLE)
    big = "id,name,age\n" + "".join(f"{i},p{i},{i % 90}\n" for i in range(100, 200_100))
    conn = await project_conn(pg, pid)
    # Row 150000 stalls the INSERT, so the connection surely dies in the middle of it.
    await conn.execute(
        "CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN IF NEW.id = 150000 THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER stall BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION stall()"
    )
    try:

        async def kill_import() -> None:
            for _ in range(3000):
                killed = await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND wait_event = 'PgSleep'"
                )
                if killed:
                    return
                await asyncio.sleep(0.01)

        killer = asyncio.create_task(kill_import())
        status, got = await atlas.admin(
            "POST", f"/admin/api/projects/{pid}/tables/people/import", params={"format": "csv"}, data=big.encode()
        )
        await killer
    finally:
        await conn.close()
    assert status >= 400, got
    assert await rows(pg, pid) == [(1, "Ada", 36), (2, "Linus", None)]


@pytest.mark.parametrize(
    ("params", "body", "status", "code"),
    [
        ({"format": "xml"}, b"x", 400, "invalid_parameter"),
        ({"format": "csv", "mode": "merge"}, b"id\n1\n", 400, "invalid_parameter"),
        ({"format": "csv"}, b"id,nope\n1,2\n", 400, "unknown_column"),
        ({"format": "csv", "columns": "[1]"}, b"id\n1\n", 400, "invalid_parameter"),
        ({"format": "csv"}, b"id,name\n1\n", 400, "invalid_file"),
        ({"format": "json"}, b"{not json", 400, "invalid_file"),
        ({"format": "json", "mode": "upsert"}, b'[{"name": "x"}]', 400, "invalid_column"),
    ],
    ids=["format", "mode", "unknown-column", "bad-mapping", "ragged-csv", "bad-json", "upsert-without-pk"],
)
async def test_bad_import_requests(atlas: RunningDaemon, params: dict, body: bytes, status: int, code: str) -> None:
    pid = await create_project(atlas, schema=PEOPLE)
    got_status, got = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/tables/people/import", params=params, data=body
    )
    assert (got_status, got["error"]["code"]) == (status, code)


async def test_import_size_limit_and_sql_export(tmp_path, pg: EmbeddedPostgres) -> None:
    from tests.fixtures.daemon import running_daemon

    async with running_daemon(tmp_path / "state", pg, backups={"max_import_bytes": 100}) as atlas:
        pid = await create_project(atlas, schema=PEOPLE)
        status, got = await atlas.admin(
            "POST", f"/admin/api/projects/{pid}/tables/people/import", params={"format": "csv"}, data=b"id,name\n" * 50
        )
        assert (status, got["error"]["code"]) == (413, "payload_too_large")
        status, dump = await atlas.admin("GET", f"/admin/api/projects/{pid}/export.sql")
        assert status == 200
        assert b"CREATE TABLE public.people" in dump and b"Linus" in dump
