"""HTTP handlers for the fs backend's signed URLs: ``PUT``/``GET``/``HEAD`` on
``/v1/storage/object/{bucket}/{key}``. The URL itself is the credential (no API key): a browser
calls ``fetch(uploadUrl, {method: "PUT", body, headers: {"Content-Type": type}})`` from any origin,
so responses carry ``Access-Control-Allow-Origin: *`` and preflights are answered here.

Handlers raise ``AtlasError``; ``_rendered`` turns those into the one JSON error shape so the
routes also work on an app without the shared error middleware.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import BinaryIO

from aiohttp import hdrs, web

from appliance.errors import AtlasError, BadRequest, PayloadTooLarge
from appliance.storage.base import normalize_content_type
from appliance.storage.fs import FsBackend
from appliance.storage.fs_signing import SIGNED_PATH_PREFIX, SignedGrant

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Accept-Ranges",
}
_READ_BLOCK = 1 << 20
_SENDFILE_SEGMENT = 8 << 20
_DROP_BEHIND_MIN = 32 << 20


class RangeNotSatisfiable(AtlasError):
    status = 416
    code = "range_not_satisfiable"


def _rendered(handler: _Handler) -> _Handler:
    @wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AtlasError as e:
            return web.json_response(e.to_dict(), status=e.status, headers={**_CORS, **e.headers})

    return wrapped


def add_signed_url_routes(app: web.Application, get_backend: Callable[[], FsBackend]) -> None:
    """Register the signed-URL routes; ``get_backend`` is called per request (the backend may be
    created after the routes, in a cleanup context)."""
    path = SIGNED_PATH_PREFIX + "/{bucket}/{key:.+}"

    def verify(request: web.Request) -> tuple[FsBackend, SignedGrant]:
        backend = get_backend()
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        return backend, backend.signer.verify(request.method, bucket, key, request.query)

    def check_put(request: web.Request) -> tuple[FsBackend, SignedGrant, str]:
        backend, grant = verify(request)
        sent = request.headers.get(hdrs.CONTENT_TYPE)
        if grant.content_type is not None:
            try:
                ok = sent is not None and normalize_content_type(sent) == grant.content_type
            except BadRequest:
                ok = False
            if not ok:
                raise BadRequest(
                    f"Content-Type must be {grant.content_type!r}, as signed",
                    code="content_type_mismatch",
                    details={"expected": grant.content_type},
                )
            content_type = grant.content_type
        else:
            content_type = sent or "application/octet-stream"
        length = request.content_length
        if grant.max_size is not None and length is not None and length > grant.max_size:
            raise PayloadTooLarge(
                f"the upload is larger than the allowed {grant.max_size} bytes",
                code="payload_too_large",
                details={"maxSize": grant.max_size},
            )
        return backend, grant, content_type

    async def expect_put(request: web.Request) -> web.StreamResponse | None:
        """Refuse a bad upload before the client sends its body (curl sends Expect for big ones)."""
        try:
            check_put(request)
        except AtlasError as e:
            return web.json_response(e.to_dict(), status=e.status, headers={**_CORS, **e.headers})
        if request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        return None

    @_rendered
    async def put_object(request: web.Request) -> web.StreamResponse:
        backend, grant, content_type = check_put(request)
        info = await backend.receive(
            grant.bucket,
            grant.key,
            request.content.iter_any(),
            content_type=content_type,
            max_size=grant.max_size,
        )
        body = {"objectKey": info.key, "size": info.size, "etag": info.etag}
        return web.json_response(body, headers=_CORS)

    @_rendered
    async def get_object(request: web.Request) -> web.StreamResponse:
        backend, grant = verify(request)
        loop = asyncio.get_running_loop()
        f, info = await loop.run_in_executor(None, backend.open_sync, grant.bucket, grant.key)
        try:
            etag = f'"{info.etag}"' if not info.etag.startswith("W/") else f'W/"{info.etag[2:]}"'
            headers = {
                **_CORS,
                hdrs.ETAG: etag,
                hdrs.CONTENT_TYPE: info.content_type or "application/octet-stream",
                hdrs.LAST_MODIFIED: info.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
                hdrs.ACCEPT_RANGES: "bytes",
                hdrs.CACHE_CONTROL: "private, no-cache",
                "X-Content-Type-Options": "nosniff",
            }
            if etag in {t.strip() for t in request.headers.get(hdrs.IF_NONE_MATCH, "").split(",")}:
                return web.Response(status=304, headers=headers)
            offset, count, status = 0, info.size, 200
            spec = request.headers.get(hdrs.RANGE)
            if_range = request.headers.get(hdrs.IF_RANGE)
            if spec is not None and (if_range is None or if_range == etag):
                offset, count = _parse_range(spec, info.size)
                status = 206
                headers[hdrs.CONTENT_RANGE] = f"bytes {offset}-{offset + count - 1}/{info.size}"
            response = web.StreamResponse(status=status, headers=headers)
            response.content_length = count
            await response.prepare(request)
            if request.method != hdrs.METH_HEAD and count:
                await _send_file(request, response, f, offset, count)
            await response.write_eof()
            return response
        finally:
            f.close()

    async def preflight(request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=204,
            headers={
                **_CORS,
                "Access-Control-Allow-Methods": "GET, HEAD, PUT",
                "Access-Control-Allow-Headers": "Content-Type, Range, If-None-Match, If-Range",
                "Access-Control-Max-Age": "3600",
            },
        )

    app.router.add_route("PUT", path, put_object, expect_handler=expect_put)
    app.router.add_get(path, get_object)  # and HEAD
    app.router.add_route("OPTIONS", path, preflight)


def _parse_range(spec: str, size: int) -> tuple[int, int]:
    """``(offset, count)`` of a single ``bytes=`` range, or ``RangeNotSatisfiable``."""
    match = _RANGE.fullmatch(spec.strip())
    unsatisfiable = RangeNotSatisfiable(
        "the requested range is not satisfiable (single byte ranges only)",
        details={"size": size},
        headers={hdrs.CONTENT_RANGE: f"bytes */{size}"},
    )
    if match is None or match.group(1) == match.group(2) == "":
        raise unsatisfiable
    first, last = match.group(1), match.group(2)
    if first == "":  # suffix: the last N bytes
        count = min(int(last), size)
        if count == 0:
            raise unsatisfiable
        return size - count, count
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        raise unsatisfiable
    return start, end - start + 1


async def _send_file(request: web.Request, response: web.StreamResponse, f: BinaryIO, offset: int, count: int) -> None:
    """sendfile(2) where the loop has it (asyncio), else pread in a thread (uvloop). Reads of
    big ranges drop the pages behind them from the page cache, as uploads do: one large
    download should not evict everything else, and recycled pages are cheaper than fresh ones."""
    loop = asyncio.get_running_loop()
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("connection lost")
    fd, pos, end = f.fileno(), offset, offset + count
    drop_behind = count >= _DROP_BEHIND_MIN
    use_sendfile = True
    while pos < end:
        length = min(_SENDFILE_SEGMENT if use_sendfile else _READ_BLOCK, end - pos)
        sent = False
        if use_sendfile:
            try:
                await loop.sendfile(transport, f, pos, length, fallback=False)
                sent = True
            except (NotImplementedError, AttributeError, asyncio.SendfileNotAvailableError):
                use_sendfile = False
                length = min(_READ_BLOCK, end - pos)
        if not sent:
            block = await loop.run_in_executor(None, os.pread, fd, length, pos)
            if not block:
                raise ConnectionResetError("the file shrank while it was being sent")
            await response.write(block)
            length = len(block)
        if drop_behind:
            os.posix_fadvise(fd, pos, length, os.POSIX_FADV_DONTNEED)
        pos += length
