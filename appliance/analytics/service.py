"""Analytics access of a project: the read-only role, its schema, its views, its never-exposable tables.

Lifecycle per project: ``enable`` creates schema ``analytics`` (owned by the project's owner role)
and the LOGIN role ``proj_<id>_analytics`` in one PostgreSQL transaction, then records the sealed
password; ``disable`` drops both and forgets the views; ``rotate_password`` replaces the password
and ends the role's open sessions. Operations on one project are serialized.

The role: NOINHERIT, a connection limit, ``statement_timeout``, ``idle_in_transaction_session_timeout``,
``search_path = analytics``, read-only transactions by default; CONNECT on its own database only
(no TEMPORARY), USAGE on ``analytics`` only, SELECT on the views there, present and future.
It is a member of no role, so ``pg_stat_activity`` shows it no other session's query.

The password never reaches PostgreSQL or the logs in clear: the server receives a SCRAM-SHA-256
verifier computed here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg

from appliance.analytics import views
from appliance.control.store import utcnow
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.projects.model import Project, ProjectNames
from appliance.sqlident import quote_ident

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

SCRAM_ITERATIONS = 4096
_DURATION = re.compile(r"^\d+(ms|s|min)$")


def scram_verifier(password: str, *, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores for ``password`` (ASCII passwords need no SASLprep)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


@dataclass(frozen=True)
class RoleLimits:
    """Per-role settings; durations are PostgreSQL interval literals such as ``60s``."""

    connection_limit: int = 10
    statement_timeout: str = "60s"
    idle_in_transaction_session_timeout: str = "60s"
    lock_timeout: str = "5s"

    def settings(self) -> dict[str, str]:
        values = {
            "statement_timeout": self.statement_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_session_timeout,
            "lock_timeout": self.lock_timeout,
        }
        for name, value in values.items():
            if not _DURATION.match(value):
                raise ValueError(f"{name} must look like 60s, 500ms or 5min")
        return {**values, "search_path": views.SCHEMA, "default_transaction_read_only": "on"}


class AnalyticsService:
    """Built once per node as ``core.service(AnalyticsService)``."""

    def __init__(self, core: Core, limits: RoleLimits | None = None) -> None:
        self._core = core
        self.limits = limits or RoleLimits()
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, project_id: str) -> asyncio.Lock:
        return self._locks.setdefault(project_id, asyncio.Lock())

    async def _connect(self, project: Project) -> asyncpg.Connection:
        return await self._core.pg.connect(project.names.database)

    # -- state -----------------------------------------------------------------------------

    async def _access(self, project_id: str) -> Any:
        return await self._core.store.fetchone("SELECT * FROM analytics_access WHERE project_id = ?", (project_id,))

    async def _require_enabled(self, project: Project) -> None:
        if await self._access(project.id) is None:
            raise Conflict("analytics access is not enabled for this project", code="analytics_disabled")

    async def _sslmode(self) -> str:
        conn = await self._core.pg.connect(timeout=5)
        try:
            return "require" if await conn.fetchval("SHOW ssl") == "on" else "disable"
        finally:
            await conn.close()

    async def connection(self, project: Project, password: str | None = None) -> dict[str, Any]:
        pg = self._core.pg
        info: dict[str, Any] = {
            "host": pg.project_host or pg.host,
            "port": pg.port,
            "database": project.names.database,
            "user": project.names.analytics,
        }
        if password is not None:
            info["password"] = password
        info["sslmode"] = await self._sslmode()
        return info

    async def status(self, project: Project) -> dict[str, Any]:
        enabled = await self._access(project.id) is not None
        return {
            "enabled": enabled,
            "connection": await self.connection(project) if enabled else None,
            "views": await self.list_views(project),
            "never_exposable": await self.never_exposable(project),
        }

    # -- enable / disable / rotate ---------------------------------------------------------

    async def enable(self, project: Project) -> dict[str, Any]:
        """Create the schema and role; returns the connection with the password (shown this once)."""
        names = project.names
        async with self._lock(project.id):
            if await self._access(project.id) is not None:
                raise Conflict(
                    "analytics access is already enabled; rotate the password to get a new one",
                    code="analytics_already_enabled",
                )
            password = secrets.token_urlsafe(32)
            conn = await self._connect(project)
            try:
                await self._drop_role(conn, names)  # left over by an interrupted attempt
                async with conn.transaction():
                    await self._create(conn, names, scram_verifier(password))
            finally:
                await conn.close()
            now = utcnow()
            try:
                await self._core.store.execute(
                    "INSERT INTO analytics_access (project_id, username, password_enc, enabled_at, password_changed_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (project.id, names.analytics, self._seal(project.id, password), now, now),
                )
            except BaseException:
                await self._drop_all(project)
                raise
        log.info("project %s: analytics access enabled", project.id)
        return await self.connection(project, password)

    def _seal(self, project_id: str, password: str) -> str:
        return self._core.box.encrypt_text(password, context=f"analytics:{project_id}")

    async def _create(self, conn: asyncpg.Connection, names: ProjectNames, verifier: str) -> None:
        q = quote_ident
        role, owner, schema = q(names.analytics), q(names.owner), q(views.SCHEMA)
        limit = int(self.limits.connection_limit)
        await conn.execute(
            f"CREATE ROLE {role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
            f" CONNECTION LIMIT {limit}"
        )
        statement = await conn.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", names.analytics, verifier
        )
        await conn.execute(statement)
        for name, value in self.limits.settings().items():
            await conn.execute(f"ALTER ROLE {role} SET {name} = '{value}'")
        await conn.execute(f"REVOKE ALL ON DATABASE {q(names.database)} FROM {role}")
        await conn.execute(f"GRANT CONNECT ON DATABASE {q(names.database)} TO {role}")
        found = await conn.fetchval(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", views.SCHEMA
        )
        if found is None:
            await conn.execute(f"CREATE SCHEMA {schema} AUTHORIZATION {owner}")
        elif found != names.owner:
            raise Conflict(
                f"schema {views.SCHEMA} exists and is not owned by the project's owner role", code="schema_conflict"
            )
        await conn.execute(f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC")
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role}")
        await conn.execute(
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"
        )
        # Nothing else, said out loud: no rights on the project's other schemas.
        for other in ("public", "atlas", "auth"):
            await conn.execute(f"REVOKE ALL ON SCHEMA {q(other)} FROM {role}")

    async def _end_sessions(self, conn: asyncpg.Connection, role: str) -> None:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
            role,
        )

    async def _drop_role(self, conn: asyncpg.Connection, names: ProjectNames) -> None:
        """Drop the analytics role if it exists, ending its sessions first. Idempotent."""
        role = names.analytics
        if not await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role):
            return
        await conn.execute(f"ALTER ROLE {quote_ident(role)} NOLOGIN")  # no new sessions from here on
        await self._end_sessions(conn, role)
        async with conn.transaction():
            await conn.execute(f"DROP OWNED BY {quote_ident(role)}")
            await conn.execute(f"DROP ROLE {quote_ident(role)}")

    async def _drop_all(self, project: Project) -> None:
        conn = await self._connect(project)
        try:
            role_exists = await conn.fetchval(
                "SELECT count(*) FROM pg_roles WHERE rolname = $1", project.names.analytics
            )
            if not role_exists and await self._access(project.id) is None:
                return  # never enabled: an `analytics` schema here is the project's own
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(views.SCHEMA)} CASCADE")
            await self._drop_role(conn, project.names)
        finally:
            await conn.close()

    async def disable(self, project: Project) -> None:
        """Drop the role (ending its sessions) and the schema with its views. Idempotent."""
        async with self._lock(project.id):
            await self._drop_all(project)
            async with self._core.store.transaction() as tx:
                await tx.execute("DELETE FROM analytics_views WHERE project_id = ?", (project.id,))
                await tx.execute("DELETE FROM analytics_access WHERE project_id = ?", (project.id,))
        log.info("project %s: analytics access disabled", project.id)

    async def rotate_password(self, project: Project) -> str:
        """A new password; the old one stops at once and the role's open sessions end."""
        async with self._lock(project.id):
            await self._require_enabled(project)
            password = secrets.token_urlsafe(32)
            role = project.names.analytics
            conn = await self._connect(project)
            try:
                statement = await conn.fetchval(
                    "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, scram_verifier(password)
                )
                await conn.execute(statement)
                await self._end_sessions(conn, role)
            finally:
                await conn.close()
            await self._core.store.execute(
                "UPDATE analytics_access SET password_enc = ?, password_changed_at = ? WHERE project_id = ?",
                (self._seal(project.id, password), utcnow(), project.id),
            )
        log.info("project %s: analytics password rotated", project.id)
        return password

    # -- views -----------------------------------------------------------------------------

    async def list_views(self, project: Project) -> list[dict[str, Any]]:
        rows = await self._core.store.fetchall(
            "SELECT name, definition_json, created_at FROM analytics_views WHERE project_id = ? ORDER BY name",
            (project.id,),
        )
        return [{**json.loads(r["definition_json"]), "name": r["name"], "created_at": r["created_at"]} for r in rows]

    async def get_view(self, project: Project, raw_name: str) -> dict[str, Any]:
        name = views.check_view_name(raw_name)
        for view in await self.list_views(project):
            if view["name"] == name:
                return view
        raise NotFound(f"no analytics view {name!r}", code="view_not_found")

    async def create_view(self, project: Project, body: dict[str, Any]) -> dict[str, Any]:
        definition = views.parse_definition(body)
        async with self._lock(project.id):
            await self._require_enabled(project)
            names = project.names
            never = set(await self._never_pairs(project))
            conn = await self._connect(project)
            try:
                if await views.view_exists(conn, definition.name):
                    raise Conflict(f"a view named {definition.name!r} already exists", code="view_exists")
                await views.create_view(conn, names.owner, names.analytics, definition, never)
                now = utcnow()
                try:
                    await self._core.store.execute(
                        "INSERT INTO analytics_views (project_id, name, definition_json, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        (project.id, definition.name, json.dumps(definition.to_dict()), now),
                    )
                except BaseException:
                    await views.drop_view(conn, definition.name)
                    raise
            finally:
                await conn.close()
        return {**definition.to_dict(), "created_at": now}

    async def delete_view(self, project: Project, raw_name: str) -> None:
        name = views.check_view_name(raw_name)
        async with self._lock(project.id):
            await self.get_view(project, name)
            conn = await self._connect(project)
            try:
                await views.drop_view(conn, name)
            except asyncpg.DependentObjectsStillExistError:
                raise Conflict(f"other objects depend on view {name!r}", code="view_in_use") from None
            finally:
                await conn.close()
            await self._core.store.execute(
                "DELETE FROM analytics_views WHERE project_id = ? AND name = ?", (project.id, name)
            )

    # -- never-exposable tables ------------------------------------------------------------

    async def _never_pairs(self, project: Project) -> list[tuple[str, str]]:
        rows = await self._core.store.fetchall(
            "SELECT schema_name, table_name FROM analytics_never_exposable WHERE project_id = ?"
            " ORDER BY schema_name, table_name",
            (project.id,),
        )
        return [(r["schema_name"], r["table_name"]) for r in rows]

    async def never_exposable(self, project: Project) -> list[str]:
        return [name for _, name in await self._never_pairs(project)]

    async def set_never_exposable(self, project: Project, tables: object) -> list[str]:
        """Replace the list. Refused (409) while an analytics view reads one of the tables."""
        if not isinstance(tables, list) or not all(isinstance(t, str) and t for t in tables):
            raise BadRequest("tables must be a list of table names", code="invalid_tables", details={"field": "tables"})
        wanted = sorted({t.removeprefix(f"{views.BASE_SCHEMA}.") for t in tables})
        async with self._lock(project.id):
            conn = await self._connect(project)
            try:
                for table in wanted:
                    if not await views.table_exists(conn, table):
                        raise NotFound(
                            f"no table {table!r} in the public schema", code="unknown_table", details={"table": table}
                        )
                users: dict[str, list[str]] = {}
                for view in await self.list_views(project):
                    for schema, table in await views.tables_read(conn, view["name"]):
                        if schema == views.BASE_SCHEMA and table in wanted:
                            users.setdefault(table, []).append(view["name"])
            finally:
                await conn.close()
            if users:
                table = sorted(users)[0]
                raise Conflict(
                    f"analytics views read {table}: delete them first",
                    code="table_in_use",
                    details={"table": table, "views": sorted(users[table])},
                )
            now = utcnow()
            async with self._core.store.transaction() as tx:
                await tx.execute("DELETE FROM analytics_never_exposable WHERE project_id = ?", (project.id,))
                for table in wanted:
                    await tx.execute(
                        "INSERT INTO analytics_never_exposable (project_id, schema_name, table_name, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        (project.id, views.BASE_SCHEMA, table, now),
                    )
        return wanted
