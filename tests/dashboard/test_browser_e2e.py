"""The dashboard in a real Chromium (Debian's), against a real daemon: the admin's main path.

sign in → create a project → SQL editor creates a table and inserts rows → the table browser
shows them → upload a file and watch the progress bar → create a cron job → run it now → its
run appears in the history. A screenshot of each page is saved under test-artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from appliance.pg.embedded import EmbeddedPostgres
from appliance.resources import web_dist
from tests.fixtures.daemon import RunningDaemon, running_daemon

pytestmark = pytest.mark.system

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def hook_target() -> AsyncIterator[tuple[str, list[str]]]:
    calls: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        calls.append(request.method)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"127.0.0.1:{port}", calls
    await runner.cleanup()


async def test_admin_main_path_in_a_real_browser(
    tmp_path: Path, pg: EmbeddedPostgres, hook_target: tuple[str, list[str]]
) -> None:
    if not (web_dist() / "index.html").exists():
        pytest.fail("web/dist is not built: scripts/test builds it (npm run build in web/)")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: scripts/test installs Debian's chromium")
    from playwright.async_api import async_playwright, expect

    target, calls = hook_target
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    async with (
        running_daemon(tmp_path / "state", pg, scheduler={"http_allowlist": (target,)}) as atlas,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1440, "height": 900})

        def record(request: object) -> None:
            url = getattr(request, "url", "")
            if not url.startswith(("http://127.0.0.1", "data:", "blob:")):
                outside.append(url)

        page.on("request", record)
        try:
            await run_main_path(page, expect, atlas, target)
        finally:
            await browser.close()
    assert calls, "the cron job's HTTP target was called"
    assert outside == [], f"the UI requested outside resources: {outside}"


async def shot(page: object, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


async def run_main_path(page, expect, atlas: RunningDaemon, target: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(atlas.dashboard_url + "/sign-in")
    await page.get_by_test_id("signin-dev-token").fill(atlas.admin_token)
    await shot(page, "01-sign-in")
    await page.get_by_test_id("signin-dev-submit").click()

    await page.goto(atlas.dashboard_url + "/projects")
    await page.get_by_test_id("create-project-button").first.click()
    await page.get_by_test_id("create-project-name").fill("Browser Shop")
    await page.get_by_test_id("create-project-submit").click()
    keys = page.get_by_test_id("project-keys-dialog")
    await expect(keys).to_be_visible(timeout=20_000)
    await expect(page.get_by_test_id("project-secret-key")).to_contain_text("ah_sec_")
    await shot(page, "02-project-keys")
    _, listed = await atlas.admin("GET", "/admin/api/projects")
    project_id = listed["projects"][0]["id"]
    await page.get_by_test_id("project-keys-dialog-close").click()

    await page.goto(f"{atlas.dashboard_url}/projects/{project_id}/sql")
    editor = page.get_by_test_id("sql-editor")
    await expect(editor).to_be_visible(timeout=20_000)
    await page.wait_for_function("window.__atlashub && window.__atlashub.sqlEditor", timeout=20_000)
    await page.evaluate(
        "window.__atlashub.sqlEditor.setValue('CREATE TABLE fruits (id serial PRIMARY KEY, name text NOT NULL)')"
    )
    await page.get_by_test_id("sql-run").click()
    await expect(
        page.get_by_test_id("sql-results-empty").or_(page.get_by_test_id("sql-result-meta")).first
    ).to_be_visible(timeout=20_000)
    await editor.click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("INSERT INTO fruits (name) VALUES ('apple'), ('pear') RETURNING id, name")
    await page.keyboard.press("Control+Enter")
    await expect(page.get_by_test_id("sql-results-row")).to_have_count(2, timeout=20_000)
    await shot(page, "03-sql-editor")

    await page.goto(f"{atlas.dashboard_url}/projects/{project_id}/tables/fruits?schema=public")
    await expect(page.get_by_test_id("table-grid-row")).to_have_count(2, timeout=20_000)
    await expect(page.get_by_test_id("table-grid")).to_contain_text("pear")
    await shot(page, "04-table-browser")

    await page.goto(f"{atlas.dashboard_url}/projects/{project_id}/storage/uploads")
    await page.get_by_test_id("storage-upload-input").set_input_files(
        files=[{"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hello atlas " * 50_000}]
    )
    progress = page.get_by_test_id("storage-upload-progress").first
    await expect(progress).to_have_attribute("data-state", "done", timeout=30_000)
    await expect(page.get_by_test_id("storage-object-row").first).to_be_visible(timeout=20_000)
    await shot(page, "05-storage")

    await page.goto(f"{atlas.dashboard_url}/projects/{project_id}/cron")
    await page.get_by_test_id("cron-new-button").first.click()
    await page.get_by_test_id("cron-name").fill("ping hook")
    await page.get_by_test_id("cron-schedule").fill("*/5 * * * *")
    await page.get_by_test_id("cron-url").fill(f"http://{target}/hook")
    await expect(page.get_by_test_id("cron-preview-item").first).to_be_visible(timeout=20_000)
    await shot(page, "06-cron-form")
    await page.get_by_test_id("cron-submit").click()
    # The project also has its default daily backup job: pick ours by name.
    link = page.locator('[data-testid="cron-job-row"][data-job-name="ping hook"]').get_by_test_id("cron-job-link")
    await expect(link).to_be_visible(timeout=20_000)
    await link.click()
    await page.get_by_test_id("cron-run-now").first.click()
    await expect(page.locator('[data-testid="cron-run-row"][data-status="success"]').first).to_be_visible(
        timeout=30_000
    )
    await shot(page, "07-cron-history")

    for path, name in (
        (f"/projects/{project_id}/overview", "08-overview"),
        (f"/projects/{project_id}/database", "09-database"),
        (f"/projects/{project_id}/users", "10-users"),
        (f"/projects/{project_id}/analytics", "11-analytics"),
        ("/nodes", "12-nodes"),
        ("/audit", "13-audit"),
        ("/settings", "14-settings"),
    ):
        await page.goto(atlas.dashboard_url + path)
        await page.wait_for_load_state("networkidle")
        await shot(page, name)
