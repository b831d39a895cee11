"""Fixtures for the storage tests: a real SeaweedFS S3 server (once per session) and a
`Harness` giving the same view of either backend — the backend, a fresh project bucket, a plain
HTTP client (what a browser's fetch would do) and a way to build a backend whose clock is off."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from appliance.storage.base import StorageBackend, make_backend
from appliance.storage.fs import FsBackend
from appliance.storage.fs_routes import add_signed_url_routes
from tests.fixtures.s3server import S3Server, start_seaweedfs


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Harness:
    kind: str
    backend: StorageBackend
    bucket: str
    http: aiohttp.ClientSession
    # A second backend on the same store whose clock is `offset_s` seconds off.
    with_clock_offset: Callable[[float], StorageBackend]
    fs_root: Path | None = None


def new_bucket() -> str:
    return f"proj-{secrets.token_hex(5)}"


async def start_fs_server(root: Path) -> tuple[FsBackend, TestServer]:
    """An fs backend and an aiohttp server with its signed-URL routes, on loopback."""
    backend = FsBackend(root, secrets.token_bytes(32))
    app = web.Application()
    add_signed_url_routes(app, lambda: backend)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    backend.signer.set_public_base_url(str(server.make_url("")).rstrip("/"))
    return backend, server


@pytest.fixture
async def fs_server(tmp_path: Path) -> AsyncIterator[tuple[FsBackend, TestServer]]:
    backend, server = await start_fs_server(tmp_path / "objects")
    try:
        yield backend, server
    finally:
        await server.close()


@pytest.fixture(params=["fs", "s3"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    extra: list[StorageBackend] = []
    bucket = new_bucket()
    fs_http_server: TestServer | None = None
    if request.param == "fs":
        fs_backend, fs_http_server = await start_fs_server(tmp_path / "objects")
        backend: StorageBackend = fs_backend

        def with_clock_offset(offset_s: float) -> StorageBackend:
            other = FsBackend(
                fs_backend.root,
                fs_backend.signer._key,
                fs_backend.signer.public_base_url,
                clock=lambda: time.time() + offset_s,
            )
            extra.append(other)
            return other

        fs_root: Path | None = fs_backend.root
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        settings = {
            "endpoint": server.endpoint,
            "access_key": server.access_key,
            "secret_key": server.secret_key,
            "region": server.region,
            "secure": False,
        }
        backend = make_backend("s3", **settings)

        def with_clock_offset(offset_s: float) -> StorageBackend:
            other = make_backend("s3", clock=lambda: time.time() + offset_s, **settings)
            extra.append(other)
            return other

        fs_root = None
    await backend.ensure_bucket(bucket)
    async with aiohttp.ClientSession() as http:
        try:
            yield Harness(request.param, backend, bucket, http, with_clock_offset, fs_root)
        finally:
            await backend.delete_bucket(bucket, force=True)
            for other in extra:
                await other.close()
            await backend.close()
            if fs_http_server is not None:
                await fs_http_server.close()
