"""Analytics views: what an admin may define, and how it becomes a view PostgreSQL can trust.

Two forms: ``{"name", "table", "columns", "where"}`` (a table, chosen columns and an optional
row filter) and ``{"name", "sql"}`` (one read-only SELECT). Both are checked twice:

1. before anything runs, by pglast (:func:`check_readonly_select`): one side-effect-free SELECT,
   functions from an allow-list, relations in ``public`` only;
2. after ``CREATE VIEW`` ran inside a transaction, by PostgreSQL's own dependency records: every
   relation the view reads, through other views too, must be a table or view of ``public`` and not
   never-exposable, and every function and operator it calls must be a built-in one. This closes
   what the parser cannot see (user operators and casts, views over secret tables). Any failure
   rolls the transaction back, so nothing is created.

Views are created ``WITH (security_barrier)`` by the project's owner role (``SET LOCAL ROLE``),
so they read the base tables with the owner's rights while the analytics role has none of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.errors import AtlasError, BadRequest, Conflict, NotFound
from appliance.sqlident import quote_ident, quote_qualified

SCHEMA = "analytics"
BASE_SCHEMA = "public"
VIEW_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MAX_COLUMNS = 200
MAX_SQL = 20_000
CREATE_TIMEOUT = "10s"


@dataclass(frozen=True)
class ViewDefinition:
    name: str
    table: str | None = None
    columns: tuple[str, ...] = ()
    where: str | None = None
    sql: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.sql is not None:
            return {"name": self.name, "sql": self.sql}
        return {"name": self.name, "table": self.table, "columns": list(self.columns), "where": self.where}


def _field_error(field: str, message: str, code: str = "invalid_view") -> BadRequest:
    return BadRequest(message, code=code, details={"field": field})


def check_view_name(raw: object) -> str:
    if not isinstance(raw, str) or not VIEW_NAME.match(raw):
        raise _field_error(
            "name",
            "a view name is 1-63 characters: lower-case letters, digits and _, not starting with a digit",
            "invalid_view_name",
        )
    return raw


def parse_definition(body: dict[str, Any]) -> ViewDefinition:
    """The request body as a definition, or BadRequest naming the field at fault."""
    name = check_view_name(body.get("name"))
    if "sql" in body:
        extra = sorted(set(body) - {"name", "sql"})
        if extra:
            raise _field_error(extra[0], "give either sql, or table with columns (and where), not both")
        sql = body["sql"]
        if not isinstance(sql, str) or not sql.strip():
            raise _field_error("sql", "sql must be a non-empty string")
        if len(sql) > MAX_SQL:
            raise _field_error("sql", f"sql must be at most {MAX_SQL} characters")
        return ViewDefinition(name, sql=sql)
    extra = sorted(set(body) - {"name", "table", "columns", "where"})
    if extra:
        raise _field_error(extra[0], f"unknown field {extra[0]!r}")
    table = body.get("table")
    if not isinstance(table, str) or not table:
        raise _field_error("table", "table must be the name of a table in the public schema")
    if table.startswith(f"{BASE_SCHEMA}."):
        table = table[len(BASE_SCHEMA) + 1 :]
    columns = body.get("columns")
    if (
        not isinstance(columns, list)
        or not columns
        or len(columns) > MAX_COLUMNS
        or not all(isinstance(c, str) and c for c in columns)
    ):
        raise _field_error("columns", f"columns must be a list of 1 to {MAX_COLUMNS} column names")
    if len(set(columns)) != len(columns):
        raise _field_error("columns", "columns must not repeat")
    where = body.get("where")
    if where is not None and (not isinstance(where, str) or len(where) > MAX_SQL):
        raise _field_error("where", "where must be a SQL condition (a string)")
    if isinstance(where, str) and not where.strip():
        where = None
    return ViewDefinition(name, table=table, columns=tuple(columns), where=where)


def _filtered_select(table: str, columns: tuple[str, ...], where: str) -> str:
    from pglast import ast, parse_sql  # deferred: the parser is loaded on first use, not at start-up

    from appliance.dashboard.sqlguard import check_readonly_select

    """Check a row filter as the WHERE of a plain one-table SELECT, never as free text."""
    select_list = ", ".join(quote_ident(c) for c in columns)
    sql = f"SELECT {select_list} FROM {quote_qualified(BASE_SCHEMA, table)}\nWHERE {where}\n"
    try:
        checked = check_readonly_select(sql, allowed_schemas=frozenset({BASE_SCHEMA}))
    except BadRequest as exc:
        exc.details = {**(exc.details or {}), "field": "where"}
        raise
    stmt = parse_sql(checked.sql)[0].stmt
    plain = (
        isinstance(stmt, ast.SelectStmt)
        and stmt.op is not None
        and getattr(stmt.op, "name", str(stmt.op)) == "SETOP_NONE"
        and stmt.whereClause is not None
        and len(stmt.fromClause or ()) == 1
        and len(stmt.targetList or ()) == len(columns)
        and not any(
            getattr(stmt, part, None)
            for part in (
                "withClause",
                "groupClause",
                "havingClause",
                "sortClause",
                "limitCount",
                "limitOffset",
                "windowClause",
                "distinctClause",
                "valuesLists",
                "lockingClause",
            )
        )
    )
    if not plain:
        raise _field_error("where", "where must be a row condition only (no UNION, GROUP BY, ORDER BY or LIMIT)")
    return checked.sql


async def _relation(conn: asyncpg.Connection, schema: str, name: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT c.oid, c.relkind::text AS relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2",
        schema,
        name,
    )


async def table_exists(conn: asyncpg.Connection, name: str) -> bool:
    found = await _relation(conn, BASE_SCHEMA, name)
    return found is not None and found["relkind"] in ("r", "p", "v", "m")


async def view_exists(conn: asyncpg.Connection, name: str) -> bool:
    return await _relation(conn, SCHEMA, name) is not None


async def select_sql(conn: asyncpg.Connection, view: ViewDefinition) -> str:
    from appliance.dashboard.sqlguard import check_readonly_select

    """The checked SELECT a definition stands for; 404 for an unknown table or column."""
    if view.sql is not None:
        return check_readonly_select(view.sql, allowed_schemas=frozenset({BASE_SCHEMA})).sql
    assert view.table is not None
    found = await _relation(conn, BASE_SCHEMA, view.table)
    if found is None or found["relkind"] not in ("r", "p", "v", "m"):
        raise NotFound(
            f"no table {view.table!r} in the public schema", code="unknown_table", details={"field": "table"}
        )
    existing = {
        r["attname"]
        for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped", found["oid"]
        )
    }
    missing = [c for c in view.columns if c not in existing]
    if missing:
        raise NotFound(
            f"table {view.table!r} has no column {missing[0]!r}",
            code="unknown_column",
            details={"field": "columns", "column": missing[0]},
        )
    if view.where is not None:
        return _filtered_select(view.table, view.columns, view.where)
    select_list = ", ".join(quote_ident(c) for c in view.columns)
    return f"SELECT {select_list} FROM {quote_qualified(BASE_SCHEMA, view.table)}"


# Every relation a view reads, following the rewrite rules of the views it reads in turn.
_READS = """
WITH RECURSIVE rels(oid) AS (
    SELECT $1::oid
  UNION
    SELECT d.refobjid
    FROM rels
    JOIN pg_rewrite r ON r.ev_class = rels.oid
    JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid <> rels.oid
)
SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text
FROM rels JOIN pg_class c ON c.oid = rels.oid JOIN pg_namespace n ON n.oid = c.relnamespace
"""

# Functions and operators outside pg_catalog used by the rewrite rules of these views.
_USER_CODE = """
SELECT DISTINCT n.nspname || '.' || p.proname AS name
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_proc p ON p.oid = d.refobjid JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE r.ev_class = ANY($1::oid[]) AND n.nspname <> 'pg_catalog'
UNION
SELECT DISTINCT n.nspname || '.' || o.oprname
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_operator'::regclass
JOIN pg_operator o ON o.oid = d.refobjid JOIN pg_namespace n ON n.oid = o.oprnamespace
WHERE r.ev_class = ANY($1::oid[]) AND n.nspname <> 'pg_catalog'
"""


async def tables_read(conn: asyncpg.Connection, view_name: str) -> set[tuple[str, str]]:
    """(schema, name) of every relation the analytics view reads, directly or through views."""
    found = await _relation(conn, SCHEMA, view_name)
    if found is None:
        return set()
    rows = await conn.fetch(_READS, found["oid"])
    return {(r["nspname"], r["relname"]) for r in rows if r["oid"] != found["oid"]}


async def _check_created(conn: asyncpg.Connection, name: str, never: set[tuple[str, str]]) -> None:
    view = await _relation(conn, SCHEMA, name)
    assert view is not None
    rows = await conn.fetch(_READS, view["oid"])
    views = [r["oid"] for r in rows if r["relkind"] == "v"]
    for row in rows:
        if row["oid"] == view["oid"]:
            continue
        where = (row["nspname"], row["relname"])
        if where in never:
            raise BadRequest(
                f"table {row['relname']} is never exposable to analytics",
                code="never_exposable",
                details={"table": f"{row['nspname']}.{row['relname']}"},
            )
        if row["nspname"] != BASE_SCHEMA or row["relkind"] not in ("r", "p", "v", "m"):
            raise BadRequest(
                f"an analytics view may read only tables and views of the public schema, not {'.'.join(where)}",
                code="relation_not_allowed",
                details={"relation": ".".join(where)},
            )
    user_code = [r["name"] for r in await conn.fetch(_USER_CODE, views)]
    if user_code:
        raise BadRequest(
            f"an analytics view may call only built-in functions and operators, not {sorted(user_code)[0]}",
            code="function_not_allowed",
            details={"function": sorted(user_code)[0]},
        )


_PG_ERRORS: dict[str, tuple[type[AtlasError], str]] = {
    "42P01": (NotFound, "unknown_table"),
    "42703": (NotFound, "unknown_column"),
    "42883": (BadRequest, "function_not_allowed"),
    "42P07": (Conflict, "view_exists"),
    "42701": (BadRequest, "duplicate_column"),
}


async def create_view(
    conn: asyncpg.Connection, owner: str, analytics_role: str, view: ViewDefinition, never: set[tuple[str, str]]
) -> None:
    from pglast import ast, parse_sql

    """Create the view as ``owner`` on a superuser connection to the project's database. All or nothing."""
    select = await select_sql(conn, view)
    statement = f"CREATE VIEW {quote_qualified(SCHEMA, view.name)} WITH (security_barrier) AS\n{select}\n"
    parsed = parse_sql(statement)
    if len(parsed) != 1 or not isinstance(parsed[0].stmt, ast.ViewStmt):
        raise _field_error("sql", "the view definition is not one SELECT")
    try:
        async with conn.transaction():
            await conn.execute(f"SET LOCAL statement_timeout = '{CREATE_TIMEOUT}'")
            await conn.execute(f"SET LOCAL search_path = {quote_ident(BASE_SCHEMA)}")
            await conn.execute(f"SET LOCAL ROLE {quote_ident(owner)}")
            await conn.execute(statement)
            await conn.execute("RESET ROLE")
            await _check_created(conn, view.name, never)
            await conn.execute(f"GRANT SELECT ON {quote_qualified(SCHEMA, view.name)} TO {quote_ident(analytics_role)}")
    except asyncpg.PostgresError as exc:
        kind, code = _PG_ERRORS.get(exc.sqlstate or "", (BadRequest, "invalid_view"))
        raise kind(f"the view could not be created: {exc.args[0] if exc.args else exc}", code=code) from None


async def drop_view(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"DROP VIEW IF EXISTS {quote_qualified(SCHEMA, name)}")
