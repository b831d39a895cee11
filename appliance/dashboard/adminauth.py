"""Who is calling the admin API. Three ways in, in this order of trust:

1. Cloudflare Access (a verified ``Cf-Access-Jwt-Assertion``),
2. a local admin session cookie (with CSRF protection on state-changing requests),
3. the dev token header ``x-dev-admin-token``, only in ``atlashub dev`` or when enabled in config.

Resolvers are tried in order; the first that recognises the request decides. A request that
presents credentials that fail verification is refused outright (no fallback to a weaker way).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance import audit
from appliance.errors import Unauthorized
from appliance.web.keys import CORE

ADMIN_API = "/admin/api"
# Reachable without an identity: they are how one gets one.
PUBLIC_ADMIN_PATHS = frozenset({"/admin/api/session", "/admin/api/setup"})


@dataclass(frozen=True)
class AdminIdentity:
    name: str
    via: str  # "access" | "local" | "dev"
    session_id: str | None = None


Resolver = Callable[[web.Request], Awaitable[AdminIdentity | None]]
ADMIN_KEY = web.RequestKey("atlashub.admin", AdminIdentity)
RESOLVERS = web.AppKey("admin_resolvers", list)


async def dev_token_resolver(request: web.Request) -> AdminIdentity | None:
    presented = request.headers.get("x-dev-admin-token")
    if presented is None:
        return None
    core = request.app[CORE]
    expected = core.dev_admin_token
    if not core.config.dashboard.dev_admin_token_enabled or not expected:
        raise Unauthorized("the dev admin token is not enabled on this node", code="dev_token_disabled")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Unauthorized("invalid admin token", code="invalid_admin_token")
    return AdminIdentity(name="dev", via="dev")


async def identify(request: web.Request) -> AdminIdentity | None:
    for resolver in request.app[RESOLVERS]:
        identity = await resolver(request)
        if identity is not None:
            return identity
    return None


def current_admin(request: web.Request) -> AdminIdentity:
    identity = request.get(ADMIN_KEY)
    if identity is None:  # pragma: no cover - the middleware guarantees it
        raise Unauthorized("admin authentication required", code="admin_auth_required")
    return identity


@web.middleware
async def admin_auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path.startswith(ADMIN_API) and request.path not in PUBLIC_ADMIN_PATHS:
        identity = await identify(request)
        if identity is None:
            raise Unauthorized("admin authentication required", code="admin_auth_required")
        request[ADMIN_KEY] = identity
    return await handler(request)


def source_ip(request: web.Request) -> str | None:
    return request.remote


async def audit_admin(
    request: web.Request,
    action: str,
    *,
    target: str | None = None,
    project_id: str | None = None,
    outcome: str = "success",
    details: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> None:
    """Record an admin API action: who (the signed-in admin, unless ``actor`` says otherwise) and
    from where come from the request."""
    await audit.record(
        request.app[CORE].store,
        actor=actor or current_admin(request).name,
        source_ip=source_ip(request),
        action=action,
        target=target,
        project_id=project_id,
        outcome=outcome,
        details=details,
    )
