"""Every admin route table. Each module named here exposes ``routes`` (a RouteTableDef)."""

from __future__ import annotations

from aiohttp import web

from appliance.plugins import present

ADMIN_ROUTE_MODULES = (
    "appliance.dashboard.overview_routes",
    "appliance.dashboard.projects_routes",
    "appliance.dashboard.session_routes",
    "appliance.dashboard.sql_routes",
    "appliance.dashboard.tables_routes",
    "appliance.dashboard.settings_routes",
    "appliance.storage.admin_routes",
    "appliance.auth.admin_routes",
    "appliance.scheduler.routes",
    "appliance.backups.routes",
    "appliance.analytics.routes",
    "appliance.mesh.admin_routes",
    "appliance.agent.admin_routes",
    "appliance.cloud.admin_routes",
)

# Admin identity resolvers, most trusted first; each module exposes ``async def resolve(request)``.
RESOLVER_MODULES = (
    "appliance.dashboard.access",
    "appliance.dashboard.sessions",
)


def route_tables() -> list[web.RouteTableDef]:
    return [module.routes for module in present(ADMIN_ROUTE_MODULES)]
