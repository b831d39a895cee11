"""Restore a backup as a new project from the Database tools page, in a real Chromium.

A project with rows → a backup made through the UI → "Restore as new project" with a new name →
the job's progress → the new keys shown once → the link to the new project → the projects list.
Checked through the APIs: the clone is listed, holds the rows written before the backup (not the
one written after), and the key the page showed opens it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.dashboard.test_browser_pages import (
    EXPECTED_CONSOLE,
    Run,
    T,
    chromium,
    create_project,
    first_backup_through_the_ui,
    new_run,
    outside_recorder,
    require_browser,
    sign_in_with_dev_token,
)
from tests.fixtures.daemon import running_daemon

pytestmark = pytest.mark.system

CLONE_NAME = "Pages Shop restored"


async def test_restore_a_backup_as_a_new_project_from_the_ui(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    require_browser()
    from playwright.async_api import async_playwright, expect

    outside: list[str] = []
    page_errors: list[str] = []

    record = outside_recorder(outside)

    async with running_daemon(tmp_path / "state", pg) as atlas, async_playwright() as pw:
        async with chromium(pw) as browser:
            _, run = await new_run(
                browser, atlas, expect, page_errors, {"request": record}, viewport={"width": 1440, "height": 900}
            )
            await sign_in_with_dev_token(run)
            await create_project(run)
            await clone_through_the_ui(run)
    assert outside == [], f"the UI requested outside resources: {outside}"
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"
    unexpected = [m for m in run.console_errors if not EXPECTED_CONSOLE.search(m)]
    assert unexpected == [], f"console errors: {unexpected}"


async def clone_through_the_ui(run: Run) -> None:
    page, expect = run.page, run.expect
    await run.sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    await run.sql("INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 42) g")

    backup = await first_backup_through_the_ui(run)
    await run.sql("INSERT INTO items VALUES (999, 'after the backup')")  # must not be in the clone

    await backup.get_by_test_id("backup-clone").click()
    await expect(run.testid("clone-dialog")).to_be_visible(timeout=T)
    await expect(run.testid("clone-name")).to_have_value(f"{run.project_name} copy")
    await run.testid("clone-name").fill(run.project_name)  # taken: the server's refusal is shown
    await run.testid("clone-submit").click()
    await expect(run.testid("clone-error")).to_contain_text("already exists", timeout=T)
    await run.testid("clone-name").fill(CLONE_NAME)
    await run.testid("clone-submit").click()

    progress = run.testid("backup-progress").filter(has_text="Restoring as new project")
    await expect(progress).to_have_attribute("data-state", "succeeded", timeout=120_000)
    keys = run.testid("clone-keys-dialog")
    await expect(keys).to_be_visible(timeout=T)
    secret = (await run.testid("clone-secret-key").inner_text()).strip()
    publishable = (await run.testid("clone-publishable-key").inner_text()).strip()
    assert secret.startswith("ah_sec_") and publishable.startswith("ah_pub_")
    assert secret != run.secret_key
    await run.shot("10-clone-keys")
    await run.testid("clone-keys-dialog-close").click()
    await expect(page.locator("body")).not_to_contain_text(secret)  # shown once

    link = run.testid("clone-result-link")
    await expect(link).to_contain_text(CLONE_NAME)
    clone_id = await link.get_attribute("data-project-id")
    assert clone_id and clone_id != run.project_id
    await link.click()
    await page.wait_for_url(f"**/projects/{clone_id}/overview", timeout=T)
    await expect(run.testid("conn-database")).to_contain_text(f"proj_{clone_id}", timeout=T)

    await page.goto(run.url("/projects"))
    row = run.row("project-row", project_id=clone_id)
    await expect(row).to_contain_text(CLONE_NAME, timeout=T)
    await run.shot("11-clone-in-projects")

    status, listed = await run.atlas.admin("GET", "/admin/api/projects")
    assert status == 200, listed
    assert {p["id"]: p["name"] for p in listed["projects"]}[clone_id] == CLONE_NAME
    status, counted = await run.atlas.admin(
        "POST", f"/admin/api/projects/{clone_id}/sql", json={"sql": "SELECT count(*), max(id) FROM items"}
    )
    assert status == 200, counted
    assert counted["rows"] == [[42, 42]], counted
    status, rows = await run.atlas.public("GET", "/v1/db/items?limit=100&select=id", secret)
    assert status == 200, rows
    assert len(rows["rows"] if isinstance(rows, dict) else rows) == 42
    source = await run.sql("SELECT count(*) FROM items")
    assert source["rows"] == [[43]], source  # the source project is left as it was
