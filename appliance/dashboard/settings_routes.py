"""`GET/PATCH /admin/api/settings` (runtime settings) and `GET /admin/api/settings/config` (the file).

A PATCH is all or nothing; every attempt is audited (the values of secrets never: only whether
one is set). See :mod:`appliance.settings`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.dashboard.adminauth import audit_admin, current_admin
from appliance.errors import AtlasError
from appliance.settings.fileview import RELOADABLE, file_config
from appliance.settings.registry import SETTINGS
from appliance.settings.service import RuntimeSettings
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


def runtime_settings(request: web.Request) -> RuntimeSettings:
    return request.app[CORE].service(RuntimeSettings)


@routes.get("/admin/api/settings")
async def get_settings(request: web.Request) -> web.Response:
    return json_response(runtime_settings(request).describe())


@routes.patch("/admin/api/settings")
async def patch_settings(request: web.Request) -> web.Response:
    settings = runtime_settings(request)
    admin = current_admin(request)
    body = await read_json_object(request)
    try:
        change = await settings.update(body, actor=admin.name)
    except AtlasError as exc:
        key = exc.details.get("key") if isinstance(exc.details, dict) else None
        # Only key names: a refused value may be a secret.
        await _audit(request, "failure", {"keys": [k[:100] for k in sorted(body)[:50]], "error": exc.code, "key": key})
        raise
    if change.keys:
        await _audit(request, "success", {"changed": change.changed, "reset": change.reset})
    return json_response(settings.describe())


@routes.get("/admin/api/settings/config")
async def get_file_config(request: web.Request) -> web.Response:
    settings = runtime_settings(request)
    return json_response(
        {
            "config": file_config(request.app[CORE].config),
            "overridden": [s.key for s in SETTINGS if settings.overridden(s.key)],
            "reloadable": list(RELOADABLE),
        }
    )


async def _audit(request: web.Request, outcome: str, details: dict[str, Any]) -> None:
    await audit_admin(request, "settings.update", outcome=outcome, details=details)
