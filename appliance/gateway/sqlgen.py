"""SQL for ``/v1/db``: pure functions from a parsed request and a ``TableInfo`` to a Statement.

Rules every function keeps:

- Identifiers are only names found in the ``TableInfo``, written by ``quote_ident``; a name the
  table lacks is a 400 ``unknown_column`` before any SQL exists.
- Every client value is a ``$n`` parameter, numbered left to right, so the SQL text depends on
  the query's shape (columns, operators, row keys) and never on its values: asyncpg's
  statement cache hits for every request of the same shape.
- Result bodies are built by PostgreSQL: reads and ``returning`` writes yield one row with one
  text column holding the JSON array; writes without ``returning`` yield one row holding the
  affected-row count. ``_r.*`` / ``_w.*`` are whole-row references that a column named
  ``_r`` or ``_w`` cannot shadow.
- Values whose type ``coerce`` does not know are sent as text and cast by the column's catalog
  type name (``$1::text::inet``): the name comes from ``format_type()``, not from the client,
  and is checked with PostgreSQL's own parser before use.

Filters: ``eq neq lt lte gt gte`` are ``"c" = $n`` / ``<>`` / ``<`` / ``<=`` / ``>`` / ``>=``
(``neq`` is ``<>`` like PostgREST, so rows where the column is NULL never match);
``like``/``ilike`` compare ``"c"::text``; ``in`` is ``"c" = ANY($n)`` with one list parameter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from appliance.errors import AtlasError, BadRequest
from appliance.gateway import coerce
from appliance.gateway.query import Filter, ReadQuery
from appliance.gateway.schema import ColumnInfo, TableInfo
from appliance.sqlident import quote_ident

PG_MAX_PARAMS = 32767
DEFAULT_MAX_INSERT_ROWS = 1000
# Read shapes remembered per table snapshot; past this many the table's plans start over.
MAX_PLANS_PER_TABLE = 256

_COMPARISONS = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: tuple[object, ...]


class _Params:
    """Collects values and hands out ``$n`` placeholders in order of appearance."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def add(self, value: object, column: ColumnInfo, *, from_body: bool, as_list: bool = False) -> str:
        self.values.append(value)
        placeholder = f"${len(self.values)}"
        kind = coerce.transport(column, from_body=from_body)
        if kind == "native":
            return placeholder
        type_sql = _checked_type(column.type_name)
        if as_list:
            return f"{placeholder}::text[]::{type_sql}[]"
        return f"{placeholder}::text[]::{type_sql}" if kind == "text_array" else f"{placeholder}::text::{type_sql}"


def build_select(table: TableInfo, q: ReadQuery) -> Statement:
    """One row, one text column: the JSON array of the selected rows.

    Without ``order`` rows come in primary-key order, and an explicit order gets the primary
    key appended as a tie-breaker, so offset paging neither skips nor repeats rows.

    The SQL depends only on the query's shape, so it is built once per shape and table
    snapshot (``TableInfo.plans``); each request only converts its values.
    """
    shape = (q.columns, tuple((f.op, f.column) for f in q.filters), q.order)
    plan = table.plans.get(shape)
    if plan is None:
        plan = _plan_select(table, q)
        if len(table.plans) >= MAX_PLANS_PER_TABLE:
            table.plans.clear()
        table.plans[shape] = plan
    sql, filter_columns = plan
    values = [_filter_value(column, f) for column, f in zip(filter_columns, q.filters, strict=True)]
    return Statement(sql, (*values, q.limit, q.offset))


def _plan_select(table: TableInfo, q: ReadQuery) -> tuple[str, tuple[ColumnInfo, ...]]:
    """The SQL of a read's shape and, per filter, the column whose type its value takes."""
    columns = table.columns if q.columns is None else tuple(_column(table, n) for n in q.columns)
    params = _Params()
    filter_columns = tuple(_filter_column(table, f) for f in q.filters)
    conditions = [_condition_sql(f, column, params) for f, column in zip(q.filters, filter_columns, strict=True)]
    sql = f"SELECT {_column_list(columns)} FROM {table.qualified_name}"
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    order = [f"{quote_ident(_column(table, o.column).name)} {'DESC' if o.descending else 'ASC'}" for o in q.order]
    ordered = {o.column for o in q.order}
    order += [f"{quote_ident(pk)} ASC" for pk in table.primary_key if pk not in ordered]
    if order:
        sql += " ORDER BY " + ", ".join(order)
    sql += f" LIMIT ${len(params.values) + 1} OFFSET ${len(params.values) + 2}"
    return _json_rows("_r", f"({sql}) _r"), filter_columns


def build_count(table: TableInfo, filters: Sequence[Filter]) -> Statement:
    """One row, one bigint: the number of rows the filters match (for ``count=exact``)."""
    params = _Params()
    where = _where(table, filters, params)
    return Statement(f"SELECT count(*) FROM {table.qualified_name}{where}", tuple(params.values))


def build_insert(
    table: TableInfo,
    rows: object,
    *,
    returning: bool,
    max_rows: int = DEFAULT_MAX_INSERT_ROWS,
    max_params: int = PG_MAX_PARAMS,
) -> list[Statement]:
    """Multi-row INSERTs; a key a row lacks is written ``DEFAULT`` (serials, defaults work).

    ``rows`` is the body's ``rows`` value, unchecked. The column list is the union of the rows'
    keys in table order. Several statements come back when one would pass ``max_params``; the
    caller runs them in one transaction and concatenates their counts or JSON arrays.
    """
    if not isinstance(rows, list) or not rows:
        raise BadRequest("rows must be a non-empty array of objects", code="invalid_body")
    if len(rows) > max_rows:
        raise BadRequest(
            f"{len(rows)} rows sent; at most {max_rows} rows per request",
            code="too_many_rows",
            details={"max": max_rows},
        )
    checked = [_insert_row(table, index, row) for index, row in enumerate(rows)]
    statements: list[Statement] = []
    chunk: list[dict[str, object]] = []
    chunk_params = 0
    for row in checked:
        if chunk and chunk_params + len(row) > max_params:
            statements.append(_insert_statement(table, chunk, returning=returning))
            chunk, chunk_params = [], 0
        chunk.append(row)
        chunk_params += len(row)
    statements.append(_insert_statement(table, chunk, returning=returning))
    return statements


def build_update(table: TableInfo, values: object, filters: Sequence[Filter], *, returning: bool) -> Statement:
    """``values`` is the body's ``values`` object, unchecked; at least one filter is required."""
    _require_filters(filters, "update")
    if not isinstance(values, Mapping) or not values:
        raise BadRequest("values must be a non-empty object of column: value", code="invalid_body")
    for key in values:
        _column(table, key)
    params = _Params()
    assignments = [
        f"{quote_ident(c.name)} = {params.add(coerce.from_json(c, values[c.name]), c, from_body=True)}"
        for c in table.columns
        if c.name in values
    ]
    sql = f"UPDATE {table.qualified_name} SET {', '.join(assignments)}{_where(table, filters, params)}"
    return Statement(_wrap_write(table, sql, returning=returning), tuple(params.values))


def build_delete(table: TableInfo, filters: Sequence[Filter], *, returning: bool) -> Statement:
    _require_filters(filters, "delete")
    params = _Params()
    sql = f"DELETE FROM {table.qualified_name}{_where(table, filters, params)}"
    return Statement(_wrap_write(table, sql, returning=returning), tuple(params.values))


def _column(table: TableInfo, name: str) -> ColumnInfo:
    found = table.column(name)
    if found is None:
        raise BadRequest(
            f"column '{name}' does not exist on table '{table.name}'",
            code="unknown_column",
            details={"column": name, "table": table.name},
        )
    return found


def _column_list(columns: Iterable[ColumnInfo]) -> str:
    return ", ".join(quote_ident(c.name) for c in columns)


def _where(table: TableInfo, filters: Sequence[Filter], params: _Params) -> str:
    if not filters:
        return ""
    conditions = []
    for f in filters:
        column = _filter_column(table, f)
        value = _filter_value(column, f)
        conditions.append(_condition_sql(f, column, params, value))
    return " WHERE " + " AND ".join(conditions)


def _filter_column(table: TableInfo, f: Filter) -> ColumnInfo:
    """The column a filter's value is converted for (plain text for like/ilike patterns)."""
    column = _column(table, f.column)
    if f.op in ("like", "ilike"):
        return _AS_TEXT
    if f.op == "in" and coerce.is_array(column):
        raise BadRequest(
            f"the in filter is not supported on array column '{column.name}'",
            code="unsupported_filter",
            details={"column": column.name},
        )
    return column


def _filter_value(column: ColumnInfo, f: Filter) -> object:
    """A filter's client text converted to its column's type (a list for ``in``); 400 if it does not fit."""
    if f.op == "in":
        items = f.value if isinstance(f.value, tuple) else (f.value,)
        return [coerce.from_text(column, item) for item in items]
    return coerce.from_text(column, _scalar_value(f))


def _condition_sql(f: Filter, column: ColumnInfo, params: _Params, value: object = None) -> str:
    """``"c" <op> $n`` for one filter; ``column`` comes from ``_filter_column``."""
    name = quote_ident(f.column)
    placeholder = params.add(value, column, from_body=False, as_list=f.op == "in")
    if f.op in ("like", "ilike"):
        return f"{name}::text {f.op.upper()} {placeholder}"
    if f.op == "in":
        return f"{name} = ANY({placeholder})"
    return f"{name} {_COMPARISONS[f.op]} {placeholder}"


def _scalar_value(f: Filter) -> str:
    if isinstance(f.value, tuple):  # only `in` carries a tuple; anything else is a parser bug
        raise TypeError(f"filter {f.op} carries a list")
    return f.value


# like/ilike always match against the column's text form, so the pattern is plain text.
_AS_TEXT = ColumnInfo(name="pattern", type_name="text", udt_name="text", nullable=False, has_default=False, is_pk=False)


def _require_filters(filters: Sequence[Filter], action: str) -> None:
    if not filters:
        raise BadRequest(
            f"{action} needs at least one filter, e.g. ?eq.id=1; use gte/lte to match a whole range",
            code="filter_required",
        )


def _insert_row(table: TableInfo, index: int, row: object) -> dict[str, object]:
    if not isinstance(row, dict):
        raise BadRequest(f"rows[{index}] must be an object", code="invalid_body", details={"row": index})
    for key in row:
        try:
            _column(table, key)
        except BadRequest as exc:
            exc.details = {**exc.details, "row": index}
            raise
    return {c.name: coerce.from_json(c, row[c.name]) for c in table.columns if c.name in row}


def _insert_statement(table: TableInfo, rows: list[dict[str, object]], *, returning: bool) -> Statement:
    # All-empty rows still need one column to say DEFAULT for: the first one serves.
    columns = [c for c in table.columns if any(c.name in row for row in rows)] or [table.columns[0]]
    params = _Params()
    tuples = [
        "("
        + ", ".join(params.add(row[c.name], c, from_body=True) if c.name in row else "DEFAULT" for c in columns)
        + ")"
        for row in rows
    ]
    sql = f"INSERT INTO {table.qualified_name} ({_column_list(columns)}) VALUES {', '.join(tuples)}"
    return Statement(_wrap_write(table, sql, returning=returning), tuple(params.values))


def _wrap_write(table: TableInfo, sql: str, *, returning: bool) -> str:
    if returning:
        return f"WITH _w AS ({sql} RETURNING {_column_list(table.columns)}) {_json_rows('_w', '_w')}"
    return f"WITH _w AS ({sql} RETURNING 1) SELECT count(*) FROM _w"


def _json_rows(alias: str, source: str) -> str:
    return f"SELECT coalesce(json_agg({alias}.*), '[]'::json)::text FROM {source}"


@lru_cache(maxsize=256)
def _checked_type(type_name: str) -> str:
    """``type_name`` if ``SELECT NULL::<type_name> AS _t`` parses to exactly that, else a 500.

    The snapshot's ``format_type()`` output is trusted, but it is the only text other than
    quoted identifiers that reaches SQL from outside this module, so PostgreSQL's parser gets
    a second look at it. The trailing alias catches a ``--`` comment that would swallow the
    rest of the statement.
    """
    try:
        from pglast.parser import ParseError, parse_sql_json  # deferred: rare types only

        tree = json.loads(parse_sql_json(f"SELECT NULL::{type_name} AS _t"))
    except ParseError:
        tree = {"stmts": []}
    if not _is_bare_cast(tree["stmts"]):
        raise AtlasError("the schema snapshot holds an unusable type name", code="schema_error")
    return type_name


def _is_bare_cast(stmts: list[dict[str, Any]]) -> bool:
    if len(stmts) != 1 or set(stmts[0]) != {"stmt"} or set(stmts[0]["stmt"]) != {"SelectStmt"}:
        return False
    select = stmts[0]["stmt"]["SelectStmt"]
    if set(select) - {"limitOption", "op"} != {"targetList"} or len(select["targetList"]) != 1:
        return False
    target = select["targetList"][0].get("ResTarget", {})
    cast = target.get("val", {}).get("TypeCast", {})
    if target.get("name") != "_t" or set(target) - {"location"} != {"name", "val"}:
        return False
    if not cast.get("arg", {}).get("A_Const", {}).get("isnull"):
        return False
    typmods = cast.get("typeName", {}).get("typmods", [])
    return all(set(m) <= {"A_Const"} for m in typmods)
