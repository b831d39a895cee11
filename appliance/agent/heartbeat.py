"""Worker heartbeats: what the node reports to its master every ``mesh.heartbeat_seconds``."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from typing import Any

import aiohttp

from appliance import __version__
from appliance.core import Core
from appliance.mesh.envelope import HEARTBEAT, seal
from appliance.mesh.peers import Mesh

log = logging.getLogger(__name__)

SEND_TIMEOUT = 5.0


def disk_usage(path: str) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {"path": path, "total_bytes": None, "free_bytes": None}
    return {"path": path, "total_bytes": usage.total, "free_bytes": usage.free}


def load_info() -> dict[str, Any]:
    load1, load5, load15 = os.getloadavg()
    info: dict[str, Any] = {
        "load1": round(load1, 2),
        "load5": round(load5, 2),
        "load15": round(load15, 2),
        "cpus": os.cpu_count(),
        "mem_total_bytes": None,
        "mem_available_bytes": None,
    }
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name == "MemTotal":
                    info["mem_total_bytes"] = int(rest.split()[0]) * 1024
                elif name == "MemAvailable":
                    info["mem_available_bytes"] = int(rest.split()[0]) * 1024
    except (OSError, ValueError):
        pass
    return info


async def postgres_status(core: Core) -> dict[str, Any]:
    try:
        conn = await core.pg.connect(timeout=3)
    except Exception as exc:
        return {"ok": False, "version": None, "databases": None, "error": type(exc).__name__}
    try:
        version = await conn.fetchval("SHOW server_version")
        databases = await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname LIKE 'proj\\_%'")
        return {"ok": True, "version": version, "databases": databases, "error": None}
    except Exception as exc:
        return {"ok": False, "version": None, "databases": None, "error": type(exc).__name__}
    finally:
        await conn.close()


async def last_backup_at(core: Core) -> str | None:
    row = await core.store.fetchone(
        "SELECT max(finished_at) AS at FROM backups WHERE status IN ('completed', 'verified')"
    )
    return row["at"] if row else None


async def collect(core: Core, mesh: Mesh) -> dict[str, Any]:
    postgres = await postgres_status(core)
    master = await mesh.master()
    handshake = None
    if master is not None and master.wg_public:
        handshake = (await mesh.wg.handshake_ages()).get(master.wg_public)
    return {
        "version": __version__,
        "health": "ok" if postgres["ok"] else "degraded",
        "disk": disk_usage(str(core.config.state_dir)),
        "load": load_info(),
        "postgres": postgres,
        "wg_handshake_age_s": handshake,
        "last_backup_at": await last_backup_at(core),
        "projects": len(await core.projects.all()),
    }


async def send_heartbeat(core: Core, mesh: Mesh) -> bool:
    """One heartbeat to the master; False when there is no master yet or it did not take it."""
    master = await mesh.master()
    if master is None or not master.agent_url:
        return False
    body = json.dumps(await collect(core, mesh)).encode()
    sealed = seal(mesh.identity, master.id, HEARTBEAT, body)
    try:
        async with mesh.http.post(
            master.agent_url + "/mesh/v1/heartbeat",
            data=sealed.body,
            headers=sealed.http_headers(),
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT),
        ) as resp:
            if resp.status != 204:
                log.warning("the master refused a heartbeat: HTTP %d %s", resp.status, (await resp.text())[:200])
                return False
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("heartbeat to the master failed: %r", exc)
        return False
    return True


async def heartbeat_loop(core: Core, mesh: Mesh) -> None:
    interval = core.config.mesh.heartbeat_seconds
    while True:
        try:
            await send_heartbeat(core, mesh)
        except Exception:
            log.exception("heartbeat failed")
        # Before the join there is no master: look again soon, so the first beat follows the join.
        await asyncio.sleep(interval if await mesh.master() is not None else min(interval, 2.0))
