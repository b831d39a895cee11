"""Provisioning a project end to end (database, roles, bucket, keys) through the admin API.

    .venv/bin/python bench/provision.py [--count 10]

Starts `atlashub dev` on a temporary data dir, creates COUNT projects one after another and
prints the median and worst time. Target: median ≤ 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="atlas-provision-", dir="/tmp"))
    work.chmod(0o755)
    atlashub = str(Path(sys.executable).parent / "atlashub")
    proc = subprocess.Popen(
        [atlashub, "dev", "--data-dir", str(work / "d"), "--gateway-port", "0", "--dashboard-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    try:
        while not (work / "d" / "dev.json").exists():
            time.sleep(0.1)
        info = json.loads((work / "d" / "dev.json").read_text())
        times = []
        for i in range(args.count):
            request = urllib.request.Request(
                info["dashboard_url"] + "/admin/api/projects",
                data=json.dumps({"name": f"bench {i}"}).encode(),
                headers={"content-type": "application/json", "x-dev-admin-token": info["admin_token"]},
            )
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as resp:
                assert resp.status == 201
            times.append(time.perf_counter() - started)
        print(f"projects provisioned: {len(times)}")
        print(
            f"median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms, "
            f"best {min(times) * 1000:.0f} ms"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
