"""Local admin sessions over HTTP: the ``atlashub_session`` cookie and its CSRF header.

``resolve(request)`` is an admin identity resolver (see :mod:`appliance.dashboard.adminauth`):
None without the cookie; 401 for an unknown or expired session; 403 ``csrf_failed`` for a
state-changing request whose ``x-csrf-token`` does not match the session's. The cookie is
HttpOnly and SameSite=Strict, and Secure behind TLS; the CSRF header is the second guard, for
browsers or proxies that do not honour SameSite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from appliance.dashboard.accounts import ActiveSession, AdminAccounts, NewSession, session_hours
from appliance.dashboard.adminauth import AdminIdentity
from appliance.errors import Forbidden, Unauthorized
from appliance.web.keys import CORE

COOKIE = "atlashub_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def accounts(request: web.Request) -> AdminAccounts:
    return request.app[CORE].service(AdminAccounts)


async def lifecycle(app: web.Application) -> AsyncIterator[None]:
    """A dashboard ``cleanup_ctx``: prints the one-time setup code at start while no admin exists."""
    await app[CORE].service(AdminAccounts).announce_setup_code()
    yield


async def current_session(request: web.Request, *, check_csrf: bool) -> ActiveSession | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    session = await accounts(request).session(token)
    if session is None:
        raise Unauthorized("the admin session has expired or was signed out", code="session_expired")
    if check_csrf and request.method not in SAFE_METHODS:
        if not AdminAccounts.csrf_matches(session, request.headers.get(CSRF_HEADER)):
            raise Forbidden("missing or wrong x-csrf-token header", code="csrf_failed")
    return session


async def resolve(request: web.Request) -> AdminIdentity | None:
    session = await current_session(request, check_csrf=True)
    if session is None:
        return None
    return AdminIdentity(name=session.user.username, via="local", session_id=session.id)


def is_secure(request: web.Request) -> bool:
    return request.app[CORE].config.admin.secure_cookies or request.secure


def set_cookie(request: web.Request, response: web.StreamResponse, session: NewSession) -> None:
    max_age = int(session_hours(request.app[CORE]) * 3600)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=is_secure(request),
        samesite="Strict",
    )


def clear_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", secure=is_secure(request), httponly=True, samesite="Strict")
