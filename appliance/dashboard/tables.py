"""The table browser's queries: user tables with estimated sizes, and pages of rows. Free of HTTP.

Names from the request are never trusted: schema, table and sort column are looked up in the
catalog first, and only the catalog's spelling is quoted into SQL (with the one quoting helper).
Reads run in a READ ONLY transaction with ``statement_timeout``, as the project's owner role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.dashboard.sqlexec import json_value, sql_error, timeout_error
from appliance.errors import BadRequest, NotFound
from appliance.sqlident import quote_ident, quote_qualified

MAX_LIMIT = 500
# Below this estimate the exact count is cheap enough to run on every page.
EXACT_COUNT_BELOW = 10_000
# Platform schemas: the project's own bookkeeping and end-user auth internals.
HIDDEN_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast", "atlas", "auth", "atlas_auth")
KINDS = {"r": "table", "p": "partitioned_table", "v": "view", "m": "materialized_view", "f": "foreign_table"}

_USER_RELATIONS = """
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind::text = ANY($1::text[])
      AND n.nspname <> ALL($2::text[]) AND n.nspname NOT LIKE 'pg\\_%'
      AND has_table_privilege(c.oid, 'SELECT')
"""


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    kind: str
    estimated_rows: int | None
    columns: list[tuple[str, str]]  # (name, type), in table order
    primary_key: list[str]


def _estimate(reltuples: float, kind: str) -> int | None:
    # -1 means "never vacuumed or analyzed" (PostgreSQL 14+); views have no statistics.
    return None if kind in ("v", "f") or reltuples < 0 else int(reltuples)


async def list_tables(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples"
        + _USER_RELATIONS
        + " ORDER BY n.nspname, c.relname",
        list(KINDS),
        list(HIDDEN_SCHEMAS),
    )
    return [
        {
            "schema": r["schema"],
            "name": r["name"],
            "kind": KINDS[r["kind"]],
            "estimated_rows": _estimate(r["reltuples"], r["kind"]),
        }
        for r in rows
    ]


async def find_table(conn: asyncpg.Connection, schema: str, name: str) -> Table:
    row = await conn.fetchrow(
        "SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, c.reltuples"
        + _USER_RELATIONS
        + " AND n.nspname = $3 AND c.relname = $4",
        list(KINDS),
        list(HIDDEN_SCHEMAS),
        schema,
        name,
    )
    if row is None:
        raise NotFound(f"no table {schema}.{name}", code="table_not_found", details={"schema": schema, "table": name})
    columns = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type FROM pg_attribute"
        " WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        row["oid"],
    )
    primary = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.pos",
        row["oid"],
    )
    return Table(
        row["oid"],
        row["schema"],
        row["name"],
        row["kind"],
        _estimate(row["reltuples"], row["kind"]),
        [(c["attname"], c["type"]) for c in columns],
        [p["attname"] for p in primary],
    )


def parse_order(raw: str | None, table: Table) -> list[tuple[str, bool]]:
    """``col.asc`` / ``col.desc`` → [(column, descending)]; default: the primary key, ascending."""
    if not raw:
        return [(name, False) for name in table.primary_key]
    column, _, direction = raw.rpartition(".")
    if not column:
        column, direction = raw, "asc"
    if direction not in ("asc", "desc"):
        raise BadRequest(
            "order must be column.asc or column.desc", code="invalid_parameter", details={"field": "order"}
        )
    if column not in {name for name, _ in table.columns}:
        raise BadRequest(f"no column {column!r} to sort by", code="invalid_parameter", details={"field": "order"})
    order = [(column, direction == "desc")]
    # A unique tail keeps pages stable when the sort column has duplicates.
    return order + [(name, False) for name in table.primary_key if name != column]


async def fetch_rows(
    conn: asyncpg.Connection,
    schema: str,
    name: str,
    *,
    limit: int,
    offset: int,
    order: str | None,
    timeout_ms: int,
) -> dict[str, Any]:
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(
            f"limit must be between 1 and {MAX_LIMIT}", code="invalid_parameter", details={"field": "limit"}
        )
    try:
        async with conn.transaction(readonly=True):
            await conn.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            table = await find_table(conn, schema, name)
            sort = parse_order(order, table)
            select = ", ".join(quote_ident(column) for column, _ in table.columns) or "NULL"
            sql = f"SELECT {select} FROM {quote_qualified(table.schema, table.name)}"  # catalog names only
            if sort:
                sql += " ORDER BY " + ", ".join(
                    f"{quote_ident(c)} {'DESC' if d else 'ASC'} NULLS LAST" for c, d in sort
                )
            records = await conn.fetch(sql + " LIMIT $1 OFFSET $2", limit, offset)
            total, exact = await _total(conn, table)
    except asyncpg.QueryCanceledError:
        raise timeout_error(timeout_ms) from None
    except asyncpg.PostgresError as exc:
        raise sql_error(exc) from None
    return {
        "schema": table.schema,
        "table": table.name,
        "columns": [{"name": n, "type": t} for n, t in table.columns],
        "rows": [[json_value(v) for v in record.values()] for record in records],
        "total": total,
        "total_exact": exact,
        "limit": limit,
        "offset": offset,
    }


async def _total(conn: asyncpg.Connection, table: Table) -> tuple[int | None, bool]:
    """The exact count when the table is small (or has never been analyzed), else the estimate."""
    if table.estimated_rows is not None and table.estimated_rows >= EXACT_COUNT_BELOW:
        return table.estimated_rows, False
    try:
        async with conn.transaction():  # a savepoint: a slow count must not spoil the page
            count = await conn.fetchval(f"SELECT count(*) FROM {quote_qualified(table.schema, table.name)}")
    except asyncpg.QueryCanceledError:
        return table.estimated_rows, False
    return int(count), True
