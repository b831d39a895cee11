"""Backup throughput vs a raw `pg_dump -Fc > file`, and peak RSS of the backing-up process.

Usage: .venv/bin/python bench/backup.py [--rows N]
Starts a private PostgreSQL, generates a project table of N rows (~200 bytes each on disk),
then times (1) `pg_dump -Fc` to a file and (2) BackupService.create_backup (pg_dump → AES-GCM
stream → SHA-256 → fs storage, without the verification restore). Prints JSON.
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
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.backups.pgtools import tool, tool_env
from appliance.backups.service import BackupService
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.daemon import Daemon
from tests.fixtures.daemon import make_config
from tests.fixtures.pg import running_postgres


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(rows: int) -> dict[str, object]:
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
            await conn.execute(
                "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz, kind text, payload jsonb, note text);"
                "INSERT INTO events (at, kind, payload, note) SELECT now() - g * interval '1 second', 'k' || (g % 50),"
                " jsonb_build_object('n', g, 'v', md5(g::text)), repeat(md5(g::text), 2)"
                f" FROM generate_series(1, {rows}) g"
            )
            db_bytes = await conn.fetchval("SELECT pg_database_size(current_database())")
            await conn.close()

            target = state / "raw.dump"
            started = time.monotonic()
            with target.open("wb") as out:
                subprocess.run([tool("pg_dump"), "-Fc"], stdout=out, env=tool_env(core.pg, project.db_name), check=True)
            raw_s = time.monotonic() - started
            raw_size = target.stat().st_size

            rss_before = rss_mib()
            started = time.monotonic()
            result = await core.service(BackupService).create_backup(project.id)
            ours_s = time.monotonic() - started
            return {
                "rows": rows,
                "database_bytes": db_bytes,
                "raw_pg_dump_s": round(raw_s, 2),
                "raw_dump_bytes": raw_size,
                "atlashub_backup_s": round(ours_s, 2),
                "backup_bytes": result["size"],
                "ratio": round(ours_s / raw_s, 3),
                "peak_rss_mib_before": round(rss_before, 1),
                "peak_rss_mib_after": round(rss_mib(), 1),
                "cpus": os.cpu_count(),
            }
        finally:
            await daemon.stop()
            shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    print(json.dumps(asyncio.run(run(parser.parse_args().rows)), indent=2))


if __name__ == "__main__":
    main()
