"""Public storage API (seed 002 "Storage API"): signed upload/download URLs, listing, deletion.

Browsers call these from other origins (a Next.js app asking for an upload URL), so every
response, errors included, carries ``Access-Control-Allow-Origin: *``, and preflight ``OPTIONS``
requests under ``/v1/`` are answered here. Keys travel in ``x-api-key``, never in cookies, so
the wildcard origin gives a page nothing its own key would not.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from aiohttp import web

from appliance.errors import AtlasError
from appliance.gateway.context import api_context
from appliance.projects.keys import KeyRecord
from appliance.projects.model import Project
from appliance.storage.base import MAX_LIST_LIMIT
from appliance.storage.service import StorageObjectList, StorageService
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int, read_json_object

routes = web.RouteTableDef()

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Retry-After, ETag, Content-Length, Content-Range, Accept-Ranges",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "x-api-key, authorization, content-type, range, if-none-match, if-range",
    "Access-Control-Max-Age": "7200",
}


def with_cors(handler: _Handler) -> _Handler:
    """Add the CORS headers to the answer and to AtlasErrors (a browser hides an error
    response without them, and the app would only see a network failure)."""

    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except AtlasError as exc:
            response = web.json_response(exc.to_dict(), status=exc.status, headers=exc.headers)
        response.headers.update(CORS_HEADERS)
        return response

    return wrapped


async def _caller(request: web.Request, endpoint: str) -> tuple[StorageService, Project, KeyRecord]:
    context = await api_context(request, with_user=False)
    core = request.app[CORE]
    project = await core.projects.get(context.project_id)
    service = core.service(StorageService)
    service.authorize(project, context.key, endpoint)
    return service, project, context.key


@routes.post("/v1/storage/signed-upload")
@with_cors
async def signed_upload(request: web.Request) -> web.StreamResponse:
    service, project, key = await _caller(request, "signed-upload")
    body = await read_json_object(request)
    grant = await service.signed_upload(
        project, key, body.get("bucket"), body.get("path"), body.get("contentType"), body.get("maxSize")
    )
    return json_response(grant)


@routes.get("/v1/storage/signed-download")
@with_cors
async def signed_download(request: web.Request) -> web.StreamResponse:
    service, project, _ = await _caller(request, "signed-download")
    grant = await service.signed_download(project, request.query.get("bucket"), request.query.get("objectKey"))
    return json_response(grant)


@routes.get("/v1/storage/list")
@with_cors
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
@with_cors
async def delete_object(request: web.Request) -> web.StreamResponse:
    service, project, _ = await _caller(request, "delete")
    await service.delete(project, request.query.get("bucket"), request.query.get("objectKey"))
    return json_response({"deleted": True})


@routes.route("OPTIONS", "/v1/{tail:.*}")
async def preflight(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204, headers=PREFLIGHT_HEADERS)


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
