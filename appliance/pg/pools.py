"""Small asyncpg pools per (project, role), LRU-bounded in count, idle connections closed.

100 projects never hold 1,000 connections: at most ``max_pools`` pools live at once, each
with at most ``pool_max`` connections, and connections idle past ``idle_seconds`` close.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import asyncpg

from appliance.pg.connpool import ConnectionPool

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0


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


async def _full_reset(conn: asyncpg.Connection) -> None:
    """Undo whatever a session of the owner role (SQL editor, migrations) may have changed.

    ``RESET ALL`` also undoes the pool's ``init_sql``; the owner pools have none.
    """
    await conn.reset()


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
        self._pools: OrderedDict[tuple[str, str], ConnectionPool] = OrderedDict()
        self._creating: dict[tuple[str, str], asyncio.Future[ConnectionPool]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def pool(self, project_id: str, role: str) -> ConnectionPool:
        key = (project_id, role)
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pending = self._creating.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ConnectionPool] = asyncio.get_running_loop().create_future()
        self._creating[key] = future
        try:
            creds = await self._loader(project_id, role)

            async def connect() -> asyncpg.Connection:
                conn = await asyncpg.connect(
                    host=creds.host,
                    port=creds.port,
                    user=creds.user,
                    password=creds.password,
                    database=creds.database,
                    timeout=CONNECT_TIMEOUT,
                )
                if creds.init_sql:
                    try:
                        await conn.execute(creds.init_sql)
                    except BaseException:
                        conn.terminate()
                        raise
                return conn

            pool = ConnectionPool(
                connect,
                max_size=self._pool_max,
                idle_seconds=self._idle,
                reset=None if role in LIGHT_RESET_ROLES else _full_reset,
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
            log.info("closing the least recently used pool %s/%s", *old_key)
            self._close_later(old)
        return pool

    def connection(self, project_id: str, role: str) -> _Lease:
        """``async with pools.connection(project, role) as conn``: a pooled connection, handed
        out first come, first served (a plain class: this is on every request's path)."""
        return _Lease(self, project_id, role)

    def _close_later(self, pool: ConnectionPool) -> None:
        task = asyncio.get_running_loop().create_task(self._close(pool))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(pool: ConnectionPool) -> None:
        try:
            await asyncio.wait_for(pool.close(), 10)
        except Exception:  # a stuck connection must not block the caller
            pool.terminate()

    async def drop_project(self, project_id: str) -> None:
        """Close every pool of one project now (before its database is dropped or swapped)."""
        for key in [k for k in self._pools if k[0] == project_id]:
            await self._close(self._pools.pop(key))

    async def close(self) -> None:
        """Idempotent."""
        pools = list(self._pools.values())
        self._pools.clear()
        await asyncio.gather(*(self._close(p) for p in pools), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def open_pools(self) -> int:
        return len(self._pools)


class _Lease:
    __slots__ = ("_conn", "_manager", "_pool", "_project_id", "_role")

    def __init__(self, manager: PoolManager, project_id: str, role: str) -> None:
        self._manager = manager
        self._project_id = project_id
        self._role = role

    async def __aenter__(self) -> asyncpg.Connection:
        self._pool = await self._manager.pool(self._project_id, self._role)
        self._conn = await self._pool.acquire()
        return self._conn

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._pool.release(self._conn, exc)
