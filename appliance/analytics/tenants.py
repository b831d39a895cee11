"""Tenant-scoped analytics roles: one BI login per tenant that sees only that tenant's rows.

A tenant role ``proj_<id>_analytics_<name>`` is made like the analytics role (same limits, see
:mod:`appliance.analytics.roles`) but reads schema ``analytics_<name>`` instead of ``analytics``.
That schema holds, for every analytics view that has the tenant column, a view of the same name
``SELECT * FROM analytics.<view> WHERE <column> = '<value>'``, created ``security_barrier`` by
the project's owner role; views without the column are skipped (and listed). Views published
later are added to every tenant schema whose column they have; deleting a view removes its copies.

The truth lives in PostgreSQL: the schema's comment records the scope (name, column, value), so
the role, its schema and its description cannot drift apart, and dropping the project's database
forgets everything but the cluster-wide role (which ``drop_database_and_roles`` drops).
Creation is one transaction: on any refusal nothing exists.
"""

from __future__ import annotations

import json
import logging
import math
import re
from typing import TYPE_CHECKING, Any

import asyncpg

from appliance.analytics import roles, views
from appliance.control.store import utcnow
from appliance.errors import BadRequest, Conflict, NotFound
from appliance.projects.model import Project, ProjectNames
from appliance.sqlident import quote_ident, quote_qualified

if TYPE_CHECKING:
    from appliance.analytics.service import AnalyticsService

log = logging.getLogger(__name__)

# proj_<12>_analytics_ is 28 characters; a role name has at most 63.
TENANT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,34}$")
MAX_VALUE = 1000
_MARK = "atlashub-analytics-tenant-role"
# The literal does not fit the column: invalid text for the type, no `=` for it, mismatched types.
_VALUE_ERRORS = ("22", "42883", "42804", "42725")


def role_name(names: ProjectNames, name: str) -> str:
    return f"{names.analytics}_{name}"


def schema_name(name: str) -> str:
    return f"{views.SCHEMA}_{name}"


def check_name(raw: object) -> str:
    if not isinstance(raw, str) or not TENANT_NAME.match(raw):
        raise BadRequest(
            "a tenant role name is 1-35 characters: lower-case letters, digits and _, starting with a letter",
            code="invalid_tenant_role_name",
            details={"field": "name"},
        )
    return raw


def _check_column(raw: object) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 63 or "\x00" in raw:
        raise BadRequest(
            "tenant_column must be the name of a column of the analytics views",
            code="invalid_tenant_column",
            details={"field": "tenant_column"},
        )
    return raw


def _value_text(raw: object) -> str:
    """The tenant value as the text of a SQL literal: a string or a number, nothing else."""
    if isinstance(raw, str) and raw and len(raw) <= MAX_VALUE and "\x00" not in raw:
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, float) and math.isfinite(raw):
        return repr(raw)
    raise BadRequest(
        f"tenant_value must be a non-empty string (at most {MAX_VALUE} characters) or a number",
        code="invalid_tenant_value",
        details={"field": "tenant_value"},
    )


def parse_request(body: dict[str, Any]) -> tuple[str, str, str | int | float]:
    extra = sorted(set(body) - {"name", "tenant_column", "tenant_value"})
    if extra:
        raise BadRequest(f"unknown field {extra[0]!r}", code="invalid_parameter", details={"field": extra[0]})
    name = check_name(body.get("name"))
    column = _check_column(body.get("tenant_column"))
    value = body.get("tenant_value")
    _value_text(value)
    assert isinstance(value, str | int | float)
    return name, column, value


# -- the catalog ---------------------------------------------------------------------------


async def _analytics_views(conn: asyncpg.Connection, column: str) -> list[tuple[str, bool]]:
    """(view, has the column) for every view of the analytics schema, by name."""
    rows = await conn.fetch(
        "SELECT c.relname::text AS name, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
        "   AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped) AS has"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind IN ('v', 'm') ORDER BY 1",
        views.SCHEMA,
        column,
    )
    return [(r["name"], r["has"]) for r in rows]


async def _views_in(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND c.relkind = 'v' ORDER BY 1",
        schema,
    )
    return [r[0] for r in rows]


async def _scopes(conn: asyncpg.Connection, names: ProjectNames) -> list[dict[str, Any]]:
    """The tenant roles of the project, as their schemas' comments record them."""
    rows = await conn.fetch(
        "SELECT nspname::text, obj_description(oid, 'pg_namespace') AS comment FROM pg_namespace"
        " WHERE starts_with(nspname, $1) AND pg_get_userbyid(nspowner) = $2 ORDER BY 1",
        f"{views.SCHEMA}_",
        names.owner,
    )
    scopes = []
    for row in rows:
        try:
            scope = json.loads(row["comment"] or "")
        except ValueError:
            continue
        if isinstance(scope, dict) and scope.get("mark") == _MARK and schema_name(scope.get("name", "")) == row[0]:
            scopes.append(scope)
    return scopes


async def _describe(conn: asyncpg.Connection, names: ProjectNames, scope: dict[str, Any]) -> dict[str, Any]:
    present = await _views_in(conn, schema_name(scope["name"]))
    published = [name for name, _ in await _analytics_views(conn, scope["tenant_column"])]
    return {
        "name": scope["name"],
        "user": role_name(names, scope["name"]),
        "schema": schema_name(scope["name"]),
        "tenant_column": scope["tenant_column"],
        "tenant_value": scope["tenant_value"],
        "views": present,
        "skipped": [v for v in published if v not in present],
        "created_at": scope["created_at"],
    }


async def _create_copy(conn: asyncpg.Connection, owner: str, scope: dict[str, Any], view: str) -> None:
    """The tenant's filtered view of ``analytics.<view>``, created by ``owner``. Inside a transaction."""
    schema = schema_name(scope["name"])
    literal = await conn.fetchval("SELECT quote_literal($1::text)", _value_text(scope["tenant_value"]))
    await conn.execute(f"SET LOCAL ROLE {quote_ident(owner)}")
    await conn.execute(
        f"CREATE VIEW {quote_qualified(schema, view)} WITH (security_barrier) AS"
        f" SELECT * FROM {quote_qualified(views.SCHEMA, view)} WHERE {quote_ident(scope['tenant_column'])} = {literal}"
    )
    await conn.execute("RESET ROLE")


async def create(
    conn: asyncpg.Connection, names: ProjectNames, scope: dict[str, Any], password: str, limits: roles.RoleLimits
) -> dict[str, Any]:
    """Role, schema and filtered views in one transaction; BadRequest/NotFound/Conflict leave nothing."""
    role, schema, column = role_name(names, scope["name"]), schema_name(scope["name"]), scope["tenant_column"]
    if await roles.role_exists(conn, role) or await conn.fetchval(
        "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema
    ):
        raise Conflict(f"a tenant role named {scope['name']!r} already exists", code="tenant_role_exists")
    published = await _analytics_views(conn, column)
    if not any(has for _, has in published):
        raise NotFound(
            f"no analytics view has a column {column!r}", code="unknown_column", details={"field": "tenant_column"}
        )
    async with conn.transaction():
        await roles.create_reader_role(
            conn, role=role, password=password, database=names.database, owner=names.owner, schema=schema, limits=limits
        )
        statement = await conn.fetchval(
            "SELECT format('COMMENT ON SCHEMA %I IS %L', $1::text, $2::text)", schema, json.dumps(scope)
        )
        await conn.execute(statement)
        for view, has in published:
            if not has:
                continue
            try:
                async with conn.transaction():
                    await _create_copy(conn, names.owner, scope, view)
            except asyncpg.PostgresError as exc:
                if not (exc.sqlstate or "").startswith(_VALUE_ERRORS):
                    raise
                raise BadRequest(
                    f"tenant_value does not fit column {column!r} of view {view!r}",
                    code="invalid_tenant_value",
                    details={"field": "tenant_value", "view": view},
                ) from None
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {quote_ident(schema)} TO {quote_ident(role)}")
    return await _describe(conn, names, scope)


async def drop(conn: asyncpg.Connection, names: ProjectNames, name: str) -> None:
    """Drop the tenant's schema (with its views) and its role, ending its sessions. Idempotent."""
    await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema_name(name))} CASCADE")
    await roles.drop_role(conn, role_name(names, name))


async def drop_all(conn: asyncpg.Connection, names: ProjectNames) -> None:
    """Every tenant role of the project, and roles left by interrupted attempts. Idempotent."""
    for scope in await _scopes(conn, names):
        await drop(conn, names, scope["name"])
    leftovers = await conn.fetch(
        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1)", f"{names.analytics}_"
    )
    for row in leftovers:
        await roles.drop_role(conn, row[0])


async def add_view_everywhere(conn: asyncpg.Connection, names: ProjectNames, view: str) -> None:
    """Give every tenant whose column the new analytics view has its filtered copy; others skip it."""
    for scope in await _scopes(conn, names):
        if not dict(await _analytics_views(conn, scope["tenant_column"])).get(view):
            continue
        try:
            async with conn.transaction():
                await _create_copy(conn, names.owner, scope, view)
        except asyncpg.PostgresError as exc:
            log.warning("analytics view %s not added for tenant role %s: %s", view, scope["name"], exc.sqlstate)


async def drop_view_everywhere(conn: asyncpg.Connection, names: ProjectNames, view: str) -> None:
    for scope in await _scopes(conn, names):
        await conn.execute(f"DROP VIEW IF EXISTS {quote_qualified(schema_name(scope['name']), view)}")


class TenantRoles:
    """The lifecycle of tenant roles, under the analytics service's per-project lock."""

    def __init__(self, service: AnalyticsService) -> None:
        self._service = service

    async def _find(self, conn: asyncpg.Connection, names: ProjectNames, raw_name: str) -> dict[str, Any]:
        name = check_name(raw_name)
        for scope in await _scopes(conn, names):
            if scope["name"] == name:
                return scope
        raise NotFound(f"no tenant role {name!r}", code="tenant_role_not_found")

    async def create(self, project: Project, body: dict[str, Any]) -> dict[str, Any]:
        """The tenant role with its connection; the password is in this answer only."""
        name, column, value = parse_request(body)
        service = self._service
        async with service.lock(project.id):
            await service.require_enabled(project)
            scope = {
                "mark": _MARK,
                "name": name,
                "tenant_column": column,
                "tenant_value": value,
                "created_at": utcnow(),
            }
            password = roles.new_password()
            conn = await service.connect(project)
            try:
                described = await create(conn, project.names, scope, password, service.limits)
            finally:
                await conn.close()
        log.info("project %s: analytics tenant role %s created", project.id, name)
        connection = await service.connection(project, password, user=described["user"])
        return {**described, "connection": connection}

    async def list(self, project: Project) -> list[dict[str, Any]]:
        conn = await self._service.connect(project)
        try:
            return [await _describe(conn, project.names, scope) for scope in await _scopes(conn, project.names)]
        finally:
            await conn.close()

    async def get(self, project: Project, raw_name: str) -> dict[str, Any]:
        conn = await self._service.connect(project)
        try:
            return await _describe(conn, project.names, await self._find(conn, project.names, raw_name))
        finally:
            await conn.close()

    async def delete(self, project: Project, raw_name: str) -> None:
        async with self._service.lock(project.id):
            conn = await self._service.connect(project)
            try:
                scope = await self._find(conn, project.names, raw_name)
                await drop(conn, project.names, scope["name"])
            finally:
                await conn.close()
        log.info("project %s: analytics tenant role %s dropped", project.id, raw_name)

    async def rotate_password(self, project: Project, raw_name: str) -> str:
        """A new password; the old one stops at once and the role's open sessions end."""
        async with self._service.lock(project.id):
            conn = await self._service.connect(project)
            try:
                scope = await self._find(conn, project.names, raw_name)
                password = roles.new_password()
                await roles.rotate(conn, role_name(project.names, scope["name"]), password)
            finally:
                await conn.close()
        log.info("project %s: analytics tenant role %s password rotated", project.id, raw_name)
        return password
