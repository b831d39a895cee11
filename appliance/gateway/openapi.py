"""`GET /v1/openapi.json`: the public API described for clients and contract tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from appliance import __version__
from appliance.web.util import json_response

routes = web.RouteTableDef()

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
_ERRORS = {
    str(status): {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for status, text in (
        (400, "bad request"),
        (401, "missing or invalid API key"),
        (403, "not allowed"),
        (404, "not found"),
        (409, "conflict"),
        (413, "body too large"),
        (422, "constraint violated"),
        (429, "rate limited"),
        (503, "database unavailable"),
        (504, "statement timeout"),
    )
}
_ROWS = {"type": "array", "items": {"type": "object", "additionalProperties": True}}
_FILTER_DOC = (
    "Filters: `<op>.<column>=<value>` with op in eq, neq, lt, lte, gt, gte, like, ilike, in "
    "(`in.<col>=a,b,c`). Several filters AND together."
)


def _params(*names: str) -> list[dict[str, Any]]:
    catalog: dict[str, dict[str, Any]] = {
        "table": {"name": "table", "in": "path", "required": True, "schema": {"type": "string"}},
        "select": {"name": "select", "in": "query", "schema": {"type": "string"}, "description": "* or col1,col2"},
        "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 1000}},
        "offset": {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        "order": {"name": "order", "in": "query", "schema": {"type": "string"}, "description": "col.asc|col.desc, ..."},
        "count": {"name": "count", "in": "query", "schema": {"type": "string", "enum": ["exact"]}},
        "return": {
            "name": "return",
            "in": "query",
            "schema": {"type": "string", "enum": ["minimal", "representation"]},
        },
        "eq.id": {"name": "eq.id", "in": "query", "schema": {"type": "string"}, "description": _FILTER_DOC},
    }
    return [catalog[n] for n in names]


def _op(summary: str, params: list[dict[str, Any]], ok: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params,
        "responses": {str(ok): {"description": "success", "content": {"application/json": {"schema": {}}}}, **_ERRORS},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def spec() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "AtlasHub public API", "version": __version__},
        "components": {
            "schemas": {"Error": _ERROR},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "endUser": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/v1/db/tables": {"get": _op("List tables and their columns", [], 200)},
            "/v1/db/{table}": {
                "get": _op(
                    "Select rows", _params("table", "select", "limit", "offset", "order", "count", "eq.id"), 200
                ),
                "post": _op(
                    "Insert rows",
                    _params("table", "return"),
                    201,
                    {"type": "object", "required": ["rows"], "properties": {"rows": _ROWS}},
                ),
                "patch": _op(
                    "Update the rows matching the filters (at least one filter)",
                    _params("table", "return", "eq.id"),
                    200,
                    {"type": "object", "required": ["values"], "properties": {"values": {"type": "object"}}},
                ),
                "delete": _op(
                    "Delete the rows matching the filters (at least one filter)",
                    _params("table", "return", "eq.id"),
                    200,
                ),
            },
            "/v1/storage/signed-upload": {
                "post": _op(
                    "A signed URL to PUT one object",
                    [],
                    200,
                    {
                        "type": "object",
                        "required": ["bucket", "path"],
                        "properties": {
                            "bucket": {"type": "string"},
                            "path": {"type": "string"},
                            "contentType": {"type": "string"},
                            "maxSize": {"type": "integer"},
                        },
                    },
                )
            },
            "/v1/storage/signed-download": {
                "get": _op(
                    "A signed URL to GET one object",
                    [
                        {"name": "bucket", "in": "query", "required": True, "schema": {"type": "string"}},
                        {"name": "objectKey", "in": "query", "required": True, "schema": {"type": "string"}},
                    ],
                    200,
                )
            },
            "/v1/auth/signup": {"post": _op("Create an end user", [], 201, {"type": "object"})},
            "/v1/auth/login": {"post": _op("Sign an end user in", [], 200, {"type": "object"})},
            "/v1/auth/refresh": {"post": _op("Rotate the refresh token", [], 200, {"type": "object"})},
            "/v1/auth/logout": {"post": _op("Revoke a session", [], 204, {"type": "object"})},
            "/v1/auth/me": {"get": _op("The signed-in end user", [], 200)},
        },
    }


@routes.get("/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(spec())
