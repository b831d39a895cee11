"""Local admin accounts through the admin API: setup code, sign-in, lockout, TOTP, CSRF, sign-out, CLI."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appliance.dashboard import totp
from appliance.dashboard.accounts import AdminAccounts
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon

PASSWORD = "correct horse battery"
# The dashboard with the roles it needs: background roles are not part of these tests.
ROLES = {"roles": ("gateway", "dashboard")}
COOKIE = "atlashub_session"


@pytest.fixture
async def atlas(tmp_path: Path, pg: EmbeddedPostgres) -> AsyncIterator[RunningDaemon]:
    async with running_daemon(tmp_path / "state", pg, node=ROLES) as running:
        yield running


async def call(
    atlas: RunningDaemon, method: str, path: str, *, cookie: str | None = None, csrf: str | None = None, **kw: Any
) -> tuple[int, Any, Any]:
    """A request WITHOUT the dev token; returns (status, body, response cookies)."""
    headers = dict(kw.pop("headers", {}))
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    if csrf is not None:
        headers["x-csrf-token"] = csrf
    async with atlas.http.request(method, atlas.dashboard_url + path, headers=headers, **kw) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.read()
        return resp.status, body, resp


async def make_admin(atlas: RunningDaemon, name: str = "alice") -> None:
    await atlas.daemon.core.service(AdminAccounts).create_user(name, PASSWORD)


async def sign_in(atlas: RunningDaemon, name: str = "alice", **extra: str) -> tuple[str, str]:
    status, body, resp = await call(
        atlas, "POST", "/admin/api/session", json={"username": name, "password": PASSWORD, **extra}
    )
    assert status == 200, body
    return resp.cookies[COOKIE].value, body["csrf_token"]


def setup_code(caplog: pytest.LogCaptureFixture) -> str:
    # Printed once at start-up (the fixture's setup phase) while no admin exists.
    messages = [r.getMessage() for r in caplog.get_records("setup") + caplog.records]
    found = re.findall(r"setup code: ([A-Z2-9]{4}(?:-[A-Z2-9]{4}){3})", "\n".join(messages))
    assert len(found) >= 1, caplog.text
    found = found[-1:]
    return found[0]


async def test_setup_code_creates_the_first_admin_once(atlas: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    status, body, _ = await call(atlas, "GET", "/admin/api/session")
    assert status == 200
    assert body == {"authenticated": False, "mode": "dev", "user": None, "csrf_token": None, "setup_required": True}
    code = setup_code(caplog)
    stored = await atlas.daemon.core.store.fetchall("SELECT code_hash FROM admin_setup")
    assert len(stored) == 1 and code not in str(tuple(stored[0]))
    # Printed once: asking again does not print a new code.
    await call(atlas, "GET", "/admin/api/session")
    assert setup_code(caplog) == code

    wrong = {"setup_code": "AAAA-BBBB-CCCC-DDDD", "username": "root", "password": PASSWORD}
    status, body, _ = await call(atlas, "POST", "/admin/api/setup", json=wrong)
    assert (status, body["error"]["code"]) == (401, "invalid_setup_code")
    weak = {"setup_code": code, "username": "root", "password": "short"}
    status, body, _ = await call(atlas, "POST", "/admin/api/setup", json=weak)
    assert (status, body["error"]["code"]) == (400, "weak_password")

    good = {"setup_code": code.lower().replace("-", " "), "username": "root", "password": PASSWORD}
    status, body, resp = await call(atlas, "POST", "/admin/api/setup", json=good)
    assert status == 201, body
    assert body["authenticated"] and body["mode"] == "local" and body["user"]["name"] == "root"
    assert body["setup_required"] is False and body["csrf_token"]
    header = resp.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header
    status, again, _ = await call(atlas, "POST", "/admin/api/setup", json=good)
    assert (status, again["error"]["code"]) == (409, "setup_done")
    assert await atlas.daemon.core.store.fetchall("SELECT * FROM admin_setup") == []

    cookie = resp.cookies[COOKIE].value
    status, me, _ = await call(atlas, "GET", "/admin/api/session", cookie=cookie)
    assert me["authenticated"] and me["mode"] == "local" and me["csrf_token"] == body["csrf_token"]
    entries, _ = await __import__("appliance.audit", fromlist=["entries"]).entries(atlas.daemon.core.store)
    actions = [(e["action"], e["outcome"]) for e in entries]
    assert ("admin.setup", "success") in actions and ("admin.setup", "failure") in actions


async def test_sign_in_csrf_and_sign_out(atlas: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await make_admin(atlas)
    status, body, _ = await call(atlas, "POST", "/admin/api/session", json={"username": "alice", "password": "nope"})
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    status, body, _ = await call(atlas, "POST", "/admin/api/session", json={"username": "bob", "password": PASSWORD})
    assert (status, body["error"]["code"]) == (401, "invalid_credentials")
    cookie, csrf = await sign_in(atlas, "ALICE")

    status, _, _ = await call(atlas, "GET", "/admin/api/overview", cookie=cookie)
    assert status == 200
    project = {"json": {"name": "csrf"}}
    for bad in (None, "", csrf + "x", "a" * len(csrf)):
        status, body, _ = await call(atlas, "POST", "/admin/api/projects", cookie=cookie, csrf=bad, **project)
        assert (status, body["error"]["code"]) == (403, "csrf_failed"), bad
    assert await atlas.daemon.core.projects.all() == []
    status, body, _ = await call(atlas, "POST", "/admin/api/projects", cookie=cookie, csrf=csrf, **project)
    assert status == 201, body

    status, body, _ = await call(atlas, "DELETE", "/admin/api/session", cookie=cookie)
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    status, _, resp = await call(atlas, "DELETE", "/admin/api/session", cookie=cookie, csrf=csrf)
    assert status == 204 and resp.cookies[COOKIE].value == ""
    status, body, _ = await call(atlas, "GET", "/admin/api/overview", cookie=cookie)
    assert (status, body["error"]["code"]) == (401, "session_expired")
    status, body, _ = await call(atlas, "GET", "/admin/api/overview")
    assert (status, body["error"]["code"]) == (401, "admin_auth_required")
    for secret in (PASSWORD, cookie, csrf):
        assert secret not in caplog.text


async def test_expired_session_is_refused(atlas: RunningDaemon) -> None:
    await make_admin(atlas)
    cookie, _ = await sign_in(atlas)
    await atlas.daemon.core.store.execute("UPDATE admin_sessions SET expires_at = '2000-01-01T00:00:00.000000Z'")
    status, body, _ = await call(atlas, "GET", "/admin/api/overview", cookie=cookie)
    assert (status, body["error"]["code"]) == (401, "session_expired")
    assert await atlas.daemon.core.store.fetchall("SELECT * FROM admin_sessions") == []
    status, body, resp = await call(atlas, "GET", "/admin/api/session", cookie=cookie)
    assert status == 200 and body["authenticated"] is False and resp.cookies[COOKIE].value == ""


async def test_lockout_after_failed_attempts(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    admin = {"login_max_attempts": 3, "lockout_seconds": 60}
    async with running_daemon(tmp_path / "state", pg, admin=admin, node=ROLES) as atlas:
        await make_admin(atlas)
        for _ in range(3):
            status, _, _ = await call(atlas, "POST", "/admin/api/session", json={"username": "alice", "password": "x"})
            assert status == 401
        good = {"username": "alice", "password": PASSWORD}
        status, body, resp = await call(atlas, "POST", "/admin/api/session", json=good)
        assert (status, body["error"]["code"]) == (429, "login_locked")
        assert 0 < int(resp.headers["Retry-After"]) <= 60
        row = await atlas.daemon.core.store.fetchone("SELECT locked_until FROM admin_users")
        assert row is not None and row["locked_until"]
        # An unknown username locks the same way, so lockouts do not reveal which accounts exist.
        for _ in range(3):
            await call(atlas, "POST", "/admin/api/session", json={"username": "mallory", "password": "x"})
        status, body, _ = await call(atlas, "POST", "/admin/api/session", json={"username": "mallory", "password": "x"})
        assert (status, body["error"]["code"]) == (429, "login_locked")
        # The address is slowed down too after trying many names.
        for n in range(6):
            await call(atlas, "POST", "/admin/api/session", json={"username": f"u{n}", "password": "x"})
        status, body, _ = await call(atlas, "POST", "/admin/api/session", json={"username": "fresh", "password": "x"})
        assert (status, body["error"]["code"]) == (429, "login_locked")


async def test_totp_enrolment_and_sign_in(atlas: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await make_admin(atlas)
    cookie, csrf = await sign_in(atlas)
    status, body, _ = await call(atlas, "POST", "/admin/api/session/totp", cookie=cookie, json={})
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    status, body, _ = await call(atlas, "POST", "/admin/api/session/totp", cookie=cookie, csrf=csrf, json={})
    assert status == 200, body
    secret = body["secret"]
    assert (
        body["otpauth_uri"].startswith("otpauth://totp/AtlasHub:alice?") and f"secret={secret}" in body["otpauth_uri"]
    )
    row = await atlas.daemon.core.store.fetchone("SELECT totp_pending_enc, totp_secret_enc FROM admin_users")
    assert row is not None and secret not in row["totp_pending_enc"] and row["totp_secret_enc"] is None

    status, body, _ = await call(
        atlas, "POST", "/admin/api/session/totp", cookie=cookie, csrf=csrf, json={"code": "000000"}
    )
    assert (status, body["error"]["code"]) == (400, "invalid_totp")
    code = totp.hotp(secret, totp.current_step())
    status, body, _ = await call(
        atlas, "POST", "/admin/api/session/totp", cookie=cookie, csrf=csrf, json={"code": code}
    )
    assert (status, body) == (200, {"totp_enabled": True})

    login = {"username": "alice", "password": PASSWORD}
    status, body, _ = await call(atlas, "POST", "/admin/api/session", json=login)
    assert (status, body["error"]["code"]) == (401, "totp_required")
    status, body, _ = await call(atlas, "POST", "/admin/api/session", json={**login, "totp": code})
    assert (status, body["error"]["code"]) == (401, "invalid_totp")  # already used: no replay
    _, _ = await sign_in(atlas, totp=totp.hotp(secret, totp.current_step() + 1))
    status, me, _ = await call(atlas, "GET", "/admin/api/session", cookie=cookie)
    assert me["user"] == {"name": "alice", "totp_enabled": True}
    assert secret not in caplog.text


async def test_totp_enrolment_needs_a_local_session(atlas: RunningDaemon) -> None:
    status, body = await atlas.admin("POST", "/admin/api/session/totp", json={})
    assert (status, body["error"]["code"]) == (403, "not_local_admin")


def test_totp_matches_rfc6238_vectors() -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # b"12345678901234567890", RFC 6238 appendix B
    for moment, expected in ((59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")):
        assert totp.code_at(secret, moment) == expected
        assert totp.verify(secret, expected, now=moment) == moment // 30
    assert totp.verify(secret, "287082", now=59 + 90) is None
    assert totp.verify(secret, "287082", now=59, after_step=1) is None
    assert totp.verify(secret, "28708", now=59) is None


def test_cli_creates_an_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance import cli

    config = tmp_path / "atlashub.toml"
    config.write_text(f'[node]\nstate_dir = "{tmp_path / "state"}"\n')
    (tmp_path / "state").mkdir()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["admin", "create", "--username", "ops", "--config", str(config)]) == 0
    assert "'ops' created" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["admin", "create", "--username", "OPS", "--config", str(config)]) == 1
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli.main(["admin", "create", "--username", "other", "--config", str(config)]) == 1
