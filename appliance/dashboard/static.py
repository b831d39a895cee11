"""Serves the built web UI at / with cache headers and an SPA fallback for deep links."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from appliance.config import Config
from appliance.errors import NotFound
from appliance.resources import web_dist

log = logging.getLogger(__name__)

_IMMUTABLE = "public, max-age=31536000, immutable"


def add_static_routes(app: web.Application, config: Config) -> None:
    root = Path(config.dashboard.static_dir) if config.dashboard.static_dir else web_dist()
    index = root / "index.html"

    async def serve(request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        if tail.startswith(("admin/", "v1/")):
            raise NotFound("no such endpoint")
        if not index.exists():
            return web.Response(
                text="The dashboard has not been built. Run ./scripts/dev (it builds web/) or npm run build in web/.",
                status=503,
                content_type="text/plain",
            )
        candidate = (root / tail).resolve() if tail else index
        if tail and candidate.is_file() and candidate.is_relative_to(root.resolve()):
            response = web.FileResponse(candidate)
            if tail.startswith("assets/"):
                response.headers["Cache-Control"] = _IMMUTABLE
            return response
        if "." in tail.rsplit("/", 1)[-1]:
            raise NotFound("no such file")
        response = web.FileResponse(index)
        response.headers["Cache-Control"] = "no-cache"
        return response

    app.router.add_get("/", serve)
    app.router.add_get("/{tail:.*}", serve)
