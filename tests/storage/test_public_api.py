"""The public storage API end to end, the same suite on both backends: a daemon (fs, or s3 on a
real SeaweedFS), two projects, and a plain HTTP client doing what a browser's
``fetch(uploadUrl, {method: "PUT", body, headers: {"Content-Type": type}})`` does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import pytest_asyncio

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon
from tests.fixtures.s3server import S3Server

pytestmark = pytest.mark.asyncio(loop_scope="module")

DATA = os.urandom(200_000)
PNG = "image/png"


@dataclass
class Project:
    id: str
    publishable: str
    secret: str


@dataclass
class Api:
    kind: str
    atlas: RunningDaemon
    a: Project

    async def other_project(self) -> Project:
        return await _project(self.atlas, f"other-{secrets.token_hex(4)}")

    async def call(self, method: str, path: str, key: str | None, **params: Any) -> tuple[int, Any]:
        body = params.pop("json", None)
        query = f"?{urlencode(params, quote_via=quote)}" if params else ""
        return await self.atlas.public(method, path + query, key, json=body)

    async def sign_upload(
        self, key: str, path: str, *, ctype: str = PNG, max_size: int = 1 << 20, bucket: str = "uploads"
    ) -> tuple[int, Any]:
        body = {"bucket": bucket, "path": path, "contentType": ctype, "maxSize": max_size}
        return await self.call("POST", "/v1/storage/signed-upload", key, json=body)

    async def sign_download(self, key: str, object_key: str, bucket: str = "uploads") -> tuple[int, Any]:
        return await self.call("GET", "/v1/storage/signed-download", key, bucket=bucket, objectKey=object_key)

    async def put(self, url: str, data: bytes, ctype: str = PNG) -> int:
        # A browser's upload code retries a 5xx of the object store; so do we (SeaweedFS
        # answers an occasional 500 on a loaded machine). Our own answers are never 5xx here.
        for attempt in (0, 1, 2):
            async with self.atlas.http.put(
                url, data=data, headers={"Content-Type": ctype, "Origin": "https://app.example"}
            ) as resp:
                body = await resp.read()
                if resp.status >= 500:
                    print("object store answered", resp.status, body[:500])  # shown only if the test fails
                if resp.status < 500 or attempt == 2 or self.kind != "s3":
                    return resp.status
            await asyncio.sleep(1.0 + attempt)
        raise AssertionError("unreachable")

    async def get(self, url: str, method: str = "GET") -> tuple[int, bytes]:
        async with self.atlas.http.request(method, url) as resp:
            return resp.status, await resp.read()

    async def upload(self, project: Project, path: str, data: bytes = DATA, ctype: str = PNG) -> str:
        status, grant = await self.sign_upload(project.secret, path, ctype=ctype)
        assert status == 200, grant
        assert await self.put(grant["uploadUrl"], data, ctype) == 200
        return str(grant["objectKey"])

    async def stored(self, project: Project) -> list[str]:
        """Every key in the project's store bucket (fs: every file, temp files included)."""
        storage = self.atlas.daemon.core.storage
        if self.kind == "fs":
            root = Path(storage.root) / f"proj-{project.id}"  # type: ignore[attr-defined]
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".meta" not in p.parts)
        objects, _ = await storage.list(f"proj-{project.id}", "", limit=1000)
        return sorted(o.key for o in objects)

    @contextlib.contextmanager
    def clock_shifted(self, offset_s: float) -> Iterator[None]:
        """Sign URLs as if it were ``offset_s`` seconds from now (fs checks with the same clock,
        so it is put back before the URLs are used)."""
        storage = self.atlas.daemon.core.storage
        target = storage.signer if self.kind == "fs" else storage  # type: ignore[attr-defined]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(target, "_clock", lambda: time.time() + offset_s)
            yield


async def _project(atlas: RunningDaemon, name: str) -> Project:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    return Project(body["id"], body["publishable_key"], body["secret_key"])


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["fs", "s3"])
async def daemon(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg: EmbeddedPostgres
) -> AsyncIterator[tuple[str, RunningDaemon]]:
    """One daemon per backend for the module (starting one costs more than most tests)."""
    tmp_path = tmp_path_factory.mktemp(f"storage-api-{request.param}")
    sections: dict[str, dict[str, Any]] = {}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        secret_file = tmp_path / "s3-secret"
        secret_file.write_text(server.secret_key)
        sections["storage"] = {
            "backend": "s3",
            "s3_endpoint": server.endpoint,
            "s3_access_key": server.access_key,
            "s3_secret_key_file": str(secret_file),
            "s3_region": server.region,
            "s3_secure": False,
        }
    async with running_daemon(tmp_path / "state", pg, **sections) as atlas:
        yield request.param, atlas


@pytest_asyncio.fixture(loop_scope="module")
async def api(daemon: tuple[str, RunningDaemon]) -> Api:
    """A fresh project per test, so no test sees another's objects."""
    kind, atlas = daemon
    return Api(kind, atlas, await _project(atlas, f"alpha-{secrets.token_hex(4)}"))


def error_code(body: Any) -> str:
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, body
    return str(body["error"]["code"])


def tamper(url: str) -> str:
    """Flip the last hex digit of the URL's signature (fs: X-Atlas-Signature, s3: X-Amz-Signature)."""
    marker = "Signature="
    start = url.index(marker) + len(marker)
    end = url.find("&", start)
    end = len(url) if end < 0 else end
    last = url[end - 1]
    return url[: end - 1] + ("0" if last != "0" else "1") + url[end:]


# -- the happy path ---------------------------------------------------------------------------


async def test_upload_then_download_returns_the_same_bytes(api: Api) -> None:
    status, grant = await api.sign_upload(api.a.secret, "notes/2024/photo one.png")
    assert status == 200
    assert grant["objectKey"] == "uploads/notes/2024/photo one.png"
    assert grant["expiresIn"] == 3600 and grant["uploadUrl"].startswith("http")
    assert await api.put(grant["uploadUrl"], DATA) == 200

    status, download = await api.sign_download(api.a.publishable, grant["objectKey"])
    assert status == 200 and download["expiresIn"] == 3600
    assert await api.get(download["downloadUrl"]) == (200, DATA)

    status, listing = await api.call("GET", "/v1/storage/list", api.a.secret, bucket="uploads", prefix="notes/")
    assert status == 200 and listing["nextCursor"] is None
    [obj] = listing["objects"]
    assert obj["key"] == grant["objectKey"] and obj["size"] == len(DATA) and obj["contentType"] == PNG
    assert obj["etag"] and obj["lastModified"].endswith("Z")


async def test_list_pages_filters_and_delete(api: Api) -> None:
    keys = [await api.upload(api.a, f"docs/{i}.png", DATA[:10]) for i in range(5)]
    await api.upload(api.a, "other/x.png", DATA[:10])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"bucket": "uploads", "prefix": "docs/", "limit": 2, **({"cursor": cursor} if cursor else {})}
        status, page = await api.call("GET", "/v1/storage/list", api.a.secret, **params)
        assert status == 200 and len(page["objects"]) <= 2
        seen += [o["key"] for o in page["objects"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(keys)

    status, body = await api.call("DELETE", "/v1/storage/object", api.a.secret, bucket="uploads", objectKey=keys[0])
    assert (status, body) == (200, {"deleted": True})
    status, body = await api.sign_download(api.a.secret, keys[0])
    assert (status, error_code(body)) == (404, "object_not_found")
    assert keys[0] not in await api.stored(api.a)

    status, body = await api.call("GET", "/v1/storage/list", api.a.secret, bucket="uploads", cursor="private/x")
    assert (status, error_code(body)) == (400, "invalid_cursor")


# -- signed URLs that must not work -----------------------------------------------------------


async def test_expired_urls_are_refused(api: Api) -> None:
    key = await api.upload(api.a, "kept.png")
    with api.clock_shifted(-2 * 3600):
        _, grant = await api.sign_upload(api.a.secret, "late.png")
        _, download = await api.sign_download(api.a.secret, key)
    assert await api.put(grant["uploadUrl"], DATA) == 403
    assert (await api.get(download["downloadUrl"]))[0] == 403
    assert await api.stored(api.a) == ["uploads/kept.png"]


async def test_tampered_signatures_are_refused(api: Api) -> None:
    key = await api.upload(api.a, "kept.png")
    _, grant = await api.sign_upload(api.a.secret, "forged.png")
    _, download = await api.sign_download(api.a.secret, key)
    assert await api.put(tamper(grant["uploadUrl"]), DATA) == 403
    assert (await api.get(tamper(download["downloadUrl"])))[0] == 403
    # Pointing a valid signature at another object is tampering too.
    assert (await api.get(download["downloadUrl"].replace("kept.png", "other.png")))[0] == 403
    assert await api.stored(api.a) == ["uploads/kept.png"]


async def test_urls_only_work_for_the_method_they_were_signed_for(api: Api) -> None:
    key = await api.upload(api.a, "kept.png")
    _, grant = await api.sign_upload(api.a.secret, "new.png")
    _, download = await api.sign_download(api.a.secret, key)
    assert (await api.get(grant["uploadUrl"]))[0] == 403
    assert (await api.get(grant["uploadUrl"], "DELETE"))[0] in (403, 405)
    assert await api.put(download["downloadUrl"], b"overwritten") == 403
    assert await api.get(download["downloadUrl"]) == (200, DATA)
    assert await api.stored(api.a) == ["uploads/kept.png"]


async def test_wrong_content_type_never_becomes_downloadable(api: Api) -> None:
    _, grant = await api.sign_upload(api.a.secret, "pic.png", ctype=PNG)
    status = await api.put(grant["uploadUrl"], b"<script>alert(1)</script>", "text/html")
    if api.kind == "fs":
        assert status == 400  # refused on the way in
    else:
        assert status == 200  # S3 cannot check a presigned PUT's type: the download check does
    status, body = await api.sign_download(api.a.secret, grant["objectKey"])
    if api.kind == "fs":
        assert (status, error_code(body)) == (404, "object_not_found")
    else:
        assert (status, error_code(body)) == (400, "content_type_mismatch")
    assert await api.stored(api.a) == []


async def test_oversize_upload_is_never_kept_or_handed_out(api: Api) -> None:
    _, grant = await api.sign_upload(api.a.secret, "big.png", max_size=1000)
    status = await api.put(grant["uploadUrl"], DATA)
    assert status == (413 if api.kind == "fs" else 200)
    status, body = await api.sign_download(api.a.secret, grant["objectKey"])
    if api.kind == "fs":
        assert (status, error_code(body)) == (404, "object_not_found")
    else:
        assert (status, error_code(body)) == (413, "object_too_large")
        assert body["error"]["details"] == {"maxSize": 1000, "size": len(DATA)}
    assert await api.stored(api.a) == []
    # Exactly at the limit is fine.
    _, grant = await api.sign_upload(api.a.secret, "fits.png", max_size=1000)
    assert await api.put(grant["uploadUrl"], DATA[:1000]) == 200
    status, download = await api.sign_download(api.a.secret, grant["objectKey"])
    assert status == 200 and await api.get(download["downloadUrl"]) == (200, DATA[:1000])


async def test_listing_drops_uploads_that_broke_their_limits(api: Api) -> None:
    _, grant = await api.sign_upload(api.a.secret, "big.png", max_size=10)
    await api.put(grant["uploadUrl"], DATA[:11])
    await api.upload(api.a, "ok.png", DATA[:10])
    status, listing = await api.call("GET", "/v1/storage/list", api.a.secret, bucket="uploads")
    assert status == 200 and [o["key"] for o in listing["objects"]] == ["uploads/ok.png"]
    assert await api.stored(api.a) == ["uploads/ok.png"]


# -- requests that must be refused ------------------------------------------------------------

BAD_PATHS = ["../x.png", "a/../../x.png", "..", "/abs.png", "a\\b.png", "a\x00b.png", "a\nb.png", "a\x7fb", "", "dir/"]


@pytest.mark.parametrize("path", BAD_PATHS)
async def test_path_traversal_is_refused(api: Api, path: str) -> None:
    status, body = await api.sign_upload(api.a.secret, path)
    assert (status, error_code(body)) == (400, "invalid_path")
    assert await api.stored(api.a) == []


@pytest.mark.parametrize(
    ("object_key", "code"),
    [
        ("uploads/../private/x.png", "invalid_path"),
        ("/uploads/x.png", "invalid_bucket"),
        ("uploads\\x.png", "invalid_path"),
        ("uploads/a\x00.png", "invalid_path"),
        ("uploads", "invalid_path"),
        ("private/x.png", "object_key_mismatch"),
        ("proj-other/uploads/x.png", "object_key_mismatch"),
    ],
)
async def test_download_keys_are_validated(api: Api, object_key: str, code: str) -> None:
    status, body = await api.sign_download(api.a.secret, object_key)
    assert (status, error_code(body)) == (400, code)


async def test_unknown_or_invalid_logical_bucket(api: Api) -> None:
    status, body = await api.sign_upload(api.a.secret, "x.png", bucket="nope")
    assert (status, error_code(body)) == (404, "bucket_not_found")
    status, body = await api.sign_download(api.a.secret, "nope/x.png", bucket="nope")
    assert (status, error_code(body)) == (404, "bucket_not_found")
    status, body = await api.call("GET", "/v1/storage/list", api.a.secret, bucket="nope")
    assert (status, error_code(body)) == (404, "bucket_not_found")
    for bad in ("../uploads", "Uploads", "a/b", ""):
        status, body = await api.sign_upload(api.a.secret, "x.png", bucket=bad)
        assert (status, error_code(body)) == (400, "invalid_bucket"), bad


async def test_another_projects_objects_are_out_of_reach(api: Api) -> None:
    key = await api.upload(api.a, "secret-report.png")
    b = await api.other_project()
    for b_key in (b.secret, b.publishable):
        status, body = await api.sign_download(b_key, key)
        assert (status, error_code(body)) == (404, "object_not_found")
    status, listing = await api.call("GET", "/v1/storage/list", b.secret, bucket="uploads")
    assert status == 200 and listing["objects"] == []
    status, _ = await api.call("DELETE", "/v1/storage/object", b.secret, bucket="uploads", objectKey=key)
    assert status == 200
    # B's upload to the same key lands in B's bucket, not over A's object.
    await api.upload(b, "secret-report.png", b"from b")
    _, download = await api.sign_download(api.a.secret, key)
    assert await api.get(download["downloadUrl"]) == (200, DATA)


@pytest.mark.parametrize(
    ("max_size", "ctype", "code"),
    [
        (0, PNG, "invalid_max_size"),
        (-1, PNG, "invalid_max_size"),
        ("5", PNG, "invalid_max_size"),
        (True, PNG, "invalid_max_size"),
        (None, PNG, "invalid_max_size"),
        ((1 << 30) + 1, PNG, "invalid_max_size"),
        (100, "png", "invalid_content_type"),
        (100, None, "invalid_content_type"),
        (100, "image/png\r\nX-Evil: 1", "invalid_content_type"),
    ],
)
async def test_signed_upload_body_is_validated(api: Api, max_size: Any, ctype: Any, code: str) -> None:
    body = {"bucket": "uploads", "path": "x.png", "contentType": ctype, "maxSize": max_size}
    status, answer = await api.call("POST", "/v1/storage/signed-upload", api.a.secret, json=body)
    assert (status, error_code(answer)) == (400, code)


# -- keys -------------------------------------------------------------------------------------


async def test_api_key_rules(api: Api) -> None:
    pub, upload_body = api.a.publishable, {"bucket": "uploads", "path": "x.png", "contentType": PNG, "maxSize": 10}
    scenarios: list[tuple[str, str, str | None, dict[str, Any], int, str]] = [
        ("POST", "/v1/storage/signed-upload", None, {"json": upload_body}, 401, "api_key_required"),
        (
            "GET",
            "/v1/storage/signed-download",
            "ah_nope",
            {"bucket": "uploads", "objectKey": "uploads/x"},
            401,
            "invalid_api_key",
        ),
        ("GET", "/v1/storage/list", None, {"bucket": "uploads"}, 401, "api_key_required"),
        ("DELETE", "/v1/storage/object", "x", {"bucket": "uploads", "objectKey": "uploads/x"}, 401, "invalid_api_key"),
        ("GET", "/v1/storage/list", pub, {"bucket": "uploads"}, 403, "secret_key_required"),
        (
            "DELETE",
            "/v1/storage/object",
            pub,
            {"bucket": "uploads", "objectKey": "uploads/x"},
            403,
            "secret_key_required",
        ),
        ("POST", "/v1/storage/signed-upload", pub, {"json": upload_body}, 403, "publishable_key_not_allowed"),
    ]
    for method, path, key, params, status, code in scenarios:
        got, body = await api.call(method, path, key, **params)
        assert (got, error_code(body)) == (status, code), (method, path, key)
    headers = {"x-api-key": pub}
    async with api.atlas.http.get(api.atlas.gateway_url + "/v1/storage/list?bucket=uploads", headers=headers) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"  # errors reach the browser's code too

    status, body = await api.atlas.admin(
        "PUT", f"/admin/api/projects/{api.a.id}/storage/settings", json={"publishable": ["signed-upload"]}
    )
    assert (status, body) == (200, {"publishable": ["signed-upload"]})
    status, grant = await api.sign_upload(pub, "from-browser.png")
    assert status == 200, grant
    assert await api.put(grant["uploadUrl"], DATA[:10]) == 200
    status, body = await api.sign_download(pub, grant["objectKey"])
    assert (status, error_code(body)) == (403, "publishable_key_not_allowed")
    status, body = await api.atlas.admin(
        "PUT", f"/admin/api/projects/{api.a.id}/storage/settings", json={"publishable": ["list"]}
    )
    assert (status, error_code(body)) == (400, "secret_only_endpoint")


async def test_cors_preflight_and_headers(api: Api) -> None:
    headers = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type",
    }
    async with api.atlas.http.options(api.atlas.gateway_url + "/v1/storage/signed-upload", headers=headers) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        allowed = resp.headers["Access-Control-Allow-Headers"].lower()
        assert {"x-api-key", "content-type", "authorization"} <= {h.strip() for h in allowed.split(",")}
        assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    async with api.atlas.http.options(api.atlas.gateway_url + "/v1/db/tables", headers=headers) as resp:
        assert resp.status == 204 and resp.headers["Access-Control-Allow-Origin"] == "*"
    status, grant = await api.sign_upload(api.a.secret, "x.png")
    assert status == 200
    if api.kind == "fs":  # the gateway serves the upload URL itself; on s3 the store's CORS rules apply
        async with api.atlas.http.options(
            grant["uploadUrl"], headers={**headers, "Access-Control-Request-Method": "PUT"}
        ) as resp:
            assert resp.status == 204 and "PUT" in resp.headers["Access-Control-Allow-Methods"]
