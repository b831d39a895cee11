"""Admin API for the dashboard's storage browser: logical buckets, their objects, signed URLs,
and which storage endpoints a project's publishable key may call.

Object keys here are relative to the logical bucket (the dashboard browses one bucket at a
time): listings return ``key`` = the path inside the bucket (and ``object_key``, the full
``<bucket>/<path>``), and ``objectKey`` parameters name that same path. Creations and deletions
are audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance.dashboard.adminauth import audit_admin
from appliance.errors import AtlasError, BadRequest
from appliance.projects.model import Project
from appliance.storage.base import MAX_LIST_LIMIT
from appliance.storage.paths import object_key
from appliance.storage.service import StorageService, publishable_endpoints
from appliance.web.keys import CORE
from appliance.web.util import json_response, query_int, read_json_object

routes = web.RouteTableDef()

_BUCKETS = "/admin/api/projects/{project_id}/buckets"
_BUCKET = _BUCKETS + "/{bucket}"


async def _context(request: web.Request) -> tuple[StorageService, Project]:
    core = request.app[CORE]
    project = await core.projects.get(request.match_info["project_id"])
    return core.service(StorageService), project


async def _audit(
    request: web.Request,
    action: str,
    project: Project,
    target: str,
    *,
    failure: BaseException | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    extra = dict(details or {})
    if failure is not None:
        extra["error"] = failure.code if isinstance(failure, AtlasError) else type(failure).__name__
    await audit_admin(
        request,
        action,
        target=target,
        project_id=project.id,
        outcome="failure" if failure is not None else "success",
        details=extra or None,
    )


def _path_param(request: web.Request) -> str:
    path = request.query.get("objectKey") or request.query.get("path")
    if not path:
        raise BadRequest("objectKey (the path inside the bucket) is required", code="invalid_path")
    return path


# -- buckets --------------------------------------------------------------------------------


@routes.get(_BUCKETS)
async def list_buckets(request: web.Request) -> web.Response:
    service, project = await _context(request)
    return json_response({"buckets": await service.buckets(project)})


@routes.post(_BUCKETS)
async def create_bucket(request: web.Request) -> web.Response:
    service, project = await _context(request)
    body = await read_json_object(request)
    name = body.get("name")
    try:
        created = await service.create_bucket(project, name)
    except Exception as exc:
        await _audit(request, "storage.bucket.create", project, str(name)[:64], failure=exc)
        raise
    await _audit(request, "storage.bucket.create", project, created["name"])
    return json_response(created, status=201)


@routes.delete(_BUCKET)
async def delete_bucket(request: web.Request) -> web.Response:
    service, project = await _context(request)
    bucket = request.match_info["bucket"]
    body = await read_json_object(request) if request.can_read_body else {}
    try:
        deleted = await service.delete_bucket(project, bucket, body.get("confirm"))
    except Exception as exc:
        await _audit(request, "storage.bucket.delete", project, bucket, failure=exc)
        raise
    await _audit(request, "storage.bucket.delete", project, bucket, details={"objects_deleted": deleted})
    return web.Response(status=204)


# -- objects --------------------------------------------------------------------------------


@routes.get(_BUCKET + "/objects")
async def list_objects(request: web.Request) -> web.Response:
    service, project = await _context(request)
    bucket = request.match_info["bucket"]
    objects, next_cursor = await service.list(
        project,
        bucket,
        request.query.get("prefix", ""),
        limit=query_int(request, "limit", 100, minimum=1, maximum=MAX_LIST_LIMIT),
        cursor=request.query.get("cursor") or None,
    )
    skip = len(bucket) + 1
    rendered = [
        {
            "key": o.key[skip:],
            "object_key": o.key,
            "size": o.size,
            "etag": o.etag,
            "content_type": o.content_type,
            "last_modified": o.last_modified.isoformat().replace("+00:00", "Z"),
        }
        for o in objects
    ]
    return json_response({"objects": rendered, "next_cursor": next_cursor})


@routes.post(_BUCKET + "/signed-upload")
async def signed_upload(request: web.Request) -> web.Response:
    service, project = await _context(request)
    body = await read_json_object(request)
    grant = await service.signed_upload(
        project,
        None,
        request.match_info["bucket"],
        body.get("path"),
        body.get("contentType"),
        body.get("maxSize"),
        allow_empty=True,  # the dashboard signs for the file it holds, which may be empty
    )
    await _audit(request, "storage.object.upload", project, grant["objectKey"])
    return json_response(grant)


@routes.get(_BUCKET + "/objects/download")
async def download_object(request: web.Request) -> web.Response:
    service, project = await _context(request)
    bucket = request.match_info["bucket"]
    return json_response(await service.signed_download(project, bucket, object_key(bucket, _path_param(request))))


@routes.delete(_BUCKET + "/objects")
async def delete_object(request: web.Request) -> web.Response:
    service, project = await _context(request)
    bucket = request.match_info["bucket"]
    try:
        key = object_key(bucket, _path_param(request))
        await service.delete(project, bucket, key)
    except Exception as exc:
        await _audit(
            request, "storage.object.delete", project, f"{bucket}/{request.query.get('objectKey')}"[:1100], failure=exc
        )
        raise
    await _audit(request, "storage.object.delete", project, key)
    return web.Response(status=204)


# -- settings -------------------------------------------------------------------------------


@routes.get("/admin/api/projects/{project_id}/storage/settings")
async def get_settings(request: web.Request) -> web.Response:
    _, project = await _context(request)
    return json_response({"publishable": publishable_endpoints(project)})


@routes.put("/admin/api/projects/{project_id}/storage/settings")
async def put_settings(request: web.Request) -> web.Response:
    service, project = await _context(request)
    body = await read_json_object(request)
    chosen = await service.set_publishable_endpoints(project, body.get("publishable"))
    await _audit(request, "storage.settings.update", project, project.id, details={"publishable": chosen})
    return json_response({"publishable": chosen})
