"""Shared steps of the auth tests: a project, a signed-up user, bearer headers."""

from __future__ import annotations

from typing import Any

from tests.fixtures.daemon import RunningDaemon

PASSWORD = "correct horse battery"
# Generous limits for flow tests; the throttling tests use the defaults.
RELAXED = {"auth": {"login_per_minute": 1000, "signup_per_hour": 1000}}


async def create_project(atlas: RunningDaemon, name: str = "app") -> dict[str, Any]:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    return body


async def signup(atlas: RunningDaemon, key: str, email: str, password: str = PASSWORD) -> dict[str, Any]:
    status, body = await atlas.public("POST", "/v1/auth/signup", key, json={"email": email, "password": password})
    assert status == 201, body
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
