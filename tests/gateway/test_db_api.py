"""`/v1/db` end to end against real PostgreSQL: table-driven request scenarios per key type."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fixtures.daemon import RunningDaemon

SCHEMA = """
CREATE TABLE items (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    qty integer NOT NULL DEFAULT 0 CHECK (qty >= 0),
    price numeric(10, 2),
    tags text[],
    meta jsonb,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z',
    ref uuid
);
CREATE TABLE secrets (id int PRIMARY KEY, value text);
GRANT SELECT ON items TO {anon};
"""

SEED = [
    {"name": "apple", "qty": 5, "price": "1.50", "tags": ["fruit", "red"], "meta": {"k": 1}, "active": True},
    {"name": "banana", "qty": 12, "price": "0.25", "tags": ["fruit"], "meta": None, "active": True},
    {"name": "carrot", "qty": 0, "price": "0.10", "tags": ["veg"], "active": False},
    {"name": "dates, dried", "qty": 3, "price": "4.00", "ref": "0b6f6d1c-7b5e-4a4c-9d55-111111111111"},
]


@dataclass
class Project:
    id: str
    publishable: str
    secret: str


@pytest.fixture
async def project(atlas: RunningDaemon) -> Project:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "shop"})
    assert status == 201
    project = Project(body["id"], body["publishable_key"], body["secret_key"])
    sql = SCHEMA.format(anon=f"proj_{project.id}_anon")
    status, _ = await atlas.admin(
        "POST", f"/admin/api/projects/{project.id}/migrations", json={"migrations": [{"name": "0001.sql", "sql": sql}]}
    )
    assert status == 200
    status, rows = await atlas.public("POST", "/v1/db/items", project.secret, json={"rows": SEED})
    assert status == 201, rows
    return project


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    key: str = "secret"  # "secret" | "publishable" | "none" | "bogus"
    body: Any = None
    status: int = 200
    code: str | None = None
    names: list[str] | None = None  # expected item names, in order
    check: Any = None
    headers: dict[str, str] = field(default_factory=dict)


READS = [
    Scenario("all rows ordered by pk", "GET", "/v1/db/items", names=["apple", "banana", "carrot", "dates, dried"]),
    Scenario(
        "select columns",
        "GET",
        "/v1/db/items?select=name,qty&eq.name=apple",
        check=lambda b: b == [{"name": "apple", "qty": 5}],
    ),
    Scenario("eq", "GET", "/v1/db/items?eq.qty=12", names=["banana"]),
    Scenario("neq", "GET", "/v1/db/items?neq.qty=12&order=name.asc", names=["apple", "carrot", "dates, dried"]),
    Scenario("lt", "GET", "/v1/db/items?lt.qty=3", names=["carrot"]),
    Scenario("lte", "GET", "/v1/db/items?lte.qty=3&order=qty.asc", names=["carrot", "dates, dried"]),
    Scenario("gt", "GET", "/v1/db/items?gt.qty=5", names=["banana"]),
    Scenario("gte range", "GET", "/v1/db/items?gte.qty=3&lte.qty=5&order=qty.desc", names=["apple", "dates, dried"]),
    Scenario("like", "GET", "/v1/db/items?like.name=%25an%25", names=["banana"]),
    Scenario("ilike", "GET", "/v1/db/items?ilike.name=A%25", names=["apple"]),
    Scenario("in", "GET", "/v1/db/items?in.name=apple,carrot", names=["apple", "carrot"]),
    Scenario(
        "in with quoted comma", "GET", '/v1/db/items?in.name="dates, dried",apple', names=["apple", "dates, dried"]
    ),
    Scenario("numeric compare", "GET", "/v1/db/items?gt.price=1", names=["apple", "dates, dried"]),
    Scenario("boolean", "GET", "/v1/db/items?eq.active=false", names=["carrot"]),
    Scenario("uuid", "GET", "/v1/db/items?eq.ref=0b6f6d1c-7b5e-4a4c-9d55-111111111111", names=["dates, dried"]),
    Scenario("timestamp", "GET", "/v1/db/items?lt.created_at=2026-06-01T00:00:00Z&eq.name=apple", names=["apple"]),
    Scenario("order desc", "GET", "/v1/db/items?order=qty.desc&limit=2", names=["banana", "apple"]),
    Scenario(
        "several orders",
        "GET",
        "/v1/db/items?order=active.asc,name.desc",
        names=["carrot", "dates, dried", "banana", "apple"],
    ),
    Scenario("limit and offset", "GET", "/v1/db/items?limit=2&offset=1", names=["banana", "carrot"]),
    Scenario("offset past end", "GET", "/v1/db/items?offset=100", check=lambda b: b == []),
    Scenario("publishable key reads as anon", "GET", "/v1/db/items?eq.name=apple", key="publishable", names=["apple"]),
    Scenario("count exact", "GET", "/v1/db/items?count=exact&limit=1", names=["apple"]),
    # bad input
    Scenario("no key", "GET", "/v1/db/items", key="none", status=401, code="api_key_required"),
    Scenario("bogus key", "GET", "/v1/db/items", key="bogus", status=401, code="invalid_api_key"),
    Scenario("unknown table", "GET", "/v1/db/nope", status=404, code="table_not_found"),
    Scenario("system catalog", "GET", "/v1/db/pg_authid", status=404, code="table_not_found"),
    Scenario("other schema", "GET", "/v1/db/atlas.atlas_migrations", status=404, code="table_not_found"),
    Scenario("unknown column", "GET", "/v1/db/items?eq.nope=1", status=400, code="unknown_column"),
    Scenario("unknown select column", "GET", "/v1/db/items?select=name,password", status=400, code="unknown_column"),
    Scenario("unknown operator", "GET", "/v1/db/items?between.qty=1", status=400),
    Scenario("bad integer", "GET", "/v1/db/items?eq.qty=abc", status=400, code="invalid_value"),
    Scenario("bad uuid", "GET", "/v1/db/items?eq.ref=xyz", status=400, code="invalid_value"),
    Scenario("limit too large", "GET", "/v1/db/items?limit=5000", status=400, code="limit_too_large"),
    Scenario("negative offset", "GET", "/v1/db/items?offset=-1", status=400),
    Scenario("bad order", "GET", "/v1/db/items?order=qty.sideways", status=400),
    Scenario("injection in value", "GET", "/v1/db/items?eq.name=x'%3B DROP TABLE items%3B--", check=lambda b: b == []),
    Scenario("injection in column", "GET", '/v1/db/items?eq.name"%3Bdrop=1', status=400),
    Scenario("no grant for anon", "GET", "/v1/db/secrets", key="publishable", status=404, code="table_not_found"),
]


async def call(atlas: RunningDaemon, project: Project, s: Scenario) -> tuple[int, Any]:
    key = {"secret": project.secret, "publishable": project.publishable, "none": None, "bogus": "ah_sec_" + "x" * 43}[
        s.key
    ]
    kwargs: dict[str, Any] = {"headers": s.headers}
    if s.body is not None:
        kwargs["json"] = s.body
    return await atlas.public(s.method, s.path, key, **kwargs)


@pytest.mark.parametrize("s", READS, ids=[s.name for s in READS])
async def test_reads(atlas: RunningDaemon, project: Project, s: Scenario) -> None:
    status, body = await call(atlas, project, s)
    assert status == s.status, body
    if s.code:
        assert body["error"]["code"] == s.code
    if s.names is not None:
        assert [r["name"] for r in body] == s.names
    if s.check is not None:
        assert s.check(body), body


async def test_tables_lists_columns_types_and_keys(atlas: RunningDaemon, project: Project) -> None:
    status, body = await atlas.public("GET", "/v1/db/tables", project.secret)
    assert status == 200
    items = next(t for t in body["tables"] if t["name"] == "items")
    assert items["primaryKey"] == ["id"]
    columns = {c["name"]: c for c in items["columns"]}
    assert columns["price"]["type"] == "numeric(10,2)"
    assert columns["name"]["nullable"] is False and columns["qty"]["hasDefault"] is True
    assert "atlas_migrations" not in {t["name"] for t in body["tables"]}


async def test_count_header(atlas: RunningDaemon, project: Project) -> None:
    async with atlas.http.get(
        atlas.gateway_url + "/v1/db/items?count=exact&limit=1&gt.qty=0", headers={"x-api-key": project.secret}
    ) as resp:
        assert resp.status == 200
        assert resp.headers["X-Total-Count"] == "3"


WRITES = [
    Scenario(
        "insert one",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": "egg", "qty": 6}]},
        status=201,
        check=lambda b: b[0]["name"] == "egg" and b[0]["id"] > 0 and b[0]["active"] is True,
    ),
    Scenario(
        "insert minimal",
        "POST",
        "/v1/db/items?return=minimal",
        body={"rows": [{"name": "fig"}, {"name": "g"}]},
        status=201,
        check=lambda b: b == {"inserted": 2},
    ),
    Scenario(
        "insert heterogeneous rows",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": "h1", "qty": 1}, {"name": "h2", "tags": ["x"]}]},
        status=201,
        check=lambda b: [r["qty"] for r in b] == [1, 0] and b[1]["tags"] == ["x"],
    ),
    Scenario(
        "insert json and numeric",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": "j", "meta": {"a": [1, 2]}, "price": "9.99"}]},
        status=201,
        check=lambda b: b[0]["meta"] == {"a": [1, 2]} and b[0]["price"] == 9.99,
    ),
    Scenario(
        "update",
        "PATCH",
        "/v1/db/items?eq.name=apple",
        body={"values": {"qty": 7}},
        check=lambda b: b == [b[0]] and b[0]["qty"] == 7,
    ),
    Scenario(
        "update minimal",
        "PATCH",
        "/v1/db/items?gt.qty=0&return=minimal",
        body={"values": {"active": False}},
        check=lambda b: b == {"updated": 3},
    ),
    Scenario("delete", "DELETE", "/v1/db/items?eq.name=carrot", check=lambda b: b == {"deleted": 1}),
    Scenario(
        "delete representation",
        "DELETE",
        "/v1/db/items?eq.name=carrot&return=representation",
        check=lambda b: b["deleted"] == 1 and b["rows"][0]["name"] == "carrot",
    ),
    Scenario("delete none matching", "DELETE", "/v1/db/items?eq.name=zzz", check=lambda b: b == {"deleted": 0}),
    # bad input
    Scenario(
        "update without filter",
        "PATCH",
        "/v1/db/items",
        body={"values": {"qty": 1}},
        status=400,
        code="filter_required",
    ),
    Scenario("delete without filter", "DELETE", "/v1/db/items", status=400, code="filter_required"),
    Scenario("insert with filter", "POST", "/v1/db/items?eq.id=1", body={"rows": [{"name": "z"}]}, status=400),
    Scenario(
        "publishable write",
        "POST",
        "/v1/db/items",
        key="publishable",
        body={"rows": [{"name": "z"}]},
        status=403,
        code="read_only_key",
    ),
    Scenario("publishable delete", "DELETE", "/v1/db/items?eq.id=1", key="publishable", status=403),
    Scenario(
        "duplicate", "POST", "/v1/db/items", body={"rows": [{"name": "apple"}]}, status=409, code="unique_violation"
    ),
    Scenario("not null", "POST", "/v1/db/items", body={"rows": [{"qty": 1}]}, status=422, code="not_null_violation"),
    Scenario(
        "check", "PATCH", "/v1/db/items?eq.name=apple", body={"values": {"qty": -1}}, status=422, code="check_violation"
    ),
    Scenario(
        "wrong type in body",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": "q", "qty": "many"}]},
        status=400,
        code="invalid_value",
    ),
    Scenario(
        "unknown body column",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": "q", "owner": 1}]},
        status=400,
        code="unknown_column",
    ),
    Scenario("rows not a list", "POST", "/v1/db/items", body={"rows": {"name": "q"}}, status=400),
    Scenario("empty rows", "POST", "/v1/db/items", body={"rows": []}, status=400),
    Scenario("missing rows", "POST", "/v1/db/items", body={"data": []}, status=400, code="invalid_body"),
    Scenario(
        "too many rows",
        "POST",
        "/v1/db/items",
        body={"rows": [{"name": f"n{i}"} for i in range(1001)]},
        status=400,
        code="too_many_rows",
    ),
    Scenario("missing values", "PATCH", "/v1/db/items?eq.id=1", body={"qty": 1}, status=400, code="invalid_body"),
    Scenario("empty values", "PATCH", "/v1/db/items?eq.id=1", body={"values": {}}, status=400),
]


@pytest.mark.parametrize("s", WRITES, ids=[s.name for s in WRITES])
async def test_writes(atlas: RunningDaemon, project: Project, s: Scenario) -> None:
    status, before = await atlas.public("GET", "/v1/db/items?limit=1000", project.secret)
    status, body = await call(atlas, project, s)
    assert status == s.status, body
    if s.code:
        assert body["error"]["code"] == s.code
    if s.check is not None:
        assert s.check(body), body
    if status >= 400:
        _, after = await atlas.public("GET", "/v1/db/items?limit=1000", project.secret)
        assert after == before, "a refused write changed nothing"


async def test_body_limit_and_invalid_json(atlas: RunningDaemon, project: Project) -> None:
    big = {"rows": [{"name": "x" * (2 * 1024 * 1024)}]}
    status, body = await atlas.public("POST", "/v1/db/items", project.secret, json=big)
    assert (status, body["error"]["code"]) == (413, "payload_too_large")
    status, body = await atlas.public(
        "POST", "/v1/db/items", project.secret, data=b"{not json", headers={"content-type": "application/json"}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_json")


async def test_schema_changes_are_picked_up_and_dropped_columns_never_leak(
    atlas: RunningDaemon, project: Project
) -> None:
    status, _ = await atlas.public("GET", "/v1/db/items?select=name,price", project.secret)
    assert status == 200
    async with atlas.daemon.core.pools.connection(project.id, "owner") as conn:
        # Behind the API's back (not through the admin API): the cache is stale now.
        await conn.execute("ALTER TABLE items DROP COLUMN price")
        await conn.execute("ALTER TABLE items ADD COLUMN color text")
    status, body = await atlas.public("GET", "/v1/db/items?eq.name=apple", project.secret)
    assert status == 200, body
    assert "price" not in body[0] and "color" in body[0]
    status, body = await atlas.public("GET", "/v1/db/items?select=price", project.secret)
    assert (status, body["error"]["code"]) == (400, "unknown_column")


async def test_statement_timeout(tmp_path: Any, pg: Any) -> None:
    from tests.fixtures.daemon import running_daemon

    async with running_daemon(tmp_path / "s", pg, gateway={"statement_timeout_ms": 200}) as atlas:
        status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "slow"})
        pid, secret = body["id"], body["secret_key"]
        sql = (
            "CREATE FUNCTION slow() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(2)';"
            "CREATE VIEW slowv AS SELECT slow() AS x;"
        )
        await atlas.admin(
            "POST", f"/admin/api/projects/{pid}/migrations", json={"migrations": [{"name": "0001.sql", "sql": sql}]}
        )
        status, body = await atlas.public("GET", "/v1/db/slowv", secret)
        assert (status, body["error"]["code"]) == (504, "statement_timeout")


async def test_rate_limit(tmp_path: Any, pg: Any) -> None:
    from tests.fixtures.daemon import running_daemon

    async with running_daemon(
        tmp_path / "s", pg, gateway={"rate_limit_per_second": 1.0, "rate_limit_burst": 3}
    ) as atlas:
        _, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "limited"})
        secret = body["secret_key"]
        results = [await atlas.public("GET", "/v1/db/tables", secret) for _ in range(5)]
        assert [s for s, _ in results][:3] == [200, 200, 200]
        assert results[-1][0] == 429 and results[-1][1]["error"]["code"] == "rate_limited"
        async with atlas.http.get(atlas.gateway_url + "/v1/db/tables", headers={"x-api-key": secret}) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1


async def test_keys_of_one_project_never_reach_another(atlas: RunningDaemon, project: Project) -> None:
    status, other = await atlas.admin("POST", "/admin/api/projects", json={"name": "other"})
    status, tables = await atlas.public("GET", "/v1/db/tables", other["secret_key"])
    assert tables == {"tables": []}
    status, body = await atlas.public("GET", "/v1/db/items", other["secret_key"])
    assert (status, body["error"]["code"]) == (404, "table_not_found")


async def test_revoked_key_stops_at_once(atlas: RunningDaemon, project: Project) -> None:
    _, keys = await atlas.admin("GET", f"/admin/api/projects/{project.id}/keys")
    secret_id = next(k["id"] for k in keys["keys"] if k["type"] == "secret")
    assert (await atlas.public("GET", "/v1/db/tables", project.secret))[0] == 200
    await atlas.admin("POST", f"/admin/api/projects/{project.id}/keys/{secret_id}/revoke")
    status, body = await atlas.public("GET", "/v1/db/tables", project.secret)
    assert (status, body["error"]["code"]) == (401, "invalid_api_key")


async def test_row_level_security_for_anon(atlas: RunningDaemon, project: Project) -> None:
    sql = (
        f"ALTER TABLE items ENABLE ROW LEVEL SECURITY;"
        f"CREATE POLICY visible ON items FOR SELECT TO proj_{project.id}_anon USING (active);"
    )
    status, _ = await atlas.admin(
        "POST",
        f"/admin/api/projects/{project.id}/migrations",
        json={"migrations": [{"name": "0002_rls.sql", "sql": sql}]},
    )
    assert status == 200
    status, body = await atlas.public("GET", "/v1/db/items", project.publishable)
    assert [r["name"] for r in body] == ["apple", "banana", "dates, dried"]
    status, body = await atlas.public("GET", "/v1/db/items", project.secret)
    assert len(body) == 4, "the secret key is service level"


async def test_concurrent_requests_share_small_pools(atlas: RunningDaemon, project: Project) -> None:
    results = await asyncio.gather(*(atlas.public("GET", "/v1/db/items?limit=1", project.secret) for _ in range(50)))
    assert all(status == 200 for status, _ in results)
    pool = await atlas.daemon.core.pools.pool(project.id, "app")
    assert pool.get_size() <= atlas.daemon.config.postgres.pool_max
