"""A setup code chosen in advance: `<state_dir>/admin-setup-code`, written by the Pi image's first boot.

The daemon uses it instead of a new one while no admin exists, never prints it, keeps it across
restarts, refuses a malformed or guessable one (and says why), and removes it once the first admin
exists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from appliance.dashboard.accounts import (
    SETUP_CODE_FILE,
    AdminAccounts,
    normalize_setup_code,
    provided_setup_code_problem,
    sha256_hex,
)
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import RunningDaemon, running_daemon

ROLES = {"roles": ("gateway", "dashboard")}
PASSWORD = "correct horse battery"
CODE = "K7QW-M2XR-9TVB-H4PN"


async def setup(atlas: RunningDaemon, code: str, username: str = "alice") -> tuple[int, Any]:
    body = {"setup_code": code, "username": username, "password": PASSWORD}
    async with atlas.http.post(atlas.dashboard_url + "/admin/api/setup", json=body) as resp:
        return resp.status, await resp.json()


def state_with_code(tmp_path: Path, text: str) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    (state / SETUP_CODE_FILE).write_text(text)
    (state / SETUP_CODE_FILE).chmod(0o600)
    return state


@pytest.mark.parametrize(
    ("code", "refused"),
    [
        (CODE, None),
        ("k7qw m2xr 9tvb h4pn\n", None),  # as typed on a laptop: case, spaces, newline
        ("K7QW-M2XR-9TVB-H4P", "must be 16 characters"),
        ("K7QW-M2XR-9TVB-H4PNX", "must be 16 characters"),
        ("K7QW-M2XR-9TVB-H4P0", "must be 16 characters"),  # 0 is not in the alphabet (read off a console)
        ("TEST-CODE-ABCD-EFGH", "must be 16 characters"),  # O
        ("K7QW-M2XR-9TVB-H4P!", "must be 16 characters"),
        ("", "must be 16 characters"),
        ("ABCD-EFGH-JKLM-NPQR", "the example"),
        ("AAAA-AAAA-AAAA-AAAA", "too easy to guess"),
        ("ABAB-ABAB-CDCD-CDCD", "too easy to guess"),
    ],
)
def test_which_codes_are_accepted(code: str, refused: str | None) -> None:
    problem = provided_setup_code_problem(normalize_setup_code(code))
    if refused is None:
        assert problem is None
    else:
        assert problem is not None and refused in problem


async def test_the_code_from_the_file_creates_the_first_admin(
    tmp_path: Path, pg: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = state_with_code(tmp_path, "k7qw m2xr 9tvb h4pn\n")
    async with running_daemon(state, pg, node=ROLES) as atlas:
        stored = await atlas.daemon.core.store.fetchall("SELECT code_hash FROM admin_setup")
        assert [row["code_hash"] for row in stored] == [sha256_hex(normalize_setup_code(CODE))]
        assert "given at first boot" in caplog.text and "One-time setup code" not in caplog.text
        status, body = await setup(atlas, "AAAA-BBBB-CCCC-DDDD")
        assert (status, body["error"]["code"]) == (401, "invalid_setup_code")
        # Still there after a failed attempt: only the first admin consumes it.
        assert (state / SETUP_CODE_FILE).exists()
        status, body = await setup(atlas, CODE.lower())
        assert status == 201, body
        assert body["user"]["name"] == "alice"
        assert not (state / SETUP_CODE_FILE).exists()
        assert await atlas.daemon.core.store.fetchall("SELECT * FROM admin_setup") == []
        status, body = await setup(atlas, CODE, username="mallory")
        assert (status, body["error"]["code"]) == (409, "setup_done")
    # Never logged, in any form.
    for form in (CODE, normalize_setup_code(CODE), CODE.lower(), "k7qw m2xr"):
        assert form not in caplog.text


async def test_the_code_survives_a_restart_until_an_admin_exists(
    tmp_path: Path, pg: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    # A Pi unplugged before anyone opened the dashboard: the code on the card must still work.
    state = state_with_code(tmp_path, CODE)
    async with running_daemon(state, pg, node=ROLES):
        pass
    assert (state / SETUP_CODE_FILE).exists()
    async with running_daemon(state, pg, node=ROLES) as atlas:
        status, body = await setup(atlas, CODE)
        assert status == 201, body
    assert not (state / SETUP_CODE_FILE).exists()
    assert CODE not in caplog.text


async def test_a_refused_code_is_logged_without_the_code_and_a_new_one_is_made(
    tmp_path: Path, pg: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    weak = "AAAA-AAAA-AAAA-AAAA"
    state = state_with_code(tmp_path, weak)
    async with running_daemon(state, pg, node=ROLES) as atlas:
        refusals = [r.getMessage() for r in caplog.records if "refusing the setup code" in r.getMessage()]
        assert len(refusals) == 1 and str(state / SETUP_CODE_FILE) in refusals[0], caplog.text
        assert "too easy to guess" in refusals[0]
        assert weak not in caplog.text and normalize_setup_code(weak) not in caplog.text
        assert "One-time setup code: " in caplog.text  # the usual fallback, printed as always
        status, body = await setup(atlas, weak)
        assert (status, body["error"]["code"]) == (401, "invalid_setup_code")


async def test_an_admin_made_otherwise_retires_the_file(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = state_with_code(tmp_path, CODE)
    async with running_daemon(state, pg, node=ROLES) as atlas:
        # `atlashub admin create` instead of the dashboard.
        await atlas.daemon.core.service(AdminAccounts).create_user("alice", PASSWORD)
        assert not (state / SETUP_CODE_FILE).exists()
    # A file that appears while an admin exists (a second boot file, a restored backup) is removed at
    # start and never becomes a way in.
    (state / SETUP_CODE_FILE).write_text(CODE)
    async with running_daemon(state, pg, node=ROLES) as atlas:
        assert not (state / SETUP_CODE_FILE).exists()
        status, body = await setup(atlas, CODE, username="mallory")
        assert (status, body["error"]["code"]) == (409, "setup_done")
