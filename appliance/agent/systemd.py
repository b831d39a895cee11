"""systemd over D-Bus (dbus-fast, asyncio): restart and start units, read a unit's state.

Only units of this product may be touched (``atlashub*``, plus PostgreSQL), so a command
from the master cannot stop sshd. Each call opens the system bus and closes it: these are
rare, operator-driven actions, not a hot path.

The daemon runs as the unprivileged user ``atlashub``: systemd asks polkit before it starts or
restarts a unit for it, and the package's polkit rule (packaging/polkit/atlashub.rules) allows
exactly the units :func:`check_unit` allows. Reading a unit's state needs no authorization.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from appliance.errors import BadRequest, Forbidden, ServiceUnavailable

if TYPE_CHECKING:
    from dbus_fast.aio import MessageBus

SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
PROPERTIES = "org.freedesktop.DBus.Properties"
UPGRADE_UNIT = "atlashub-upgrade.service"
_UNIT_RE = re.compile(r"^[A-Za-z0-9@._-]{1,200}\.(service|timer|target|socket|path)$")
# What systemd answers when polkit (or its absence) says no.
_DENIED = frozenset(
    {"org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"}
)
_ALLOWED = re.compile(r"^(atlashub[A-Za-z0-9@._-]*|postgresql(@[0-9a-z_-]+)?\.service)$")


def check_unit(unit: str) -> str:
    if not _UNIT_RE.fullmatch(unit):
        raise BadRequest(f"not a unit name: {unit!r}", code="invalid_unit")
    if not _ALLOWED.fullmatch(unit):
        raise Forbidden(f"the agent may not control {unit}", code="unit_not_allowed")
    return unit


async def _bus() -> MessageBus:
    # dbus-fast (and the XML parser it brings) loads with the first unit action, not at start-up.
    from dbus_fast import BusType, DBusError
    from dbus_fast.aio import MessageBus

    try:
        return await MessageBus(bus_type=BusType.SYSTEM).connect()
    except (OSError, DBusError, ValueError) as exc:
        raise ServiceUnavailable(f"the system D-Bus is not reachable: {exc}", code="dbus_unavailable") from None


async def _manager_call(member: str, signature: str, body: list[Any]) -> list[Any]:
    from dbus_fast import Message, MessageType

    bus = await _bus()
    try:
        reply = await bus.call(
            Message(
                destination=SYSTEMD,
                path=SYSTEMD_PATH,
                interface=MANAGER,
                member=member,
                signature=signature,
                body=body,
            )
        )
    finally:
        bus.disconnect()
    if reply is not None and reply.message_type == MessageType.ERROR and reply.error_name in _DENIED:
        raise Forbidden(
            f"systemd refused {member} for this node's daemon: {reply.error_name}"
            " (is polkitd installed? the package's polkit rule authorizes its own units)",
            code="unit_control_denied",
        )
    if reply is None or reply.message_type == MessageType.ERROR:
        error = reply.error_name if reply is not None else "no reply"
        detail = reply.body[0] if reply is not None and reply.body else ""
        raise ServiceUnavailable(f"systemd refused {member}: {error} {detail}".strip(), code="systemd_error")
    return list(reply.body)


async def restart_unit(unit: str) -> dict[str, Any]:
    """RestartUnit(unit, "replace"); returns the job path."""
    body = await _manager_call("RestartUnit", "ss", [check_unit(unit), "replace"])
    return {"unit": unit, "job": body[0] if body else None}


async def start_unit(unit: str) -> dict[str, Any]:
    body = await _manager_call("StartUnit", "ss", [check_unit(unit), "replace"])
    return {"unit": unit, "job": body[0] if body else None}


async def unit_state(unit: str) -> dict[str, Any]:
    """ActiveState and SubState of a unit (loaded on demand, so unknown units read as inactive)."""
    from dbus_fast import Message, MessageType

    path = (await _manager_call("LoadUnit", "s", [check_unit(unit)]))[0]
    bus = await _bus()
    try:
        states: dict[str, Any] = {"unit": unit}
        for prop in ("ActiveState", "SubState", "LoadState"):
            reply = await bus.call(
                Message(
                    destination=SYSTEMD,
                    path=path,
                    interface=PROPERTIES,
                    member="Get",
                    signature="ss",
                    body=[UNIT, prop],
                )
            )
            if reply is None or reply.message_type == MessageType.ERROR:
                raise ServiceUnavailable(f"systemd did not report {prop} of {unit}", code="systemd_error")
            states[_snake(prop)] = reply.body[0].value
    finally:
        bus.disconnect()
    return states


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
