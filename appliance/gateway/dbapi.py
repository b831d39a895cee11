"""The public DB API's core: run the statements built by ``sqlgen`` as the right role.

Per request: one snapshot lookup (memory), one pooled connection of the project's ``app``
role, and for publishable keys or end users a transaction that switches into
``anon``/``authenticated`` with the end user's claims, so row-level security applies. The
JSON body comes straight from PostgreSQL as text.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from appliance.config import GatewayConfig
from appliance.core import Core
from appliance.errors import Forbidden
from appliance.gateway import pgerrors, sqlgen
from appliance.gateway.context import ApiContext
from appliance.gateway.introspect import SchemaCache
from appliance.gateway.query import ReadQuery, WriteQuery
from appliance.gateway.schema import SchemaSnapshot
from appliance.pg.pools import PoolManager
from appliance.settings.service import RuntimeSettings

T = TypeVar("T")

_SET_CLAIMS = "SELECT set_config('role', $1, true), set_config('request.jwt.claims', $2, true)"


class DbApi:
    """One per node (``core.service(DbApi)``)."""

    def __init__(self, core: Core) -> None:
        self._pools: PoolManager = core.pools
        self._config: GatewayConfig = core.config.gateway
        self._settings = core.service(RuntimeSettings)
        self.schemas = SchemaCache(self._config.exposed_schema)
        core.schema_listeners.append(self.schemas.invalidate)

    async def _run(
        self,
        ctx: ApiContext,
        work: Callable[[asyncpg.Connection, SchemaSnapshot], Awaitable[T]],
        *,
        write: bool,
        atomic: bool = False,
    ) -> T:
        """Run ``work`` with a snapshot; on a stale-schema error refresh it and retry once.

        The hot path is one round trip: secret-key requests use the app pool and publishable
        reads the anon pool (both with the timeout set per connection), in autocommit.
        Only end users (claims per request) and multi-statement writes open a transaction.
        """
        if write and not ctx.is_secret and ctx.claims is None:
            raise Forbidden(
                "the publishable key may only read; sign the user in or use the secret key", code="read_only_key"
            )
        pool = "app" if ctx.is_secret or ctx.claims is not None else "anon"
        try:
            async with self._pools.connection(ctx.project_id, pool) as conn:
                for attempt in (0, 1):
                    snapshot = (attempt == 0 and self.schemas.cached((ctx.project_id, pool))) or (
                        await self.schemas.get((ctx.project_id, pool), conn, refresh=attempt == 1)
                    )
                    try:
                        if ctx.claims is not None or atomic:
                            return await self._in_transaction(conn, ctx, snapshot, work, write=write)
                        return await work(conn, snapshot)
                    except asyncpg.PostgresError as exc:
                        if attempt == 0 and pgerrors.is_stale_schema(exc):
                            continue
                        raise
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            raise pgerrors.translate(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _in_transaction(
        self,
        conn: asyncpg.Connection,
        ctx: ApiContext,
        snapshot: SchemaSnapshot,
        work: Callable[[asyncpg.Connection, SchemaSnapshot], Awaitable[T]],
        *,
        write: bool,
    ) -> T:
        async with conn.transaction(readonly=not write):
            if ctx.claims is not None:
                await conn.fetchrow(_SET_CLAIMS, ctx.names.authenticated, json.dumps(ctx.claims))
            return await work(conn, snapshot)

    # -- operations ------------------------------------------------------------------------

    async def tables(self, ctx: ApiContext) -> dict[str, Any]:
        async def work(conn: asyncpg.Connection, snapshot: SchemaSnapshot) -> dict[str, Any]:
            return snapshot.to_public_dict()

        return await self._run(ctx, work, write=False)

    async def select(self, ctx: ApiContext, table: str, q: ReadQuery) -> tuple[str, int | None]:
        async def work(conn: asyncpg.Connection, snapshot: SchemaSnapshot) -> tuple[str, int | None]:
            info = snapshot.table(table)
            stmt = sqlgen.build_select(info, q)
            body = await conn.fetchval(stmt.sql, *stmt.params)
            total = None
            if q.count_exact:
                count = sqlgen.build_count(info, q.filters)
                total = await conn.fetchval(count.sql, *count.params)
            return body, total

        return await self._run(ctx, work, write=False)

    async def insert(self, ctx: ApiContext, table: str, rows: Any, *, returning: bool) -> tuple[str | None, int]:
        async def work(conn: asyncpg.Connection, snapshot: SchemaSnapshot) -> tuple[str | None, int]:
            info = snapshot.table(table)
            statements = sqlgen.build_insert(
                info, rows, returning=returning, max_rows=int(self._settings.get("gateway.max_limit"))
            )
            if len(statements) > 1 and not conn.is_in_transaction():
                async with conn.transaction():
                    return await _collect(conn, statements, returning=returning)
            return await _collect(conn, statements, returning=returning)

        return await self._run(ctx, work, write=True)

    async def update(
        self, ctx: ApiContext, table: str, values: Any, q: Any, *, returning: bool
    ) -> tuple[str | None, int]:
        async def work(conn: asyncpg.Connection, snapshot: SchemaSnapshot) -> tuple[str | None, int]:
            info = snapshot.table(table)
            return await _collect(
                conn, [sqlgen.build_update(info, values, q.filters, returning=returning)], returning=returning
            )

        return await self._run(ctx, work, write=True)

    async def delete(self, ctx: ApiContext, table: str, q: WriteQuery, *, returning: bool) -> tuple[str | None, int]:
        async def work(conn: asyncpg.Connection, snapshot: SchemaSnapshot) -> tuple[str | None, int]:
            info = snapshot.table(table)
            return await _collect(
                conn, [sqlgen.build_delete(info, q.filters, returning=returning)], returning=returning
            )

        return await self._run(ctx, work, write=True)


async def _collect(
    conn: asyncpg.Connection, statements: list[sqlgen.Statement], *, returning: bool
) -> tuple[str | None, int]:
    """Run statements in the caller's transaction; join their JSON arrays or add their counts."""
    if not returning:
        total = 0
        for stmt in statements:
            total += int(await conn.fetchval(stmt.sql, *stmt.params))
        return None, total
    parts: list[str] = []
    count = 0
    for stmt in statements:
        chunk = await conn.fetchval(stmt.sql, *stmt.params)
        inner = chunk.strip()[1:-1].strip()
        if inner:
            parts.append(inner)
            count += len(json.loads(chunk))
    return "[" + ",".join(parts) + "]", count
