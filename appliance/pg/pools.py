"""Small asyncpg pools per (project, role), LRU-bounded in count, idle connections closed.

100 projects never hold 1,000 connections: at most ``max_pools`` pools live at once, each
with at most ``pool_max`` connections, and connections idle past ``idle_seconds`` close.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from appliance.pg.fairgate import FairGate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Credentials:
    host: str
    port: int
    user: str
    password: str
    database: str
    # Run once on every new connection of the pool (e.g. SET ROLE for the anon pool).
    init_sql: str | None = None


CredentialsLoader = Callable[[str, str], Awaitable[Credentials]]

# Pools whose sessions never change session state after init (only SET LOCAL inside
# transactions): their connections skip the RESET ALL round trip on release, which would also
# undo the init. The owner pool (SQL editor) keeps the full reset.
LIGHT_RESET_ROLES = frozenset({"app", "anon"})


async def _light_reset(conn: asyncpg.Connection) -> None:
    """asyncpg already rolled back any open transaction; nothing else to undo."""


class PoolManager:
    def __init__(
        self,
        loader: CredentialsLoader,
        *,
        max_pools: int = 50,
        pool_max: int = 5,
        idle_seconds: float = 300.0,
    ) -> None:
        self._loader = loader
        self._max_pools = max_pools
        self._pool_max = pool_max
        self._idle = idle_seconds
        self._pools: OrderedDict[tuple[str, str], asyncpg.Pool] = OrderedDict()
        self._creating: dict[tuple[str, str], asyncio.Future[asyncpg.Pool]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        # In front of each pool: connections go to requests in arrival order (see fairgate).
        self._gates: dict[tuple[str, str], FairGate] = {}

    async def pool(self, project_id: str, role: str) -> asyncpg.Pool:
        key = (project_id, role)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pending = self._creating.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[asyncpg.Pool] = asyncio.get_running_loop().create_future()
        self._creating[key] = future
        try:
            creds = await self._loader(project_id, role)
            init_sql = creds.init_sql

            async def init(conn: asyncpg.Connection) -> None:
                if init_sql:
                    await conn.execute(init_sql)

            pool = await asyncpg.create_pool(
                host=creds.host,
                port=creds.port,
                user=creds.user,
                password=creds.password,
                database=creds.database,
                min_size=0,
                max_size=self._pool_max,
                max_inactive_connection_lifetime=self._idle,
                reset=_light_reset if role in LIGHT_RESET_ROLES else None,
                init=init,
                timeout=10,
            )
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._creating.pop(key, None)
        future.set_result(pool)
        self._pools[key] = pool
        while len(self._pools) > self._max_pools:
            old_key, old = self._pools.popitem(last=False)
            self._gates.pop(old_key, None)
            log.info("closing the least recently used pool %s/%s", *old_key)
            self._close_later(old)
        return pool

    @asynccontextmanager
    async def connection(self, project_id: str, role: str) -> AsyncIterator[asyncpg.Connection]:
        pool = await self.pool(project_id, role)
        gate = self._gates.get((project_id, role))
        if gate is None:
            gate = self._gates[(project_id, role)] = FairGate(self._pool_max)
        await gate.acquire()
        try:
            async with pool.acquire() as conn:
                yield conn
        finally:
            gate.release()

    def _close_later(self, pool: asyncpg.Pool) -> None:
        task = asyncio.get_running_loop().create_task(self._close(pool))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(pool: asyncpg.Pool) -> None:
        try:
            await asyncio.wait_for(pool.close(), 10)
        except Exception:  # a stuck connection must not block the caller
            pool.terminate()

    async def drop_project(self, project_id: str) -> None:
        """Close every pool of one project now (before its database is dropped or swapped)."""
        for key in [k for k in self._pools if k[0] == project_id]:
            self._gates.pop(key, None)
            await self._close(self._pools.pop(key))

    async def close(self) -> None:
        """Idempotent."""
        pools = list(self._pools.values())
        self._pools.clear()
        self._gates.clear()
        await asyncio.gather(*(self._close(p) for p in pools), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def open_pools(self) -> int:
        return len(self._pools)
