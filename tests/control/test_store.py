from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.control.store import ControlPlane, Migration, load_migrations
from appliance.errors import StartupError

M1 = Migration(1, "0001_a.sql", "CREATE TABLE a (x INTEGER);")
M2 = Migration(2, "0002_b.sql", "CREATE TABLE b (y TEXT NOT NULL);\nINSERT INTO b VALUES ('seed');")
BROKEN = Migration(2, "0002_b.sql", "CREATE TABLE b (y TEXT);\nINSERT INTO nowhere VALUES (1);")


async def test_shipped_migrations_apply_and_are_recorded(tmp_path: Path) -> None:
    store = ControlPlane(tmp_path / "control.db")
    await store.open()
    try:
        status = await store.status()
        assert status["pending"] == []
        assert [m["name"] for m in status["applied"]] == [m.name for m in load_migrations()]
        tables = {r["name"] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
        for expected in (
            "projects",
            "api_keys",
            "project_db_creds",
            "buckets",
            "file_metadata",
            "audit_logs",
            "cron_jobs",
            "cron_job_runs",
            "backups",
            "nodes",
            "platform_migrations",
        ):
            assert expected in tables
        journal = await store.fetchone("PRAGMA journal_mode")
        assert journal is not None and journal[0] == "wal"
    finally:
        await store.close()


async def test_reopening_applies_only_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ControlPlane(path, [M1])
    await store.open()
    await store.execute("INSERT INTO a VALUES (7)")
    await store.close()
    store = ControlPlane(path, [M1, M2])
    await store.open()
    try:
        assert [r[0] for r in await store.fetchall("SELECT x FROM a")] == [7]
        assert [r[0] for r in await store.fetchall("SELECT y FROM b")] == ["seed"]
        assert [r[0] for r in await store.fetchall("SELECT version FROM platform_migrations")] == [1, 2]
    finally:
        await store.close()


async def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ControlPlane(path, [M1, BROKEN])
    with pytest.raises(StartupError, match=r"0002_b\.sql failed"):
        await store.open()
    store = ControlPlane(path, [M1])
    await store.open()
    try:
        tables = {r[0] for r in await store.fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "b" not in tables
        assert [r[0] for r in await store.fetchall("SELECT version FROM platform_migrations")] == [1]
    finally:
        await store.close()


async def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ControlPlane(path, [M1, M2])
    await store.open()
    await store.close()
    before = path.read_bytes()
    with pytest.raises(StartupError, match="newer AtlasHub"):
        await ControlPlane(path, [M1]).open()
    assert path.read_bytes() == before


async def test_a_changed_applied_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = ControlPlane(path, [M1])
    await store.open()
    await store.close()
    with pytest.raises(StartupError, match="append-only"):
        await ControlPlane(path, [Migration(1, "0001_a.sql", "CREATE TABLE a (z INTEGER);")]).open()


@pytest.mark.parametrize("garbage", [b"this is not sqlite at all" * 100, b"SQLite format 3\x00" + b"\xff" * 4000])
async def test_a_corrupt_database_is_refused_and_never_overwritten(tmp_path: Path, garbage: bytes) -> None:
    path = tmp_path / "control.db"
    path.write_bytes(garbage)
    with pytest.raises(StartupError, match="cannot be read"):
        await ControlPlane(path).open()
    assert path.read_bytes() == garbage


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = ControlPlane(tmp_path / "c.db", [M1])
    await store.open()
    try:
        with pytest.raises(RuntimeError):
            async with store.transaction() as tx:
                await tx.execute("INSERT INTO a VALUES (1)")
                raise RuntimeError("boom")
        assert await store.fetchall("SELECT * FROM a") == []
    finally:
        await store.close()


async def test_online_backup_is_a_consistent_copy(tmp_path: Path) -> None:
    store = ControlPlane(tmp_path / "c.db", [M1])
    await store.open()
    try:
        await store.execute("INSERT INTO a VALUES (42)")
        await store.backup_to(tmp_path / "copy.db")
    finally:
        await store.close()
    copy = sqlite3.connect(tmp_path / "copy.db")
    assert copy.execute("SELECT x FROM a").fetchall() == [(42,)]
    copy.close()


async def test_a_refused_file_leaves_no_connection_thread_behind(tmp_path: Path) -> None:
    import threading

    def workers() -> int:
        return sum(1 for t in threading.enumerate() if "_connection_worker_thread" in t.name)

    before = workers()
    path = tmp_path / "control.db"
    path.write_bytes(b"not a database" * 500)
    with pytest.raises(StartupError):
        await ControlPlane(path).open()
    assert workers() == before
