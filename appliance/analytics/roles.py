"""Read-only LOGIN roles for BI tools: the project's analytics role and its tenant-scoped siblings.

Every such role is made the same way (:func:`create_reader_role`): NOINHERIT, member of no role,
a connection limit and per-role timeouts, ``search_path`` set to its one schema, read-only
transactions by default; CONNECT on its own database only (no TEMPORARY), USAGE on its schema
only, SELECT on the views there, present and future (default privileges of the owner role).

The password never reaches PostgreSQL or the logs in clear: the server receives a SCRAM-SHA-256
verifier computed here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import asyncpg

from appliance.errors import Conflict
from appliance.sqlident import quote_ident

SCRAM_ITERATIONS = 4096
_DURATION = re.compile(r"^\d+(ms|s|min)$")
_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# Schemas of a project database a reader role is told, out loud, it has no rights on.
PROJECT_SCHEMAS = ("public", "atlas", "auth")


def scram_verifier(password: str, *, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 secret PostgreSQL stores for ``password`` (ASCII passwords need no SASLprep)."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def new_password() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class RoleLimits:
    """Per-role settings; durations are PostgreSQL interval literals such as ``60s``."""

    connection_limit: int = 10
    statement_timeout: str = "60s"
    idle_in_transaction_session_timeout: str = "60s"
    lock_timeout: str = "5s"

    def settings(self, schema: str) -> dict[str, str]:
        values = {
            "statement_timeout": self.statement_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_session_timeout,
            "lock_timeout": self.lock_timeout,
        }
        for name, value in values.items():
            if not _DURATION.match(value):
                raise ValueError(f"{name} must look like 60s, 500ms or 5min")
        if not _PLAIN_NAME.match(schema):
            raise ValueError("a reader's schema is a plain lower-case name")
        return {**values, "search_path": schema, "default_transaction_read_only": "on"}


async def set_password(conn: asyncpg.Connection, role: str, password: str) -> None:
    statement = await conn.fetchval(
        "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, scram_verifier(password)
    )
    await conn.execute(statement)


async def role_exists(conn: asyncpg.Connection, role: str) -> bool:
    return bool(await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", role))


async def create_reader_role(
    conn: asyncpg.Connection,
    *,
    role: str,
    password: str,
    database: str,
    owner: str,
    schema: str,
    limits: RoleLimits,
) -> None:
    """Create ``role`` and ``schema`` (owned by ``owner``) with the reader's rights. Call inside a transaction."""
    q = quote_ident
    r, o, s = q(role), q(owner), q(schema)
    await conn.execute(
        f"CREATE ROLE {r} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        f" CONNECTION LIMIT {int(limits.connection_limit)}"
    )
    await set_password(conn, role, password)
    for name, value in limits.settings(schema).items():
        await conn.execute(f"ALTER ROLE {r} SET {name} = '{value}'")  # checked by settings()
    await conn.execute(f"REVOKE ALL ON DATABASE {q(database)} FROM {r}")
    await conn.execute(f"GRANT CONNECT ON DATABASE {q(database)} TO {r}")
    found = await conn.fetchval("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema)
    if found is None:
        await conn.execute(f"CREATE SCHEMA {s} AUTHORIZATION {o}")
    elif found != owner:
        raise Conflict(f"schema {schema} exists and is not owned by the project's owner role", code="schema_conflict")
    await conn.execute(f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC")
    await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}")
    await conn.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}")
    # Nothing else, said out loud: no rights on the project's other schemas.
    for other in PROJECT_SCHEMAS:
        await conn.execute(f"REVOKE ALL ON SCHEMA {q(other)} FROM {r}")


async def end_sessions(conn: asyncpg.Connection, role: str) -> None:
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        role,
    )


async def rotate(conn: asyncpg.Connection, role: str, password: str) -> None:
    """The new password works at once; the old one stops and the role's open sessions end."""
    await set_password(conn, role, password)
    await end_sessions(conn, role)


async def drop_role(conn: asyncpg.Connection, role: str) -> None:
    """Drop ``role`` if it exists, ending its sessions first. Idempotent."""
    if not await role_exists(conn, role):
        return
    await conn.execute(f"ALTER ROLE {quote_ident(role)} NOLOGIN")  # no new sessions from here on
    await end_sessions(conn, role)
    async with conn.transaction():
        await conn.execute(f"DROP OWNED BY {quote_ident(role)}")
        await conn.execute(f"DROP ROLE {quote_ident(role)}")
