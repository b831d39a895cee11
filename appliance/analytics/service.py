"""Analytics access of a project: the read-only role, its schema, its views, its never-exposable tables.

Lifecycle per project: ``enable`` creates schema ``analytics`` (owned by the project's owner role)
and the LOGIN role ``proj_<id>_analytics`` in one PostgreSQL transaction, then records the sealed
password; ``disable`` drops both and forgets the views; ``rotate_password`` replaces the password
and ends the role's open sessions. Operations on one project are serialized.

The role: NOINHERIT, a connection limit, ``statement_timeout``, ``idle_in_transaction_session_timeout``,
``search_path = analytics``, read-only transactions by default; CONNECT on its own database only
(no TEMPORARY), USAGE on ``analytics`` only, SELECT on the views there, present and future.
It is a member of no role, so ``pg_stat_activity`` shows it no other session's query.
Tenant-scoped siblings of the role are :mod:`appliance.analytics.tenants`; both are made by
:mod:`appliance.analytics.roles`, which keeps passwords out of PostgreSQL and the logs in clear.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from appliance.analytics import roles, tenants, views
from appliance.analytics.roles import RoleLimits, scram_verifier
from appliance.control.store import utcnow
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.projects.model import Project
from appliance.sqlident import quote_ident

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

__all__ = ["AnalyticsService", "RoleLimits", "scram_verifier"]


class AnalyticsService:
    """Built once per node as ``core.service(AnalyticsService)``."""

    def __init__(self, core: Core, limits: RoleLimits | None = None) -> None:
        self._core = core
        self.limits = limits or RoleLimits()
        self._locks: dict[str, asyncio.Lock] = {}
        self.tenants = tenants.TenantRoles(self)

    def lock(self, project_id: str) -> asyncio.Lock:
        """Held by every change to one project's analytics objects, tenant roles included."""
        return self._locks.setdefault(project_id, asyncio.Lock())

    async def connect(self, project: Project) -> asyncpg.Connection:
        return await self._core.pg.connect(project.names.database)

    # -- state -----------------------------------------------------------------------------

    async def _access(self, project_id: str) -> Any:
        return await self._core.store.fetchone("SELECT * FROM analytics_access WHERE project_id = ?", (project_id,))

    async def require_enabled(self, project: Project) -> None:
        if await self._access(project.id) is None:
            raise Conflict("analytics access is not enabled for this project", code="analytics_disabled")

    async def _sslmode(self) -> str:
        conn = await self._core.pg.connect(timeout=5)
        try:
            return "require" if await conn.fetchval("SHOW ssl") == "on" else "disable"
        finally:
            await conn.close()

    async def connection(
        self, project: Project, password: str | None = None, *, user: str | None = None, sslmode: str | None = None
    ) -> dict[str, Any]:
        """What a BI tool needs to log in as ``user`` (the analytics role unless told)."""
        pg = self._core.pg
        info: dict[str, Any] = {
            "host": pg.project_host or pg.host,
            "port": pg.port,
            "database": project.names.database,
            "user": user or project.names.analytics,
        }
        if password is not None:
            info["password"] = password
        info["sslmode"] = sslmode or await self._sslmode()
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
        async with self.lock(project.id):
            if await self._access(project.id) is not None:
                raise Conflict(
                    "analytics access is already enabled; rotate the password to get a new one",
                    code="analytics_already_enabled",
                )
            password = roles.new_password()
            conn = await self.connect(project)
            try:
                await roles.drop_role(conn, names.analytics)  # left over by an interrupted attempt
                async with conn.transaction():
                    await roles.create_reader_role(
                        conn,
                        role=names.analytics,
                        password=password,
                        database=names.database,
                        owner=names.owner,
                        schema=views.SCHEMA,
                        limits=self.limits,
                    )
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

    async def _drop_all(self, project: Project) -> None:
        conn = await self.connect(project)
        try:
            role_exists = await conn.fetchval(
                "SELECT count(*) FROM pg_roles WHERE rolname = $1", project.names.analytics
            )
            if not role_exists and await self._access(project.id) is None:
                return  # never enabled: an `analytics` schema here is the project's own
            await tenants.drop_all(conn, project.names)
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(views.SCHEMA)} CASCADE")
            await roles.drop_role(conn, project.names.analytics)
        finally:
            await conn.close()

    async def disable(self, project: Project) -> None:
        """Drop the role (ending its sessions) and the schema with its views. Idempotent."""
        async with self.lock(project.id):
            await self._drop_all(project)
            async with self._core.store.transaction() as tx:
                await tx.execute("DELETE FROM analytics_views WHERE project_id = ?", (project.id,))
                await tx.execute("DELETE FROM analytics_access WHERE project_id = ?", (project.id,))
        log.info("project %s: analytics access disabled", project.id)

    async def rotate_password(self, project: Project) -> str:
        """A new password; the old one stops at once and the role's open sessions end."""
        async with self.lock(project.id):
            await self.require_enabled(project)
            password = roles.new_password()
            conn = await self.connect(project)
            try:
                await roles.rotate(conn, project.names.analytics, password)
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
        async with self.lock(project.id):
            await self.require_enabled(project)
            names = project.names
            never = set(await self._never_pairs(project))
            conn = await self.connect(project)
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
                await tenants.add_view_everywhere(conn, names, definition.name)
            finally:
                await conn.close()
        return {**definition.to_dict(), "created_at": now}

    async def delete_view(self, project: Project, raw_name: str) -> None:
        name = views.check_view_name(raw_name)
        async with self.lock(project.id):
            await self.get_view(project, name)
            conn = await self.connect(project)
            try:
                async with conn.transaction():
                    await tenants.drop_view_everywhere(conn, project.names, name)
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
        async with self.lock(project.id):
            conn = await self.connect(project)
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
