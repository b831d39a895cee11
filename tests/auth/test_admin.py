"""Admin API over a project's end users: list with search and paging, disable, revoke, delete."""

from __future__ import annotations

from tests.auth.helpers import bearer, create_project, signup
from tests.fixtures.daemon import RunningDaemon


async def test_admin_user_management(relaxed: RunningDaemon) -> None:
    atlas = relaxed
    project = await create_project(atlas)
    pid, key = project["id"], project["publishable_key"]
    base = f"/admin/api/projects/{pid}/users"
    status, body = await atlas.admin("GET", base)
    assert status == 200 and body == {"users": [], "total": 0}
    users = [await signup(atlas, key, f"{name}@example.com") for name in ("ann", "ben", "ann_b")]

    status, body = await atlas.admin("GET", base, params={"limit": "2", "offset": "0"})
    assert status == 200 and body["total"] == 3 and len(body["users"]) == 2
    assert set(body["users"][0]) == {"id", "email", "created_at", "last_sign_in_at", "disabled"}
    status, body = await atlas.admin("GET", base, params={"search": "ANN"})
    assert body["total"] == 2
    status, body = await atlas.admin("GET", base, params={"search": "n_"})  # LIKE wildcards are literal
    assert [u["email"] for u in body["users"]] == ["ann_b@example.com"]
    status, body = await atlas.admin("GET", base, params={"limit": "0"})
    assert status == 400

    ann = users[0]
    uid = ann["user"]["id"]
    status, body = await atlas.admin("POST", f"{base}/{uid}/revoke-sessions")
    assert status == 200 and body == {"revoked": 1}
    status, _ = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": ann["refresh_token"]})
    assert status == 401
    status, _ = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(ann["access_token"]))
    assert status == 401

    status, body = await atlas.admin("POST", f"{base}/{uid}/disable")
    assert status == 200 and body["user"]["disabled"] is True
    status, body = await atlas.admin("DELETE", f"{base}/{uid}")
    assert status == 204
    status, body = await atlas.admin("DELETE", f"{base}/{uid}")
    assert status == 404 and body["error"]["code"] == "user_not_found"
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        status, body = await atlas.admin("POST", f"{base}/{bad}/disable")
        assert status == 404
    status, body = await atlas.admin("GET", "/admin/api/projects/abcdefghijkl/users")
    assert status == 404

    actions = {r["action"] for r in await atlas.daemon.core.store.fetchall("SELECT action FROM audit_logs")}
    assert {"auth.user.revoke_sessions", "auth.user.disable", "auth.user.delete"} <= actions
    # The admin API needs an admin.
    async with atlas.http.get(atlas.dashboard_url + base) as resp:
        assert resp.status == 401
