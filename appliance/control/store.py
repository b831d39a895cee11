"""The control plane: one SQLite file in WAL mode, one writer, readers apart.

Lifecycle: ``await store.open()`` checks the file (never overwriting a damaged or newer one)
and applies pending migrations; ``await store.close()`` is idempotent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from appliance.errors import StartupError
from appliance.resources import sql_dir

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def utcnow() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir("control")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise StartupError(f"control-plane migration {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StartupError(f"two control-plane migrations share a number: {versions}")
    return found


class ControlPlane:
    def __init__(self, path: Path, migrations: Sequence[Migration] | None = None) -> None:
        self.path = path
        self._migrations = list(migrations) if migrations is not None else None
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self, *, migrate: bool = True) -> None:
        migrations = self._migrations if self._migrations is not None else load_migrations()
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            self._writer = await self._connect()
            if existed:
                await self._check_integrity(self._writer)
            await self._writer.execute(
                "CREATE TABLE IF NOT EXISTS platform_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            await self._check_versions(migrations)
            if migrate:
                await self._apply(migrations)
            self._reader = await self._connect()
        except sqlite3.DatabaseError as exc:
            await self.close()
            raise StartupError(
                f"the control plane {self.path} cannot be read ({exc}); it is not touched. "
                "Restore it from a control-plane backup or move it away."
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                try:
                    await _close(conn)
                except Exception:  # pragma: no cover - closing is best effort
                    log.exception("closing the control plane failed")
        self._reader = self._writer = None

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA busy_timeout = 5000")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            # A damaged file fails here; the connection's thread must not outlive the refusal.
            await _close(conn)
            raise
        return conn

    async def _check_integrity(self, conn: aiosqlite.Connection) -> None:
        async with conn.execute("PRAGMA quick_check") as cursor:
            row = await cursor.fetchone()
        if row is None or row[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {row[0] if row else 'no answer'}")

    async def _check_versions(self, migrations: Sequence[Migration]) -> None:
        assert self._writer is not None
        known = {m.version: m for m in migrations}
        async with self._writer.execute("SELECT version, name, checksum FROM platform_migrations") as cur:
            applied = await cur.fetchall()
        for version, name, checksum in applied:
            if version not in known:
                raise StartupError(
                    f"the control plane {self.path} was written by a newer AtlasHub (migration {name} "
                    "is unknown to this version); refusing to start. Install the newer version again, "
                    "or restore the control-plane snapshot taken before the upgrade."
                )
            if known[version].checksum != checksum:
                raise StartupError(
                    f"control-plane migration {name} changed after it was applied; migrations are append-only"
                )

    async def _apply(self, migrations: Sequence[Migration]) -> None:
        assert self._writer is not None
        async with self._writer.execute("SELECT version FROM platform_migrations") as cur:
            applied = {row[0] for row in await cur.fetchall()}
        for migration in migrations:
            if migration.version in applied:
                continue
            log.info("applying control-plane migration %s", migration.name)
            async with self._write_lock:
                try:
                    # executescript would commit a pending transaction first, so the script opens its own.
                    await self._writer.executescript("BEGIN IMMEDIATE;\n" + migration.sql + "\n;")
                    await self._writer.execute(
                        "INSERT INTO platform_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)",
                        (migration.version, migration.name, migration.checksum, utcnow()),
                    )
                    await self._writer.execute("COMMIT")
                except sqlite3.Error as exc:
                    if self._writer.in_transaction:
                        await self._writer.execute("ROLLBACK")
                    raise StartupError(
                        f"control-plane migration {migration.name} failed ({exc}); nothing of it was applied"
                    ) from None

    async def status(self) -> dict[str, Any]:
        """Applied and pending migrations (for `atlashub doctor` and the dashboard)."""
        migrations = self._migrations if self._migrations is not None else load_migrations()
        rows = await self.fetchall("SELECT version, name, applied_at FROM platform_migrations ORDER BY version")
        applied = {r["version"] for r in rows}
        return {
            "applied": [dict(r) for r in rows],
            "pending": [m.name for m in migrations if m.version not in applied],
            "latest": migrations[-1].version if migrations else 0,
        }

    # -- queries ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def _read_conn(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("control plane is not open")
        return self._reader

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._read_conn().execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        async with self._read_conn().execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """One write statement in its own transaction; returns the number of rows changed."""
        async with self.transaction() as tx:
            cursor = await tx.execute(sql, tuple(params))
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The single writer: BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
        if self._writer is None:
            raise RuntimeError("control plane is not open")
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def get_meta(self, key: str) -> str | None:
        row = await self.fetchone("SELECT value FROM platform_meta WHERE key = ?", (key,))
        return row["value"] if row else None

    async def set_meta(self, key: str, value: str) -> None:
        await self.execute(
            "INSERT INTO platform_meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def backup_to(self, target: Path) -> None:
        """A consistent online copy (SQLite's backup API), e.g. before an upgrade."""
        if self._reader is None:
            raise RuntimeError("control plane is not open")
        async with aiosqlite.connect(target) as dest:
            await self._reader.backup(dest)


async def _close(conn: aiosqlite.Connection) -> None:
    """Close and wait for the connection's worker thread: aiosqlite's ``close()`` returns a moment
    before that thread ends, and a thread still alive at exit keeps the interpreter waiting."""
    await conn.close()
    thread = getattr(conn, "_thread", None)
    if thread is not None and thread.is_alive():
        thread.join(timeout=2)  # it is past its last statement: microseconds
