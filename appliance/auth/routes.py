"""Public end-user auth API: /v1/auth/*, with the project's x-api-key (publishable is enough)."""

from __future__ import annotations

from aiohttp import web

from appliance.auth.service import AuthService
from appliance.errors import Unauthorized
from appliance.gateway.context import api_context
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


def _service(request: web.Request) -> AuthService:
    return request.app[CORE].service(AuthService)


@routes.post("/v1/auth/signup")
async def signup(request: web.Request) -> web.Response:
    ctx = await api_context(request, with_user=False)
    body = await read_json_object(request)
    session = await _service(request).signup(ctx.project_id, body.get("email"), body.get("password"), ip=request.remote)
    return json_response(session.to_dict(), status=201)


@routes.post("/v1/auth/login")
async def login(request: web.Request) -> web.Response:
    ctx = await api_context(request, with_user=False)
    body = await read_json_object(request)
    session = await _service(request).login(ctx.project_id, body.get("email"), body.get("password"), ip=request.remote)
    return json_response(session.to_dict())


@routes.post("/v1/auth/refresh")
async def refresh(request: web.Request) -> web.Response:
    ctx = await api_context(request, with_user=False)
    body = await read_json_object(request)
    session = await _service(request).refresh(ctx.project_id, body.get("refresh_token"), ip=request.remote)
    return json_response(session.to_dict())


@routes.post("/v1/auth/logout")
async def logout(request: web.Request) -> web.Response:
    body = await read_json_object(request) if request.body_exists else {}
    # With a refresh token in the body an expired access token must not stand in the way.
    ctx = await api_context(request, with_user="refresh_token" not in body)
    await _service(request).logout(
        ctx.project_id, refresh_token=body.get("refresh_token"), claims=ctx.claims, ip=request.remote
    )
    return web.Response(status=204)


@routes.get("/v1/auth/me")
async def me(request: web.Request) -> web.Response:
    ctx = await api_context(request)
    if ctx.claims is None:
        raise Unauthorized("a bearer access token is required", code="token_required")
    user = await _service(request).me(ctx.project_id, ctx.claims)
    return json_response({"user": user.to_dict()})
