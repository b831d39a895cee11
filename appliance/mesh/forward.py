"""The master's side of routing: forward a request for a worker-hosted project to that worker.

The gateway has already validated the API key and applied the rate limit. The request goes
to the worker's gateway over WireGuard as a master-signed ``forwarded-request``; the
worker's answer is relayed as it is. A worker that cannot be reached gives ``503
node_unavailable`` for its projects only.
"""

from __future__ import annotations

import logging
import time
from typing import Final

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from appliance.errors import Forbidden, ServiceUnavailable
from appliance.mesh.envelope import FORWARDED_REQUEST, encode_forwarded_request, seal
from appliance.mesh.peers import Mesh
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

FORWARD_PATH: Final = "/mesh/v1/forwarded-request"
# Marks a request that arrived as a verified forwarded-request (its descriptor is the value).
FORWARDED: Final = web.RequestKey("atlashub.forwarded", dict)
FORWARDED_HEADERS: Final = frozenset(
    {
        "accept",
        "authorization",
        "content-type",
        "prefer",
        "range",
        "if-match",
        "if-none-match",
        "user-agent",
        "x-client-info",
        "x-forwarded-for",
    }
)
_HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "date",
        "server",
    }
)
CONNECT_TIMEOUT: Final = 3.0
# After a failed connection, answer 503 at once for this long instead of waiting on a dead
# peer for every request; the first request after it tries again, so recovery needs no one.
RETRY_AFTER_FAILURE_S: Final = 2.0
READ_TIMEOUT: Final = 120.0
BUFFER_LIMIT: Final = 1024 * 1024


async def maybe_forward(request: web.Request, project_id: str, key_type: str) -> web.StreamResponse | None:
    """None: serve the request here. Otherwise the worker's answer, already relayed.

    Call it in every public handler after the API key is validated (``api_context``) and
    before touching the project's database or storage. On a worker it refuses requests
    that did not come from the master (403 ``forward_required``).
    """
    if FORWARDED in request:
        return None
    mesh = request.app[CORE].service(Mesh)
    if mesh.role == "worker":
        raise Forbidden("this node serves projects only through its master", code="forward_required")
    node_id = await mesh.project_node(project_id)
    if node_id is None:
        return None
    return await forward(request, mesh, node_id, project_id, key_type)


def forwarded_headers(request: web.Request) -> list[list[str]]:
    headers = [
        [name.lower(), value]
        for name, value in request.headers.items()
        if name.lower() in FORWARDED_HEADERS and name.lower() != "x-forwarded-for"
    ]
    prior = request.headers.get("x-forwarded-for")
    remote = request.remote or ""
    headers.append(["x-forwarded-for", f"{prior}, {remote}" if prior else remote])
    return headers


def unavailable(node_id: str, why: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        "the node hosting this project is unavailable; try again shortly",
        code="node_unavailable",
        details={"node_id": node_id, "reason": why},
        headers={"Retry-After": "5"},
    )


async def forward(request: web.Request, mesh: Mesh, node_id: str, project_id: str, key_type: str) -> web.StreamResponse:
    node = mesh.active_peer(node_id)
    if node is None:
        await mesh.load()  # joined a moment ago, or removed
        node = mesh.active_peer(node_id)
    if node is None:
        raise unavailable(node_id, "removed")
    if not node.gateway_url:
        raise unavailable(node_id, "no_address")
    if mesh.down_until.get(node_id, 0.0) > time.monotonic():
        raise unavailable(node_id, "unreachable")
    body = await request.read()
    descriptor = {
        "project_id": project_id,
        "key_type": key_type,
        "method": request.method,
        "path": request.rel_url.raw_path,
        "query": request.rel_url.raw_query_string,
        "headers": forwarded_headers(request),
    }
    request_id = request.headers.get("x-request-id")
    if request_id:
        descriptor["request_id"] = request_id[:100]
    payload = encode_forwarded_request(descriptor, body)
    sealed = seal(mesh.identity, node_id, FORWARDED_REQUEST, payload)
    timeout = aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    try:
        upstream = await mesh.http.post(
            node.gateway_url + FORWARD_PATH, data=payload, headers=sealed.http_headers(), timeout=timeout
        )
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        log.warning("forwarding to node %s failed: %r", node_id, exc)
        mesh.down_until[node_id] = time.monotonic() + RETRY_AFTER_FAILURE_S
        raise unavailable(node_id, "unreachable") from None
    mesh.down_until.pop(node_id, None)
    try:
        return await relay(request, upstream, node_id)
    finally:
        upstream.release()


async def relay(request: web.Request, upstream: aiohttp.ClientResponse, node_id: str) -> web.StreamResponse:
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in upstream.headers.items() if name.lower() not in _HOP_BY_HOP
    )
    if upstream.status == 401 and upstream.headers.get("content-type", "").startswith("application/json"):
        # The worker refusing the master's own signature is a cluster fault, not the client's.
        raw = await upstream.read()
        if b'"envelope_rejected"' in raw or b'"not_from_master"' in raw:
            log.error("node %s refused a forwarded request: %s", node_id, raw[:300])
            raise unavailable(node_id, "refused")
        return web.Response(status=upstream.status, headers=headers, body=raw)
    length = upstream.content_length
    if length is not None and length <= BUFFER_LIMIT:
        try:
            raw = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            raise unavailable(node_id, "interrupted") from None
        return web.Response(status=upstream.status, headers=headers, body=raw)
    response = web.StreamResponse(status=upstream.status, headers=headers)
    await response.prepare(request)
    async for chunk in upstream.content.iter_chunked(64 * 1024):
        await response.write(chunk)
    await response.write_eof()
    return response
