"""The seed 000 example schema (a Supabase-style analytics backend) with data, in a fresh project."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon

SEED_SCHEMA = """
CREATE TABLE tenants (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE tenant_domains (
    id        bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    domain    text NOT NULL UNIQUE,
    verified  boolean NOT NULL DEFAULT false
);
CREATE TABLE vf_projects (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE vf_credentials (
    id                bigserial PRIMARY KEY,
    vf_project_id     bigint NOT NULL REFERENCES vf_projects (id),
    api_key_encrypted text NOT NULL
);
CREATE TABLE event_write_tokens (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    token_hash text NOT NULL
);
CREATE TABLE events_raw (
    id             bigserial PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id),
    event_name     text NOT NULL,
    occurred_at    timestamptz NOT NULL,
    session_id     text,
    ip             inet,
    user_agent     text,
    write_token_id bigint REFERENCES event_write_tokens (id),
    props          jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE vf_usage (
    id            bigserial PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    vf_project_id bigint NOT NULL REFERENCES vf_projects (id),
    metric        text NOT NULL,
    period_start  timestamptz NOT NULL,
    payload       jsonb NOT NULL
);
CREATE TABLE vf_pulls (
    id            bigserial PRIMARY KEY,
    vf_project_id bigint NOT NULL REFERENCES vf_projects (id),
    status        text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    rows_pulled   integer,
    error_detail  text
);
"""

TENANT_A = "00000000-0000-0000-0000-00000000000a"
TENANT_B = "00000000-0000-0000-0000-00000000000b"

SEED_DATA = f"""
INSERT INTO tenants (id, name) VALUES ('{TENANT_A}', 'Acme'), ('{TENANT_B}', 'Globex');
INSERT INTO tenant_domains (tenant_id, domain, verified) VALUES ('{TENANT_A}', 'acme.example', true);
INSERT INTO vf_projects (tenant_id, name) VALUES ('{TENANT_A}', 'Acme bot'), ('{TENANT_B}', 'Globex bot');
INSERT INTO vf_credentials (vf_project_id, api_key_encrypted) VALUES (1, 'SECRET-VF-KEY-1'), (2, 'SECRET-VF-KEY-2');
INSERT INTO event_write_tokens (tenant_id, token_hash) VALUES ('{TENANT_A}', 'SECRET-TOKEN-HASH');
INSERT INTO events_raw (tenant_id, event_name, occurred_at, session_id, ip, user_agent, write_token_id, props) VALUES
    ('{TENANT_A}', 'page_view', '2024-05-01 10:00+00', 's1', '203.0.113.7', 'Mozilla/5.0', 1, '{{"path": "/"}}'),
    ('{TENANT_A}', 'page_view', '2024-05-01 11:00+00', 's1', '203.0.113.7', 'Mozilla/5.0', 1, '{{"path": "/a"}}'),
    ('{TENANT_B}', 'signup', '2024-05-02 09:00+00', 's2', '198.51.100.1', 'curl/8', 1, '{{}}');
INSERT INTO vf_usage (tenant_id, vf_project_id, metric, period_start, payload) VALUES
    ('{TENANT_A}', 1, 'interactions', '2024-05-01 00:00+00', '{{"sessions": 12, "messages": 80, "tokens": 5000}}'),
    ('{TENANT_B}', 2, 'interactions', '2024-05-01 00:00+00', '{{"sessions": 3, "messages": 9, "tokens": 700}}');
INSERT INTO vf_pulls
    (vf_project_id, status, window_start, window_end, started_at, finished_at, rows_pulled, error_detail)
VALUES
    (1, 'ok', '2024-05-01 00:00+00', '2024-05-02 00:00+00', '2024-05-02 00:05+00', '2024-05-02 00:06+00', 2, NULL),
    (2, 'failed', '2024-05-01 00:00+00', '2024-05-02 00:00+00', '2024-05-02 00:05+00', NULL, NULL,
     'upstream said: Authorization: Bearer SECRET-VF-KEY-2');
"""

# The views of the recipe (docs/recipes/metabase.md), exactly as the admin API receives them.
SEED_VIEWS: list[dict[str, Any]] = [
    {"name": "events", "table": "events_raw", "columns": ["id", "tenant_id", "event_name", "occurred_at"]},
    {
        "name": "vf_usage_metrics",
        "sql": (
            "SELECT u.id, u.tenant_id, u.vf_project_id, u.metric, u.period_start,\n"
            "       (u.payload ->> 'sessions')::integer AS sessions,\n"
            "       (u.payload ->> 'messages')::integer AS messages,\n"
            "       (u.payload ->> 'tokens')::bigint AS tokens\n"
            "FROM vf_usage u"
        ),
    },
    {
        "name": "vf_pulls_status",
        "table": "vf_pulls",
        "columns": ["id", "vf_project_id", "status", "window_start", "window_end", "started_at", "finished_at"],
        "where": "window_end > window_start",
    },
    {
        "name": "events_daily",
        "sql": (
            "SELECT tenant_id, date_trunc('day', occurred_at) AS day, event_name, count(*) AS events\n"
            "FROM events_raw GROUP BY 1, 2, 3"
        ),
    },
    {"name": "tenants", "table": "tenants", "columns": ["id", "name", "created_at"]},
    {"name": "vf_projects", "table": "vf_projects", "columns": ["id", "tenant_id", "name", "created_at"]},
]
NEVER_EXPOSABLE = ["event_write_tokens", "vf_credentials"]


@dataclass
class SeedProject:
    atlas: RunningDaemon
    pg: EmbeddedPostgres
    id: str

    @property
    def base(self) -> str:
        return f"/admin/api/projects/{self.id}/analytics"

    async def superuser(self, database: str | None = None) -> asyncpg.Connection:
        pg = self.pg
        db = database or f"proj_{self.id}"
        return await asyncpg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password, database=db)

    async def enable(self) -> dict[str, Any]:
        status, body = await self.atlas.admin("POST", self.base, json={"enabled": True})
        assert status == 200, body
        connection: dict[str, Any] = body["connection"]
        return connection


async def connect_as(connection: dict[str, Any], **overrides: Any) -> asyncpg.Connection:
    """Log in the way a BI tool does, with the connection details the admin API gave."""
    params = {**connection, **overrides}
    return await asyncpg.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        database=params["database"],
        ssl=params["sslmode"] != "disable",
    )


async def create_seed_project(atlas: RunningDaemon, pg: EmbeddedPostgres, name: str = "Upseller") -> SeedProject:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    migrations = [{"name": "0001_schema.sql", "sql": SEED_SCHEMA}, {"name": "0002_data.sql", "sql": SEED_DATA}]
    status, result = await atlas.admin(
        "POST", f"/admin/api/projects/{body['id']}/migrations", json={"migrations": migrations}
    )
    assert status == 200, result
    return SeedProject(atlas, pg, body["id"])


@pytest.fixture
async def seed(atlas: RunningDaemon, pg: EmbeddedPostgres) -> AsyncIterator[SeedProject]:
    yield await create_seed_project(atlas, pg)
