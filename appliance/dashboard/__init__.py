"""The dashboard role: the admin API under /admin/api and the web UI at /."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Config
from appliance.dashboard import sessions, static
from appliance.dashboard.adminauth import RESOLVERS, admin_auth_middleware, dev_token_resolver
from appliance.dashboard.routes import RESOLVER_MODULES, route_tables
from appliance.plugins import present


def setup(app: web.Application, config: Config) -> None:
    # Imported here: admin_forward imports this package's adminauth (a cycle at module level).
    from appliance.mesh.admin_forward import admin_forwarding

    app[RESOLVERS] = [module.resolve for module in present(RESOLVER_MODULES)] + [dev_token_resolver]
    app.middlewares.append(admin_auth_middleware)
    # After the admin check: a worker-hosted project's admin requests go to that worker.
    app.middlewares.append(admin_forwarding)
    for table in route_tables():
        app.add_routes(table)
    static.add_static_routes(app, config)
    # Prints the one-time setup code at start while no local admin exists.
    app.cleanup_ctx.append(sessions.lifecycle)
