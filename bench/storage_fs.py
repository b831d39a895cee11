"""Benchmark: upload and download one large file through fs signed URLs on loopback.

The gateway side (FsBackend + its signed-URL routes) runs in a subprocess, so its RSS can be
measured on its own: the peak RSS (VmHWM, reset before each phase) minus the RSS just before it.

    .venv/bin/python bench/storage_fs.py [--size-mb 256] [--runs 3] [--loop uvloop|asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.storage.fs import FsBackend
from appliance.storage.fs_routes import add_signed_url_routes
from appliance.storage.fs_signing import FsSigner

BUCKET = "proj-bench"
BLOCK = 1 << 20


def serve(root: str, loop_kind: str) -> None:
    from aiohttp import web

    if loop_kind == "uvloop":
        import uvloop

        uvloop.install()
    backend = FsBackend(root, bytes.fromhex(os.environ["BENCH_SIGNING_KEY"]))
    app = web.Application()
    add_signed_url_routes(app, lambda: backend)

    async def main() -> None:
        await backend.ensure_bucket(BUCKET)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


async def file_blocks(path: Path) -> object:
    loop = asyncio.get_running_loop()
    with path.open("rb") as f:
        while block := await loop.run_in_executor(None, f.read, BLOCK):
            yield block


async def one_run(signer: FsSigner, pid: int, source: Path, size: int, digest: str, n: int) -> dict[str, float]:
    key = "bench/object.bin"  # each run replaces the previous object
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        put_url = signer.sign_url(
            "PUT", BUCKET, key, expires_s=600, max_size=size, content_type="application/octet-stream"
        )
        base = rss_kb(pid, "VmRSS")
        reset_peak(pid)
        t0 = time.perf_counter()
        async with http.put(
            put_url,
            data=file_blocks(source),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        ) as resp:
            body = await resp.json()
        up_s = time.perf_counter() - t0
        assert resp.status == 200 and body["etag"] == digest, body
        up_growth = rss_kb(pid, "VmHWM") - base

        get_url = signer.sign_url("GET", BUCKET, key, expires_s=600)
        base = rss_kb(pid, "VmRSS")
        reset_peak(pid)
        h = hashlib.sha256()
        t0 = time.perf_counter()
        async with http.get(get_url) as resp:
            assert resp.status == 200
            async for block in resp.content.iter_chunked(BLOCK):
                h.update(block)
        down_s = time.perf_counter() - t0
        assert h.hexdigest() == digest
        down_growth = rss_kb(pid, "VmHWM") - base
    mb = size / 1e6
    return {
        "up_mbs": mb / up_s,
        "down_mbs": mb / down_s,
        "up_rss_mb": up_growth / 1024,
        "down_rss_mb": down_growth / 1024,
    }


async def bench(args: argparse.Namespace) -> int:
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory(prefix="atlas-bench-", dir=args.dir) as tmp:
        source = Path(tmp) / "source.bin"
        size = args.size_mb * 1024 * 1024
        h = hashlib.sha256()
        with source.open("wb") as f:
            for _ in range(args.size_mb):
                block = os.urandom(BLOCK)
                h.update(block)
                f.write(block)
        digest = h.hexdigest()
        env = {**os.environ, "BENCH_SIGNING_KEY": key.hex()}
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(Path(tmp) / "objects"), "--loop", args.loop],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            signer = FsSigner(key, f"http://127.0.0.1:{port}")
            print(f"{args.size_mb} MiB file, loop={args.loop}, server pid {server.pid}")
            print(f"{'run':>3}  {'upload MB/s':>11}  {'download MB/s':>13}  {'RSS +MB up':>10}  {'RSS +MB down':>12}")
            results = []
            for n in range(args.runs):
                r = await one_run(signer, server.pid, source, size, digest, n)
                results.append(r)
                print(
                    f"{n + 1:>3}  {r['up_mbs']:>11.0f}  {r['down_mbs']:>13.0f}  "
                    f"{r['up_rss_mb']:>10.1f}  {r['down_rss_mb']:>12.1f}"
                )
            worst = {k: (min if k.endswith("mbs") else max)(r[k] for r in results) for k in results[0]}
            print(
                f"worst  {worst['up_mbs']:>9.0f}  {worst['down_mbs']:>13.0f}  "
                f"{worst['up_rss_mb']:>10.1f}  {worst['down_rss_mb']:>12.1f}"
            )
            ok = (
                worst["up_mbs"] >= 200
                and worst["down_mbs"] >= 200
                and worst["up_rss_mb"] < 20
                and worst["down_rss_mb"] < 20
            )
            print("PASS (>= 200 MB/s each way, RSS growth < 20 MB)" if ok else "FAIL")
            return 0 if ok else 1
        finally:
            server.terminate()
            server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--dir", default=None, help="where to put the files (default: the temp dir)")
    parser.add_argument("--serve", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.loop)
        return 0
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
