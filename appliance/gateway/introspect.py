"""Introspection of a project's exposed schema, cached per project.

The cache is refreshed after a short time, at once after DDL made through the admin API
(``invalidate``), and whenever PostgreSQL reports an unknown table or column for a statement
built from it (the caller retries once with a fresh snapshot): a stale snapshot never leaks a
dropped column and never ends in a 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from appliance.gateway.schema import ColumnInfo, SchemaSnapshot, TableInfo

INTROSPECT_SQL = """
SELECT c.relname AS table_name,
       CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END AS kind,
       a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS type_name,
       coalesce(bt.typname, t.typname) AS udt_name,
       NOT a.attnotnull AS nullable,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default,
       coalesce(a.attnum = ANY (pk.indkey), false) AS is_pk
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
WHERE n.nspname = $1
  AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE')
ORDER BY c.relname, a.attnum
"""


async def introspect(conn: asyncpg.Connection, schema: str) -> SchemaSnapshot:
    rows = await conn.fetch(INTROSPECT_SQL, schema)
    tables: dict[str, tuple[str, list[ColumnInfo]]] = {}
    for row in rows:
        _kind, columns = tables.setdefault(row["table_name"], (row["kind"], []))
        columns.append(
            ColumnInfo(
                name=row["column_name"],
                type_name=row["type_name"],
                udt_name=row["udt_name"],
                nullable=row["nullable"],
                has_default=row["has_default"],
                is_pk=row["is_pk"],
            )
        )
    return SchemaSnapshot(
        {
            name: TableInfo(schema=schema, name=name, kind=kind, columns=tuple(columns))  # type: ignore[arg-type]
            for name, (kind, columns) in tables.items()
        }
    )


@dataclass
class _Entry:
    snapshot: SchemaSnapshot
    loaded_at: float


class SchemaCache:
    def __init__(self, schema: str = "public", ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.schema = schema
        self.ttl = ttl
        self._clock = clock
        # Keyed by (project, pool): what a role may see differs between the app and anon pools.
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def cached(self, key: tuple[str, str]) -> SchemaSnapshot | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry.loaded_at > self.ttl:
            return None
        return entry.snapshot

    async def get(self, key: tuple[str, str], conn: asyncpg.Connection, *, refresh: bool = False) -> SchemaSnapshot:
        if not refresh:
            snapshot = self.cached(key)
            if snapshot is not None:
                return snapshot
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and not refresh and self._clock() - entry.loaded_at <= self.ttl:
                return entry.snapshot
            snapshot = await introspect(conn, self.schema)
            self._entries[key] = _Entry(snapshot, self._clock())
            return snapshot

    def invalidate(self, project_id: str) -> None:
        for key in [k for k in self._entries if k[0] == project_id]:
            self._entries.pop(key, None)
