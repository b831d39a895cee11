"""The PostgreSQL side of a project: roles, database, platform migrations. Run as the superuser.

Role and database names come from ``ProjectNames`` (platform-generated), quoted by the one
identifier helper; passwords are parameters of ``format('... PASSWORD %L', $1)``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from appliance.errors import StartupError
from appliance.projects.model import ProjectNames
from appliance.resources import sql_dir
from appliance.sqlident import quote_ident

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class ProjectMigration:
    version: int
    name: str
    sql: str


def load_project_migrations(directory: Path | None = None) -> list[ProjectMigration]:
    directory = directory or sql_dir("project")
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise StartupError(f"project migration {path.name} is not named NNNN_name.sql")
        found.append(ProjectMigration(int(match.group(1)), path.name, path.read_text()))
    return found


def render(sql: str, names: ProjectNames) -> str:
    for placeholder, role in (
        ("{{owner}}", names.owner),
        ("{{app}}", names.app),
        ("{{anon}}", names.anon),
        ("{{authenticated}}", names.authenticated),
        ("{{database}}", names.database),
    ):
        sql = sql.replace(placeholder, quote_ident(role))
    return sql


async def _set_password(conn: asyncpg.Connection, role: str, password: str) -> None:
    statement = await conn.fetchval("SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password)
    await conn.execute(statement)


async def create_roles_and_database(conn: asyncpg.Connection, names: ProjectNames, passwords: dict[str, str]) -> None:
    q = quote_ident
    await conn.execute(f"CREATE ROLE {q(names.owner)} LOGIN CONNECTION LIMIT 20")
    # Service level, like Supabase's service_role: the secret key is not subject to RLS. Once it
    # switches into anon/authenticated (SET ROLE), their policies apply.
    await conn.execute(f"CREATE ROLE {q(names.app)} LOGIN NOINHERIT BYPASSRLS CONNECTION LIMIT 30")
    await conn.execute(f"CREATE ROLE {q(names.anon)} NOLOGIN")
    await conn.execute(f"CREATE ROLE {q(names.authenticated)} NOLOGIN")
    # The app role switches into anon/authenticated per request (SET LOCAL ROLE), so RLS applies.
    await conn.execute(f"GRANT {q(names.anon)}, {q(names.authenticated)} TO {q(names.app)}")
    for role, password in passwords.items():
        await _set_password(conn, names.role(role), password)
    await conn.execute(f"CREATE DATABASE {q(names.database)} OWNER {q(names.owner)} ENCODING 'UTF8' TEMPLATE template0")
    await conn.execute(f"REVOKE ALL ON DATABASE {q(names.database)} FROM PUBLIC")
    await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {q(names.database)} TO {q(names.owner)}, {q(names.app)}")


async def drop_database_and_roles(conn: asyncpg.Connection, names: ProjectNames) -> None:
    q = quote_ident
    await conn.execute(f"DROP DATABASE IF EXISTS {q(names.database)} WITH (FORCE)")
    existing = {
        r["rolname"]
        for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])", list(names.all_roles))
    }
    # Tenant-scoped analytics roles (proj_<id>_analytics_<name>) hold rights in the dropped database only.
    tenant_roles = [
        r["rolname"]
        for r in await conn.fetch("SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", f"{names.analytics}_")
    ]
    for role in [*tenant_roles, *names.all_roles]:
        if role in existing or role in tenant_roles:
            # Privileges a role holds elsewhere (e.g. on the shared catalog) would block DROP ROLE.
            await conn.execute(f"DROP ROLE {q(role)}")


async def harden_server(conn: asyncpg.Connection) -> None:
    """Project roles may connect only to their own database: PUBLIC loses CONNECT on the shared ones."""
    for database in ("postgres", "template1"):
        await conn.execute(f"REVOKE CONNECT ON DATABASE {quote_ident(database)} FROM PUBLIC")


async def apply_platform_migrations(conn: asyncpg.Connection, names: ProjectNames) -> list[str]:
    """Apply sql/project/*.sql not yet recorded in atlas.platform_migrations, each in a transaction."""
    exists = await conn.fetchval("SELECT to_regclass('atlas.platform_migrations') IS NOT NULL")
    applied: set[int] = set()
    if exists:
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM atlas.platform_migrations")}
    done = []
    for migration in load_project_migrations():
        if migration.version in applied:
            continue
        async with conn.transaction():
            await conn.execute(render(migration.sql, names))
            await conn.execute(
                "INSERT INTO atlas.platform_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        done.append(migration.name)
    if done:
        log.info("project %s: applied platform migrations %s", names.project_id, ", ".join(done))
    return done
