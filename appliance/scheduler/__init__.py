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
from appliance.settings.service import RuntimeSettings
from appliance.web.keys import CORE

log = logging.getLogger("appliance.scheduler")


def allowlist_from_config(config: Config) -> Allowlist:
    try:
        return Allowlist.parse(config.scheduler.http_allowlist)
    except AllowlistError as exc:
        raise StartupError("; ".join(exc.problems)) from None


def notify_channels(config: Config, settings: RuntimeSettings, client: SafeHttpClient) -> list[Channel]:
    """The global notification channels from the live settings (file values unless overridden).

    Raises ValueError naming the setting (never its value) when one cannot be used.
    """
    channels: list[Channel] = []
    webhook = settings.get("scheduler.discord_webhook_url")
    if webhook:
        try:
            channels.append(DiscordChannel(client, webhook))
        except ValueError as exc:
            raise ValueError(
                f"scheduler.discord_webhook_url: {exc}; add its host to scheduler.http_allowlist"
            ) from None
    host = settings.get("scheduler.smtp_host")
    if host:
        sender, recipients = settings.get("scheduler.smtp_from"), settings.get("scheduler.smtp_to")
        if not sender or not recipients:
            raise ValueError("scheduler.smtp_from and scheduler.smtp_to are required when scheduler.smtp_host is set")
        password = settings.get("scheduler.smtp_password")
        if password is None and config.scheduler.smtp_password_file:
            try:
                password = Path(config.scheduler.smtp_password_file).read_text().strip()
            except OSError as exc:
                raise ValueError(f"scheduler.smtp_password_file cannot be read: {exc.strerror}") from None
        port = int(settings.get("scheduler.smtp_port"))
        smtp = SmtpSettings(
            host=host,
            port=port,
            sender=sender,
            recipients=tuple(recipients),
            starttls=bool(settings.get("scheduler.smtp_starttls")),
            use_tls=port == 465,
            username=settings.get("scheduler.smtp_username") or None,
            password=password or None,
        )
        channels.append(EmailChannel(smtp))
    return channels


def _follow_notify_settings(
    notifier: Notifier, config: Config, settings: RuntimeSettings, client: SafeHttpClient
) -> Callable[[], None]:
    """The notification targets are runtime settings: rebuild the channels after each change."""

    def apply() -> None:
        try:
            notifier.set_channels(notify_channels(config, settings, client))
        except ValueError as exc:
            # Checked when saved; a file that vanished since is the likely cause. Keep the old channels.
            log.error("notification targets not applied: %s", exc)

    return settings.subscribe(apply)


def setup(app: web.Application, config: Config) -> None:
    """Add this role's one cleanup_ctx to ``app`` (its routes are served by the dashboard)."""
    app.cleanup_ctx.append(_scheduler_context(config))


def _scheduler_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def scheduler_context(app: web.Application) -> AsyncIterator[None]:
        core = app[CORE]
        allowlist = allowlist_from_config(config)
        client = SafeHttpClient(allowlist)
        settings = core.service(RuntimeSettings)
        try:
            try:
                notifier = Notifier(notify_channels(config, settings, client))
            except ValueError as exc:
                raise StartupError(str(exc)) from None
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
            alerts.hook = notifier.broadcast
            unfollow = _follow_notify_settings(notifier, config, settings, client)
            try:
                yield
            finally:
                unfollow()
                alerts.hook = None
                slot.scheduler = None
                await scheduler.stop()
        finally:
            await client.close()

    return scheduler_context
