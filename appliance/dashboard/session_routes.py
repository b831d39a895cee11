"""Admin sign-in: `/admin/api/session` (who am I, sign in, sign out), `/admin/api/setup` (the first
admin, with the one-time setup code) and `/admin/api/session/totp` (enrol a second factor)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from appliance import audit
from appliance.dashboard import sessions
from appliance.dashboard.accounts import AdminUser
from appliance.dashboard.adminauth import AdminIdentity, current_admin, identify, source_ip
from appliance.errors import AtlasError, Forbidden, Unauthorized
from appliance.web.keys import CORE
from appliance.web.util import json_response, read_json_object

routes = web.RouteTableDef()


async def _audit(
    request: web.Request, actor: str, action: str, outcome: str = "success", details: Mapping[str, Any] | None = None
) -> None:
    await audit.record(
        request.app[CORE].store,
        actor=actor[:128],
        source_ip=source_ip(request),
        action=action,
        target=None,
        outcome=outcome,
        details=details,
    )


def _mode(request: web.Request, identity: AdminIdentity | None, admins: int) -> str:
    if identity is not None:
        return identity.via
    config = request.app[CORE].config
    if config.dashboard.dev_admin_token_enabled and request.app[CORE].dev_admin_token:
        return "dev"
    if config.admin.access_team_domain and admins == 0:
        return "access"
    return "local"


async def _state(
    request: web.Request,
    identity: AdminIdentity | None,
    *,
    csrf_token: str | None = None,
    user: AdminUser | None = None,
) -> dict[str, Any]:
    accounts = sessions.accounts(request)
    admins = await accounts.count()
    shown: dict[str, Any] | None = None
    if identity is not None:
        shown = {"name": identity.name}
        if user is not None:
            shown["totp_enabled"] = user.totp_enabled
    access_only = bool(request.app[CORE].config.admin.access_team_domain)
    return {
        "authenticated": identity is not None,
        "mode": _mode(request, identity, admins),
        "user": shown,
        "csrf_token": csrf_token,
        "setup_required": admins == 0 and not access_only,
    }


@routes.get("/admin/api/session")
async def get_session(request: web.Request) -> web.Response:
    accounts = sessions.accounts(request)
    await accounts.ensure_setup_code()
    try:
        identity = await identify(request)
    except AtlasError:
        identity = None
    csrf, user = None, None
    if identity is not None and identity.via == "local":
        session = await sessions.current_session(request, check_csrf=False)
        if session is not None:
            csrf, user = accounts.csrf_token_for(request.cookies[sessions.COOKIE]), session.user
    response = json_response(await _state(request, identity, csrf_token=csrf, user=user))
    if identity is None and sessions.COOKIE in request.cookies:
        sessions.clear_cookie(request, response)
    return response


@routes.post("/admin/api/session")
async def sign_in(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    username = body.get("username")
    actor = username if isinstance(username, str) else "?"
    ip = source_ip(request)
    try:
        user = await sessions.accounts(request).login(username, body.get("password"), body.get("totp"), ip)
    except AtlasError as exc:
        await _audit(request, actor, "admin.login", "failure", {"reason": exc.code})
        raise
    return await _signed_in(request, user, "admin.login")


async def _signed_in(request: web.Request, user: AdminUser, action: str, status: int = 200) -> web.Response:
    new = await sessions.accounts(request).start_session(user, source_ip(request))
    await _audit(request, user.username, action)
    identity = AdminIdentity(name=user.username, via="local")
    response = json_response(await _state(request, identity, csrf_token=new.csrf_token, user=user), status=status)
    sessions.set_cookie(request, response, new)
    return response


@routes.delete("/admin/api/session")
async def sign_out(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    try:
        session = await sessions.current_session(request, check_csrf=True)
    except Unauthorized:
        session = None  # already expired: clearing the cookie is all there is to do
    if session is not None:
        await sessions.accounts(request).end_session(request.cookies[sessions.COOKIE])
        await _audit(request, session.user.username, "admin.logout")
    sessions.clear_cookie(request, response)
    return response


@routes.post("/admin/api/setup")
async def setup(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    accounts = sessions.accounts(request)
    await accounts.ensure_setup_code()
    username = body.get("username")
    try:
        user = await accounts.complete_setup(body.get("setup_code"), username, body.get("password"), source_ip(request))
    except AtlasError as exc:
        actor = username if isinstance(username, str) else "?"
        await _audit(request, actor, "admin.setup", "failure", {"reason": exc.code})
        raise
    return await _signed_in(request, user, "admin.setup", status=201)


@routes.post("/admin/api/session/totp")
async def enrol_totp(request: web.Request) -> web.Response:
    """``{}`` starts enrolment (secret and otpauth URI, shown once); ``{"code"}`` confirms it."""
    identity = current_admin(request)
    session = await sessions.current_session(request, check_csrf=True) if identity.via == "local" else None
    if session is None:
        raise Forbidden("only local admin accounts can enrol a second factor here", code="not_local_admin")
    body = await read_json_object(request)
    accounts = sessions.accounts(request)
    if body.get("code") is None:
        secret, uri = await accounts.begin_totp(session.user.id, session.user.username)
        await _audit(request, identity.name, "admin.totp.begin")
        return json_response({"secret": secret, "otpauth_uri": uri})
    try:
        await accounts.confirm_totp(session.user.id, body.get("code"))
    except AtlasError as exc:
        await _audit(request, identity.name, "admin.totp.confirm", "failure", {"reason": exc.code})
        raise
    await _audit(request, identity.name, "admin.totp.confirm")
    return json_response({"totp_enabled": True})
