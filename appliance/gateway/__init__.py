"""The gateway role: the public API (/v1/db, /v1/storage, /v1/auth) for apps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from appliance.config import Config
from appliance.core import Core
from appliance.gateway.context import RATE_LIMITS, api_key, install_rate_limits
from appliance.gateway.cors import cors_middleware
from appliance.mesh.forward import maybe_forward
from appliance.plugins import present
from appliance.scheduler.platform_jobs import ActionContext, register_action, unregister_action
from appliance.settings.service import RuntimeSettings
from appliance.storage.fs import FsBackend
from appliance.storage.fs_routes import add_signed_url_routes
from appliance.web.errors import Handler
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

# Keys created or dropped by another process (the `atlashub project` commands) work or stop within this.
KEYS_REFRESH_SECONDS = 3.0

# Public API paths that belong to one project (the key says which) and may live on a worker.
_FORWARDABLE = ("/v1/db/", "/v1/storage/", "/v1/auth/")

# Public API route tables; each module exposes ``routes`` (a RouteTableDef).
PUBLIC_ROUTE_MODULES = (
    "appliance.gateway.db_routes",
    "appliance.gateway.openapi",
    "appliance.storage.public_routes",
    "appliance.auth.routes",
    "appliance.mesh.forward_routes",
)


@web.middleware
async def cluster_routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On the master, a project hosted by a worker is served there: the key is checked (and
    rate-limited) here at the edge, then the request goes on as a master-signed message."""
    if request.path.startswith(_FORWARDABLE) and "x-api-key" in request.headers:
        record = api_key(request)
        forwarded = await maybe_forward(request, record.project_id, record.type)
        if forwarded is not None:
            return forwarded
    return await handler(request)


def setup(app: web.Application, config: Config) -> None:
    # Outermost, so errors rendered by the error middleware carry the CORS headers too.
    app.middlewares.insert(0, cors_middleware)
    app.middlewares.append(cluster_routing)

    def fs_backend() -> FsBackend:
        backend = app[CORE].storage
        assert isinstance(backend, FsBackend)
        return backend

    install_rate_limits(app, config.gateway.rate_limit_per_second, config.gateway.rate_limit_burst)
    for module in present(PUBLIC_ROUTE_MODULES):
        app.add_routes(module.routes)
    if config.storage.backend == "fs":
        add_signed_url_routes(app, fs_backend)
    app.cleanup_ctx.append(_background)


def _register_actions(core: Core) -> None:
    """End-user token clean-up as a scheduler platform action (the scheduler may run elsewhere in-process)."""
    from appliance.auth.service import clean_expired_tokens

    async def clean(ctx: ActionContext) -> str:
        return f"removed {await clean_expired_tokens(core)} expired refresh tokens"

    register_action(
        "clean_expired_tokens", clean, description="delete expired and revoked end-user refresh tokens", replace=True
    )


def _follow_rate_limits(app: web.Application) -> Callable[[], None]:
    """The rate limit is a runtime setting: apply the live value now and after each change."""
    settings = app[CORE].service(RuntimeSettings)
    buckets = app[RATE_LIMITS]

    def apply() -> None:
        buckets.rate = float(settings.get("gateway.rate_limit_per_second"))
        buckets.burst = float(settings.get("gateway.rate_limit_burst"))

    apply()
    return settings.subscribe(apply)


async def _background(app: web.Application) -> AsyncIterator[None]:
    """Flush API keys' last-use times periodically (never a write per request); take in keys changed by
    another process; follow the rate limit."""
    core = app[CORE]
    unfollow = _follow_rate_limits(app)
    interval = core.config.keys.last_used_flush_seconds

    async def flush_loop() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await core.keys.flush_last_used()
            except Exception:
                log.exception("flushing key last-use times failed")

    async def refresh_loop() -> None:
        while True:
            await asyncio.sleep(KEYS_REFRESH_SECONDS)
            try:
                await core.keys.refresh()
            except Exception:
                log.exception("re-reading the API keys failed")

    tasks = [
        asyncio.create_task(flush_loop(), name="keys-last-used"),
        asyncio.create_task(refresh_loop(), name="keys-refresh"),
    ]
    _register_actions(core)
    yield
    unfollow()
    unregister_action("clean_expired_tokens")
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await core.keys.flush_last_used()
