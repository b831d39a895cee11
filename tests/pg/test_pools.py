"""The pool manager bounds connections: LRU-evicted pools, small pools, idle connections closed."""

from __future__ import annotations

import asyncio

import asyncpg

from appliance.pg.embedded import EmbeddedPostgres
from appliance.pg.pools import Credentials, PoolManager


async def test_pools_are_lru_bounded_and_small(pg: EmbeddedPostgres) -> None:
    loads: list[tuple[str, str]] = []

    async def loader(project_id: str, role: str) -> Credentials:
        loads.append((project_id, role))
        return Credentials(
            "127.0.0.1", pg.port, pg.user, pg.password, "postgres", init_sql="SET application_name = 'x'"
        )

    pools = PoolManager(loader, max_pools=3, pool_max=2, idle_seconds=0.2)
    try:
        for project in ("a", "b", "c", "d"):
            async with pools.connection(project, "app") as conn:
                assert await conn.fetchval("SHOW application_name") == "x"
        assert pools.open_pools == 3, "the least recently used pool was closed"
        async with pools.connection("b", "app"):
            pass
        assert loads.count(("b", "app")) == 1, "a live pool is reused"
        async with pools.connection("a", "app"):
            pass
        assert loads.count(("a", "app")) == 2, "an evicted pool is built again on demand"

        async def hold() -> None:
            async with pools.connection("z", "app") as conn:
                await conn.fetchval("SELECT pg_sleep(0.2)")

        await asyncio.gather(*(hold() for _ in range(6)))
        pool = await pools.pool("z", "app")
        assert pool.get_size() <= 2
        await asyncio.sleep(0.5)
        assert pool.get_idle_size() == 0 or pool.get_size() == 0, "idle connections are closed"
    finally:
        await pools.close()
    conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password)
    try:
        left = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'x'")
    finally:
        await conn.close()
    assert left == 0, "close() leaves no connection behind"
