"""`/v1/db`: the public CRUD API of seed 002. Thin: parse, call the DB API core, render bytes."""

from __future__ import annotations

import json

from aiohttp import web

from appliance.errors import BadRequest
from appliance.gateway.context import api_context
from appliance.gateway.dbapi import DbApi
from appliance.gateway.query import parse_read, parse_write
from appliance.settings.service import RuntimeSettings
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()

_TABLE = "/v1/db/{table}"


def dbapi(request: web.Request) -> DbApi:
    core = request.app[CORE]
    return core.service(DbApi)


def _json_bytes(body: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=body.encode(), status=status, content_type="application/json", headers=headers)


def _params(request: web.Request) -> list[tuple[str, str]]:
    return list(request.query.items())


@routes.get("/v1/db/tables")
async def list_tables(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    return json_response(await dbapi(request).tables(ctx))


@routes.get(_TABLE)
async def select_rows(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    settings = request.app[CORE].service(RuntimeSettings)
    q = parse_read(
        _params(request),
        default_limit=int(settings.get("gateway.default_limit")),
        max_limit=int(settings.get("gateway.max_limit")),
    )
    body, total = await dbapi(request).select(ctx, request.match_info["table"], q)
    headers = {"X-Total-Count": str(total)} if total is not None else None
    return _json_bytes(body, headers=headers)


@routes.post(_TABLE)
async def insert_rows(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    q = parse_write(_params(request), allow_filters=False, default_return="representation")
    body = await read_json_object(request)
    if "rows" not in body:
        raise BadRequest('body must be {"rows": [ {...}, ... ]}', code="invalid_body", details={"field": "rows"})
    rows_json, count = await dbapi(request).insert(
        ctx, request.match_info["table"], body["rows"], returning=q.returning
    )
    if rows_json is None:
        return json_response({"inserted": count}, status=201)
    return _json_bytes(rows_json, status=201)


@routes.patch(_TABLE)
async def update_rows(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    q = parse_write(_params(request), default_return="representation")
    body = await read_json_object(request)
    if "values" not in body:
        raise BadRequest('body must be {"values": {...}}', code="invalid_body", details={"field": "values"})
    rows_json, count = await dbapi(request).update(
        ctx, request.match_info["table"], body["values"], q, returning=q.returning
    )
    if rows_json is None:
        return json_response({"updated": count})
    return _json_bytes(rows_json)


@routes.delete(_TABLE)
async def delete_rows(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    q = parse_write(_params(request), default_return="minimal")
    rows_json, count = await dbapi(request).delete(ctx, request.match_info["table"], q, returning=q.returning)
    if rows_json is None:
        return json_response({"deleted": count})
    return _json_bytes(json.dumps({"deleted": len(json.loads(rows_json)), "rows": json.loads(rows_json)}))
