"""One suite for both backends (fs through the gateway's signed-URL routes, s3 against a real
SeaweedFS): clients use the presigned URLs with a plain HTTP client, as a browser's fetch would."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from appliance.errors import AtlasError, BadRequest, Conflict
from appliance.storage.base import make_backend, verify_upload
from appliance.storage.paths import object_key
from tests.fixtures.s3server import S3Server
from tests.storage.conftest import Harness, new_bucket


async def upload(h: Harness, key: str, data: bytes, content_type: str = "image/png", max_size: int = 1 << 20):
    url = await h.backend.presign_put(h.bucket, key, content_type=content_type, max_size=max_size, expires_s=300)
    return await h.http.put(url, data=data, headers={"Content-Type": content_type})


async def chunks_of(data: bytes, size: int = 1 << 20) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def signature_param(url: str) -> str:
    return "X-Atlas-Signature" if "X-Atlas-Signature" in url else "X-Amz-Signature"


def assert_no_leftovers(h: Harness) -> None:
    if h.fs_root is not None:
        left = [p for p in (h.fs_root / h.bucket).rglob("*") if p.is_file()]
        assert left == [], left


async def test_presigned_put_then_get_roundtrip(harness: Harness) -> None:
    h = harness
    key = object_key("uploads", "notes/ünï cödé #1.png")
    data = os.urandom(300_000)
    resp = await upload(h, key, data)
    assert resp.status == 200, await resp.text()
    info = await h.backend.stat(h.bucket, key)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (key, len(data), "image/png")
    expected_etag = hashlib.sha256 if h.kind == "fs" else hashlib.md5
    assert info.etag == expected_etag(data).hexdigest()
    assert await verify_upload(h.backend, h.bucket, key, max_size=1 << 20, content_type="image/png")
    url = await h.backend.presign_get(h.bucket, key, expires_s=60)
    async with h.http.get(url) as got:
        assert got.status == 200
        assert await got.read() == data
        assert got.headers["Content-Length"] == str(len(data))
        assert got.headers["ETag"].strip('"') == info.etag
        assert got.headers["Content-Type"] == "image/png"


async def test_list_with_prefix_and_cursor(harness: Harness) -> None:
    h = harness
    paths = ["a/1", "a/2", "a-b", "a/b/c", "a/b/d", "a0", "b", "a/b-x", "ab/z"]
    for p in paths:
        await h.backend.put_stream(h.bucket, f"uploads/{p}", chunks_of(p.encode()), content_type="text/plain")
    await h.backend.put_stream(h.bucket, "other/a/1", chunks_of(b"x"), content_type="text/plain")
    want = sorted(f"uploads/{p}" for p in paths)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page, cursor = await h.backend.list(h.bucket, "uploads/", limit=4, cursor=cursor)
        assert len(page) <= 4
        seen += [o.key for o in page]
        if cursor is None:
            break
    # Pages follow the store's one-shot listing, each object once. fs and S3 proper sort keys
    # bytewise; SeaweedFS lists directory by directory ("a/1" before "a-b"), which is fine.
    one_page, _ = await h.backend.list(h.bucket, "uploads/", limit=1000)
    assert seen == [o.key for o in one_page]
    assert sorted(seen) == want
    if h.kind == "fs":
        assert seen == want
    page, cursor = await h.backend.list(h.bucket, "uploads/a/b", limit=100)
    assert sorted(o.key for o in page) == ["uploads/a/b-x", "uploads/a/b/c", "uploads/a/b/d"]
    assert cursor is None
    assert {o.size for o in page} == {5}
    everything, _ = await h.backend.list(h.bucket, "", limit=1000)
    assert len(everything) == len(paths) + 1


async def test_delete(harness: Harness) -> None:
    h = harness
    key = "uploads/gone.png"
    assert (await upload(h, key, b"bytes")).status == 200
    url = await h.backend.presign_get(h.bucket, key, expires_s=60)
    await h.backend.delete(h.bucket, key)
    assert await h.backend.stat(h.bucket, key) is None
    async with h.http.get(url) as got:
        assert got.status == 404
    await h.backend.delete(h.bucket, key)  # idempotent
    assert_no_leftovers(h)


async def test_bucket_isolation(harness: Harness) -> None:
    h = harness
    key = "uploads/secret.png"
    assert (await upload(h, key, b"secret")).status == 200
    other = new_bucket()
    await h.backend.ensure_bucket(other)
    try:
        assert await h.backend.stat(other, key) is None
        async with h.http.get(await h.backend.presign_get(other, key, expires_s=60)) as got:
            assert got.status == 404
        # Moving a valid URL to the other bucket breaks its signature.
        url = await h.backend.presign_get(h.bucket, key, expires_s=60)
        async with h.http.get(url.replace(h.bucket, other, 1)) as got:
            assert got.status == 403
    finally:
        await h.backend.delete_bucket(other, force=True)


async def test_streams_for_backups(harness: Harness) -> None:
    h = harness
    data = os.urandom(20 * 1024 * 1024 + 123)  # more than one S3 multipart part
    info = await h.backend.put_stream(
        h.bucket, "backups/db.dump", chunks_of(data, 70_000), content_type="application/octet-stream"
    )
    assert info.size == len(data)
    digest = hashlib.sha256()
    async for block in h.backend.get_stream(h.bucket, "backups/db.dump"):
        digest.update(block)
    assert digest.digest() == hashlib.sha256(data).digest()


async def test_delete_bucket_refuses_when_not_empty(harness: Harness) -> None:
    h = harness
    bucket = new_bucket()
    await h.backend.ensure_bucket(bucket)
    await h.backend.ensure_bucket(bucket)  # idempotent
    await h.backend.put_stream(bucket, "uploads/x", chunks_of(b"x"), content_type="text/plain")
    with pytest.raises(Conflict):
        await h.backend.delete_bucket(bucket)
    assert await h.backend.bucket_exists(bucket)
    await h.backend.delete_bucket(bucket, force=True)
    assert not await h.backend.bucket_exists(bucket)
    await h.backend.delete_bucket(bucket)  # missing: not an error


# -- bad input -------------------------------------------------------------------------------


async def test_expired_urls_are_refused(harness: Harness) -> None:
    h = harness
    key = "uploads/late.png"
    assert (await upload(h, key, b"original")).status == 200
    past = h.with_clock_offset(-3600)
    put_url = await past.presign_put(h.bucket, key, content_type="image/png", max_size=100, expires_s=60)
    async with h.http.put(put_url, data=b"new", headers={"Content-Type": "image/png"}) as resp:
        assert resp.status == 403
    async with h.http.get(await past.presign_get(h.bucket, key, expires_s=60)) as resp:
        assert resp.status == 403
    info = await h.backend.stat(h.bucket, key)
    assert info is not None and info.size == len(b"original")


async def test_tampered_urls_are_refused(harness: Harness) -> None:
    h = harness
    key = "uploads/t.png"
    put_url = await h.backend.presign_put(h.bucket, key, content_type="image/png", max_size=100, expires_s=60)
    sig = signature_param(put_url)
    original = dict(parse_qsl(urlsplit(put_url).query))[sig]
    flipped = original[:-1] + ("0" if original[-1] != "0" else "1")
    for url in (
        with_query(put_url, **{sig: flipped}),
        put_url.replace("/uploads/t.png", "/uploads/u.png"),
        with_query(put_url, **{"X-Atlas-Max-Size": "1000000", "X-Amz-Expires": "600"}),
    ):
        async with h.http.put(url, data=b"x", headers={"Content-Type": "image/png"}) as resp:
            assert resp.status == 403, url
    assert (await h.backend.list(h.bucket, "", limit=10))[0] == []
    assert_no_leftovers(h)


async def test_wrong_method_is_refused(harness: Harness) -> None:
    h = harness
    key = "uploads/m.png"
    assert (await upload(h, key, b"data")).status == 200
    get_url = await h.backend.presign_get(h.bucket, key, expires_s=60)
    async with h.http.put(get_url, data=b"evil", headers={"Content-Type": "image/png"}) as resp:
        assert resp.status == 403
    put_url = await h.backend.presign_put(
        h.bucket, "uploads/n.png", content_type="image/png", max_size=10, expires_s=60
    )
    async with h.http.get(put_url) as resp:
        assert resp.status == 403
    async with h.http.get(get_url) as resp:
        assert await resp.read() == b"data"


async def finish_upload(h: Harness, key: str, resp_status: int, *, max_size: int, content_type: str) -> int:
    """fs refuses at PUT time; S3 accepts, and verify_upload (run before any hand-out) deletes."""
    if resp_status != 200:
        return resp_status
    assert h.kind == "s3"
    try:
        await verify_upload(h.backend, h.bucket, key, max_size=max_size, content_type=content_type)
    except AtlasError as e:
        return e.status
    return 200


async def test_wrong_content_type_is_refused(harness: Harness) -> None:
    h = harness
    key = "uploads/ct.png"
    url = await h.backend.presign_put(h.bucket, key, content_type="image/png", max_size=100, expires_s=60)
    async with h.http.put(url, data=b"<html>", headers={"Content-Type": "text/html"}) as resp:
        status = await finish_upload(h, key, resp.status, max_size=100, content_type="image/png")
    assert status == 400
    assert await h.backend.stat(h.bucket, key) is None
    assert_no_leftovers(h)


async def test_oversize_upload_is_refused(harness: Harness) -> None:
    h = harness
    key = "uploads/big.png"
    resp = await upload(h, key, os.urandom(5000), max_size=4096)
    status = await finish_upload(h, key, resp.status, max_size=4096, content_type="image/png")
    resp.close()
    assert status == 413
    assert await h.backend.stat(h.bucket, key) is None
    assert_no_leftovers(h)


@pytest.mark.parametrize(
    "key",
    [
        "uploads/../proj-other/x",
        "../x",
        "uploads/a/../../x",
        "/uploads/x",
        "uploads\\..\\x",
        "uploads/a\x00b",
        "uploads/a\nb",
        "uploads/",
        "noslash",
        "UPPER/x",
        "uploads/" + "a" * 1100,
    ],
)
async def test_path_traversal_and_bad_keys_are_refused(harness: Harness, key: str) -> None:
    h = harness
    with pytest.raises(BadRequest) as err:
        await h.backend.presign_put(h.bucket, key, content_type="image/png", max_size=10, expires_s=60)
    assert err.value.code in ("invalid_path", "invalid_bucket")
    with pytest.raises(BadRequest):
        await h.backend.presign_get(h.bucket, key, expires_s=60)
    with pytest.raises(BadRequest):
        await h.backend.stat(h.bucket, key)
    with pytest.raises(BadRequest):
        await h.backend.put_stream(h.bucket, key, chunks_of(b"x"), content_type="text/plain")


async def test_presigned_urls_use_the_public_endpoint(s3_server: S3Server) -> None:
    """SigV4 signs the host: a URL for the public name works when the client uses that name."""
    public = f"http://localhost:{s3_server.endpoint.rsplit(':', 1)[1]}"
    backend = make_backend(
        "s3",
        endpoint=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        secure=False,
        public_endpoint=public,
    )
    bucket = new_bucket()
    await backend.ensure_bucket(bucket)
    try:
        url = await backend.presign_put(bucket, "uploads/p.txt", content_type="text/plain", max_size=10, expires_s=60)
        assert url.startswith(public + "/")
        async with aiohttp.ClientSession() as http:
            async with http.put(url, data=b"hi", headers={"Content-Type": "text/plain"}) as resp:
                assert resp.status == 200
        info = await backend.stat(bucket, "uploads/p.txt")
        assert info is not None and info.size == 2
    finally:
        await backend.delete_bucket(bucket, force=True)
        await backend.close()
