"""Backup throughput vs a raw `pg_dump -Fc > file`, and the memory of the backing-up process.

Usage: .venv/bin/python bench/backup.py [--rows N] [--rounds R] [--first raw|ours]
Starts a private PostgreSQL, generates a project table of N rows (~210 bytes each on disk, so
5,000,000 rows ≈ 1 GB), then times (1) `pg_dump -Fc` to a file and (2)
BackupService.create_backup (pg_dump → AES-GCM stream → SHA-256 → fs storage, without the
verification restore). With R rounds the order alternates (raw first, then ours first, …) so the
effect of a warm page cache on whichever runs second shows. The RSS of this process is sampled
every 50 ms by a thread while our backup runs. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.backups.pgtools import tool, tool_env
from appliance.backups.service import BackupService
from appliance.core import Core
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.daemon import Daemon
from tests.fixtures.daemon import make_config
from tests.fixtures.pg import running_postgres

PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / (1 << 20)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_MIB


class RssSampler:
    """Current RSS sampled from a thread (the event loop may be busy), start and maximum kept."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.start = rss_mib()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mib())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def raw_dump(core: Core, db_name: str, target: Path) -> dict[str, Any]:
    started = time.monotonic()
    with target.open("wb") as out:
        subprocess.run([tool("pg_dump"), "-Fc"], stdout=out, env=tool_env(core.pg, db_name), check=True)
    seconds = time.monotonic() - started
    size = target.stat().st_size
    target.unlink()
    return {"seconds": round(seconds, 2), "bytes": size}


async def our_backup(core: Core, project_id: str) -> dict[str, Any]:
    with RssSampler() as rss:
        started = time.monotonic()
        result = await core.service(BackupService).create_backup(project_id)
        seconds = time.monotonic() - started
    return {
        "seconds": round(seconds, 2),
        "bytes": result["size"],
        "rss_mib_start": round(rss.start, 1),
        "rss_mib_peak": round(rss.peak, 1),
    }


async def run(rows: int, rounds: int, first: str) -> dict[str, object]:
    with running_postgres() as pg:
        state = Path(tempfile.mkdtemp(prefix="atlashub-bench-"))
        generate_master_key(state / MASTER_KEY_FILE)
        daemon = Daemon(make_config(state, pg, backups={"verify": False}, node={"roles": ("backups",)}))
        await daemon.start()
        try:
            core = daemon.core
            created = await core.projects.create("bench")
            project = created.project
            conn = await core.pg.connect(project.db_name)
            started = time.monotonic()
            await conn.execute(
                "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, kind text, payload jsonb, note text);"
                "INSERT INTO events (at, kind, payload, note) SELECT now() - g * interval '1 second', 'k' || (g % 50),"
                " jsonb_build_object('n', g, 'v', md5(g::text)), repeat(md5(g::text), 2)"
                f" FROM generate_series(1, {rows}) g",
                timeout=None,
            )
            await conn.execute("VACUUM ANALYZE events", timeout=None)
            generate_s = time.monotonic() - started
            db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
            await conn.close()

            results = []
            for n in range(rounds):
                raw_first = (n % 2 == 0) == (first == "raw")
                if raw_first:
                    raw = await asyncio.to_thread(raw_dump, core, project.db_name, state / "raw.dump")
                    ours = await our_backup(core, project.id)
                else:
                    ours = await our_backup(core, project.id)
                    raw = await asyncio.to_thread(raw_dump, core, project.db_name, state / "raw.dump")
                results.append(
                    {
                        "order": "raw first" if raw_first else "ours first",
                        "load_avg_1m_after": round(os.getloadavg()[0], 2),  # the machine is shared: say how busy
                        "raw_pg_dump": raw,
                        "atlashub_backup": ours,
                        "ratio": round(ours["seconds"] / raw["seconds"], 3),
                    }
                )
            total_raw = sum(r["raw_pg_dump"]["seconds"] for r in results)  # type: ignore[index]
            total_ours = sum(r["atlashub_backup"]["seconds"] for r in results)  # type: ignore[index]
            return {
                "rows": rows,
                "database_bytes": db_bytes,
                "generate_s": round(generate_s, 1),
                "rounds": results,
                "ratio_of_totals": round(total_ours / total_raw, 3),
                "process_peak_rss_mib": round(peak_rss_mib(), 1),
                "cpus": os.cpu_count(),
            }
        finally:
            await daemon.stop()
            shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows to generate (5,000,000 ≈ 1 GB)")
    parser.add_argument("--rounds", type=int, default=1, help="measure both this many times, alternating the order")
    parser.add_argument("--first", choices=("raw", "ours"), default="raw", help="which runs first in round one")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rows, args.rounds, args.first)), indent=2))


if __name__ == "__main__":
    main()
