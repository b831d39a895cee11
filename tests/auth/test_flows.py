"""/v1/auth end to end: sign-up, login, me, refresh rotation, logout, against real PostgreSQL."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from appliance.pg.embedded import EmbeddedPostgres
from appliance.projects.model import ProjectNames
from tests.auth.helpers import PASSWORD, bearer, create_project, signup
from tests.fixtures.daemon import RunningDaemon


async def test_signup_login_me_refresh_logout(relaxed: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    atlas = relaxed
    project = await create_project(atlas)
    key = project["publishable_key"]
    created = await signup(atlas, key, "  Alice@Example.COM ")
    assert set(created) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert created["token_type"] == "bearer" and created["expires_in"] == 900
    assert created["user"]["email"] == "alice@example.com"
    uid = created["user"]["id"]

    status, body = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(created["access_token"]))
    assert status == 200, body
    assert body["user"]["id"] == uid and body["user"]["email"] == "alice@example.com"

    status, logged = await atlas.public(
        "POST", "/v1/auth/login", key, json={"email": "ALICE@example.com", "password": PASSWORD}
    )
    assert status == 200, logged
    assert logged["user"] == {"id": uid, "email": "alice@example.com"}
    assert logged["refresh_token"] != created["refresh_token"]

    status, refreshed = await atlas.public(
        "POST", "/v1/auth/refresh", key, json={"refresh_token": logged["refresh_token"]}
    )
    assert status == 200, refreshed
    assert refreshed["refresh_token"] != logged["refresh_token"]
    assert refreshed["user"] == {"id": uid, "email": "alice@example.com"}
    status, _ = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(refreshed["access_token"]))
    assert status == 200

    status, _ = await atlas.public("POST", "/v1/auth/logout", key, json={"refresh_token": refreshed["refresh_token"]})
    assert status == 204
    # The session is gone: its refresh token and its access tokens are refused.
    status, body = await atlas.public(
        "POST", "/v1/auth/refresh", key, json={"refresh_token": refreshed["refresh_token"]}
    )
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, body = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(refreshed["access_token"]))
    assert status == 401
    # The first sign-in (another session) is untouched.
    status, _ = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(created["access_token"]))
    assert status == 200
    # Logout with the bearer token alone ends that session.
    status, _ = await atlas.public("POST", "/v1/auth/logout", key, headers=bearer(created["access_token"]))
    assert status == 204
    status, body = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": created["refresh_token"]})
    assert status == 401

    actions = [
        (r["action"], r["outcome"])
        for r in await atlas.daemon.core.store.fetchall(
            "SELECT action, outcome FROM audit_logs WHERE project_id = ?", (project["id"],)
        )
    ]
    assert ("auth.signup", "success") in actions and ("auth.login", "success") in actions
    assert actions.count(("auth.logout", "success")) == 2

    # Secrets never reach the logs or the audit trail.
    audit_dump = str([tuple(r) for r in await atlas.daemon.core.store.fetchall("SELECT * FROM audit_logs")])
    for secret in (PASSWORD, created["access_token"], created["refresh_token"], refreshed["refresh_token"]):
        assert secret not in caplog.text
        assert secret not in audit_dump
        assert secret.split(".")[-1] not in caplog.text


async def test_reused_refresh_token_revokes_the_family(relaxed: RunningDaemon) -> None:
    atlas = relaxed
    key = (await create_project(atlas))["publishable_key"]
    first = await signup(atlas, key, "bob@example.com")
    status, second = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": first["refresh_token"]})
    assert status == 200
    # The thief (or the victim) presents the used token again: the whole session dies.
    status, body = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": first["refresh_token"]})
    assert status == 401 and body["error"]["code"] == "refresh_token_reused"
    status, body = await atlas.public("POST", "/v1/auth/refresh", key, json={"refresh_token": second["refresh_token"]})
    assert status == 401
    status, _ = await atlas.public("GET", "/v1/auth/me", key, headers=bearer(second["access_token"]))
    assert status == 401
    rows = await atlas.daemon.core.store.fetchall("SELECT outcome FROM audit_logs WHERE action = 'auth.refresh_reuse'")
    assert [r["outcome"] for r in rows] == ["failure"]


async def test_end_users_cannot_reach_atlas_auth(relaxed: RunningDaemon, pg: EmbeddedPostgres) -> None:
    pid = (await create_project(relaxed))["id"]
    names = ProjectNames(pid)
    conn = await asyncpg.connect(
        host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, database=names.database
    )
    try:
        for role in (names.anon, names.authenticated, names.owner):
            assert not await conn.fetchval("SELECT has_schema_privilege($1, 'atlas_auth', 'USAGE')", role)
        assert await conn.fetchval("SELECT has_table_privilege($1, 'atlas_auth.users', 'SELECT')", names.app)
    finally:
        await conn.close()


async def test_clean_expired_tokens(relaxed: RunningDaemon) -> None:
    from appliance.auth.service import AuthService, clean_expired_tokens

    project = await create_project(relaxed)
    await signup(relaxed, project["publishable_key"], "carol@example.com")
    core = relaxed.daemon.core
    assert await clean_expired_tokens(core) == 0
    async with core.pools.connection(project["id"], "app") as conn:
        await conn.execute("UPDATE atlas_auth.refresh_tokens SET expires_at = now() - interval '1 second'")
    assert await clean_expired_tokens(core) == 1
    assert core.service(AuthService) is core.service(AuthService)
