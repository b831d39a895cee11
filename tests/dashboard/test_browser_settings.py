"""The Settings page in a real Chromium against a real daemon: change a runtime setting, see it
applied and still there after a reload, a refusal shown at its field, a secret that is never shown
again, a return to the file value, and the redacted configuration file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from appliance.pg.embedded import EmbeddedPostgres
from tests.dashboard.test_browser_e2e import ARTIFACTS
from tests.dashboard.test_browser_pages import (
    EXPECTED_CONSOLE,
    Run,
    T,
    chromium,
    new_run,
    require_browser,
    sign_in_with_dev_token,
)
from tests.fixtures.daemon import running_daemon

pytestmark = pytest.mark.system

ALLOWED_HOOK = "127.0.0.1:9"  # never called: the page only stores the URL
HOOK_TOKEN = "br0wser-hook-t0ken"
EXPECTED_FAILURES = [re.compile(r"400 PATCH /admin/api/settings")]


async def shot(run: Run, name: str) -> None:
    await run.page.screenshot(path=str(ARTIFACTS / f"settings-{name}.png"), full_page=True)


async def live(run: Run) -> dict[str, Any]:
    status, body = await run.atlas.admin("GET", "/admin/api/settings")
    assert status == 200, body
    return dict(body)


def field(run: Run, key: str) -> Any:
    return run.testid(f"setting-{key}")


async def save(run: Run) -> None:
    await run.testid("settings-save").click()


async def test_settings_page_changes_persist_and_refusals_show(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    require_browser()
    from playwright.async_api import async_playwright, expect

    failed: list[str] = []
    page_errors: list[str] = []

    def answered(response: Any) -> None:
        if response.status >= 400:
            failed.append(f"{response.status} {response.request.method} {urlsplit(response.url).path}")

    node = {"roles": ("gateway", "dashboard")}
    async with (
        running_daemon(tmp_path / "state", pg, node=node, scheduler={"http_allowlist": (ALLOWED_HOOK,)}) as atlas,
        async_playwright() as pw,
    ):
        async with chromium(pw) as browser:
            context, run = await new_run(
                browser, atlas, expect, page_errors, {"response": answered}, viewport={"width": 1280, "height": 900}
            )
            await sign_in_with_dev_token(run)
            await run.page.goto(run.url("/settings"))
            await expect(run.testid("settings-form")).to_be_visible(timeout=T)
            await change_and_reload(run)
            await refusals(run)
            await secret(run)
            await back_to_the_file_value(run)
            await context.close()
    unexpected = [f for f in failed if not any(p.fullmatch(f) for p in EXPECTED_FAILURES)]
    assert unexpected == [], f"unexpected error answers: {unexpected} (all: {failed})"
    assert any(p.fullmatch(f) for f in failed for p in EXPECTED_FAILURES), "the refusal was not provoked"
    assert page_errors == [], page_errors
    assert [m for m in run.console_errors if not EXPECTED_CONSOLE.search(m)] == []


async def change_and_reload(run: Run) -> None:
    page, expect = run.page, run.expect
    burst = "gateway.rate_limit_burst"
    await expect(field(run, burst)).to_have_value("200")
    await expect(run.row("setting-row", key=burst)).to_have_attribute("data-source", "file")
    await field(run, burst).fill("42")
    await expect(run.testid("settings-save")).to_have_text("Save (1)")
    await save(run)
    await expect(run.row("setting-row", key=burst)).to_have_attribute("data-source", "runtime", timeout=T)
    assert (await live(run))["settings"][burst] == 42
    await page.reload()
    await expect(field(run, burst)).to_have_value("42", timeout=T)
    await expect(run.testid(f"setting-source-{burst}")).to_contain_text("changed here by dev")
    overridden = run.row("file-config-row", key=burst)
    await expect(overridden).to_contain_text("overridden at runtime", timeout=T)
    await expect(overridden.get_by_test_id("file-config-value")).to_have_text("200")  # the file's value
    await shot(run, "1-changed")


async def refusals(run: Run) -> None:
    expect = run.expect
    # The page checks the type; the server checks what the page cannot know.
    await field(run, "gateway.rate_limit_per_second").fill("fast")
    await save(run)
    await expect(run.testid("setting-error-gateway.rate_limit_per_second")).to_have_text("must be a number")
    await field(run, "gateway.rate_limit_per_second").fill("100")
    await field(run, "gateway.max_limit").fill("50")  # below gateway.default_limit (100)
    await field(run, "admin.session_hours").fill("2")
    await save(run)
    error = run.testid("setting-error-gateway.max_limit")
    await expect(error).to_have_text("must be at least gateway.default_limit", timeout=T)
    await shot(run, "2-refused")
    settings = (await live(run))["settings"]
    assert (settings["gateway.max_limit"], settings["admin.session_hours"]) == (1000, 12.0)  # all or nothing
    await field(run, "gateway.max_limit").fill("500")
    await expect(error).to_have_count(0)
    await save(run)
    await expect(run.row("setting-row", key="gateway.max_limit")).to_have_attribute("data-source", "runtime", timeout=T)
    settings = (await live(run))["settings"]
    assert (settings["gateway.max_limit"], settings["admin.session_hours"]) == (500, 2.0)


async def secret(run: Run) -> None:
    page, expect = run.page, run.expect
    key = "scheduler.discord_webhook_url"
    await expect(run.testid(f"setting-clear-{key}")).to_have_count(0)
    await field(run, key).fill(f"http://{ALLOWED_HOOK}/api/webhooks/1/{HOOK_TOKEN}")
    await save(run)
    await expect(run.testid(f"setting-clear-{key}")).to_be_visible(timeout=T)
    await page.reload()
    await expect(field(run, key)).to_have_attribute("placeholder", re.compile("^set"), timeout=T)
    await expect(field(run, key)).to_have_value("")
    await expect(run.row("file-config-row", key="gateway.rate_limit_burst")).to_be_visible(timeout=T)
    assert HOOK_TOKEN not in await page.content()
    assert (await live(run))["settings"][key] == {"set": True}
    await run.testid(f"setting-clear-{key}").click()
    await save(run)
    await expect(field(run, key)).to_have_attribute("placeholder", "not set", timeout=T)
    assert (await live(run))["settings"][key] == {"set": False}


async def back_to_the_file_value(run: Run) -> None:
    page, expect = run.page, run.expect
    burst = "gateway.rate_limit_burst"
    await run.testid(f"setting-reset-{burst}").click()
    await save(run)
    await expect(run.row("setting-row", key=burst)).to_have_attribute("data-source", "file", timeout=T)
    await page.reload()
    await expect(field(run, burst)).to_have_value("200", timeout=T)
    await expect(run.row("file-config-row", key=burst)).not_to_contain_text("overridden", timeout=T)
    assert (await live(run))["meta"][burst]["source"] == "file"
    await shot(run, "3-reset")
