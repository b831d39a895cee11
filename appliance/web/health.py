"""`/healthz` (the process is alive) and `/readyz` (control plane open, PostgreSQL reachable)."""

from __future__ import annotations

from aiohttp import web

from appliance.web.keys import CORE


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    checks = await core.readiness()
    ready = all(checks.values())
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503
    )


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
