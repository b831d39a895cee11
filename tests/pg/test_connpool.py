"""The request-path connection pool against a real PostgreSQL: bounded, fair, self-healing."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from appliance.pg.connpool import ConnectionPool, PoolClosed
from appliance.pg.embedded import EmbeddedPostgres

APP_NAME = "connpool-test"
TERMINATE_ALL = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1"


@pytest.fixture
async def server_conn(pg: EmbeddedPostgres) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password)
    yield conn
    await conn.execute(TERMINATE_ALL, APP_NAME)
    await conn.close()


def make_pool(pg: EmbeddedPostgres, **kwargs: object) -> tuple[ConnectionPool, list[asyncpg.Connection]]:
    opened: list[asyncpg.Connection] = []

    async def connect() -> asyncpg.Connection:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=pg.port,
            user=pg.user,
            password=pg.password,
            server_settings={"application_name": APP_NAME},
        )
        opened.append(conn)
        return conn

    options: dict[str, object] = {"max_size": 2, "idle_seconds": 60.0, **kwargs}
    return ConnectionPool(connect, **options), opened  # type: ignore[arg-type]


async def eventually(check: Callable[[], bool | Awaitable[bool]], tries: int = 100) -> bool:
    """Whether ``check`` comes true within ``tries`` polls 50 ms apart."""
    for _ in range(tries):
        result = check()
        if await result if inspect.isawaitable(result) else result:
            return True
        await asyncio.sleep(0.05)
    return False


async def backends(server_conn: asyncpg.Connection) -> int:
    return int(
        await server_conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", APP_NAME)
    )


async def test_connections_are_made_on_demand_reused_and_bounded(
    pg: EmbeddedPostgres, server_conn: asyncpg.Connection
) -> None:
    pool, opened = make_pool(pg)
    assert pool.get_size() == 0 and await backends(server_conn) == 0

    async def query() -> int:
        conn = await pool.acquire()
        try:
            return int(await conn.fetchval("SELECT 1 FROM pg_sleep(0.05)"))
        finally:
            await pool.release(conn)

    assert await asyncio.gather(*(query() for _ in range(10))) == [1] * 10
    assert len(opened) == 2 and pool.get_size() == 2 and pool.get_idle_size() == 2
    await query()
    assert len(opened) == 2, "an idle connection is reused"
    await pool.close()
    assert pool.get_size() == 0 and await backends(server_conn) == 0


async def test_waiters_are_served_in_arrival_order(pg: EmbeddedPostgres) -> None:
    pool, _ = make_pool(pg, max_size=1)
    held = await pool.acquire()
    order: list[int] = []

    async def wait(n: int) -> None:
        conn = await pool.acquire()
        order.append(n)
        await pool.release(conn)

    waiters = [asyncio.create_task(wait(n)) for n in range(5)]
    await asyncio.sleep(0.05)
    await pool.release(held)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2, 3, 4]
    await pool.close()


async def test_a_connection_left_in_a_transaction_is_not_reused(
    pg: EmbeddedPostgres, server_conn: asyncpg.Connection
) -> None:
    pool, opened = make_pool(pg, max_size=1)
    conn = await pool.acquire()
    await conn.execute("BEGIN; CREATE TEMP TABLE leftover (x int)")
    await pool.release(conn)
    assert conn.is_closed() and pool.get_size() == 0
    conn = await pool.acquire()
    assert conn is opened[1]
    assert await conn.fetchval("SELECT to_regclass('pg_temp.leftover')") is None
    await pool.release(conn)
    await pool.close()


async def test_a_connection_the_server_closed_is_replaced(
    pg: EmbeddedPostgres, server_conn: asyncpg.Connection
) -> None:
    pool, opened = make_pool(pg, max_size=1)
    conn = await pool.acquire()
    await pool.release(conn)
    await server_conn.execute(TERMINATE_ALL, APP_NAME)
    assert await eventually(conn.is_closed)  # the client notices the closed socket on its own
    conn = await pool.acquire()
    assert conn is opened[1] and await conn.fetchval("SELECT 2") == 2
    await pool.release(conn)
    await pool.close()


async def test_a_connection_broken_while_leased_gives_its_place_back(
    pg: EmbeddedPostgres, server_conn: asyncpg.Connection
) -> None:
    pool, _ = make_pool(pg, max_size=1)
    conn = await pool.acquire()
    pid = conn.get_server_pid()
    await server_conn.execute("SELECT pg_terminate_backend($1)", pid)
    with pytest.raises(Exception) as caught:  # what exactly depends on when asyncpg notices
        await conn.fetchval("SELECT 1")
    await pool.release(conn, caught.value)
    conn = await asyncio.wait_for(pool.acquire(), 5)
    assert conn.get_server_pid() != pid
    await pool.release(conn)
    await pool.close()


async def test_sql_errors_keep_the_connection_and_broken_ones_drop_it(pg: EmbeddedPostgres) -> None:
    pool, opened = make_pool(pg, max_size=1)
    conn = await pool.acquire()
    with pytest.raises(asyncpg.PostgresError) as caught:
        await conn.execute("SET statement_timeout = 50; SELECT pg_sleep(1)")
    assert caught.value.sqlstate == "57014"
    await pool.release(conn, caught.value)
    assert await pool.acquire() is conn, "a statement timeout leaves the connection usable"
    await pool.release(conn, asyncpg.InterfaceError("the protocol broke"))
    assert conn.is_closed() and pool.get_size() == 0
    replacement = await pool.acquire()
    assert replacement is opened[1]
    await pool.release(replacement)
    await pool.close()


async def test_idle_connections_close_after_idle_seconds(pg: EmbeddedPostgres, server_conn: asyncpg.Connection) -> None:
    pool, _ = make_pool(pg, idle_seconds=0.2)
    conns = [await pool.acquire(), await pool.acquire()]
    for conn in conns:
        await pool.release(conn)
    assert pool.get_idle_size() == 2
    assert await eventually(lambda: pool.get_size() == 0)

    async def no_backends() -> bool:
        return await backends(server_conn) == 0

    assert await eventually(no_backends)
    await pool.close()


async def test_a_connection_is_retired_after_max_uses(pg: EmbeddedPostgres) -> None:
    pool, opened = make_pool(pg, max_size=1, max_uses=3)
    for _ in range(7):
        conn = await pool.acquire()
        await pool.release(conn)
    assert len(opened) == 3
    await pool.close()


async def test_reset_runs_on_release_and_a_failing_reset_drops_the_connection(pg: EmbeddedPostgres) -> None:
    resets: list[asyncpg.Connection] = []

    async def reset(conn: asyncpg.Connection) -> None:
        resets.append(conn)
        await conn.reset()
        if len(resets) == 2:
            raise RuntimeError("reset failed")

    pool, opened = make_pool(pg, max_size=1, reset=reset)
    conn = await pool.acquire()
    await conn.execute("SET work_mem = '7MB'")
    await pool.release(conn)
    conn = await pool.acquire()
    assert await conn.fetchval("SHOW work_mem") != "7MB"
    with pytest.raises(RuntimeError):
        await pool.release(conn)
    assert conn.is_closed()
    conn = await pool.acquire()
    assert conn is opened[1]
    await pool.release(conn)
    await pool.close()


async def test_a_failed_connect_does_not_lose_the_place(pg: EmbeddedPostgres) -> None:
    attempts = 0

    async def connect() -> asyncpg.Connection:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("connection refused")
        return await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password)

    pool = ConnectionPool(connect, max_size=1, idle_seconds=60)
    with pytest.raises(OSError):
        await pool.acquire()
    conn = await asyncio.wait_for(pool.acquire(), 5)
    await pool.release(conn)
    await pool.close()


async def test_close_waits_for_leased_connections_and_refuses_new_leases(
    pg: EmbeddedPostgres, server_conn: asyncpg.Connection
) -> None:
    pool, _ = make_pool(pg)
    leased = await pool.acquire()
    closing = asyncio.create_task(pool.close())
    await asyncio.sleep(0.05)
    assert not closing.done()
    with pytest.raises(PoolClosed):
        await pool.acquire()
    assert await leased.fetchval("SELECT 3") == 3, "a leased connection works until it is returned"
    await pool.release(leased)
    await asyncio.wait_for(closing, 5)
    assert leased.is_closed() and await backends(server_conn) == 0


async def test_a_second_release_is_refused_and_waiters_of_a_closed_pool_are_told(pg: EmbeddedPostgres) -> None:
    pool, _ = make_pool(pg, max_size=1)
    conn = await pool.acquire()
    await pool.release(conn)
    with pytest.raises(asyncpg.InterfaceError, match="released twice"):
        await pool.release(conn)
    assert pool.get_idle_size() == 1, "the connection is not handed out twice"
    held = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(pool.close())
    await pool.release(held)
    with pytest.raises(PoolClosed):
        await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(closing, 5)
    assert held.is_closed()


async def test_terminate_closes_leased_connections_too(pg: EmbeddedPostgres) -> None:
    pool, _ = make_pool(pg)
    leased = await pool.acquire()
    idle = await pool.acquire()
    await pool.release(idle)
    pool.terminate()
    assert leased.is_closed() and idle.is_closed() and pool.get_size() == 0
