"""Public storage API (seed 002 "Storage API"): signed upload/download URLs, listing, deletion.

Browsers call these from other origins (a Next.js app asking for an upload URL); the gateway's
CORS middleware (appliance/gateway/cors.py) answers preflights and marks every /v1/ answer.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance.gateway.context import api_context
from appliance.projects.keys import KeyRecord
from appliance.projects.model import Project
from appliance.storage.base import MAX_LIST_LIMIT
from appliance.storage.service import StorageObjectList, StorageService
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int, read_json_object

routes = web.RouteTableDef()


async def _caller(request: web.Request, endpoint: str) -> tuple[StorageService, Project, KeyRecord]:
    context = await api_context(request, with_user=False)
    core = request.app[CORE]
    project = await core.projects.get(context.project_id)
    service = core.service(StorageService)
    service.authorize(project, context.key, endpoint)
    return service, project, context.key


@routes.post("/v1/storage/signed-upload")
async def signed_upload(request: web.Request) -> web.StreamResponse:
    service, project, key = await _caller(request, "signed-upload")
    body = await read_json_object(request)
    grant = await service.signed_upload(
        project, key, body.get("bucket"), body.get("path"), body.get("contentType"), body.get("maxSize")
    )
    return json_response(grant)


@routes.get("/v1/storage/signed-download")
async def signed_download(request: web.Request) -> web.StreamResponse:
    service, project, _ = await _caller(request, "signed-download")
    grant = await service.signed_download(project, request.query.get("bucket"), request.query.get("objectKey"))
    return json_response(grant)


@routes.get("/v1/storage/list")
async def list_objects(request: web.Request) -> web.StreamResponse:
    service, project, _ = await _caller(request, "list")
    page = await service.list(
        project,
        request.query.get("bucket"),
        request.query.get("prefix", ""),
        limit=_limit(request),
        cursor=request.query.get("cursor") or None,
    )
    return json_response(_render_list(page))


@routes.delete("/v1/storage/object")
async def delete_object(request: web.Request) -> web.StreamResponse:
    service, project, _ = await _caller(request, "delete")
    await service.delete(project, request.query.get("bucket"), request.query.get("objectKey"))
    return json_response({"deleted": True})


def _limit(request: web.Request) -> int:
    return query_int(request, "limit", 100, minimum=1, maximum=MAX_LIST_LIMIT)


def _render_list(page: StorageObjectList) -> dict[str, Any]:
    objects, next_cursor = page
    return {
        "objects": [
            {
                "key": o.key,
                "size": o.size,
                "etag": o.etag,
                "contentType": o.content_type,
                "lastModified": o.last_modified.isoformat().replace("+00:00", "Z"),
            }
            for o in objects
        ],
        "nextCursor": next_cursor,
    }
