"""The mesh's routes on the gateway (the node's public listener).

- ``POST /mesh/v1/join`` (master): the one message that arrives before the tunnel exists.
- ``POST /mesh/v1/forwarded-request`` (worker): a request the master validated at the edge.
  Its envelope is checked (signed by this worker's master, addressed here, fresh, not
  replayed), then the described request re-enters this gateway's own router with the
  project and key type of the descriptor, and its answer goes back as it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from multidict import CIMultiDict
from yarl import URL

from appliance.errors import BadRequest, Forbidden
from appliance.gateway import context as gateway_context
from appliance.mesh.agent_server import from_master, read_body
from appliance.mesh.envelope import FORWARDED_REQUEST, HEADER_ENVELOPE, HEADER_SIGNATURE, decode_forwarded_request
from appliance.mesh.forward import FORWARD_PATH, FORWARDED, FORWARDED_HEADERS
from appliance.mesh.join import JOIN_PATH, accept_join
from appliance.mesh.peers import Mesh
from appliance.projects.keys import KEY_TYPES, KeyRecord
from appliance.web.keys import CORE

routes = web.RouteTableDef()

# Only the public API is ever forwarded; never the mesh's own routes.
FORWARDABLE_PREFIXES = ("/v1/", "/storage/")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@routes.post(JOIN_PATH)
async def join(request: web.Request) -> web.Response:
    mesh = await _mesh(request)
    sealed = await accept_join(
        mesh,
        request.headers.get(HEADER_ENVELOPE, ""),
        request.headers.get(HEADER_SIGNATURE, ""),
        await read_body(request),
    )
    return web.Response(body=sealed.body, headers=sealed.http_headers(), content_type="application/json")


@routes.post(FORWARD_PATH)
async def forwarded_request(request: web.Request) -> web.StreamResponse:
    mesh = await _mesh(request)
    message = await from_master(request, mesh, FORWARDED_REQUEST)
    descriptor, body = decode_forwarded_request(message.body)
    inner = await inner_request(request, descriptor, body)
    return await dispatch(inner)


async def _mesh(request: web.Request) -> Mesh:
    mesh = request.app[CORE].service(Mesh)
    if not mesh.verifier.peers():
        await mesh.load()  # a gateway-only node has no agent to have loaded the pins
    return mesh


def _check_descriptor(descriptor: dict[str, Any]) -> None:
    method, path, query = descriptor.get("method"), descriptor.get("path"), descriptor.get("query")
    headers = descriptor.get("headers")
    ok = (
        method in _METHODS
        and isinstance(path, str)
        and path.startswith(FORWARDABLE_PREFIXES)
        and isinstance(query, str)
        and descriptor.get("key_type") in KEY_TYPES
        and isinstance(descriptor.get("project_id"), str)
        and isinstance(headers, list)
        and all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h) for h in headers)
    )
    if not ok:
        raise BadRequest("the forwarded-request descriptor is invalid", code="invalid_forwarded_request")


async def inner_request(request: web.Request, descriptor: dict[str, Any], body: bytes) -> web.Request:
    """The described request as this gateway would have received it, context already set."""
    _check_descriptor(descriptor)
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in descriptor["headers"] if name in FORWARDED_HEADERS
    )
    headers["Content-Length"] = str(len(body))
    if "host" in request.headers:
        headers["Host"] = request.headers["host"]
    query = descriptor["query"]
    url = URL(descriptor["path"] + (f"?{query}" if query else ""), encoded=True)
    inner = request.clone(method=descriptor["method"], rel_url=url, headers=headers)
    payload = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    if body:
        payload.feed_data(body)
    payload.feed_eof()
    inner._payload = payload  # the outer body was consumed to check its signature
    inner[FORWARDED] = descriptor
    await _set_context(inner, descriptor)
    return inner


async def _set_context(inner: web.Request, descriptor: dict[str, Any]) -> None:
    record = KeyRecord(
        id=str(descriptor.get("key_id") or "forwarded"),
        project_id=descriptor["project_id"],
        type=descriptor["key_type"],
        key_hash="",
        prefix="",
        created_at="",
    )
    forwarded_key = getattr(gateway_context, "FORWARDED_KEY", None)
    if forwarded_key is not None:
        # The gateway resolves the end user itself and only skips the key lookup and rate limit.
        inner[forwarded_key] = record
        return
    claims = None
    auth = inner.headers.get("authorization", "")
    if auth:
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            from appliance.errors import Unauthorized

            raise Unauthorized("Authorization must be 'Bearer <access token>'", code="invalid_authorization")
        claims = await gateway_context.verify_end_user(inner.app[CORE], record.project_id, token.strip())
    inner[gateway_context.CONTEXT_KEY] = gateway_context.ApiContext(record, claims)


async def dispatch(inner: web.Request) -> web.StreamResponse:
    """Run the gateway route that matches ``inner`` (the app's middlewares already wrap us)."""
    app = inner.app
    match_info = await app.router.resolve(inner)
    exception = match_info.http_exception
    if exception is not None:
        raise exception
    if match_info.route.resource is not None and match_info.route.resource.canonical == FORWARD_PATH:
        raise Forbidden("a forwarded request cannot be forwarded again", code="invalid_forwarded_request")
    match_info.add_app(app)
    match_info.freeze()
    inner._match_info = match_info
    return await match_info.handler(inner)
