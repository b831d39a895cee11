"""The admin storage API the dashboard uses: buckets, their objects, signed URLs, settings, audit."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.fixtures.daemon import RunningDaemon


async def _project(atlas: RunningDaemon) -> str:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": "files"})
    assert status == 201, body
    return str(body["id"])


async def _upload(atlas: RunningDaemon, base: str, path: str, data: bytes, ctype: str = "text/plain") -> dict[str, Any]:
    body = {"path": path, "contentType": ctype, "maxSize": len(data)}
    status, grant = await atlas.admin("POST", f"{base}/signed-upload", json=body)
    assert status == 200, grant
    async with atlas.http.put(grant["uploadUrl"], data=data, headers={"Content-Type": ctype}) as resp:
        assert resp.status == 200
    return dict(grant)


async def _actions(atlas: RunningDaemon, project_id: str) -> list[tuple[str, str, str]]:
    rows = await atlas.daemon.core.store.fetchall(
        "SELECT action, target, outcome FROM audit_logs WHERE project_id = ? AND action LIKE 'storage.%' ORDER BY id",
        (project_id,),
    )
    return [(r["action"], r["target"], r["outcome"]) for r in rows]


async def test_buckets_lifecycle(atlas: RunningDaemon) -> None:
    pid = await _project(atlas)
    buckets = f"/admin/api/projects/{pid}/buckets"
    status, body = await atlas.admin("GET", buckets)
    assert status == 200 and [b["name"] for b in body["buckets"]] == ["private", "uploads"]

    status, created = await atlas.admin("POST", buckets, json={"name": "avatars"})
    assert status == 201 and created["name"] == "avatars" and created["object_count"] == 0
    status, body = await atlas.admin("POST", buckets, json={"name": "avatars"})
    assert (status, body["error"]["code"]) == (409, "bucket_exists")
    for bad in ("../x", "Avatars", "", None, "a" * 64):
        status, body = await atlas.admin("POST", buckets, json={"name": bad})
        assert (status, body["error"]["code"]) == (400, "invalid_bucket"), bad

    await _upload(atlas, f"{buckets}/avatars", "u/1.txt", b"one")
    await _upload(atlas, f"{buckets}/avatars", "u/2.txt", b"two")
    status, body = await atlas.admin("GET", buckets)
    assert {b["name"]: b["object_count"] for b in body["buckets"]}["avatars"] == 2

    # Not empty: refused without the confirmation, and nothing is deleted.
    for payload in ({}, {"confirm": "wrong"}):
        status, body = await atlas.admin("DELETE", f"{buckets}/avatars", json=payload)
        assert (status, body["error"]["code"]) == (409, "bucket_not_empty")
    status, body = await atlas.admin("GET", f"{buckets}/avatars/objects")
    assert sorted(o["key"] for o in body["objects"]) == ["u/1.txt", "u/2.txt"]

    status, _ = await atlas.admin("DELETE", f"{buckets}/avatars", json={"confirm": "avatars"})
    assert status == 204
    status, body = await atlas.admin("GET", buckets)
    assert [b["name"] for b in body["buckets"]] == ["private", "uploads"]
    objects, _ = await atlas.daemon.core.storage.list(f"proj-{pid}", "avatars/")
    assert objects == []
    status, body = await atlas.admin("DELETE", f"{buckets}/avatars")
    assert (status, body["error"]["code"]) == (404, "bucket_not_found")

    # An empty bucket goes without confirmation.
    status, _ = await atlas.admin("DELETE", f"{buckets}/private")
    assert status == 204

    assert await _actions(atlas, pid) == [
        ("storage.bucket.create", "avatars", "success"),
        ("storage.bucket.create", "avatars", "failure"),
        *[("storage.bucket.create", str(bad)[:64], "failure") for bad in ("../x", "Avatars", "", None, "a" * 64)],
        ("storage.object.upload", "avatars/u/1.txt", "success"),
        ("storage.object.upload", "avatars/u/2.txt", "success"),
        ("storage.bucket.delete", "avatars", "failure"),
        ("storage.bucket.delete", "avatars", "failure"),
        ("storage.bucket.delete", "avatars", "success"),
        ("storage.bucket.delete", "avatars", "failure"),
        ("storage.bucket.delete", "private", "success"),
    ]


async def test_objects_browse_download_delete(atlas: RunningDaemon) -> None:
    pid = await _project(atlas)
    base = f"/admin/api/projects/{pid}/buckets/uploads"
    grant = await _upload(atlas, base, "docs/readme.txt", b"hello")
    assert grant["objectKey"] == "uploads/docs/readme.txt"
    await _upload(atlas, base, "docs/empty.txt", b"")  # the dashboard may sign for an empty file
    await _upload(atlas, base, "top.txt", b"top")

    status, body = await atlas.admin("GET", f"{base}/objects", params={"prefix": "docs/", "limit": "1"})
    assert status == 200 and len(body["objects"]) == 1 and body["next_cursor"]
    first = body["objects"][0]
    assert set(first) == {"key", "object_key", "size", "etag", "content_type", "last_modified"}
    status, body2 = await atlas.admin(
        "GET", f"{base}/objects", params={"prefix": "docs/", "cursor": body["next_cursor"]}
    )
    assert sorted([first["key"], *(o["key"] for o in body2["objects"])]) == ["docs/empty.txt", "docs/readme.txt"]

    status, body = await atlas.admin("GET", f"{base}/objects/download?objectKey={quote('docs/readme.txt')}")
    assert status == 200 and body["expiresIn"] == 3600
    async with atlas.http.get(body["downloadUrl"]) as resp:
        assert resp.status == 200 and await resp.read() == b"hello"

    for bad in ("../private/x", "/abs", "a\\b"):
        status, body = await atlas.admin("GET", f"{base}/objects/download?objectKey={quote(bad)}")
        assert (status, body["error"]["code"]) == (400, "invalid_path"), bad
    status, body = await atlas.admin("GET", f"{base}/objects/download?objectKey=missing.txt")
    assert (status, body["error"]["code"]) == (404, "object_not_found")

    status, _ = await atlas.admin("DELETE", f"{base}/objects?objectKey={quote('docs/readme.txt')}")
    assert status == 204
    status, body = await atlas.admin("GET", f"{base}/objects")
    assert sorted(o["key"] for o in body["objects"]) == ["docs/empty.txt", "top.txt"]
    assert ("storage.object.delete", "uploads/docs/readme.txt", "success") in await _actions(atlas, pid)

    status, body = await atlas.admin("GET", f"/admin/api/projects/{pid}/buckets/nope/objects")
    assert (status, body["error"]["code"]) == (404, "bucket_not_found")
    status, body = await atlas.admin("GET", "/admin/api/projects/nosuchproject/buckets")
    assert (status, body["error"]["code"]) == (404, "project_not_found")


async def test_publishable_settings(atlas: RunningDaemon) -> None:
    pid = await _project(atlas)
    path = f"/admin/api/projects/{pid}/storage/settings"
    assert await atlas.admin("GET", path) == (200, {"publishable": ["signed-download"]})
    status, body = await atlas.admin("PUT", path, json={"publishable": ["signed-download", "signed-upload"]})
    assert (status, body) == (200, {"publishable": ["signed-upload", "signed-download"]})
    assert await atlas.admin("GET", path) == (200, {"publishable": ["signed-upload", "signed-download"]})
    for bad, code in (
        (["nope"], "invalid_setting"),
        ("signed-upload", "invalid_setting"),
        (["delete"], "secret_only_endpoint"),
    ):
        status, body = await atlas.admin("PUT", path, json={"publishable": bad})
        assert (status, body["error"]["code"]) == (400, code)
    assert ("storage.settings.update", pid, "success") in await _actions(atlas, pid)


async def test_admin_routes_need_an_admin(atlas: RunningDaemon) -> None:
    pid = await _project(atlas)
    async with atlas.http.get(f"{atlas.dashboard_url}/admin/api/projects/{pid}/buckets") as resp:
        assert resp.status == 401
