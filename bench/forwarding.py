"""Benchmark: latency added by master → worker forwarding, against the master serving locally.

Starts a private PostgreSQL, a master and a worker daemon (in-process, loopback; the
WireGuard hop is not part of this figure), joins them, and creates the same table in two
projects: one placed on the worker, one on the master. The master's edge runs the public
``/v1/db`` handlers behind ``maybe_forward`` exactly as the gateway does, so the only
difference between the two series is the forwarding: descriptor, signature, one HTTP hop
over a kept-alive connection, verification on the worker, and the relay back.

    .venv/bin/python bench/forwarding.py [--requests 2000] [--warmup 200]

Target: ≤ 2 ms added at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.core import Core
from appliance.gateway import db_routes
from appliance.gateway.context import api_context, install_rate_limits
from appliance.mesh.forward import maybe_forward
from appliance.web.errors import error_middleware
from appliance.web.keys import CORE
from tests.agent.cluster import join, running_node
from tests.fixtures.pg import running_postgres

SCHEMA = "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL); INSERT INTO items (name) VALUES ('a'), ('b');"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _edge(handler: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        context = await api_context(request)
        forwarded = await maybe_forward(request, context.project_id, context.key.type)
        return forwarded if forwarded is not None else await handler(request)

    return handle


def edge_app(core: Core) -> web.Application:
    """The master's public /v1/db, each handler behind maybe_forward (as the gateway wires it)."""
    app = web.Application(middlewares=[error_middleware])
    app[CORE] = core
    install_rate_limits(app, 1e9, 1e9)
    for route in db_routes.routes:
        assert isinstance(route, web.RouteDef)
        app.router.add_route(route.method, route.path, _edge(route.handler))
    return app


async def series(http: aiohttp.ClientSession, url: str, key: str, count: int) -> list[float]:
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url, headers={"x-api-key": key}) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def main(requests: int, warmup: int) -> None:
    with running_postgres() as pg, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        fast: dict[str, Any] = {"heartbeat_seconds": 30.0}
        async with (
            running_node(base / "m", pg, "master", "master", **fast) as master,
            running_node(base / "w", pg, "worker", "worker", **fast) as worker,
        ):
            await join(master, worker)
            wid = worker.daemon.core.node_id
            _, remote = await master.admin("POST", f"/admin/api/nodes/{wid}/projects", json={"name": "remote"})
            _, local = await master.admin("POST", "/admin/api/projects", json={"name": "local"})
            migration = {"migrations": [{"name": "0001.sql", "sql": SCHEMA}]}
            await worker.admin("POST", f"/admin/api/projects/{remote['id']}/migrations", json=migration)
            await master.admin("POST", f"/admin/api/projects/{local['id']}/migrations", json=migration)
            server = TestServer(edge_app(master.daemon.core), host="127.0.0.1")
            await server.start_server()
            url = str(server.make_url("/v1/db/items?limit=1"))
            try:
                async with aiohttp.ClientSession() as http:
                    for key in (local["secret_key"], remote["secret_key"]):
                        await series(http, url, key, warmup)
                    # Interleave rounds so that machine noise hits both series alike.
                    samples: dict[str, list[float]] = {"local": [], "forwarded": []}
                    for _ in range(10):
                        for name, key in (("local", local["secret_key"]), ("forwarded", remote["secret_key"])):
                            samples[name] += await series(http, url, key, requests // 10)
                    results = {name: summary(values) for name, values in samples.items()}
            finally:
                await server.close()
    (lp50, lp99), (fp50, fp99) = results["local"], results["forwarded"]
    print(f"requests per series: {requests} (sequential, one kept-alive client connection)")
    print(f"served on the master : p50 {lp50:6.2f} ms   p99 {lp99:6.2f} ms")
    print(f"forwarded to worker  : p50 {fp50:6.2f} ms   p99 {fp99:6.2f} ms")
    print(f"added by forwarding  : p50 {fp50 - lp50:6.2f} ms   p99 {fp99 - lp99:6.2f} ms   (target ≤ 2 ms at p50)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.warmup))
