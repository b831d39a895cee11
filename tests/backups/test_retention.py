"""Grandfather-father-son retention (7 daily / 4 weekly / 6 monthly) on a fixed calendar."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from appliance.backups.retention import BackupRef, Policy, to_delete, to_keep
from appliance.backups.service import BUCKET, BackupService
from tests.fixtures.daemon import RunningDaemon

LAST = datetime(2024, 6, 30, 3, 0, tzinfo=UTC)  # a Sunday: the end of an ISO week


def daily(days: int, *, verified: bool = True) -> list[BackupRef]:
    """One good backup a day at 03:00 for ``days`` days ending on LAST; ids are the dates."""
    return [
        BackupRef((LAST - timedelta(days=n)).date().isoformat(), LAST - timedelta(days=n), True, verified)
        for n in range(days)
    ]


def test_gfs_keeps_7_daily_4_weekly_6_monthly() -> None:
    kept = to_keep(daily(400), Policy(7, 4, 6))
    days = {f"2024-06-{d}" for d in range(24, 31)}
    weeks = {"2024-06-30", "2024-06-23", "2024-06-16", "2024-06-09"}
    months = {"2024-06-30", "2024-05-31", "2024-04-30", "2024-03-31", "2024-02-29", "2024-01-31"}
    assert kept == days | weeks | months
    assert len(kept) == 15


def test_two_backups_a_day_keep_the_newest_of_the_day() -> None:
    refs = [*daily(3), BackupRef("morning", LAST - timedelta(hours=2), True, True)]
    assert "morning" not in to_keep(refs, Policy(7, 4, 6))
    assert to_delete(refs, Policy(7, 4, 6)) == ["morning"]


def test_the_newest_verified_backup_is_never_deleted() -> None:
    # Nothing verified lately (verification kept failing); the last verified one is 200 days old.
    recent = daily(30, verified=False)
    old = BackupRef("old-verified", LAST - timedelta(days=200), True, True)
    older = BackupRef("older-verified", LAST - timedelta(days=230), True, True)
    policy = Policy(daily=2, weekly=1, monthly=1)
    kept = to_keep([*recent, old, older], policy)
    assert "old-verified" in kept and "older-verified" not in kept
    # Even with every count at zero the newest good and the newest verified stay.
    assert to_keep([*recent, old], Policy(0, 0, 0)) == {"2024-06-30", "old-verified"}


def test_failed_backups_go_once_older_than_what_is_kept() -> None:
    refs = [
        *daily(10),
        BackupRef("failed-new", LAST - timedelta(hours=1), False, False),
        BackupRef("failed-old", LAST - timedelta(days=9, hours=1), False, False),
    ]
    doomed = set(to_delete(refs, Policy(3, 0, 0)))
    assert "failed-new" not in doomed and "failed-old" in doomed
    assert to_delete([BackupRef("only-failed", LAST, False, False)], Policy()) == ["only-failed"]


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_apply_retention_deletes_rows_and_objects(atlas: RunningDaemon) -> None:
    """The service applies the rule to real rows and stored objects; running backups are left alone."""
    status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "kept"})
    assert status == 201
    pid = project["id"]
    core = atlas.daemon.core
    await core.storage.ensure_bucket(BUCKET)
    refs = daily(60)
    for ref in refs:
        key = f"{pid}/bk_{ref.id}.dump.enc"
        await core.storage.put_stream(BUCKET, key, _one(b"x"), content_type="application/octet-stream")
        await core.store.execute(
            "INSERT INTO backups (id, project_id, kind, created_at, status, object_key, verified_at)"
            " VALUES (?, ?, 'project', ?, 'verified', ?, ?)",
            ("bk_" + ref.id, pid, _stamp(ref.created_at), key, _stamp(ref.created_at)),
        )
    await core.store.execute(
        "INSERT INTO backups (id, project_id, kind, created_at, status, object_key)"
        " VALUES ('bk_running', ?, 'project', ?, 'running', NULL)",
        (pid, _stamp(LAST - timedelta(days=59))),
    )
    removed = await core.service(BackupService).apply_retention(pid)
    expected_kept = {"bk_" + i for i in to_keep(refs, Policy(7, 4, 6))}
    assert set(removed) == {"bk_" + r.id for r in refs} - expected_kept
    rows = await core.store.fetchall("SELECT id FROM backups WHERE project_id = ?", (pid,))
    assert {r["id"] for r in rows} == expected_kept | {"bk_running"}
    listed, _ = await core.storage.list(BUCKET, f"{pid}/", limit=1000)
    stored = {o.key for o in listed}
    assert stored == {f"{pid}/{i}.dump.enc" for i in expected_kept}


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
