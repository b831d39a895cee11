"""Unit control over D-Bus: names are checked here; real calls need a system bus (nspawn test bed)."""

from __future__ import annotations

import os

import pytest

from appliance.agent import systemd
from appliance.errors import BadRequest, Forbidden

HAS_SYSTEM_BUS = os.path.exists("/run/dbus/system_bus_socket") and os.path.isdir("/run/systemd/system")


@pytest.mark.parametrize("unit", ["atlashub.service", "atlashub-upgrade.service", "postgresql@15-main.service"])
def test_product_units_are_allowed(unit: str) -> None:
    assert systemd.check_unit(unit) == unit


@pytest.mark.parametrize("unit", ["sshd.service", "systemd-journald.service", "atlashub"])
def test_other_units_are_refused(unit: str) -> None:
    with pytest.raises((Forbidden, BadRequest)):
        systemd.check_unit(unit)


@pytest.mark.parametrize("unit", ["../x.service", "a b.service", "", "x" * 300 + ".service"])
def test_malformed_names(unit: str) -> None:
    with pytest.raises(BadRequest):
        systemd.check_unit(unit)


@pytest.mark.skipif(not HAS_SYSTEM_BUS, reason="no systemd system bus here (runs in the nspawn test bed)")
async def test_unit_state_over_dbus() -> None:
    state = await systemd.unit_state("atlashub-upgrade.service")
    assert state["active_state"] in {"active", "inactive", "failed", "activating", "deactivating"}
