"""pg_dump / pg_restore as subprocesses, scratch databases, and the catalog facts a backup is checked by.

Passwords go to the tools through ``PGPASSWORD`` in their environment, never on a command line.
Database names handled here are platform-generated (``proj_<id>`` and suffixes), checked by
``SCRATCH_DB`` / ``PROJECT_DB`` before they reach SQL, then quoted by the one helper.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from appliance.errors import AtlasError
from appliance.pg.embedded import find_pg_bin
from appliance.pg.server import PgServer
from appliance.projects.model import ProjectNames
from appliance.sqlident import quote_ident

PROJECT_DB = re.compile(r"^proj_[a-z][a-z0-9]{11}$")
SCRATCH_DB = re.compile(r"^proj_[a-z][a-z0-9]{11}_(verify|restore|prev|undone)_[0-9a-f]{8}$")
READ_BLOCK = 1 << 20
_STDERR_TAIL = 4000

# Schemas of the server, never of the project. pg_toast/pg_temp variants are excluded by prefix.
_USER_NS = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'"

FINGERPRINT_SQL = f"""
SELECT line FROM (
  SELECT format('rel %s.%s %s rls=%s force=%s owner=%s acl=%s', n.nspname, c.relname, c.relkind,
                c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner), c.relacl::text) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE {_USER_NS} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT format('col %s.%s.%s %s notnull=%s default=%s', n.nspname, c.relname, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
   WHERE {_USER_NS} AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  UNION ALL
  SELECT format('con %s.%s %s %s', n.nspname, c.relname, co.conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE {_USER_NS}
  UNION ALL
  SELECT format('idx %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE {_USER_NS}
  UNION ALL
  SELECT format('pol %s.%s %s %s %s %s using=%s check=%s', schemaname, tablename, policyname, permissive,
                roles::text, cmd, qual, with_check)
    FROM pg_policies
  UNION ALL
  SELECT format('fn %s.%s(%s) %s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_USER_NS}
  UNION ALL
  SELECT format('trg %s', pg_get_triggerdef(t.oid)) FROM pg_trigger t WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('view %s.%s %s', n.nspname, c.relname, pg_get_viewdef(c.oid))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_USER_NS} AND c.relkind IN ('v', 'm')
  UNION ALL
  SELECT format('nsp %s owner=%s acl=%s', n.nspname, pg_get_userbyid(n.nspowner), n.nspacl::text)
    FROM pg_namespace n WHERE {_USER_NS}
) facts ORDER BY line
"""

TABLES_SQL = f"""
SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_USER_NS} AND c.relkind IN ('r', 'S')
 ORDER BY 1, 2
"""


class ToolFailed(AtlasError):
    status = 500
    code = "backup_tool_failed"


@dataclass(frozen=True)
class CatalogFacts:
    fingerprint: str
    row_counts: dict[str, int]
    sequences: dict[str, int | None]

    def to_manifest(self) -> dict[str, Any]:
        return {"schema_fingerprint": self.fingerprint, "row_counts": self.row_counts, "sequences": self.sequences}


async def catalog_facts(conn: asyncpg.Connection, *, rename: Callable[[str], str] | None = None) -> CatalogFacts:
    """Schema fingerprint, exact row counts and sequence positions, as seen by ``conn``'s snapshot.

    ``rename`` rewrites each catalog line before hashing: a clone names the source's roles again,
    so its fingerprint equals the backup's exactly when owners, grants and policies were carried over.
    """
    lines = [r["line"] for r in await conn.fetch(FINGERPRINT_SQL)]
    if rename is not None:
        lines = sorted(rename(line) for line in lines)
    fingerprint = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    counts: dict[str, int] = {}
    sequences: dict[str, int | None] = {}
    for row in await conn.fetch(TABLES_SQL):
        qualified = f"{row['schema']}.{row['name']}"
        relation = f"{quote_ident(row['schema'])}.{quote_ident(row['name'])}"
        if row["kind"] == "r":
            counts[qualified] = int(await conn.fetchval(f"SELECT count(*) FROM {relation}"))
        else:
            seq = await conn.fetchrow(f"SELECT last_value, is_called FROM {relation}")
            sequences[qualified] = int(seq["last_value"]) if seq["is_called"] else None
    return CatalogFacts(fingerprint, counts, sequences)


def compare_facts(expected: dict[str, Any], got: CatalogFacts) -> list[str]:
    """Differences between a manifest and a restored database; empty when they agree."""
    problems = []
    if expected.get("schema_fingerprint") != got.fingerprint:
        problems.append("schema fingerprint differs")
    want = expected.get("row_counts") or {}
    for table in sorted(set(want) | set(got.row_counts)):
        if want.get(table) != got.row_counts.get(table):
            problems.append(f"{table}: {want.get(table)} rows expected, {got.row_counts.get(table)} found")
    if (expected.get("sequences") or {}) != got.sequences:
        problems.append("sequence positions differ")
    return problems


def tool_env(pg: PgServer, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(
        PGHOST=pg.host,
        PGPORT=str(pg.port),
        PGUSER=pg.user,
        PGDATABASE=database,
        PGAPPNAME="atlashub-backups",
        PGCONNECT_TIMEOUT="10",
    )
    if pg.password:
        env["PGPASSWORD"] = pg.password
    return env


def tool(name: str) -> str:
    return str(find_pg_bin() / name)


async def spawn_dump(
    pg: PgServer, database: str, *, fmt: str = "c", snapshot: str | None = None
) -> asyncio.subprocess.Process:
    args = [tool("pg_dump"), f"--format={fmt}", "--no-password"]
    if snapshot:
        args.append(f"--snapshot={snapshot}")
    return await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=tool_env(pg, database),
        limit=READ_BLOCK * 2,
    )


async def read_stderr(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    data = await proc.stderr.read()
    return data.decode(errors="replace")[-_STDERR_TAIL:]


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill a tool that is still running and reap it. Idempotent."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    await proc.wait()


async def restore_into(pg: PgServer, database: str, chunks: AsyncIterator[bytes]) -> None:
    """Feed a custom-format dump to pg_restore, all or nothing (``--single-transaction``)."""
    proc = await asyncio.create_subprocess_exec(
        tool("pg_restore"),
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={database}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=tool_env(pg, database),
    )
    assert proc.stdin is not None
    errors = asyncio.ensure_future(read_stderr(proc))
    try:
        try:
            async for chunk in chunks:
                proc.stdin.write(chunk)
                await proc.stdin.drain()
            proc.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            pass  # pg_restore stopped reading: its exit code and stderr say why
        code = await proc.wait()
        text = await errors
    finally:
        await stop(proc)
        errors.cancel()
    if code != 0:
        raise ToolFailed(f"pg_restore failed (exit {code}): {text.strip()[-500:]}")


async def run_tool(pg: PgServer, database: str, *args: str) -> bytes:
    """Run a PostgreSQL tool to its end; its stdout, or ``ToolFailed`` with the tail of its stderr."""
    proc = await asyncio.create_subprocess_exec(
        tool(args[0]),
        *args[1:],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=tool_env(pg, database),
    )
    try:
        out, err = await proc.communicate()
    finally:
        await stop(proc)
    if proc.returncode != 0:
        text = err.decode(errors="replace")[-_STDERR_TAIL:].strip()
        raise ToolFailed(f"{args[0]} failed (exit {proc.returncode}): {text[-500:]}")
    return out


def without_policies(toc: str) -> str:
    """A ``pg_restore -l`` listing with its POLICY entries commented out (for ``pg_restore -L``).

    An entry reads ``<dump id>; <table oid> <oid> <TYPE> <schema> <name> <owner>``: the type comes
    right after the two oids, before any name, so a name cannot be mistaken for it.
    """
    entry = re.compile(r"^\d+; \d+ \d+ POLICY ")
    return "\n".join(";" + line if entry.match(line) else line for line in toc.splitlines()) + "\n"


async def create_database(conn: asyncpg.Connection, names: ProjectNames, database: str) -> None:
    """An empty database for a restore, with the project's ownership and connect grants."""
    if not SCRATCH_DB.match(database):
        raise ValueError("not a scratch database name")
    q = quote_ident
    await conn.execute(f"CREATE DATABASE {q(database)} OWNER {q(names.owner)} ENCODING 'UTF8' TEMPLATE template0")
    await conn.execute(f"REVOKE ALL ON DATABASE {q(database)} FROM PUBLIC")
    await conn.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {q(database)} TO {q(names.owner)}, {q(names.app)}")


async def drop_database(conn: asyncpg.Connection, database: str) -> None:
    if not SCRATCH_DB.match(database):
        raise ValueError("refusing to drop a database that is not a scratch database")
    await conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")


def scratch_name(names: ProjectNames, kind: str) -> str:
    return f"{names.database}_{kind}_{secrets.token_hex(4)}"
