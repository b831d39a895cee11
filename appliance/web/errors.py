"""The one error renderer: every failure leaves as ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import ClientError, web

from appliance.errors import AtlasError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, details: object = None, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps({"error": {"code": code, "message": message, "details": details}})
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except AtlasError as exc:
        if exc.status >= 500:
            log.warning("%s %s -> %d %s: %s", request.method, request.path, exc.status, exc.code, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.status != 404 else "no such endpoint"
        if exc.status == 413:
            message = "request body too large"
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return error_response(exc.status, code, message, None, headers)
    except (ConnectionResetError, TimeoutError, ClientError) as exc:
        # An outbound dependency (object store, another node) failed: the client may retry.
        if request.transport is None or request.transport.is_closing():
            raise
        log.warning("%s %s failed: %r", request.method, request.path, exc)
        return error_response(503, "service_unavailable", "a backend did not answer; retry later")
    except Exception as exc:
        if _from_object_store(exc):
            log.warning("%s %s: the object store refused: %r", request.method, request.path, exc)
            return error_response(503, "storage_unavailable", "the object store did not answer; retry later")
        incident = secrets.token_hex(6)
        log.exception("unhandled error on %s %s (incident %s)", request.method, request.path, incident)
        return error_response(500, "internal_error", "internal error", {"incident": incident})


def _from_object_store(exc: Exception) -> bool:
    """An S3 client error (checked by module, so the S3 client is not imported on fs-only nodes)."""
    return type(exc).__module__.startswith("miniopy_async")
