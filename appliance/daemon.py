"""The daemon: composes the core and the roles, binds the listeners, and shuts down in order.

Listener roles (gateway, dashboard) get their own aiohttp application and port; background
roles (scheduler, backups, agent) live in a root application that is set up but never served,
so their ``cleanup_ctx`` still owns their tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from appliance.config import Config, load_config, parse_listen
from appliance.core import Core
from appliance.errors import ConfigError, StartupError
from appliance.logs import setup_logging
from appliance.sdnotify import Notifier
from appliance.web.errors import error_middleware
from appliance.web.health import add_health_routes
from appliance.web.keys import CORE

log = logging.getLogger(__name__)

LISTENER_ROLES = ("gateway", "dashboard")
BACKGROUND_ROLES = ("scheduler", "backups", "agent")
STEP_TIMEOUT = 5.0


def _role_module(role: str) -> Any:
    return importlib.import_module(f"appliance.{role}")


@dataclass
class Daemon:
    config: Config
    dev_admin_token: str | None = None
    core: Core = field(init=False)
    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)
    _runners: list[tuple[str, web.AppRunner]] = field(default_factory=list)
    _core_open: bool = False

    def __post_init__(self) -> None:
        self.core = Core(self.config, self.dev_admin_token)

    def url(self, role: str) -> str:
        host, port = self.addresses[role]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}"

    def _new_app(self) -> web.Application:
        app = web.Application(middlewares=[error_middleware], client_max_size=self.config.gateway.max_body_bytes)
        app[CORE] = self.core
        return app

    async def start(self) -> None:
        """Open the core, start background roles, then bind listeners. Undoes itself on failure."""
        started = time.monotonic()
        try:
            await self.core.open()
            self._core_open = True
            roles = self.config.node.roles
            root = self._new_app()
            for role in BACKGROUND_ROLES:
                if role in roles:
                    _role_module(role).setup(root, self.config)
            await self._start_runner("background", root, None)
            for role in LISTENER_ROLES:
                if role not in roles:
                    continue
                app = self._new_app()
                add_health_routes(app)
                _role_module(role).setup(app, self.config)
                listen = getattr(self.config, role).listen
                await self._start_runner(role, app, listen)
                if role == "gateway":
                    self.core.gateway_bound(self.url("gateway"))
        except BaseException:
            await self.stop()
            raise
        _release_startup_memory()
        log.info(
            "atlashub is ready in %.0f ms",
            (time.monotonic() - started) * 1000,
            extra={"listeners": {r: self.url(r) for r in self.addresses}},
        )

    async def _start_runner(self, name: str, app: web.Application, listen: str | None) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=STEP_TIMEOUT)
        await runner.setup()
        self._runners.append((name, runner))
        if listen is None:
            return
        host, port = parse_listen(listen)
        site = web.TCPSite(runner, host, port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"{name}.listen {listen}: cannot listen on port {port}: {exc.strerror}") from None
        bound = runner.addresses[0]
        self.addresses[name] = (str(bound[0]), int(bound[1]))
        log.info("%s listening on %s", name, self.url(name))

    async def stop(self) -> list[str]:
        """Ordered shutdown, each step bounded in time; returns the errors it met. Idempotent."""
        errors: list[str] = []
        while self._runners:
            name, runner = self._runners.pop()
            step = time.monotonic()
            try:
                await asyncio.wait_for(runner.cleanup(), STEP_TIMEOUT * 2)
                log.info("stopped %s in %.0f ms", name, (time.monotonic() - step) * 1000)
            except Exception as exc:
                log.error("stopping %s failed: %r", name, exc)
                errors.append(f"{name}: {exc!r}")
        if self._core_open:
            try:
                await asyncio.wait_for(self.core.close(), STEP_TIMEOUT)
                log.info("closed the core")
            except Exception as exc:
                errors.append(f"core: {exc!r}")
            self._core_open = False
        self.addresses.clear()
        return errors


async def run_until_signalled(
    daemon: Daemon,
    *,
    config_path: Path | None = None,
    on_ready: Callable[[Daemon], Awaitable[None]] | None = None,
) -> int:
    """Start, tell systemd, serve until SIGTERM/SIGINT, reload on SIGHUP, then stop in order."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    notifier = Notifier()

    def reload() -> None:
        try:
            fresh = load_config(config_path)
        except ConfigError as exc:
            log.error("reload refused, config invalid: %s", "; ".join(exc.problems))
            return
        setup_logging(fresh.logging.level, fresh.logging.format)
        log.info("reloaded: logging level %s (other keys apply at the next restart)", fresh.logging.level)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    watchdog: asyncio.Task[None] | None = None
    try:
        await daemon.start()
        if on_ready is not None:
            await on_ready(daemon)
        notifier.send("READY=1", "STATUS=serving")
        interval = notifier.watchdog_interval()
        if interval:
            watchdog = asyncio.create_task(_watchdog(notifier, interval))
        await stop.wait()
        log.info("shutting down")
        notifier.send("STOPPING=1")
    finally:
        if watchdog:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        errors = await daemon.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    if errors:
        log.error("shutdown finished with errors: %s", "; ".join(errors))
        return 1
    log.info("shutdown complete")
    return 0


def _release_startup_memory() -> None:
    """Start-up allocates and frees a lot (imports, migrations, introspection); hand the freed
    heap back to the OS so an idle node's resident memory is what it actually uses."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        pass


async def _watchdog(notifier: Notifier, interval: float) -> None:
    while True:
        notifier.send("WATCHDOG=1")
        await asyncio.sleep(interval)
