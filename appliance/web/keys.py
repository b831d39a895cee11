"""Typed application state keys shared by the roles."""

from __future__ import annotations

from aiohttp import web

from appliance.core import Core

CORE = web.AppKey("core", Core)
