"""The dashboard role: the admin API under /admin/api and the web UI at /."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Config
from appliance.dashboard import static
from appliance.dashboard.adminauth import RESOLVERS, admin_auth_middleware, dev_token_resolver
from appliance.dashboard.routes import ROUTE_TABLES


def setup(app: web.Application, config: Config) -> None:
    app[RESOLVERS] = [dev_token_resolver]
    app.middlewares.append(admin_auth_middleware)
    for table in ROUTE_TABLES:
        app.add_routes(table)
    static.add_static_routes(app, config)
