"""Helpers for backup tests: a project with typed data, sequences and RLS; waiting for jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon
from tests.fixtures.s3server import S3Server, start_seaweedfs

SCHEMA = """
CREATE TABLE notes (
    id serial PRIMARY KEY,
    owner_id uuid,
    title text NOT NULL,
    body text,
    tags text[] DEFAULT '{}',
    meta jsonb,
    price numeric(10, 2),
    done boolean NOT NULL DEFAULT false,
    due date,
    created_at timestamptz NOT NULL DEFAULT now(),
    blob bytea
);
CREATE SEQUENCE invoice_no START 1000;
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON notes FOR ALL USING (owner_id = auth.uid());
INSERT INTO notes (owner_id, title, body, tags, meta, price, done, due, blob)
SELECT gen_random_uuid(), 'note ' || g, repeat('x', g), ARRAY['a', 'b' || g], jsonb_build_object('n', g),
       g * 1.25, g % 2 = 0, date '2024-01-01' + g, decode('deadbeef', 'hex')
  FROM generate_series(1, 250) g;
SELECT nextval('invoice_no'), nextval('invoice_no');
CREATE TABLE tags (name text PRIMARY KEY, uses integer NOT NULL DEFAULT 0);
"""


async def create_project(atlas: RunningDaemon, name: str = "Shop", schema: str = SCHEMA) -> str:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    pid = body["id"]
    status, body = await atlas.admin(
        "POST", f"/admin/api/projects/{pid}/migrations", json={"migrations": [{"name": "0001_init.sql", "sql": schema}]}
    )
    assert status == 200, body
    return pid


async def wait_job(atlas: RunningDaemon, job_id: str, timeout: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            status, job = await atlas.admin("GET", f"/admin/api/jobs/{job_id}")
            assert status == 200, job
            if job["state"] in ("succeeded", "failed"):
                return job
            await asyncio.sleep(0.05)


async def backup(atlas: RunningDaemon, pid: str) -> dict[str, Any]:
    status, body = await atlas.admin("POST", f"/admin/api/projects/{pid}/backups")
    assert status == 202, body
    job = await wait_job(atlas, body["job_id"])
    assert job["state"] == "succeeded", job
    return job


async def project_conn(pg: EmbeddedPostgres, pid: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, database=f"proj_{pid}"
    )


@pytest.fixture(scope="session")
def backups_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs-backups"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["fs", "s3"])
async def any_backend(
    request: pytest.FixtureRequest, tmp_path: Path, pg: EmbeddedPostgres
) -> AsyncIterator[RunningDaemon]:
    """A daemon whose backups go to the fs backend, or to a real S3 server (SeaweedFS)."""
    sections: dict[str, dict[str, Any]] = {}
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("backups_s3_server")
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
    async with running_daemon(tmp_path / "state", pg, **sections) as running:
        assert running.daemon.core.storage.kind == request.param
        yield running
