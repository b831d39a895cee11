"""Every dashboard page in a real Chromium (Debian's), against a real daemon and real PostgreSQL.

Where test_browser_e2e.py walks the admin's main path, this file works each remaining page for
real and checks the effect through the public or admin API: keys (create, rotate with grace,
revoke — the key really stops), the table browser (pages, sort, copy a cell), a SQL error with
its position and Monaco marker, storage (bucket, upload, download, delete), auth users (search,
disable, enable, revoke sessions, delete), cron (edit, toggle, delete), database tools (backup,
download, restore, CSV import and export), the audit log, settings, nodes, a local admin's
sign-in and sign-out. Throughout, no request may leave 127.0.0.1 and the console may hold no
error other than the expected 4xx answers.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from appliance.dashboard.accounts import AdminAccounts
from appliance.pg.embedded import EmbeddedPostgres
from appliance.resources import web_dist
from tests.dashboard.test_browser_e2e import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.fixtures.daemon import RunningDaemon, running_daemon

pytestmark = pytest.mark.system

T = 20_000  # ms: the longest a single UI state may take to appear
ADMIN_USER = "ops-admin"
ADMIN_PASSWORD = "correct horse battery staple"
EXPECTED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
# The error answers the run provokes on purpose; anything else (and any 5xx) fails the test.
EXPECTED_FAILURES = [
    re.compile(r"401 GET /admin/api/(session|overview|projects)"),  # before sign-in and after sign-out
    re.compile(r"401 POST /admin/api/session"),  # the wrong password
    re.compile(r"400 POST /admin/api/projects/\w+/sql"),  # the syntax error
]


@dataclass
class Run:
    """What the stages share: the daemon, the browser page and the project under test."""

    atlas: RunningDaemon
    page: Any
    expect: Any
    project_id: str = ""
    project_name: str = "Pages Shop"
    secret_key: str = ""
    publishable_key: str = ""
    console_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.atlas.dashboard_url + path

    def project_url(self, path: str) -> str:
        return self.url(f"/projects/{self.project_id}{path}")

    def testid(self, test_id: str) -> Any:
        return self.page.get_by_test_id(test_id)

    def row(self, test_id: str, **attrs: str) -> Any:
        selector = f'[data-testid="{test_id}"]' + "".join(
            f'[data-{k.replace("_", "-")}="{v}"]' for k, v in attrs.items()
        )
        return self.page.locator(selector)

    async def sql(self, statement: str) -> Any:
        status, body = await self.atlas.admin(
            "POST", f"/admin/api/projects/{self.project_id}/sql", json={"sql": statement}
        )
        assert status == 200, body
        return body

    async def clipboard(self) -> str:
        return str(await self.page.evaluate("navigator.clipboard.readText()"))

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(ARTIFACTS / f"pages-{name}.png"), full_page=True)

    async def download(self, click: Any) -> bytes:
        async with self.page.expect_download() as info:
            await click()
        download = await info.value
        path = await download.path()
        return Path(path).read_bytes()


def require_browser() -> None:
    """Fail unless web/dist is built and Chromium installed; make the screenshots' directory."""
    if not (web_dist() / "index.html").exists():
        pytest.fail("web/dist is not built: scripts/test builds it (npm run build in web/)")
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: scripts/test installs Debian's chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


def outside_recorder(outside: list[str]) -> Callable[[Any], None]:
    """A request listener that keeps every URL leaving 127.0.0.1 in ``outside``."""

    def record(request: Any) -> None:
        if not request.url.startswith(("http://127.0.0.1", "data:", "blob:")):
            outside.append(request.url)

    return record


@asynccontextmanager
async def chromium(pw: Any) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, closed when the block ends."""
    browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        await browser.close()


async def new_run(
    browser: Any, atlas: RunningDaemon, expect: Any, page_errors: list[str], on: dict[str, Any], **options: Any
) -> tuple[Any, Run]:
    """A browser context with ``on``'s listeners and ``options``, a page in it watched for errors, the Run
    around both."""
    context = await browser.new_context(**options)
    for event, listener in on.items():
        context.on(event, listener)
    page = await context.new_page()
    run = Run(atlas, page, expect)
    watch(page, run.console_errors, page_errors)
    return context, run


@pytest.fixture
async def hook_target() -> AsyncIterator[str]:
    async def hook(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_every_page_against_the_real_apis(tmp_path: Path, pg: EmbeddedPostgres, hook_target: str) -> None:
    require_browser()
    from playwright.async_api import async_playwright, expect

    outside: list[str] = []
    page_errors: list[str] = []

    failed: list[str] = []

    record = outside_recorder(outside)

    def answered(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.request.method} {urlsplit(response.url).path}")

    async with (
        running_daemon(tmp_path / "state", pg, scheduler={"http_allowlist": (hook_target,)}) as atlas,
        async_playwright() as pw,
    ):
        async with chromium(pw) as browser:
            context, run = await new_run(
                browser,
                atlas,
                expect,
                page_errors,
                {"request": record, "response": answered},
                viewport={"width": 1440, "height": 900},
                accept_downloads=True,
                permissions=["clipboard-read", "clipboard-write"],
            )
            await sign_in_with_dev_token(run)
            await create_project(run)
            await project_keys(run)
            await table_browser(run)
            await sql_error_position(run)
            await storage(run)
            await auth_users(run)
            await cron_jobs(run, hook_target)
            await database_tools(run)
            await audit_log(run)
            await settings(run)
            await nodes(run)
            await context.close()
            await local_admin_sign_in_and_out(run, browser, (record, answered), page_errors)
    assert outside == [], f"the UI requested outside resources: {outside}"
    assert any(f.startswith("400 POST /admin/api/projects/") for f in failed), f"answers not watched: {failed}"
    unexpected_failures = [f for f in failed if not any(p.fullmatch(f) for p in EXPECTED_FAILURES)]
    assert unexpected_failures == [], f"unexpected error answers: {unexpected_failures} (all: {failed})"
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"
    unexpected = [m for m in run.console_errors if not EXPECTED_CONSOLE.search(m)]
    assert unexpected == [], f"console errors: {unexpected}"


def watch(page: Any, console_errors: list[str], page_errors: list[str]) -> None:
    def on_console(message: Any) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    def on_page_error(error: Any) -> None:
        page_errors.append(str(error))

    page.on("console", on_console)
    page.on("pageerror", on_page_error)


async def sign_in_with_dev_token(run: Run) -> None:
    await run.page.goto(run.url("/sign-in"))
    await run.testid("signin-dev-token").fill(run.atlas.admin_token)
    await run.testid("signin-dev-submit").click()
    await run.expect(run.testid("user-menu")).to_be_visible(timeout=T)


async def create_project(run: Run) -> None:
    status, created = await run.atlas.admin("POST", "/admin/api/projects", json={"name": run.project_name})
    assert status == 201, created
    run.project_id, run.secret_key, run.publishable_key = (
        created["id"],
        created["secret_key"],
        created["publishable_key"],
    )


async def keys_by_id(run: Run) -> dict[str, dict[str, Any]]:
    status, body = await run.atlas.admin("GET", f"/admin/api/projects/{run.project_id}/keys")
    assert status == 200, body
    return {k["id"]: k for k in body["keys"]}


async def db_status(run: Run, key: str) -> int:
    status, _ = await run.atlas.public("GET", "/v1/db/tables", key)
    return status


async def project_keys(run: Run) -> None:
    page, expect = run.page, run.expect
    await page.goto(run.project_url("/overview"))
    await expect(run.testid("key-row")).to_have_count(2, timeout=T)
    await expect(run.testid("conn-database")).to_contain_text(f"proj_{run.project_id}")

    # Create: shown once, with a copy button that really copies it.
    await run.testid("create-key-button").click()
    await run.testid("create-key-secret").click()
    await expect(run.testid("new-key-dialog")).to_be_visible(timeout=T)
    created = (await run.testid("new-key-value").inner_text()).strip()
    assert created.startswith("ah_sec_")
    await run.testid("new-key-value-copy").click()
    assert await run.clipboard() == created
    await run.shot("01-new-key")
    await run.testid("new-key-dialog-close").click()
    await expect(run.testid("key-row")).to_have_count(3, timeout=T)
    await expect(page.locator("body")).not_to_contain_text(created)  # shown once, then only its prefix
    assert await db_status(run, created) == 200
    created_id = next(k for k, v in (await keys_by_id(run)).items() if created.startswith(v["prefix"]))

    # Rotate with a grace period: the old key is "expiring" and still works next to the new one.
    await run.row("key-row", key_id=created_id).get_by_test_id("key-actions").click()
    await run.testid("key-rotate").click()
    await run.testid("rotate-key-grace").fill("3600")
    await run.testid("rotate-key-dialog-submit").click()
    await expect(run.testid("new-key-dialog")).to_be_visible(timeout=T)
    rotated = (await run.testid("new-key-value").inner_text()).strip()
    assert rotated.startswith("ah_sec_") and rotated != created
    await run.testid("new-key-dialog-close").click()
    await expect(run.row("key-row", key_id=created_id)).to_have_attribute("data-key-status", "expiring", timeout=T)
    assert await db_status(run, created) == 200
    assert await db_status(run, rotated) == 200

    # Revoke the new key: "revoked" in the table, and the gateway refuses it at once.
    rotated_id = next(k for k, v in (await keys_by_id(run)).items() if rotated.startswith(v["prefix"]))
    await run.row("key-row", key_id=rotated_id).get_by_test_id("key-actions").click()
    await run.testid("key-revoke").click()
    await run.testid("revoke-key-dialog-submit").click()
    await expect(run.row("key-row", key_id=rotated_id)).to_have_attribute("data-key-status", "revoked", timeout=T)
    assert await db_status(run, rotated) == 401
    assert await db_status(run, run.secret_key) == 200
    await run.shot("02-keys")


async def table_browser(run: Run) -> None:
    page, expect = run.page, run.expect
    await run.sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
    await run.sql("INSERT INTO items SELECT g, 'item ' || lpad(g::text, 3, '0') FROM generate_series(1, 120) g")
    await page.goto(run.project_url("/tables/items?schema=public"))
    grid = run.testid("table-grid")
    first_id = grid.get_by_test_id("table-grid-row").first.get_by_test_id("table-grid-cell").first
    await expect(grid.get_by_test_id("table-grid-row")).to_have_count(50, timeout=T)
    await expect(run.testid("table-pagination-range")).to_contain_text("120")

    await run.testid("table-pagination-next").click()
    await expect(page).to_have_url(re.compile(r"offset=50"))
    await expect(grid).to_contain_text("item 051", timeout=T)
    await expect(grid).not_to_contain_text("item 001")
    await run.testid("table-pagination-next").click()
    await expect(grid.get_by_test_id("table-grid-row")).to_have_count(20, timeout=T)
    await expect(run.testid("table-pagination-next")).to_be_disabled()
    await run.testid("table-pagination-prev").click()
    await run.testid("table-pagination-prev").click()
    await expect(grid).to_contain_text("item 001", timeout=T)
    await expect(run.testid("table-pagination-prev")).to_be_disabled()

    header = grid.locator('[data-testid="table-grid-header"][data-column="id"]')
    await header.click()
    await expect(page).to_have_url(re.compile(r"order=id\.asc"))
    await header.click()
    await expect(page).to_have_url(re.compile(r"order=id\.desc"))
    await expect(first_id).to_have_text("120", timeout=T)

    await first_id.hover()
    await first_id.get_by_test_id("copy-cell").click()
    assert await run.clipboard() == "120"
    await run.shot("03-table-browser")


async def sql_error_position(run: Run) -> None:
    page, expect = run.page, run.expect
    await page.goto(run.project_url("/sql"))
    await page.wait_for_function("window.__atlashub && window.__atlashub.sqlEditor", timeout=T)
    await page.evaluate("window.__atlashub.sqlEditor.setValue('SELECT id,\\nFROM items')")
    await run.testid("sql-run").click()
    error = run.testid("sql-error")
    await expect(error).to_be_visible(timeout=T)
    await expect(error).to_have_attribute("data-position", re.compile(r"\d+"))
    await expect(run.testid("sql-error-position")).to_contain_text(re.compile(r"[Ll]ine 2\D+1\b"))
    # Monaco draws its error marker as a squiggly decoration over the offending token.
    await expect(run.testid("sql-editor").locator(".squiggly-error").first).to_be_attached(timeout=T)
    await run.shot("04-sql-error")


async def storage(run: Run) -> None:
    page, expect = run.page, run.expect
    await page.goto(run.project_url("/storage"))
    await run.testid("create-bucket-button").click()
    await run.testid("create-bucket-name").fill("invoices")
    await run.testid("create-bucket-submit").click()
    await expect(page).to_have_url(re.compile(r"/storage/invoices"), timeout=T)
    await expect(run.row("bucket-item", bucket="invoices")).to_be_visible(timeout=T)

    body = b"invoice 42\n" * 1000
    await run.testid("storage-upload-input").set_input_files(
        files=[{"name": "march.txt", "mimeType": "text/plain", "buffer": body}]
    )
    await expect(run.testid("storage-upload-progress").first).to_have_attribute("data-state", "done", timeout=T)
    obj = run.row("storage-object-row", key="march.txt")
    await expect(obj).to_be_visible(timeout=T)
    downloaded = await run.download(lambda: obj.get_by_test_id("storage-download").click())
    assert downloaded == body
    await run.shot("05-storage")

    await obj.get_by_test_id("storage-object-actions").click()
    await run.testid("storage-delete").click()
    await run.testid("delete-object-dialog-submit").click()
    await expect(obj).to_have_count(0, timeout=T)
    await expect(run.testid("storage-empty")).to_be_visible(timeout=T)

    await run.testid("bucket-actions").click()
    await run.testid("delete-bucket").click()
    submit = run.testid("delete-bucket-dialog-submit")
    await expect(submit).to_be_disabled()
    await run.testid("delete-bucket-dialog-input").fill("invoices")
    await submit.click()
    # Back to the storage page, which opens the first remaining bucket.
    await expect(page).not_to_have_url(re.compile(r"/storage/invoices"), timeout=T)
    await expect(run.row("bucket-item", bucket="invoices")).to_have_count(0, timeout=T)
    status, listed = await run.atlas.admin("GET", f"/admin/api/projects/{run.project_id}/buckets")
    assert status == 200 and "invoices" not in [b["name"] for b in listed["buckets"]], listed


async def auth_call(run: Run, path: str, body: dict[str, str]) -> tuple[int, Any]:
    return await run.atlas.public("POST", f"/v1/auth/{path}", run.publishable_key, json=body)


async def user_action(run: Run, email: str, action: str) -> None:
    await run.row("user-row", email=email).get_by_test_id("user-actions").click()
    await run.testid(f"user-{action}").click()


async def auth_users(run: Run) -> None:
    page, expect = run.page, run.expect
    password = "a long enough password"
    sessions = {}
    for email in ("alice@example.com", "bob@example.com"):
        status, sessions[email] = await auth_call(run, "signup", {"email": email, "password": password})
        assert status == 201, sessions[email]
    await page.goto(run.project_url("/users"))
    await expect(run.testid("user-row")).to_have_count(2, timeout=T)
    await run.testid("users-search").fill("alice")
    await expect(run.testid("user-row")).to_have_count(1, timeout=T)
    alice = run.row("user-row", email="alice@example.com")
    await expect(alice).to_be_visible()

    await user_action(run, "alice@example.com", "disable")
    await expect(alice).to_have_attribute("data-status", "disabled", timeout=T)
    status, answer = await auth_call(run, "login", {"email": "alice@example.com", "password": password})
    assert status == 403 and answer["error"]["code"] == "user_disabled", answer

    await user_action(run, "alice@example.com", "enable")
    await expect(alice).to_have_attribute("data-status", "active", timeout=T)
    status, answer = await auth_call(run, "login", {"email": "alice@example.com", "password": password})
    assert status == 200, answer

    await user_action(run, "alice@example.com", "revoke-sessions")
    await expect(page.get_by_text("Sessions revoked")).to_be_visible(timeout=T)
    status, answer = await auth_call(run, "refresh", {"refresh_token": answer["refresh_token"]})
    assert status == 401, answer
    await run.shot("06-auth-users")

    await user_action(run, "alice@example.com", "delete")
    await run.testid("delete-user-dialog-input").fill("alice@example.com")
    await run.testid("delete-user-dialog-submit").click()
    await expect(run.testid("users-empty")).to_be_visible(timeout=T)
    await run.testid("users-search").fill("")
    await expect(run.testid("user-row")).to_have_count(1, timeout=T)
    await expect(run.row("user-row", email="bob@example.com")).to_be_visible()


async def cron_job(run: Run, job_id: str) -> dict[str, Any]:
    status, job = await run.atlas.admin("GET", f"/admin/api/cron-jobs/{job_id}")
    assert status == 200, job
    return job


async def cron_jobs(run: Run, target: str) -> None:
    page, expect = run.page, run.expect
    status, job = await run.atlas.admin(
        "POST",
        "/admin/api/cron-jobs",
        json={
            "name": "nightly ping",
            "project_id": run.project_id,
            "type": "http",
            "schedule_cron": "30 2 * * *",
            "http_url": f"http://{target}/hook",
        },
    )
    assert status == 201, job
    await page.goto(run.project_url(f"/cron/{job['id']}"))
    await run.testid("cron-edit").click()
    await expect(run.testid("cron-form")).to_be_visible(timeout=T)
    await run.testid("cron-schedule").fill("15 4 * * 1")
    await expect(run.testid("cron-preview")).to_have_attribute("data-status", "ok", timeout=T)
    await run.testid("cron-submit").click()
    await expect(run.testid("cron-form")).to_have_count(0, timeout=T)
    await expect(page.get_by_text("15 4 * * 1", exact=True)).to_be_visible(timeout=T)
    assert (await cron_job(run, job["id"]))["schedule_cron"] == "15 4 * * 1"

    switch = run.testid("cron-enable-switch")
    await expect(switch).to_have_attribute("data-state", "checked")
    await switch.click()
    await expect(switch).to_have_attribute("data-state", "unchecked", timeout=T)
    assert (await cron_job(run, job["id"]))["enabled"] is False
    await run.shot("07-cron-job")

    await run.testid("cron-delete").click()
    await run.testid("delete-cron-dialog-submit").click()
    await expect(page).to_have_url(re.compile(rf"/projects/{run.project_id}/cron$"), timeout=T)
    await expect(run.row("cron-job-row", job_id=job["id"])).to_have_count(0, timeout=T)
    status, _ = await run.atlas.admin("GET", f"/admin/api/cron-jobs/{job['id']}")
    assert status == 404


async def pick(run: Run, trigger: str, option: str) -> None:
    await run.testid(trigger).click()
    await run.page.get_by_role("option", name=option).click()


async def first_backup_through_the_ui(run: Run) -> Any:
    """Open the Database tools page of a project with no backup yet, back it up, wait for the verified row."""
    page, expect = run.page, run.expect
    await page.goto(run.project_url("/database"))
    await expect(run.testid("backups-empty")).to_be_visible(timeout=T)
    await run.testid("backup-create").click()
    created = run.testid("backup-progress").filter(has_text="Creating backup")
    await expect(created).to_have_attribute("data-state", "succeeded", timeout=60_000)
    backup = run.testid("backup-row").first
    await expect(backup).to_have_attribute("data-status", "verified", timeout=T)
    return backup


async def database_tools(run: Run) -> None:
    expect = run.expect
    backup = await first_backup_through_the_ui(run)
    dump = await run.download(lambda: backup.get_by_test_id("backup-download").click())
    assert dump.startswith(b"PGDMP"), dump[:16]

    # A row written after the backup is gone once the backup is restored.
    await run.sql("INSERT INTO items VALUES (999, 'after the backup')")
    await backup.get_by_test_id("backup-restore").click()
    submit = run.testid("restore-dialog-submit")
    await expect(submit).to_be_disabled()
    await run.testid("restore-dialog-input").fill(run.project_id)
    await submit.click()
    restored = run.testid("backup-progress").filter(has_text="Restoring backup")
    await expect(restored).to_have_attribute("data-state", "succeeded", timeout=60_000)
    counted = await run.sql("SELECT count(*) AS n FROM items WHERE id = 999")
    assert counted["rows"] == [[0]], counted
    await run.shot("08-backups")

    await pick(run, "io-table", "items")
    await run.testid("io-file").set_input_files(
        files=[{"name": "more.csv", "mimeType": "text/csv", "buffer": b"id,name\n1001,imported a\n1002,imported b\n"}]
    )
    await run.testid("io-import").click()
    await expect(run.testid("io-import-result")).to_contain_text("2", timeout=T)
    exported = await run.download(lambda: run.testid("io-export").click())
    text = exported.decode()
    assert text.splitlines()[0] == "id,name" and "1002,imported b" in text and "120,item 120" in text, text[:200]
    await run.shot("09-import-export")


async def audit_log(run: Run) -> None:
    page, expect = run.page, run.expect
    # Enough entries for a second page (SQL runs are audited by their hash), all in this project.
    for _ in range(100):
        await run.sql("SELECT 1")
    other_status, other = await run.atlas.admin("POST", "/admin/api/projects", json={"name": "Other Shop"})
    assert other_status == 201, other
    await page.goto(run.url("/audit"))
    rows = run.testid("audit-row")
    await expect(rows).to_have_count(100, timeout=T)
    await run.testid("audit-load-more").click()
    await expect(rows.nth(100)).to_be_visible(timeout=T)
    for action in ("key.rotate", "key.revoke", "backup.create", "table.import", "cron_job.delete"):
        await expect(run.row("audit-row", action=action).first).to_be_attached()

    await pick(run, "audit-project-filter", "Other Shop")
    await expect(rows).to_have_count(1, timeout=T)
    await expect(run.row("audit-row", action="project.create", project_id=other["id"])).to_be_visible()
    await pick(run, "audit-project-filter", run.project_name)
    await expect(run.row("audit-row", project_id=run.project_id)).to_have_count(100, timeout=T)
    await expect(rows).to_have_count(100)
    await run.testid("audit-load-more").click()
    await expect(run.row("audit-row", action="key.revoke", project_id=run.project_id)).to_have_count(1, timeout=T)
    assert await run.row("audit-row", project_id=other["id"]).count() == 0
    await run.shot("10-audit")


async def settings(run: Run) -> None:
    page, expect = run.page, run.expect
    await page.goto(run.url("/settings"))
    await expect(run.testid("settings-form")).to_be_visible(timeout=T)
    await expect(run.testid("error-alert")).to_have_count(0)
    await run.shot("11-settings")


async def nodes(run: Run) -> None:
    page, expect = run.page, run.expect
    status, listed = await run.atlas.admin("GET", "/admin/api/nodes")
    assert status == 200, listed
    await page.goto(run.url("/nodes"))
    await expect(run.testid("node-row")).to_have_count(1, timeout=T)
    await expect(run.row("node-row", node_id=listed["self_id"])).to_be_visible()
    await run.testid("add-node-button").click()
    await expect(run.testid("join-dialog")).to_be_visible()
    await run.testid("join-create-token").click()
    await expect(run.testid("join-command")).to_contain_text("atlashub node join --master", timeout=T)
    # The long command is truncated inside the dialog, which does not scroll sideways.
    overflow = await run.testid("join-dialog").evaluate("d => d.scrollWidth - d.clientWidth")
    assert overflow <= 0, f"the join dialog scrolls sideways by {overflow}px"
    await run.testid("join-command-copy").click()
    command = await run.clipboard()
    assert command == (await run.testid("join-command").inner_text()).strip()
    await run.testid("join-token-copy").click()  # the token itself is masked on screen
    token = await run.clipboard()
    assert token and command.endswith(f"--token {token}"), (command, token)
    await run.shot("12-nodes-join")


async def local_admin_sign_in_and_out(
    run: Run, browser: Any, listeners: tuple[Any, Any], page_errors: list[str]
) -> None:
    record, answered = listeners
    expect = run.expect
    await run.atlas.daemon.core.service(AdminAccounts).create_user(ADMIN_USER, ADMIN_PASSWORD)
    context = await browser.new_context(viewport={"width": 1440, "height": 900})
    context.on("request", record)
    context.on("response", answered)
    page = await context.new_page()
    watch(page, run.console_errors, page_errors)
    await page.goto(run.url("/projects"))
    await expect(page).to_have_url(re.compile(r"/sign-in"), timeout=T)
    await page.get_by_test_id("signin-tab-password").click()
    await page.get_by_test_id("signin-username").fill(ADMIN_USER)
    await page.get_by_test_id("signin-password").fill("not the password at all")
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("signin-error")).to_be_visible(timeout=T)
    await page.get_by_test_id("signin-password").fill(ADMIN_PASSWORD)
    await page.get_by_test_id("signin-submit").click()
    await expect(page.get_by_test_id("user-menu")).to_contain_text(ADMIN_USER, timeout=T)
    await page.goto(run.url("/projects"))
    await expect(page.get_by_test_id("project-row")).to_have_count(2, timeout=T)
    await page.screenshot(path=str(ARTIFACTS / "pages-13-local-admin.png"), full_page=True)

    await page.get_by_test_id("user-menu").click()
    await page.get_by_test_id("sign-out").click()
    await expect(page.get_by_test_id("signin-page")).to_be_visible(timeout=T)
    await page.goto(run.url("/projects"))
    await expect(page).to_have_url(re.compile(r"/sign-in"), timeout=T)
    status = await page.evaluate("fetch('/admin/api/projects').then(r => r.status)")
    assert status == 401
    await context.close()
