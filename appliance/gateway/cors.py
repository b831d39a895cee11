"""CORS for the public API: apps call it from browsers on other origins (Next.js, Vercel).

Every `/v1/` answer, errors included, carries ``Access-Control-Allow-Origin: *`` (a browser
hides an error without it and the app sees only a network failure); preflight ``OPTIONS``
answers 204. Credentials are never cookies here — the API key and bearer token are headers —
so a wildcard origin is safe.
"""

from __future__ import annotations

from aiohttp import web

from appliance.web.errors import Handler

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Retry-After, ETag, Content-Length, Content-Range, Accept-Ranges, X-Total-Count",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "x-api-key, authorization, content-type, range, if-none-match, if-range",
    "Access-Control-Max-Age": "7200",
}


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/v1/"):
        return await handler(request)
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=PREFLIGHT_HEADERS)
    response = await handler(request)
    if not response.prepared:
        response.headers.update(CORS_HEADERS)
    return response
