"""Table export (CSV via COPY, JSON in batches), table import (all or nothing), SQL dump export.

Import: rows go as text into a temporary staging table (COPY), then ONE ``INSERT … SELECT`` casts
them to the column types — inside one transaction, so an error leaves no row behind. When it
fails, a binary search over row prefixes (each in a rolled-back savepoint) finds the first bad
row, and casting its cells one by one names the column. Table and column names are checked
against the catalog before they are quoted; CSV empty fields and JSON nulls become NULL.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import StreamReader

from appliance.backups import pgtools
from appliance.errors import BadRequest, NotFound, PayloadTooLarge, Unprocessable
from appliance.pg.server import PgServer
from appliance.sqlident import quote_ident, quote_qualified

Writer = Callable[[bytes], Awaitable[None]]
JSON_BATCH = 1000
STAGING = "_atlas_import"


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: dict[str, str]  # name → SQL type (format_type), in table order
    generated: frozenset[str]
    primary_key: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return quote_qualified(self.schema, self.name)


@dataclass(frozen=True)
class ParsedRows:
    header: list[str]
    rows: list[list[str | None]]


async def find_table(conn: asyncpg.Connection, table: str) -> TableInfo:
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    oid = await conn.fetchval(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
        schema,
        name,
    )
    if oid is None:
        raise NotFound(f"no table {table!r}", code="table_not_found", details={"table": table})
    cols = await conn.fetch(
        "SELECT attname, format_type(atttypid, atttypmod) AS type, attgenerated <> '' AS generated FROM pg_attribute"
        " WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        oid,
    )
    pk = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = $1 AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        oid,
    )
    return TableInfo(
        schema,
        name,
        {c["attname"]: c["type"] for c in cols},
        frozenset(c["attname"] for c in cols if c["generated"]),
        tuple(r["attname"] for r in pk),
    )


async def export_table(conn: asyncpg.Connection, table: TableInfo, fmt: str, write: Writer) -> None:
    if fmt == "csv":
        await conn.copy_from_table(table.name, schema_name=table.schema, output=write, format="csv", header=True)
        return
    await write(b"[")
    first = True
    async with conn.transaction(readonly=True):
        cursor = await conn.cursor(f"SELECT row_to_json(t)::text FROM {table.qualified} t")
        while batch := await cursor.fetch(JSON_BATCH):
            text = ",\n".join(r[0] for r in batch)
            await write(((",\n" if not first else "\n") + text).encode())
            first = False
    await write(b"\n]\n")


async def export_sql(pg: PgServer, database: str, write: Writer) -> None:
    """The whole database as a plain SQL script (``pg_dump -Fp``), streamed."""
    proc = await pgtools.spawn_dump(pg, database, fmt="p")
    assert proc.stdout is not None
    try:
        while chunk := await proc.stdout.read(pgtools.READ_BLOCK):
            await write(chunk)
        code = await proc.wait()
        if code != 0:
            raise pgtools.ToolFailed(f"pg_dump failed (exit {code})")
    finally:
        await pgtools.stop(proc)


async def read_body(content: StreamReader, length: int | None, limit: int) -> bytes:
    too_large = PayloadTooLarge(
        f"imports are limited to {limit} bytes", code="payload_too_large", details={"limit": limit}
    )
    if length is not None and length > limit:
        raise too_large
    parts, size = [], 0
    async for chunk in content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


def parse_mapping(raw: str | None) -> dict[str, str | None]:
    if not raw:
        return {}
    try:
        mapping = json.loads(raw)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise BadRequest(
            'columns must be a JSON object {"source column": "table column" or null}',
            code="invalid_parameter",
            details={"field": "columns"},
        )
    return mapping


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def parse_rows(body: bytes, fmt: str) -> ParsedRows:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("the file is not UTF-8 text", code="invalid_file") from None
    if fmt == "json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadRequest(f"the file is not valid JSON: {exc}", code="invalid_file") from None
        if not isinstance(data, list):
            raise BadRequest("a JSON import is an array of objects", code="invalid_file")
        header: dict[str, None] = {}
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise BadRequest(f"row {i}: not an object", code="invalid_file", details={"row": i})
            header.update(dict.fromkeys(item))
        names = list(header)
        return ParsedRows(names, [[_cell(item.get(k)) for k in names] for item in data])
    if fmt != "csv":
        raise BadRequest("format must be csv or json", code="invalid_parameter", details={"field": "format"})
    try:
        reader = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise BadRequest(f"the file is not valid CSV: {exc}", code="invalid_file") from None
    if not reader:
        raise BadRequest("the CSV file is empty (a header row is required)", code="invalid_file")
    names = [h.strip() for h in reader[0]]
    rows: list[list[str | None]] = []
    for i, record in enumerate(reader[1:], start=1):
        if record == []:
            continue
        if len(record) != len(names):
            raise BadRequest(
                f"row {i}: {len(record)} fields, the header has {len(names)}", code="invalid_file", details={"row": i}
            )
        rows.append([v if v != "" else None for v in record])
    return ParsedRows(names, rows)


def _targets(info: TableInfo, header: Sequence[str], mapping: dict[str, str | None]) -> list[tuple[int, str]]:
    """(source index, table column) pairs; every problem names its column."""
    pairs: list[tuple[int, str]] = []
    for index, source in enumerate(header):
        target = mapping.get(source, source)
        if target is None:
            continue
        if target not in info.columns:
            raise BadRequest(
                f"column {target!r} does not exist in {info.name}", code="unknown_column", details={"column": target}
            )
        if target in info.generated:
            raise BadRequest(f"column {target!r} is generated", code="invalid_column", details={"column": target})
        if any(t == target for _, t in pairs):
            raise BadRequest(f"column {target!r} is mapped twice", code="invalid_column", details={"column": target})
        pairs.append((index, target))
    if not pairs:
        raise BadRequest("no column of the file maps to the table", code="invalid_column")
    return pairs


async def import_rows(
    conn: asyncpg.Connection, table: str, parsed: ParsedRows, mapping: dict[str, str | None], mode: str
) -> dict[str, int]:
    info = await find_table(conn, table)
    pairs = _targets(info, parsed.header, mapping)
    columns = [t for _, t in pairs]
    if mode == "upsert":
        if not info.primary_key:
            raise BadRequest(f"{info.name} has no primary key to upsert on", code="no_primary_key")
        missing = [c for c in info.primary_key if c not in columns]
        if missing:
            raise BadRequest(
                f"upsert needs the primary key column {missing[0]!r}",
                code="invalid_column",
                details={"column": missing[0]},
            )
    staged = ", ".join(f"c{i} text" for i in range(len(pairs)))
    casts = ", ".join(f"c{i}::{info.columns[t]}" for i, t in enumerate(columns))
    insert = (
        f"INSERT INTO {info.qualified} ({', '.join(quote_ident(c) for c in columns)})"
        f" SELECT {casts} FROM {STAGING} WHERE n <= $1 ORDER BY n"
    )
    if mode == "upsert":
        updates = [c for c in columns if c not in info.primary_key]
        keys = ", ".join(quote_ident(c) for c in info.primary_key)
        action = (
            "DO UPDATE SET " + ", ".join(f"{quote_ident(c)} = EXCLUDED.{quote_ident(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        insert += f" ON CONFLICT ({keys}) {action}"
    insert += " RETURNING (xmax = 0) AS inserted"
    records = [(n, *(row[i] for i, _ in pairs)) for n, row in enumerate(parsed.rows, start=1)]
    async with conn.transaction():
        await conn.execute(f"CREATE TEMP TABLE {STAGING} (n integer PRIMARY KEY, {staged}) ON COMMIT DROP")
        await conn.copy_records_to_table(STAGING, records=records)
        try:
            async with conn.transaction():
                result = await conn.fetch(insert, len(records))
        except asyncpg.PostgresError as exc:
            await _explain_failure(conn, insert, info, columns, records, exc)
            raise  # pragma: no cover - _explain_failure always raises
    inserted = sum(1 for r in result if r["inserted"])
    return {"inserted": inserted, "updated": len(result) - inserted}


async def _fails(conn: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.PostgresError | None:
    try:
        async with conn.transaction():
            await conn.fetch(sql, *args)
            raise _Rollback
    except _Rollback:
        return None
    except asyncpg.PostgresError as exc:
        return exc


class _Rollback(Exception):
    pass


async def _explain_failure(
    conn: asyncpg.Connection,
    insert: str,
    info: TableInfo,
    columns: list[str],
    records: list[tuple[Any, ...]],
    first: asyncpg.PostgresError,
) -> None:
    lo, hi, error = 1, len(records), first
    while lo < hi:  # smallest prefix that fails: its last row is the first bad one
        mid = (lo + hi) // 2
        found = await _fails(conn, insert, mid)
        if found is not None:
            hi, error = mid, found
        else:
            lo = mid + 1
    row = lo
    column = getattr(error, "column_name", None)
    for i, name in enumerate(columns):
        value = records[row - 1][i + 1]
        if value is not None and await _fails(conn, f"SELECT $1::text::{info.columns[name]}", value) is not None:
            column = name
            break
    where = f"row {row}" + (f", column {column!r}" if column else "")
    message = getattr(error, "message", None) or str(error)
    raise Unprocessable(
        f"{where}: {message}; nothing was imported",
        code="import_failed",
        details={"row": row, "column": column, "constraint": getattr(error, "constraint_name", None)},
    )
