"""The scheduler role: cron jobs (guarded HTTP calls and platform actions) on the master node.

``setup`` adds one cleanup_ctx that opens, in order, the guarded HTTP client, the failure
notifier and the scheduler loop, and closes them in reverse. The admin API for jobs lives in
``routes`` and is served by the dashboard role; it finds the running scheduler through the
core's ``SchedulerSlot`` service.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from appliance.backups.alerts import BackupAlerts
from appliance.config import Config
from appliance.errors import StartupError
from appliance.scheduler import loop
from appliance.scheduler.execute import JobExecutor
from appliance.scheduler.jobs import JobStore
from appliance.scheduler.notify import Channel, DiscordChannel, EmailChannel, Notifier, SmtpSettings
from appliance.scheduler.runs import RunLog
from appliance.scheduler.safehttp import Allowlist, AllowlistError, SafeHttpClient
from appliance.web.keys import CORE

log = logging.getLogger("appliance.scheduler")


def allowlist_from_config(config: Config) -> Allowlist:
    try:
        return Allowlist.parse(config.scheduler.http_allowlist)
    except AllowlistError as exc:
        raise StartupError("; ".join(exc.problems)) from None


def notifier_from_config(config: Config, client: SafeHttpClient) -> Notifier | None:
    """The global notification channels; None when none is configured."""
    settings = config.scheduler
    channels: list[Channel] = []
    if settings.discord_webhook_url:
        try:
            channels.append(DiscordChannel(client, settings.discord_webhook_url))
        except ValueError as exc:
            hint = "add its host to scheduler.http_allowlist"
            raise StartupError(f"scheduler.discord_webhook_url: {exc}; {hint}") from None
    if settings.smtp_host:
        if not settings.smtp_from or not settings.smtp_to:
            raise StartupError("scheduler.smtp_from and scheduler.smtp_to are required when scheduler.smtp_host is set")
        password = None
        if settings.smtp_password_file:
            try:
                password = Path(settings.smtp_password_file).read_text().strip()
            except OSError as exc:
                raise StartupError(f"scheduler.smtp_password_file cannot be read: {exc.strerror}") from None
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            recipients=tuple(settings.smtp_to),
            starttls=settings.smtp_starttls,
            use_tls=settings.smtp_port == 465,
            username=settings.smtp_username or None,
            password=password,
        )
        channels.append(EmailChannel(smtp))
    return Notifier(channels) if channels else None


def setup(app: web.Application, config: Config) -> None:
    """Add this role's one cleanup_ctx to ``app`` (its routes are served by the dashboard)."""
    app.cleanup_ctx.append(_scheduler_context(config))


def _scheduler_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
        core = app[CORE]
        allowlist = allowlist_from_config(config)
        client = SafeHttpClient(allowlist)
        try:
            notifier = notifier_from_config(config, client)
            scheduler = loop.Scheduler(
                JobStore(core.store, core.box, allowlist),
                RunLog(core.store, core.storage),
                JobExecutor(client, core.store, logs=core.storage, run_history_days=config.scheduler.run_history_days),
                notifier=notifier,
                active=config.mesh.role == "master",
                run_history_days=config.scheduler.run_history_days,
            )
            await scheduler.start()
            slot = core.service(loop.SchedulerSlot)
            slot.scheduler = scheduler
            alerts = core.service(BackupAlerts)
            if notifier is not None:
                alerts.hook = notifier.broadcast
            try:
                yield
            finally:
                alerts.hook = None
                slot.scheduler = None
                await scheduler.stop()
        finally:
            await client.close()

    return scheduler_context
