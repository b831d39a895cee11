"""Runtime settings through the admin API against a real daemon: file defaults, live effect on the
gateway, the SQL editor, backups, notifications and admin sessions; refusals naming the key,
all-or-nothing writes, sealed secrets, the audit log, the redacted file configuration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.backups.alerts import BackupAlerts
from appliance.backups.maintenance import check_unverified
from appliance.backups.service import BackupService
from appliance.doctor import control_plane_results
from appliance.logs import setup_logging
from appliance.pg.embedded import EmbeddedPostgres
from appliance.settings.registry import SETTINGS
from tests.dashboard.test_sessions import call, make_admin, sign_in
from tests.fixtures.daemon import RunningDaemon, running_daemon
from tests.fixtures.discord import Receiver, discord_receiver

ROLES = {"roles": ("gateway", "dashboard", "scheduler", "backups")}
TOKEN = "tok3n-s3cr3t-Zq9"
SMTP_PASSWORD = "hunter2-smtp-Pw7"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with discord_receiver() as state:
        yield state


def daemon(tmp_path: Path, pg: EmbeddedPostgres, receiver: Receiver, **sections: dict[str, Any]) -> Any:
    scheduler = {"http_allowlist": (f"127.0.0.1:{receiver.port}",), **sections.pop("scheduler", {})}
    return running_daemon(tmp_path / "state", pg, node=ROLES, scheduler=scheduler, **sections)


@pytest.fixture
async def atlas(tmp_path: Path, pg: EmbeddedPostgres, receiver: Receiver) -> AsyncIterator[RunningDaemon]:
    file_values = {"gateway": {"rate_limit_burst": 300}, "backups": {"keep_weekly": 0, "keep_monthly": 0}}
    async with daemon(tmp_path, pg, receiver, **file_values) as running:
        yield running


async def get(atlas: RunningDaemon) -> dict[str, Any]:
    status, body = await atlas.admin("GET", "/admin/api/settings")
    assert status == 200, body
    return dict(body)


async def patch(atlas: RunningDaemon, changes: dict[str, Any]) -> dict[str, Any]:
    status, body = await atlas.admin("PATCH", "/admin/api/settings", json=changes)
    assert status == 200, body
    return dict(body)


async def new_project(atlas: RunningDaemon, name: str) -> tuple[str, str]:
    status, body = await atlas.admin("POST", "/admin/api/projects", json={"name": name})
    assert status == 201, body
    return str(body["id"]), str(body["secret_key"])


async def test_defaults_are_the_file_values(atlas: RunningDaemon) -> None:
    body = await get(atlas)
    settings, meta = body["settings"], body["meta"]
    assert list(settings) == [s.key for s in SETTINGS] == list(meta)
    assert settings["gateway.rate_limit_burst"] == 300  # from the file (the fixture's config)
    assert settings["gateway.rate_limit_per_second"] == 100.0
    assert settings["dashboard.sql_timeout_ms"] == 5000
    assert settings["backups.keep_daily"] == 7 and settings["admin.session_hours"] == 12.0
    assert settings["scheduler.smtp_to"] == [] and settings["scheduler.smtp_starttls"] is True
    assert settings["scheduler.discord_webhook_url"] == {"set": False}
    assert settings["scheduler.smtp_password"] == {"set": False}
    assert meta["gateway.rate_limit_burst"] == {
        "type": "int",
        "group": "Public API",
        "label": "Rate limit burst",
        "description": "Requests a project may make at once before the rate limit applies.",
        "min": 1,
        "max": 1_000_000,
        "unit": "requests",
        "secret": False,
        "source": "file",
        "file_value": 300,
    }
    assert meta["scheduler.discord_webhook_url"]["secret"] is True
    assert {m["source"] for m in meta.values()} == {"file"}


async def test_rate_limit_changes_live_and_resets_to_the_file_value(atlas: RunningDaemon) -> None:
    (_, before), (_, during), (_, after) = [await new_project(atlas, f"rl{i}") for i in range(3)]
    assert [(await atlas.public("GET", "/v1/db/tables", before))[0] for _ in range(3)] == [200] * 3

    body = await patch(atlas, {"gateway.rate_limit_burst": 2, "gateway.rate_limit_per_second": 0.1})
    assert body["settings"]["gateway.rate_limit_burst"] == 2
    assert body["meta"]["gateway.rate_limit_burst"]["source"] == "runtime"
    assert body["meta"]["gateway.rate_limit_burst"]["updated_by"] == "dev"
    assert [(await atlas.public("GET", "/v1/db/tables", during))[0] for _ in range(2)] == [200] * 2
    status, refused = await atlas.public("GET", "/v1/db/tables", during)
    assert (status, refused["error"]["code"]) == (429, "rate_limited")
    assert refused["error"]["details"]["retry_after"] == 10  # one token at 0.1 per second

    body = await patch(atlas, {"gateway.rate_limit_burst": None, "gateway.rate_limit_per_second": None})
    assert body["settings"]["gateway.rate_limit_burst"] == 300
    assert body["meta"]["gateway.rate_limit_burst"]["source"] == "file"
    assert [(await atlas.public("GET", "/v1/db/tables", after))[0] for _ in range(5)] == [200] * 5


async def test_page_sizes_change_live(atlas: RunningDaemon) -> None:
    project, key = await new_project(atlas, "pages")
    sql = "CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 20) g"
    status, body = await atlas.admin("POST", f"/admin/api/projects/{project}/sql", json={"sql": sql})
    assert status == 200, body
    status, rows = await atlas.public("GET", "/v1/db/items", key)
    assert status == 200 and len(rows) == 20

    await patch(atlas, {"gateway.default_limit": 3, "gateway.max_limit": 5})
    status, rows = await atlas.public("GET", "/v1/db/items", key)
    assert status == 200 and len(rows) == 3
    status, refused = await atlas.public("GET", "/v1/db/items", key, params={"limit": "6"})
    assert status == 400 and refused["error"]["details"] == {"parameter": "limit", "max": 5}
    status, refused = await atlas.public("POST", "/v1/db/items", key, json={"rows": [{"id": i} for i in range(6)]})
    assert status == 400, refused
    status, _ = await atlas.public("POST", "/v1/db/items", key, json={"rows": [{"id": i} for i in range(5)]})
    assert status == 201


async def test_sql_editor_timeout_changes_live(atlas: RunningDaemon) -> None:
    project, _ = await new_project(atlas, "editor")
    sleep = {"sql": "SELECT pg_sleep(0.2)"}
    status, body = await atlas.admin("POST", f"/admin/api/projects/{project}/sql", json=sleep)
    assert status == 200, body
    await patch(atlas, {"dashboard.sql_timeout_ms": 100})
    status, body = await atlas.admin("POST", f"/admin/api/projects/{project}/sql", json=sleep)
    # The guard refuses a sleep longer than the editor's timeout before it runs.
    assert status == 400 and body["error"]["details"]["rule"] == "sleep", body


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_backup_retention_and_alert_threshold_change_live(atlas: RunningDaemon, receiver: Receiver) -> None:
    project, _ = await new_project(atlas, "retention")
    core = atlas.daemon.core
    now = datetime.now(UTC)
    await core.store.execute(
        "UPDATE projects SET created_at = ? WHERE id = ?", (_stamp(now - timedelta(days=30)), project)
    )
    for day in range(10):  # one verified backup a day, the newest now
        at = _stamp(now - timedelta(days=day))
        await core.store.execute(
            "INSERT INTO backups (id, project_id, kind, created_at, status, verified_at)"
            " VALUES (?, ?, 'project', ?, 'verified', ?)",
            (f"bk_{project}_{day}", project, at, at),
        )
    removed = await core.service(BackupService).apply_retention(project)
    assert len(removed) == 3  # the file keeps 7 days (and no weekly or monthly ones)

    await patch(atlas, {"backups.keep_daily": 2})
    removed = await core.service(BackupService).apply_retention(project)
    assert len(removed) == 5
    left = await core.store.fetchall("SELECT id FROM backups WHERE project_id = ?", (project,))
    assert sorted(r["id"] for r in left) == [f"bk_{project}_0", f"bk_{project}_1"]

    # 30 hours after the newest verified backup: within the file's 36 hours, past 24.
    later = now + timedelta(hours=30)
    assert await check_unverified(core, now=later) == []
    await patch(atlas, {"backups.alert_unverified_hours": 24, "scheduler.discord_webhook_url": receiver.url(TOKEN)})
    assert await check_unverified(core, now=later) == [project]
    # `atlashub doctor` reads the control plane without a running core, and the same threshold.
    [backups] = [r for r in await control_plane_results(atlas.daemon.config) if r.name == "backups"]
    assert backups.message == "1 project(s), each verified within 24 h"
    # ... and the alert went to the webhook set a moment ago, without a restart.
    [post] = receiver.payloads
    assert post["path"] == f"/api/webhooks/42/{TOKEN}"
    assert f"project {project} (retention) has had no verified backup for 24 hours" in post["json"]["content"]


async def test_notification_targets_change_live(atlas: RunningDaemon, receiver: Receiver) -> None:
    alerts = atlas.daemon.core.service(BackupAlerts)
    await alerts.send("[AtlasHub] before", "no target yet")
    assert receiver.payloads == []
    await patch(atlas, {"scheduler.discord_webhook_url": receiver.url("first")})
    await alerts.send("[AtlasHub] one", "to the first")
    await patch(atlas, {"scheduler.discord_webhook_url": receiver.url("second")})
    await alerts.send("[AtlasHub] two", "to the second")
    await patch(atlas, {"scheduler.discord_webhook_url": {"set": False}})
    await alerts.send("[AtlasHub] three", "nowhere")
    assert [p["path"].rsplit("/", 1)[1] for p in receiver.payloads] == ["first", "second"]


@pytest.mark.parametrize(
    ("changes", "key", "code"),
    [
        ({"gateway.rate_limit_burst": 0}, "gateway.rate_limit_burst", "invalid_setting"),
        ({"gateway.rate_limit_burst": 2.5}, "gateway.rate_limit_burst", "invalid_setting"),
        ({"gateway.rate_limit_burst": "10"}, "gateway.rate_limit_burst", "invalid_setting"),
        ({"gateway.rate_limit_burst": True}, "gateway.rate_limit_burst", "invalid_setting"),
        ({"gateway.rate_limit_per_second": 0}, "gateway.rate_limit_per_second", "invalid_setting"),
        ({"gateway.max_limit": 50}, "gateway.max_limit", "invalid_setting"),  # below the default of 100
        ({"dashboard.sql_timeout_ms": 99}, "dashboard.sql_timeout_ms", "invalid_setting"),
        ({"backups.keep_daily": -1}, "backups.keep_daily", "invalid_setting"),
        ({"admin.session_hours": 0}, "admin.session_hours", "invalid_setting"),
        ({"scheduler.smtp_starttls": "yes"}, "scheduler.smtp_starttls", "invalid_setting"),
        ({"scheduler.smtp_to": "ops@example.com"}, "scheduler.smtp_to", "invalid_setting"),
        ({"scheduler.smtp_to": ["not an address"]}, "scheduler.smtp_to", "invalid_setting"),
        ({"scheduler.smtp_host": "mx.example.com"}, "scheduler.smtp_from", "invalid_setting"),
        ({"scheduler.smtp_host": "bad host!"}, "scheduler.smtp_host", "invalid_setting"),
        ({"scheduler.smtp_password": {"set": "yes"}}, "scheduler.smtp_password", "invalid_setting"),
        (
            {"scheduler.discord_webhook_url": f"https://discord.com/api/webhooks/1/{TOKEN}"},
            "scheduler.discord_webhook_url",
            "invalid_setting",
        ),
        ({"nope.nothing": 1}, "nope.nothing", "unknown_setting"),
        # All or nothing: a good value next to a bad one is not written either.
        ({"gateway.rate_limit_burst": 5, "admin.session_hours": 1000}, "admin.session_hours", "invalid_setting"),
        ({"gateway.rate_limit_burst": 5, "nope": 1}, "nope", "unknown_setting"),
    ],
)
async def test_bad_values_are_refused_naming_the_key_and_nothing_changes(
    atlas: RunningDaemon, changes: dict[str, Any], key: str, code: str
) -> None:
    before = await get(atlas)
    status, body = await atlas.admin("PATCH", "/admin/api/settings", json=changes)
    assert status == 400, body
    assert body["error"]["code"] == code and body["error"]["details"] == {"key": key}
    assert body["error"]["message"].startswith(f"{key}: ")
    assert TOKEN not in json.dumps(body)
    assert await get(atlas) == before
    rows = await atlas.daemon.core.store.fetchall("SELECT key FROM runtime_settings")
    assert rows == []
    _, audit = await atlas.admin("GET", "/admin/api/audit")
    [entry] = [e for e in audit["entries"] if e["action"] == "settings.update"]
    assert entry["outcome"] == "failure" and entry["details"]["key"] == key


@pytest.mark.parametrize("body", ["[1, 2]", '"x"', "{not json"])
async def test_a_body_that_is_not_an_object_is_refused(atlas: RunningDaemon, body: str) -> None:
    status, answer = await atlas.admin(
        "PATCH", "/admin/api/settings", data=body, headers={"content-type": "application/json"}
    )
    assert status == 400 and answer["error"]["code"] in ("invalid_body", "invalid_json")


async def test_secrets_are_sealed_masked_never_logged(atlas: RunningDaemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    setup_logging("DEBUG", "json", stream)
    body = await patch(
        atlas,
        {
            "scheduler.discord_webhook_url": receiver_url_with_token(atlas),
            "scheduler.smtp_password": SMTP_PASSWORD,
            "scheduler.smtp_host": "127.0.0.1",
            "scheduler.smtp_from": "atlas@example.com",
            "scheduler.smtp_to": ["ops@example.com"],
        },
    )
    assert body["settings"]["scheduler.discord_webhook_url"] == {"set": True}
    assert body["settings"]["scheduler.smtp_password"] == {"set": True}
    assert body["meta"]["scheduler.smtp_password"]["file_value"] == {"set": False}
    # Sending back what was shown keeps the secret; {"set": false} clears it; null is the file's (none).
    body = await patch(atlas, {"scheduler.discord_webhook_url": {"set": True}, "scheduler.smtp_port": 2525})
    assert body["settings"]["scheduler.discord_webhook_url"] == {"set": True}
    rows = await atlas.daemon.core.store.fetchall("SELECT * FROM runtime_settings")
    assert {r["key"] for r in rows if r["value_enc"]} == {"scheduler.discord_webhook_url", "scheduler.smtp_password"}
    _, audit = await atlas.admin("GET", "/admin/api/audit")
    _, file_view = await atlas.admin("GET", "/admin/api/settings/config")
    shown = [body, audit, file_view, await get(atlas), [tuple(r) for r in rows]]
    body = await patch(atlas, {"scheduler.discord_webhook_url": {"set": False}, "scheduler.smtp_password": None})
    assert body["settings"]["scheduler.discord_webhook_url"] == {"set": False}
    assert body["settings"]["scheduler.smtp_password"] == {"set": False}
    assert body["meta"]["scheduler.smtp_password"]["source"] == "file"
    for secret in (TOKEN, SMTP_PASSWORD):
        assert all(secret not in json.dumps(s, default=str) for s in shown), secret
        assert all(secret not in r.getMessage() for r in caplog.records), secret
        assert secret not in stream.getvalue()
    assert any("runtime settings changed by dev" in r.getMessage() for r in caplog.records)
    kept, first = [e["details"] for e in audit["entries"] if e["action"] == "settings.update"]
    assert kept == {"changed": {"scheduler.smtp_port": 2525}, "reset": []}  # a kept secret is no change
    assert first["changed"]["scheduler.discord_webhook_url"] == {"set": True}
    assert first["changed"]["scheduler.smtp_password"] == {"set": True}


def receiver_url_with_token(atlas: RunningDaemon) -> str:
    [allowed] = atlas.daemon.config.scheduler.http_allowlist
    return f"http://{allowed}/api/webhooks/42/{TOKEN}"


async def test_values_survive_a_restart(tmp_path: Path, pg: EmbeddedPostgres, receiver: Receiver) -> None:
    async with daemon(tmp_path, pg, receiver) as atlas:
        await patch(atlas, {"gateway.rate_limit_burst": 7, "scheduler.discord_webhook_url": receiver.url(TOKEN)})
    async with daemon(tmp_path, pg, receiver) as atlas:
        body = await get(atlas)
        assert body["settings"]["gateway.rate_limit_burst"] == 7
        assert body["settings"]["scheduler.discord_webhook_url"] == {"set": True}
        await atlas.daemon.core.service(BackupAlerts).send("[AtlasHub] after restart", "still delivered")
    assert [(p["path"], p["json"]["content"]) for p in receiver.payloads] == [
        (f"/api/webhooks/42/{TOKEN}", "still delivered")
    ]


async def test_session_lifetime_applies_to_new_sign_ins(atlas: RunningDaemon) -> None:
    await make_admin(atlas)
    await patch(atlas, {"admin.session_hours": 0.5})
    status, body, resp = await call(
        atlas, "POST", "/admin/api/session", json={"username": "alice", "password": "correct horse battery"}
    )
    assert status == 200, body
    assert resp.cookies["atlashub_session"]["max-age"] == "1800"
    row = await atlas.daemon.core.store.fetchone("SELECT created_at, expires_at FROM admin_sessions")
    assert row is not None
    lifetime = datetime.fromisoformat(row["expires_at"]) - datetime.fromisoformat(row["created_at"])
    assert lifetime == timedelta(minutes=30)


async def test_an_admin_is_needed_and_a_session_needs_its_csrf_token(atlas: RunningDaemon) -> None:
    for method, path in (("GET", "/admin/api/settings"), ("GET", "/admin/api/settings/config")):
        status, body, _ = await call(atlas, method, path)
        assert (status, body["error"]["code"]) == (401, "admin_auth_required")
    change = {"json": {"gateway.rate_limit_burst": 9}}
    status, body, _ = await call(atlas, "PATCH", "/admin/api/settings", **change)
    assert (status, body["error"]["code"]) == (401, "admin_auth_required")
    await make_admin(atlas)
    cookie, csrf = await sign_in(atlas)
    status, body, _ = await call(atlas, "PATCH", "/admin/api/settings", cookie=cookie, **change)
    assert (status, body["error"]["code"]) == (403, "csrf_failed")
    assert (await get(atlas))["settings"]["gateway.rate_limit_burst"] == 300
    status, body, _ = await call(atlas, "PATCH", "/admin/api/settings", cookie=cookie, csrf=csrf, **change)
    assert status == 200 and body["meta"]["gateway.rate_limit_burst"]["updated_by"] == "alice"


async def test_the_file_configuration_is_shown_redacted(
    tmp_path: Path, pg: EmbeddedPostgres, receiver: Receiver
) -> None:
    sections = {
        "scheduler": {"discord_webhook_url": receiver.url("file-tok3n")},
        "storage": {"s3_access_key": "AKIAEXAMPLEKEY"},
        "mesh": {"master_url": "https://ops:pa55word@master.example:8081"},
    }
    async with daemon(tmp_path, pg, receiver, **sections) as atlas:
        status, body = await atlas.admin("GET", "/admin/api/settings/config")
        assert status == 200, body
        config = body["config"]
        assert config["node"]["name"] == "test" and config["gateway"]["rate_limit_burst"] == 200
        assert config["postgres"]["password_file"] == atlas.daemon.config.postgres.password_file  # a path
        assert config["scheduler"]["discord_webhook_url"] == "[REDACTED]"
        assert config["storage"]["s3_access_key"] == "[REDACTED]"
        assert config["mesh"]["master_url"] == "https://ops:[REDACTED]@master.example:8081"
        assert body["overridden"] == [] and body["reloadable"] == ["logging.level"]
        for secret in ("file-tok3n", "AKIAEXAMPLEKEY", "pa55word"):
            assert secret not in json.dumps(body)
        settings = await get(atlas)
        assert settings["settings"]["scheduler.discord_webhook_url"] == {"set": True}  # set by the file
        assert settings["meta"]["scheduler.discord_webhook_url"]["file_value"] == {"set": True}
        await patch(atlas, {"gateway.rate_limit_burst": 9})
        _, body = await atlas.admin("GET", "/admin/api/settings/config")
        assert body["overridden"] == ["gateway.rate_limit_burst"]
        assert body["config"]["gateway"]["rate_limit_burst"] == 200  # the file's value, not the live one


async def test_successful_changes_are_audited(atlas: RunningDaemon) -> None:
    await patch(atlas, {"backups.keep_daily": 3})
    await patch(atlas, {"backups.keep_daily": None})
    await patch(atlas, {"backups.keep_daily": None})  # nothing to reset: not audited
    _, audit = await atlas.admin("GET", "/admin/api/audit")
    entries = [e for e in audit["entries"] if e["action"] == "settings.update"]
    assert [(e["outcome"], e["actor"], e["details"]) for e in entries] == [
        ("success", "dev", {"changed": {}, "reset": ["backups.keep_daily"]}),
        ("success", "dev", {"changed": {"backups.keep_daily": 3}, "reset": []}),
    ]
