"""The scheduler role."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Config


def setup(app: web.Application, config: Config) -> None:
    """Add this role's routes and its one cleanup_ctx to ``app``."""
