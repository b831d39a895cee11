"""Benchmark: refresh-token rotation throughput and login latency through the real gateway.

Starts a private PostgreSQL and an in-process daemon (as the tests do), creates one project
and one user, then:

- refresh: ``--sessions`` sign-ins (made directly, no bcrypt), each rotated in its own chain,
  ``--refreshes`` rotations in all at concurrency ``--sessions`` over HTTP;
- login: ``--logins`` sequential sign-ins over HTTP (bcrypt at the configured cost).

    .venv/bin/python bench/auth.py [--refreshes 1000] [--sessions 100] [--logins 20]

PocketBase's published figure for reference: 1,000 refreshes at concurrency 100 in 0.35 s on a
2-vCPU Hetzner CAX11.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.auth.service import AuthService
from appliance.gateway.ratelimit import TokenBuckets
from tests.fixtures.daemon import RunningDaemon, running_daemon
from tests.fixtures.pg import running_postgres

PASSWORD = "correct horse battery"
UNLIMITED: dict[str, dict[str, Any]] = {
    "auth": {"login_per_minute": 1_000_000, "signup_per_hour": 1_000_000},
    "gateway": {"rate_limit_per_second": 1_000_000.0, "rate_limit_burst": 1_000_000.0},
}


async def bench_refresh(atlas: RunningDaemon, pid: str, key: str, uid: str, refreshes: int, sessions: int) -> float:
    service = atlas.daemon.core.service(AuthService)
    service.limits.refresh_ip = TokenBuckets(1e9, 1e9)
    tokens = []
    async with atlas.daemon.core.pools.connection(pid, "app") as conn:
        for _ in range(sessions):
            tokens.append((await service._open_session(conn, pid, uid, "bench@example.com")).refresh_token)
    per_chain = [refreshes // sessions + (1 if i < refreshes % sessions else 0) for i in range(sessions)]

    async def chain(token: str, count: int) -> None:
        for _ in range(count):
            status, body = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": token})
            assert status == 200, body
            token = body["refresh_token"]

    started = time.perf_counter()
    await asyncio.gather(*(chain(t, n) for t, n in zip(tokens, per_chain, strict=True)))
    return time.perf_counter() - started


async def bench_login(atlas: RunningDaemon, key: str, logins: int) -> list[float]:
    times = []
    for _ in range(logins):
        started = time.perf_counter()
        status, body = await atlas.public(
            "POST", "/v1/auth/login", key, json={"email": "bench@example.com", "password": PASSWORD}
        )
        assert status == 200, body
        times.append(time.perf_counter() - started)
    return times


async def main(args: argparse.Namespace) -> None:
    with running_postgres() as pg, tempfile.TemporaryDirectory() as tmp:
        async with running_daemon(Path(tmp) / "state", pg, **UNLIMITED) as atlas:
            status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "bench"})
            assert status == 201, project
            pid, key = project["id"], project["publishable_key"]
            status, user = await atlas.public(
                "POST", "/v1/auth/signup", key, json={"email": "bench@example.com", "password": PASSWORD}
            )
            assert status == 201, user
            uid = user["user"]["id"]
            await bench_refresh(atlas, pid, key, uid, 200, min(args.sessions, 50))  # warm pools and caches
            elapsed = await bench_refresh(atlas, pid, key, uid, args.refreshes, args.sessions)
            print(
                f"refresh: {args.refreshes} rotations at concurrency {args.sessions} in {elapsed:.3f} s"
                f" ({args.refreshes / elapsed:.0f}/s); pool_max={atlas.daemon.core.config.postgres.pool_max}"
            )
            times = await bench_login(atlas, key, args.logins)
            rounds = atlas.daemon.core.config.auth.bcrypt_rounds
            print(
                f"login: {args.logins} sequential, bcrypt cost {rounds}: p50 {statistics.median(times) * 1000:.0f} ms,"
                f" max {max(times) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--refreshes", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--logins", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
