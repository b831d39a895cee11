"""Backup alerts: always logged at ERROR; also handed to a hook when one is installed.

The scheduler's notifier (Discord, email) installs itself as the hook:
``core.service(BackupAlerts).hook = async_fn(subject, text)``. Without one, the log line is
the alert. A failing hook is logged and never breaks the backup path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger("appliance.backups.alerts")

AlertHook = Callable[[str, str], Awaitable[None]]


class BackupAlerts:
    def __init__(self, core: Core | None = None) -> None:
        self.hook: AlertHook | None = None
        self.sent: list[tuple[str, str]] = []  # the most recent alerts, newest last (for doctor/tests)
        self._last: dict[str, float] = {}

    async def send(self, subject: str, text: str, *, dedupe_key: str | None = None, every_s: float = 0) -> bool:
        """Alert unless the same ``dedupe_key`` alerted within ``every_s`` seconds; True if sent."""
        now = time.monotonic()
        if dedupe_key is not None:
            last = self._last.get(dedupe_key)
            if last is not None and now - last < every_s:
                return False
            self._last[dedupe_key] = now
        log.error("%s: %s", subject, text)
        self.sent = [*self.sent[-49:], (subject, text)]
        if self.hook is not None:
            try:
                await self.hook(subject, text)
            except Exception as exc:
                log.warning("delivering the backup alert failed: %s: %s", type(exc).__name__, exc)
        return True
