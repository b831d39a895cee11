"""Every admin route table, in one list the role adds to its application."""

from __future__ import annotations

from aiohttp import web

from appliance.dashboard import overview_routes

ROUTE_TABLES: list[web.RouteTableDef] = [overview_routes.routes]
