"""Every /v1/ answer is readable by a browser on another origin, errors included."""

from __future__ import annotations

import pytest

from tests.fixtures.daemon import RunningDaemon


@pytest.mark.parametrize(
    ("method", "path", "key", "status"),
    [
        ("GET", "/v1/db/tables", "secret", 200),
        ("GET", "/v1/db/tables", None, 401),
        ("GET", "/v1/db/nope", "secret", 404),
        ("GET", "/v1/auth/me", "publishable", 401),
        ("POST", "/v1/storage/signed-upload", None, 401),
    ],
)
async def test_answers_carry_cors_headers(
    atlas: RunningDaemon, method: str, path: str, key: str | None, status: int
) -> None:
    _, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "cors"})
    headers = {"Origin": "https://app.example"}
    if key:
        headers["x-api-key"] = project[f"{key}_key"]
    async with atlas.http.request(method, atlas.gateway_url + path, headers=headers) as resp:
        assert resp.status == status
        assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_preflight(atlas: RunningDaemon) -> None:
    headers = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "x-api-key, content-type, authorization",
    }
    async with atlas.http.options(atlas.gateway_url + "/v1/db/notes", headers=headers) as resp:
        assert resp.status == 204
        assert "PATCH" in resp.headers["Access-Control-Allow-Methods"]
        assert "x-api-key" in resp.headers["Access-Control-Allow-Headers"]
    async with atlas.http.options(atlas.dashboard_url + "/admin/api/projects", headers=headers) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers, "the admin API is never cross-origin"
