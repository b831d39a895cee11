"""The fs backend's signed-URL routes over real HTTP: ranges, limits, refusals and their JSON."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from appliance.storage.fs import FsBackend
from appliance.storage.fs_signing import redact_signatures

BUCKET = "proj-routes"
DATA = bytes(range(256)) * 200  # 51,200 bytes


@pytest.fixture
async def fs(fs_server: tuple[FsBackend, TestServer]) -> AsyncIterator[tuple[FsBackend, aiohttp.ClientSession]]:
    backend, _ = fs_server
    await backend.ensure_bucket(BUCKET)
    async with aiohttp.ClientSession() as http:
        yield backend, http


def files_under(backend: FsBackend) -> list[Path]:
    return sorted(p for p in (backend.root / BUCKET).rglob("*") if p.is_file())


async def put(backend: FsBackend, http: aiohttp.ClientSession, key: str, data: bytes = DATA) -> None:
    url = await backend.presign_put(BUCKET, key, content_type="video/mp4", max_size=1 << 20, expires_s=60)
    async with http.put(url, data=data, headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {"objectKey": key, "size": len(data), "etag": hashlib.sha256(data).hexdigest()}


async def error_of(resp: aiohttp.ClientResponse) -> str:
    body = await resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    return str(body["error"]["code"])


@pytest.mark.parametrize(
    ("range_header", "status", "start", "end"),
    [
        ("bytes=0-9", 206, 0, 9),
        ("bytes=100-", 206, 100, len(DATA) - 1),
        ("bytes=-16", 206, len(DATA) - 16, len(DATA) - 1),
        ("bytes=51000-99999", 206, 51000, len(DATA) - 1),
        ("bytes=-999999", 206, 0, len(DATA) - 1),
        ("bytes=51200-", 416, None, None),
        ("bytes=10-5", 416, None, None),
        ("bytes=-0", 416, None, None),
        ("bytes=0-1,5-6", 416, None, None),
        ("items=0-1", 416, None, None),
        ("bytes=x-y", 416, None, None),
    ],
)
async def test_range(fs, range_header: str, status: int, start: int | None, end: int | None) -> None:
    backend, http = fs
    await put(backend, http, "media/v.mp4")
    url = await backend.presign_get(BUCKET, "media/v.mp4", expires_s=60)
    async with http.get(url, headers={"Range": range_header}) as resp:
        assert resp.status == status
        if status == 206:
            assert start is not None and end is not None
            assert await resp.read() == DATA[start : end + 1]
            assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{len(DATA)}"
            assert resp.headers["Content-Length"] == str(end - start + 1)
        else:
            assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"
            assert await error_of(resp) == "range_not_satisfiable"


async def test_get_head_and_conditional(fs) -> None:
    backend, http = fs
    await put(backend, http, "media/v.mp4")
    url = await backend.presign_get(BUCKET, "media/v.mp4", expires_s=60)
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    async with http.get(url) as resp:
        assert resp.status == 200 and await resp.read() == DATA
        assert resp.headers["ETag"] == etag
        assert resp.headers["Content-Type"] == "video/mp4"
        assert resp.headers["Accept-Ranges"] == "bytes"
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    async with http.head(url) as resp:
        assert resp.status == 200 and resp.headers["Content-Length"] == str(len(DATA))
        assert await resp.read() == b""
    async with http.get(url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with http.get(url, headers={"Range": "bytes=0-0", "If-Range": '"stale"'}) as resp:
        assert resp.status == 200 and len(await resp.read()) == len(DATA)
    async with http.options(
        url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "PUT"}
    ) as resp:
        assert resp.status == 204 and "PUT" in resp.headers["Access-Control-Allow-Methods"]


async def test_missing_object_is_404(fs) -> None:
    backend, http = fs
    async with http.get(await backend.presign_get(BUCKET, "media/none.mp4", expires_s=60)) as resp:
        assert resp.status == 404
        assert await error_of(resp) == "object_not_found"


async def test_overwrite_is_atomic_and_replaces(fs) -> None:
    backend, http = fs
    await put(backend, http, "media/v.mp4")
    await put(backend, http, "media/v.mp4", b"second")
    async with http.get(await backend.presign_get(BUCKET, "media/v.mp4", expires_s=60)) as resp:
        assert await resp.read() == b"second"
    assert len(files_under(backend)) == 2  # the object and its sidecar, no temp files


async def slow_body(total: int) -> AsyncIterator[bytes]:
    for _ in range(total // 1000):
        yield b"x" * 1000


@pytest.mark.parametrize("how", ["content-length", "chunked", "expect-100"])
async def test_oversize_upload_is_413_and_keeps_nothing(fs, how: str) -> None:
    backend, http = fs
    url = await backend.presign_put(BUCKET, "media/big.mp4", content_type="video/mp4", max_size=10_000, expires_s=60)
    headers = {"Content-Type": "video/mp4"}
    if how == "content-length":
        request = http.put(url, data=b"x" * 10_001, headers=headers)
    elif how == "chunked":  # no Content-Length: the running count stops it
        request = http.put(url, data=slow_body(50_000), headers=headers)
    else:
        request = http.put(url, data=b"x" * 20_000, headers=headers, expect100=True)
    async with request as resp:
        assert resp.status == 413
        body = await resp.json()
        assert body["error"]["code"] == "payload_too_large"
        assert body["error"]["details"] == {"maxSize": 10_000}
    assert files_under(backend) == []
    assert await backend.stat(BUCKET, "media/big.mp4") is None


async def test_exactly_max_size_is_accepted(fs) -> None:
    backend, http = fs
    url = await backend.presign_put(BUCKET, "media/edge.bin", content_type="video/mp4", max_size=10_000, expires_s=60)
    async with http.put(url, data=slow_body(10_000), headers={"Content-Type": "video/mp4"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["size"] == 10_000


def tamper(url: str, old: str, new: str) -> str:
    assert old in url
    return url.replace(old, new, 1)


async def test_refusals(fs) -> None:
    """Each bad request gets its own clear 4xx code, and leaves no file behind."""
    backend, http = fs
    key = "media/up.mp4"
    put_url = await backend.presign_put(BUCKET, key, content_type="video/mp4", max_size=1000, expires_s=60)
    get_url = await backend.presign_get(BUCKET, key, expires_s=60)
    sig = put_url.rsplit("X-Atlas-Signature=", 1)[1]
    expires = put_url.split("X-Atlas-Expires=", 1)[1].split("&", 1)[0]
    past = FsBackend(backend.root, backend.signer._key, backend.signer.public_base_url, clock=lambda: time.time() - 600)
    expired_url = await past.presign_put(BUCKET, key, content_type="video/mp4", max_size=1000, expires_s=60)
    ok = {"Content-Type": "video/mp4"}
    scenarios = [
        # (method, url, headers, status, code)
        ("PUT", tamper(put_url, sig, sig[:-1] + ("a" if sig[-1] != "a" else "b")), ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, "/media/up.mp4", "/media/other.mp4"), ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, BUCKET, "proj-other"), ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, "Max-Size=1000", "Max-Size=9999999"), ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, "Content-Type=video", "Content-Type=text"), ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, expires, str(int(expires) + 3600)), ok, 403, "signature_invalid"),
        ("PUT", put_url.split("?")[0], ok, 403, "signature_invalid"),
        ("PUT", tamper(put_url, "X-Atlas-Signature=", "X-Atlas-Signature=\u00e9"), ok, 403, "signature_invalid"),
        ("PUT", expired_url, ok, 403, "url_expired"),
        ("PUT", get_url, ok, 403, "method_mismatch"),
        ("GET", put_url, {}, 403, "method_mismatch"),
        ("PUT", put_url, {"Content-Type": "text/html"}, 400, "content_type_mismatch"),
        ("PUT", put_url, {"Content-Type": "video/mp4x"}, 400, "content_type_mismatch"),
        ("PUT", put_url, {"Content-Type": "not a type"}, 400, "content_type_mismatch"),
    ]
    for method, url, headers, status, code in scenarios:
        async with http.request(method, url, data=b"x" * 10 if method == "PUT" else None, headers=headers) as resp:
            assert (resp.status, await error_of(resp)) == (status, code), (method, url, headers)
    async with http.put(put_url, data=b"x" * 10, skip_auto_headers=["Content-Type"]) as resp:
        assert (resp.status, await error_of(resp)) == (400, "content_type_mismatch")
    assert files_under(backend) == []
    async with http.put(put_url, data=b"x" * 10, headers={"Content-Type": "Video/MP4"}) as resp:
        assert resp.status == 200  # media types are case-insensitive


async def test_signed_traversal_key_is_still_refused(fs) -> None:
    """Even a correctly signed URL for a key that escapes the bucket goes nowhere."""
    backend, http = fs
    outside = backend.root / "outside.txt"
    for key in ("media/../../outside.txt", "../outside.txt", "media/..\\..\\outside.txt"):
        url = backend.signer.sign_url("PUT", BUCKET, key, expires_s=60, max_size=100, content_type="text/plain")
        async with http.put(url, data=b"pwned", headers={"Content-Type": "text/plain"}) as resp:
            assert 400 <= resp.status < 500
    raw = (
        f"{backend.signer.public_base_url}/v1/storage/object/{BUCKET}/"
        + quote("media/../../../outside.txt", safe="/")
        + "?X-Atlas-Expires=9999999999&X-Atlas-Signature=00"
    )
    async with http.put(raw, data=b"pwned", headers={"Content-Type": "text/plain"}) as resp:
        assert 400 <= resp.status < 500
    assert not outside.exists()
    assert files_under(backend) == []
    # Percent signs are literal characters of a name: this one stays inside the bucket.
    literal = "media/%2e%2e/%2e%2e/outside.txt"
    url = await backend.presign_put(BUCKET, literal, content_type="text/plain", max_size=100, expires_s=60)
    async with http.put(url, data=b"fine", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 200
    assert (backend.root / BUCKET / literal).read_bytes() == b"fine"
    assert not outside.exists()


async def test_symlink_out_of_the_bucket_is_not_followed(fs, tmp_path: Path) -> None:
    backend, http = fs
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (backend.root / BUCKET / "media").mkdir()
    os.symlink(tmp_path, backend.root / BUCKET / "media" / "link")
    url = await backend.presign_get(BUCKET, "media/link/secret.txt", expires_s=60)
    async with http.get(url) as resp:
        assert resp.status == 404
    assert await backend.stat(BUCKET, "media/link/secret.txt") is None


async def test_key_that_is_a_prefix_of_another_conflicts(fs) -> None:
    backend, http = fs
    await put(backend, http, "media/a")
    url = await backend.presign_put(BUCKET, "media/a/b", content_type="video/mp4", max_size=100, expires_s=60)
    async with http.put(url, data=b"x", headers={"Content-Type": "video/mp4"}) as resp:
        assert (resp.status, await error_of(resp)) == (409, "path_conflict")
    assert len(files_under(backend)) == 2


async def test_delete_through_a_symlink_touches_nothing_outside(fs, tmp_path: Path) -> None:
    backend, _ = fs
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (backend.root / BUCKET / "media").mkdir()
    os.symlink(tmp_path, backend.root / BUCKET / "media" / "link")
    await backend.delete(BUCKET, "media/link/victim.txt")
    assert victim.read_text() == "keep me"


async def test_signatures_can_be_redacted_from_logs(fs) -> None:
    backend, _ = fs
    url = await backend.presign_put(BUCKET, "media/x", content_type="video/mp4", max_size=1, expires_s=60)
    signature = url.rsplit("=", 1)[1]
    line = f'127.0.0.1 "PUT {url} HTTP/1.1" 200 and ?X-Amz-Signature=abc&X-Amz-Credential=AKIA%2F1 x'
    redacted = redact_signatures(line)
    assert signature not in redacted and "abc" not in redacted and "AKIA" not in redacted
    assert "X-Atlas-Signature=REDACTED" in redacted and "X-Atlas-Expires=" in redacted
