"""Benchmark: the scheduler with 1,000 enabled jobs — idle CPU and firing lateness.

Runs the real daemon (`python -m appliance serve`, every role) in a subprocess against a
private PostgreSQL, with 1,000 HTTP jobs seeded into its control plane, and an HTTP target in
this process on loopback (allowlisted). CPU is read from /proc/<pid>/stat (utime + stime).

Phases:
1. idle — 1,000 jobs on minute-resolution daily schedules, none due in the window: CPU over
   ``--window`` seconds; then probe jobs with second-level schedules fire a few seconds apart
   and their lateness is measured (arrival at the target minus the due instant).
2. busy — the same 1,000 jobs switched to ``* * * * *``: CPU over 60 s (one full minute, so
   exactly one firing of all 1,000), and each run's lateness (started_at - scheduled_for).

    .venv/bin/python bench/scheduler_idle.py [--jobs 1000] [--window 30] [--probes 5] [--skip-busy]

Targets (issue 9): idle CPU < 1 %, lateness <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.control.store import ControlPlane  # noqa: E402
from appliance.core import ensure_node_keys  # noqa: E402
from appliance.crypto import SecretBox, generate_master_key, load_master_key  # noqa: E402
from appliance.pg.embedded import EmbeddedPostgres  # noqa: E402
from appliance.scheduler.jobs import JobStore, parse_iso  # noqa: E402
from appliance.scheduler.safehttp import Allowlist  # noqa: E402
from tests.fixtures.serve_config import write_serve_config  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def avoiding(now: datetime, rng: random.Random) -> tuple[int, int]:
    """A random (hour, minute) of the day not within the next 15 minutes (nothing fires in phase 1)."""
    while True:
        hour, minute = rng.randrange(24), rng.randrange(60)
        candidate = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if not timedelta(minutes=-2) <= candidate - now <= timedelta(minutes=15):
            return hour, minute


async def seed(state: Path, port: int, jobs: int, probes: list[datetime]) -> None:
    store = ControlPlane(state / "control.db")
    await store.open()
    try:
        job_store = JobStore(
            store, SecretBox(load_master_key(state / "master.key")), Allowlist.parse([f"127.0.0.1:{port}"])
        )
        now = datetime.now(UTC)
        rng = random.Random(7)
        for i in range(jobs):
            hour, minute = avoiding(now, rng)
            await job_store.create(
                {
                    "name": f"idle-{i}",
                    "type": "http",
                    "schedule_cron": f"{minute} {hour} * * *",
                    "http_url": f"http://127.0.0.1:{port}/idle",
                    "http_headers": {"Authorization": f"Bearer secret-{i}"},
                }
            )
        for i, due in enumerate(probes):
            await job_store.create(
                {
                    "name": f"probe-{i}",
                    "type": "http",
                    "schedule_cron": f"{due.second} {due.minute} {due.hour} {due.day} {due.month} *",
                    "http_url": f"http://127.0.0.1:{port}/probe/{i}",
                }
            )
    finally:
        await store.close()


class Target:
    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.setdefault(request.path, []).append(time.time())
        return web.Response(text="ok")


def serve(config_path: Path) -> int:
    """What `atlashub serve` does (uvloop, every role), without the CLI's other subcommands."""
    from appliance import aio
    from appliance.config import load_config
    from appliance.daemon import Daemon, run_until_signalled
    from appliance.logs import setup_logging

    config = load_config(config_path)
    setup_logging(config.logging.level, config.logging.format)
    return int(aio.run(run_until_signalled(Daemon(config), config_path=config_path)))


def start_daemon(config: Path) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    return subprocess.Popen([sys.executable, __file__, "--serve", str(config)], env=env, cwd=ROOT)


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure_cpu(proc: subprocess.Popen[bytes], seconds: float) -> tuple[float, float]:
    """(percent of one core, CPU seconds used) over ``seconds``; resolution is one clock tick."""
    before, started = cpu_seconds(proc.pid), time.monotonic()
    await asyncio.sleep(seconds)
    if proc.poll() is not None:
        raise RuntimeError(f"the daemon exited with {proc.returncode}")
    used = cpu_seconds(proc.pid) - before
    return used / (time.monotonic() - started) * 100, used


def run_lateness(state: Path, name_like: str) -> list[float]:
    with sqlite3.connect(state / "control.db") as db:
        rows = db.execute(
            "SELECT r.started_at, r.scheduled_for FROM cron_job_runs r JOIN cron_jobs j ON j.id = r.job_id"
            " WHERE j.name LIKE ? AND r.trigger = 'schedule' AND r.scheduled_for IS NOT NULL",
            (name_like,),
        ).fetchall()
    return [(parse_iso(s) - parse_iso(d)).total_seconds() for s, d in rows]  # type: ignore[operator]


async def bench(args: argparse.Namespace, pg: EmbeddedPostgres, base: Path) -> list[tuple[str, str, str]]:
    target = Target()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state = base / "state"
    state.mkdir(mode=0o700)
    generate_master_key(state / "master.key")
    ensure_node_keys(state)  # as `atlashub init` does, before the control plane exists
    config = write_serve_config(
        state, pg, roles=args.roles.split(","), extra=f'\n[scheduler]\nhttp_allowlist = ["127.0.0.1:{port}"]\n'
    )
    warmup = 5.0
    first_probe = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(warmup + args.window + 12))
    probes = [first_probe + timedelta(seconds=2 * i) for i in range(args.probes)]
    seeded = time.monotonic()
    await seed(state, port, args.jobs, probes)
    print(f"seeded {args.jobs} jobs in {time.monotonic() - seeded:.1f} s", flush=True)
    rows: list[tuple[str, str, str]] = []
    try:
        proc = start_daemon(config)
        try:
            await asyncio.sleep(warmup)
            idle, used = await measure_cpu(proc, args.window)
            rows.append(
                (f"idle CPU, {args.jobs} enabled jobs, {args.window:.0f} s", f"{idle:.2f} % ({used:.2f} s)", "< 1 %")
            )
            wait = (probes[-1] - datetime.now(UTC)).total_seconds() + 3
            await asyncio.sleep(max(0.0, wait))
            late = [
                target.arrivals[f"/probe/{i}"][0] - due.timestamp()
                for i, due in enumerate(probes)
                if target.arrivals.get(f"/probe/{i}")
            ]
            if len(late) != len(probes):
                raise RuntimeError(f"only {len(late)} of {len(probes)} probe jobs fired")
            rows.append(
                (
                    f"lateness at the target, {len(late)} probes (max / median)",
                    f"{max(late) * 1000:.0f} / {statistics.median(late) * 1000:.0f} ms",
                    "<= 1000 ms",
                )
            )
            assert "/idle" not in target.arrivals, "an idle job fired inside the window"
        finally:
            stop_daemon(proc)
        if args.skip_busy:
            return rows
        with sqlite3.connect(state / "control.db") as db:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            db.execute(
                "UPDATE cron_jobs SET schedule_cron = '* * * * *', last_due_at = ?, updated_at = ?"
                " WHERE name LIKE 'idle-%'",
                (stamp, stamp),
            )
        proc = start_daemon(config)
        try:
            # Start measuring just after a minute boundary: the window holds exactly one firing.
            await asyncio.sleep(3)
            now = datetime.now(UTC)
            await asyncio.sleep(60 - now.second - now.microsecond / 1e6 + 1)
            busy, used = await measure_cpu(proc, 60)
            await asyncio.sleep(2)
        finally:
            stop_daemon(proc)
        started = sorted(run_lateness(state, "idle-%"))
        arrivals = target.arrivals.get("/idle", [])
        # Each request's delay past the minute it was due in.
        late = sorted(t - t // 60 * 60 for t in arrivals)
        rows.append((f"CPU, {args.jobs} jobs all firing every minute, 60 s", f"{busy:.2f} % ({used:.2f} s)", "(load)"))
        if started:
            rows.append(
                (
                    f"run rows opened after due, {len(started)} runs (max)",
                    f"{started[-1] * 1000:.0f} ms",
                    "<= 1000 ms",
                )
            )
        if late:
            p95 = late[int(len(late) * 0.95) - 1]
            rows.append(
                (
                    f"lateness at the target, {len(late)} requests, {args.jobs} due at once (p50 / p95 / max)",
                    f"{statistics.median(late) * 1000:.0f} / {p95 * 1000:.0f} / {late[-1] * 1000:.0f} ms",
                    "<= 1000 ms",
                )
            )
    finally:
        await runner.cleanup()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--probes", type=int, default=5)
    parser.add_argument("--skip-busy", action="store_true")
    parser.add_argument("--roles", default="gateway,dashboard,scheduler,backups,agent", help="roles of the daemon")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    base = Path(tempfile.mkdtemp(prefix="atlashub-bench-", dir="/tmp"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(data_dir=base / "pg", password_file=base / "pg.password")
    try:
        pg.ensure_initialized()
        pg.start()
        rows = asyncio.run(bench(args, pg, base))
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'result':>22}  target")
    for name, value, goal in rows:
        print(f"{name:<{width}}  {value:>22}  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
