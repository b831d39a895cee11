"""Every bad input of /v1/auth, table-driven where it can be, through the real gateway."""

from __future__ import annotations

import time

import pytest

from appliance.auth.service import AuthService
from appliance.auth.tokens import issue_access_token
from tests.auth.helpers import PASSWORD, bearer, create_project, signup
from tests.fixtures.daemon import RunningDaemon


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "a@b", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "a b@example.com", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "a@@example.com", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": "x" * 250 + "@example.com", "password": PASSWORD}, 400, "invalid_email"),
        ({"email": 42, "password": PASSWORD}, 400, "invalid_email"),
        ({"password": PASSWORD}, 400, "invalid_email"),
        ({"email": "a@example.com", "password": "short"}, 400, "weak_password"),
        ({"email": "a@example.com", "password": "123456789"}, 400, "weak_password"),
        ({"email": "a@example.com", "password": "é" * 40}, 400, "password_too_long"),
        ({"email": "a@example.com", "password": None}, 400, "invalid_password"),
    ],
)
async def test_signup_refuses(relaxed: RunningDaemon, body: dict[str, object], status: int, code: str) -> None:
    key = (await create_project(relaxed))["publishable_key"]
    got, answer = await relaxed.public("POST", "/v1/auth/signup", key, json=body)
    assert (got, answer["error"]["code"]) == (status, code), answer


async def test_requests_without_a_key_or_body(relaxed: RunningDaemon) -> None:
    key = (await create_project(relaxed))["publishable_key"]
    status, body = await relaxed.public(
        "POST", "/v1/auth/login", None, json={"email": "a@example.com", "password": "x"}
    )
    assert status == 401 and body["error"]["code"] == "api_key_required"
    status, body = await relaxed.public("POST", "/v1/auth/login", key, data=b"[1]")
    assert status == 400 and body["error"]["code"] == "invalid_body"
    status, body = await relaxed.public("POST", "/v1/auth/refresh", key, json={"refresh_token": "garbage"})
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, body = await relaxed.public("GET", "/v1/auth/me", key)
    assert status == 401 and body["error"]["code"] == "token_required"
    status, body = await relaxed.public("POST", "/v1/auth/logout", key)
    assert status == 401 and body["error"]["code"] == "token_required"


async def test_duplicate_signup_conflicts(relaxed: RunningDaemon) -> None:
    key = (await create_project(relaxed))["publishable_key"]
    await signup(relaxed, key, "dup@example.com")
    status, body = await relaxed.public(
        "POST", "/v1/auth/signup", key, json={"email": " DUP@example.com", "password": PASSWORD + "x"}
    )
    assert status == 409 and body["error"]["code"] == "user_exists"


async def test_wrong_password_and_unknown_email_look_the_same(relaxed: RunningDaemon) -> None:
    key = (await create_project(relaxed))["publishable_key"]
    await signup(relaxed, key, "dana@example.com")

    async def attempt(email: str) -> tuple[int, dict[str, object], float]:
        started = time.perf_counter()
        status, body = await relaxed.public(
            "POST", "/v1/auth/login", key, json={"email": email, "password": "wrong password!"}
        )
        return status, body, time.perf_counter() - started

    wrong = await attempt("dana@example.com")
    unknown = await attempt("nobody@example.com")
    assert wrong[0] == unknown[0] == 401
    assert wrong[1] == unknown[1]
    assert wrong[1]["error"]["code"] == "invalid_credentials"  # type: ignore[index]
    # Both paths run one bcrypt at the same cost: neither is several times faster.
    assert 0.33 < wrong[2] / unknown[2] < 3.0


async def test_disabled_user_is_refused_everywhere(relaxed: RunningDaemon) -> None:
    project = await create_project(relaxed)
    pid, key = project["id"], project["publishable_key"]
    user = await signup(relaxed, key, "erin@example.com")
    uid = user["user"]["id"]
    status, _ = await relaxed.admin("POST", f"/admin/api/projects/{pid}/users/{uid}/disable")
    assert status == 200
    status, body = await relaxed.public(
        "POST", "/v1/auth/login", key, json={"email": "erin@example.com", "password": PASSWORD}
    )
    assert status == 403 and body["error"]["code"] == "user_disabled"
    status, body = await relaxed.public("POST", "/v1/auth/refresh", key, json={"refresh_token": user["refresh_token"]})
    assert status == 401
    status, _ = await relaxed.public("GET", "/v1/auth/me", key, headers=bearer(user["access_token"]))
    assert status == 401
    # A wrong password for a disabled user says only "invalid credentials".
    status, body = await relaxed.public(
        "POST", "/v1/auth/login", key, json={"email": "erin@example.com", "password": "nope nope nope"}
    )
    assert status == 401 and body["error"]["code"] == "invalid_credentials"
    status, _ = await relaxed.admin("POST", f"/admin/api/projects/{pid}/users/{uid}/enable")
    assert status == 200
    time.sleep(1.05)  # tokens issued in the second of the cut-off stay refused
    status, _ = await relaxed.public(
        "POST", "/v1/auth/login", key, json={"email": "erin@example.com", "password": PASSWORD}
    )
    assert status == 200


async def test_expired_and_tampered_tokens_are_refused(relaxed: RunningDaemon) -> None:
    project = await create_project(relaxed)
    key = project["publishable_key"]
    user = await signup(relaxed, key, "finn@example.com")
    secret = await relaxed.daemon.core.service(AuthService).keyring.get(project["id"])
    assert secret is not None
    expired = issue_access_token(
        secret,
        project_id=project["id"],
        user_id=user["user"]["id"],
        email="finn@example.com",
        session_id=user["user"]["id"],
        lifetime_seconds=60,
        now=time.time() - 3600,
    )
    status, body = await relaxed.public("GET", "/v1/auth/me", key, headers=bearer(expired))
    assert status == 401 and body["error"]["code"] == "token_expired"
    head, payload, sig = user["access_token"].split(".")
    for bad in (f"{head}.{payload}.{sig[::-1]}", f"{head}.{payload[:-2]}xy.{sig}", "a.b.c", "Bearer"):
        status, body = await relaxed.public("GET", "/v1/auth/me", key, headers=bearer(bad))
        assert status == 401 and body["error"]["code"] == "invalid_token", bad
    status, body = await relaxed.public("GET", "/v1/auth/me", key, headers={"Authorization": "Basic abc"})
    assert status == 401 and body["error"]["code"] == "invalid_authorization"


async def test_a_token_of_project_a_is_useless_on_project_b(relaxed: RunningDaemon) -> None:
    a = await create_project(relaxed, "a")
    b = await create_project(relaxed, "b")
    user = await signup(relaxed, a["publishable_key"], "gus@example.com")
    await signup(relaxed, b["publishable_key"], "someone@example.com")  # b has a secret of its own
    status, body = await relaxed.public(
        "GET", "/v1/auth/me", b["publishable_key"], headers=bearer(user["access_token"])
    )
    assert status == 401 and body["error"]["code"] == "invalid_token"
    status, body = await relaxed.public("GET", "/v1/db/tables", b["secret_key"], headers=bearer(user["access_token"]))
    assert status == 401
    status, body = await relaxed.public(
        "POST", "/v1/auth/refresh", b["publishable_key"], json={"refresh_token": user["refresh_token"]}
    )
    assert status == 401 and body["error"]["code"] == "invalid_token"
    # The same email is a different user in each project.
    status, body = await relaxed.public(
        "POST", "/v1/auth/login", b["publishable_key"], json={"email": "gus@example.com", "password": PASSWORD}
    )
    assert status == 401
