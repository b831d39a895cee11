"""Who is calling the public API: the project and key behind ``x-api-key``, the rate limit,
and, with ``Authorization: Bearer``, the end user whose claims drive row-level security.

The key lookup is from memory; nothing here touches a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from appliance.errors import Forbidden, Unauthorized
from appliance.gateway.ratelimit import TokenBuckets
from appliance.gateway.usage import RequestCounter
from appliance.projects.keys import KeyRecord
from appliance.projects.model import ProjectNames
from appliance.web.keys import CORE

RATE_LIMITS = web.AppKey("rate_limits", TokenBuckets)
# Set by the mesh for a verified forwarded request (the whole context, or just the key).
CONTEXT_KEY = web.RequestKey("atlashub.api_context", object)
FORWARDED_KEY = web.RequestKey("atlashub.forwarded_key", KeyRecord)
KEY_KEY = web.RequestKey("atlashub.api_key", KeyRecord)


@dataclass(frozen=True)
class ApiContext:
    key: KeyRecord
    claims: dict[str, Any] | None = None

    @property
    def project_id(self) -> str:
        return self.key.project_id

    @property
    def names(self) -> ProjectNames:
        return ProjectNames(self.key.project_id)

    @property
    def is_secret(self) -> bool:
        return self.key.type == "secret"

    @property
    def db_role(self) -> str | None:
        """The role to switch into inside the transaction; None means the service-level app role."""
        if self.claims is not None:
            return self.names.authenticated
        if self.is_secret:
            return None
        return self.names.anon

    def require_secret(self, what: str) -> None:
        if not self.is_secret:
            raise Forbidden(f"{what} needs the secret key", code="secret_key_required")


def install_rate_limits(app: web.Application, rate: float, burst: float) -> None:
    app[RATE_LIMITS] = TokenBuckets(rate, burst)


def api_key(request: web.Request) -> KeyRecord:
    """The key behind ``x-api-key`` (401 without or with a bad one), rate-limited once per request."""
    record = request.get(KEY_KEY) or request.get(FORWARDED_KEY)
    if isinstance(record, KeyRecord):
        return record
    presented = request.headers.get("x-api-key")
    if not presented:
        raise Unauthorized("missing x-api-key header", code="api_key_required")
    found = request.app[CORE].keys.resolve(presented)
    if found is None:
        raise Unauthorized("invalid or revoked API key", code="invalid_api_key")
    request.app[RATE_LIMITS].check(found.project_id)
    request.app[CORE].service(RequestCounter).hit(found.project_id)
    request[KEY_KEY] = found
    return found


async def api_context(request: web.Request, *, with_user: bool = True) -> ApiContext:
    """The caller: its key and, when ``with_user`` and a bearer token is sent, the end user's claims."""
    cached = request.get(CONTEXT_KEY)
    if isinstance(cached, ApiContext):
        return cached
    record = api_key(request)
    claims = None
    if with_user:
        auth = request.headers.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Authorization must be 'Bearer <access token>'", code="invalid_authorization")
            claims = await verify_end_user(request.app[CORE], record.project_id, token.strip())
    return ApiContext(record, claims)


async def verify_end_user(core: Any, project_id: str, token: str) -> dict[str, Any]:
    """End-user access tokens are issued by /v1/auth; without that module no token is valid."""
    try:
        from appliance.auth.tokens import verify_access_token
    except ImportError:
        raise Unauthorized("end-user tokens are not supported on this node", code="invalid_token") from None
    return await verify_access_token(core, project_id, token)
