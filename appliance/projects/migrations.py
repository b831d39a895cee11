"""A project's own migrations (seed 003): applied in name order as the owner role, each in a
transaction, recorded in ``atlas.atlas_migrations``. Applied files are skipped; a changed
applied file is a conflict; a failing file applies nothing of itself and stops the run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.errors import BadRequest, Conflict, Unprocessable

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}\.sql$")
MAX_MIGRATIONS = 500
MAX_SQL_BYTES = 5 * 1024 * 1024
MIGRATION_TIMEOUT = "60s"


@dataclass(frozen=True)
class MigrationFile:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def parse_migrations(body: dict[str, Any]) -> list[MigrationFile]:
    items = body.get("migrations")
    if not isinstance(items, list) or not items:
        raise BadRequest("migrations must be a non-empty list", code="invalid_body", details={"field": "migrations"})
    if len(items) > MAX_MIGRATIONS:
        raise BadRequest(f"at most {MAX_MIGRATIONS} migrations per request", code="invalid_body")
    files: dict[str, MigrationFile] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("sql"), str):
            raise BadRequest(
                f"migrations[{index}] must be an object with string name and sql",
                code="invalid_body",
                details={"index": index},
            )
        name, sql = item["name"], item["sql"]
        if not _NAME.match(name):
            raise BadRequest(
                f"migration name {name!r} must look like 0001_init.sql",
                code="invalid_migration_name",
                details={"index": index},
            )
        if len(sql.encode()) > MAX_SQL_BYTES or not sql.strip():
            raise BadRequest(f"migration {name} is empty or too large", code="invalid_body", details={"name": name})
        if name in files:
            raise BadRequest(f"migration {name} appears twice", code="invalid_body", details={"name": name})
        files[name] = MigrationFile(name, sql)
    return [files[name] for name in sorted(files)]


async def applied(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT name, checksum, applied_at FROM atlas.atlas_migrations ORDER BY name")
    return [dict(r) for r in rows]


async def apply(conn: asyncpg.Connection, files: list[MigrationFile]) -> dict[str, list[str]]:
    """Run on an owner connection. Checks every checksum before applying anything."""
    done = {r["name"]: r["checksum"] for r in await applied(conn)}
    for file in files:
        if file.name in done and done[file.name] != file.checksum:
            raise Conflict(
                f"migration {file.name} was already applied with different content; add a new migration instead",
                code="migration_changed",
                details={"name": file.name},
            )
    result: dict[str, list[str]] = {"applied": [], "skipped": []}
    for file in files:
        if file.name in done:
            result["skipped"].append(file.name)
            continue
        try:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = '{MIGRATION_TIMEOUT}'")
                await conn.execute(file.sql)
                await conn.execute(
                    "INSERT INTO atlas.atlas_migrations (name, checksum) VALUES ($1, $2)", file.name, file.checksum
                )
        except asyncpg.PostgresError as exc:
            raise Unprocessable(
                f"migration {file.name} failed: {exc.args[0] if exc.args else exc}; nothing of it was applied",
                code="migration_failed",
                details={
                    "name": file.name,
                    "sqlstate": exc.sqlstate,
                    "position": getattr(exc, "position", None),
                    "applied": result["applied"],
                },
            ) from None
        result["applied"].append(file.name)
    return result
