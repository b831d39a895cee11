"""Small helpers shared by handlers: reading JSON bodies and query parameters with clear errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from appliance.errors import BadRequest, PayloadTooLarge


async def read_json_object(request: web.Request) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"request body is larger than {request.app._client_max_size} bytes", code="payload_too_large"
        ) from None
    if not raw.strip():
        raise BadRequest("a JSON object body is required", code="invalid_body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="invalid_body")
    return body


def query_int(request: web.Request, name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", code="invalid_parameter", details={"field": name}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise BadRequest(f"{name} must be {bound}", code="invalid_parameter", details={"field": name})
    return value


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, default=str), status=status, content_type="application/json")
