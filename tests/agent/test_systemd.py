"""Unit control over D-Bus: names are checked here, and the package's polkit rule allows the same
units. Real calls need a system bus: tests/packaging/test_nspawn_deb.py makes them from the
installed daemon, under its unit, with polkitd and the rule."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.agent import systemd
from appliance.errors import BadRequest, Forbidden

RULES = Path(__file__).resolve().parents[2] / "packaging" / "polkit" / "atlashub.rules"
HAS_SYSTEM_BUS = os.path.exists("/run/dbus/system_bus_socket") and os.path.isdir("/run/systemd/system")


@pytest.mark.parametrize(
    "unit",
    ["atlashub.service", "atlashub-upgrade.service", "atlashub-upgrade.path", "postgresql@15-main.service"],
)
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


@pytest.mark.skipif(not HAS_SYSTEM_BUS, reason="no systemd system bus here (tests/packaging/test_nspawn_deb.py)")
async def test_unit_state_over_dbus() -> None:
    state = await systemd.unit_state("atlashub-upgrade.service")
    assert state["active_state"] in {"active", "inactive", "failed", "activating", "deactivating"}


# What polkit's JavaScript engine gives a rule: the rule file as shipped, run by Node on each case.
_POLKIT_HARNESS = """
const fs = require("fs");
const rules = [];
const polkit = {Result: {YES: "yes", NO: "no", NOT_HANDLED: null}, addRule: (f) => rules.push(f)};
new Function("polkit", fs.readFileSync(process.argv[1], "utf8"))(polkit);
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
console.log(JSON.stringify(cases.map(([id, user, unit, verb]) => {
  const details = {unit: unit, verb: verb};
  const action = {id: id, lookup: (key) => details[key]};
  return rules[0](action, {user: user});
})));
"""


def _polkit_answers(cases: list[tuple[str, str, str, str]]) -> list[str | None]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (apt-get install -y nodejs)")
    out = subprocess.run(
        [node, "-e", _POLKIT_HARNESS, str(RULES)], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return list(json.loads(out.stdout))


MANAGE = "org.freedesktop.systemd1.manage-units"
UNITS = [
    "atlashub.service",
    "atlashub-upgrade.path",
    "atlashub-upgrade.timer",
    "postgresql.service",
    "postgresql@15-main.service",
    "ssh.service",
    "dbus.service",
    "systemd-journald.service",
    "postgresql-evil.service",
    "xatlashub.service",
]


def test_polkit_rule_allows_what_check_unit_allows() -> None:
    cases = [(MANAGE, "atlashub", unit, verb) for unit in UNITS for verb in ("start", "restart")]
    answers = _polkit_answers(cases)
    for (_, _, unit, verb), answer in zip(cases, answers, strict=True):
        try:
            systemd.check_unit(unit)
            allowed = True
        except (Forbidden, BadRequest):
            allowed = False
        assert answer == ("yes" if allowed else "no"), (unit, verb, answer)
    assert "yes" in answers and "no" in answers


def test_polkit_rule_grants_nothing_else() -> None:
    cases = [
        (MANAGE, "atlashub", "atlashub.service", "stop"),
        (MANAGE, "atlashub", "atlashub.service", "reload"),
        (MANAGE, "postgres", "atlashub.service", "restart"),
        (MANAGE, "nobody", "ssh.service", "restart"),
        ("org.freedesktop.systemd1.manage-unit-files", "atlashub", "atlashub.service", "enable"),
        ("org.freedesktop.login1.reboot", "atlashub", "", ""),
    ]
    assert _polkit_answers(cases) == ["no", "no", None, None, None, None]
