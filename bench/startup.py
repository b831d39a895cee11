"""Start-up to READY=1 and idle RSS of `atlashub serve` with every role.

Starts a private PostgreSQL (EmbeddedPostgres), then runs the daemon N times with a
NOTIFY_SOCKET we listen on, exactly as systemd would (Type=notify), and measures:

- ready: from spawn to the READY=1 datagram;
- RSS: the process's resident set size after it has idled for a few seconds.

Usage:
    .venv/bin/python bench/startup.py [--binary dist/atlashub/atlashub] [--runs 5] [--idle 3]

Without --binary it runs the source tree (`python -m appliance`). Targets: ≤ 1.0 s to ready,
idle RSS ≤ 60 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from appliance.crypto import generate_master_key  # noqa: E402
from appliance.pg.embedded import EmbeddedPostgres  # noqa: E402
from tests.fixtures.serve_config import write_serve_config  # noqa: E402

TARGET_READY_S = 1.0
TARGET_RSS_MB = 60.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pss_mb(pid: int) -> float:
    """Proportional set size: shared library pages split between the processes that map them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def one_run(cmd: list[str], config: Path, idle: float, workdir: Path) -> tuple[float, float, float]:
    sock_path = workdir / "notify.sock"
    sock_path.unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(30)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NOTIFY_SOCKET": str(sock_path), "LANG": "C.UTF-8"}
        started = time.monotonic()
        proc = subprocess.Popen([*cmd, "serve", "--config", str(config)], env=env, stdout=subprocess.DEVNULL)
        try:
            while True:
                message = sock.recv(4096).decode()
                if "READY=1" in message.split("\n"):
                    ready = time.monotonic() - started
                    break
            time.sleep(idle)
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            rss, pss = rss_mb(proc.pid), pss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise RuntimeError("daemon did not stop within 20 s of SIGTERM") from None
        if code != 0:
            raise RuntimeError(f"daemon exited {code} after SIGTERM")
    return ready, rss, pss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, help="a built atlashub executable (default: the source tree)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds to idle before reading RSS")
    args = parser.parse_args()

    cmd = [str(args.binary.resolve())] if args.binary else [sys.executable, "-m", "appliance"]
    base = Path(tempfile.mkdtemp(prefix="atlashub-bench-", dir="/tmp"))
    base.chmod(0o755)
    pg = EmbeddedPostgres(data_dir=base / "pg", password_file=base / "pg.password")
    results: list[tuple[float, float, float]] = []
    try:
        pg.ensure_initialized()
        pg.start()
        state = base / "state"
        state.mkdir(mode=0o700)
        generate_master_key(state / "master.key")
        config = write_serve_config(state, pg)
        # The first run creates the control plane (migrations); report it apart from warm starts.
        first = one_run(cmd, config, args.idle, base)
        for _ in range(args.runs):
            results.append(one_run(cmd, config, args.idle, base))
    finally:
        pg.stop()
        shutil.rmtree(base, ignore_errors=True)

    label = str(args.binary) if args.binary else "python -m appliance (source)"
    ready = [r[0] for r in results]
    rss = [r[1] for r in results]
    pss = [r[2] for r in results]
    print(f"atlashub serve, all roles: {label}; {args.runs} warm runs after 1 first run")
    print(f"{'metric':<28}{'first':>10}{'median':>10}{'min':>10}{'max':>10}{'target':>10}")
    print(
        f"{'start-up to READY=1 (s)':<28}{first[0]:>10.3f}{statistics.median(ready):>10.3f}"
        f"{min(ready):>10.3f}{max(ready):>10.3f}{TARGET_READY_S:>10.1f}"
    )
    print(
        f"{'idle RSS (MB)':<28}{first[1]:>10.1f}{statistics.median(rss):>10.1f}"
        f"{min(rss):>10.1f}{max(rss):>10.1f}{TARGET_RSS_MB:>10.0f}"
    )
    print(f"{'idle PSS (MB)':<28}{first[2]:>10.1f}{statistics.median(pss):>10.1f}{min(pss):>10.1f}{max(pss):>10.1f}")
    ok = statistics.median(ready) <= TARGET_READY_S and statistics.median(rss) <= TARGET_RSS_MB
    print("within targets" if ok else "OUTSIDE targets")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
