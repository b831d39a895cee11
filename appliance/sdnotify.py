"""The systemd notify protocol, spoken directly over $NOTIFY_SOCKET (no libsystemd)."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self) -> None:
        self._address = os.environ.get("NOTIFY_SOCKET") or None
        if self._address and self._address.startswith("@"):
            self._address = "\0" + self._address[1:]

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *states: str) -> None:
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall("\n".join(states).encode())
        except OSError as exc:
            log.warning("systemd notify failed: %s", exc)

    def watchdog_interval(self) -> float | None:
        """Half of WATCHDOG_USEC when the watchdog is meant for this process, else None."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2_000_000
        except ValueError:
            return None
