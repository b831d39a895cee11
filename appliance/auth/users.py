"""SQL over a project's ``atlas_auth`` schema, run on the project's app-role connection."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from appliance.auth.tokens import RefreshToken

USER_COLUMNS = "id, email, disabled, created_at, last_sign_in_at"


@dataclass(frozen=True)
class User:
    id: str
    email: str
    disabled: bool
    created_at: datetime
    last_sign_in_at: datetime | None

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> User:
        return cls(str(r["id"]), r["email"], r["disabled"], r["created_at"], r["last_sign_in_at"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "created_at": self.created_at.isoformat(),
            "last_sign_in_at": self.last_sign_in_at.isoformat() if self.last_sign_in_at else None,
            "disabled": self.disabled,
        }


def as_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except (TypeError, ValueError, AttributeError):
        return None


async def insert_user(conn: asyncpg.Connection, email: str, password_hash: str) -> User | None:
    """None when the email is taken."""
    row = await conn.fetchrow(
        "INSERT INTO atlas_auth.users (email, password_hash, last_sign_in_at) VALUES ($1, $2, now())"
        f" ON CONFLICT (lower(email)) DO NOTHING RETURNING {USER_COLUMNS}",
        email,
        password_hash,
    )
    return User.from_record(row) if row else None


async def credentials(conn: asyncpg.Connection, email: str) -> tuple[User, str] | None:
    row = await conn.fetchrow(
        f"SELECT {USER_COLUMNS}, password_hash FROM atlas_auth.users WHERE lower(email) = $1", email
    )
    return (User.from_record(row), row["password_hash"]) if row else None


async def mark_signed_in(conn: asyncpg.Connection, user_id: str) -> None:
    await conn.execute("UPDATE atlas_auth.users SET last_sign_in_at = now() WHERE id = $1", uuid.UUID(user_id))


async def get_user(conn: asyncpg.Connection, user_id: str) -> User | None:
    uid = as_uuid(user_id)
    if uid is None:
        return None
    row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM atlas_auth.users WHERE id = $1", uid)
    return User.from_record(row) if row else None


async def list_users(conn: asyncpg.Connection, search: str | None, limit: int, offset: int) -> tuple[list[User], int]:
    where, params = "", []
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, params = "WHERE lower(email) LIKE $1", [f"%{escaped}%"]
    n = len(params)
    rows = await conn.fetch(
        f"SELECT {USER_COLUMNS}, count(*) OVER () AS total FROM atlas_auth.users {where}"
        f" ORDER BY created_at DESC, id LIMIT ${n + 1} OFFSET ${n + 2}",
        *params,
        limit,
        offset,
    )
    if rows:
        return [User.from_record(r) for r in rows], rows[0]["total"]
    total = await conn.fetchval(f"SELECT count(*) FROM atlas_auth.users {where}", *params)
    return [], total


async def set_disabled(conn: asyncpg.Connection, user_id: str, disabled: bool) -> User | None:
    uid = as_uuid(user_id)
    if uid is None:
        return None
    row = await conn.fetchrow(
        f"UPDATE atlas_auth.users SET disabled = $2, updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}",
        uid,
        disabled,
    )
    return User.from_record(row) if row else None


async def delete_user(conn: asyncpg.Connection, user_id: str) -> bool:
    uid = as_uuid(user_id)
    if uid is None:
        return False
    return await conn.execute("DELETE FROM atlas_auth.users WHERE id = $1", uid) == "DELETE 1"


# -- refresh tokens ----------------------------------------------------------------------------


async def insert_refresh(
    conn: asyncpg.Connection, token: RefreshToken, user_id: str, family_id: uuid.UUID, lifetime_days: int
) -> None:
    await conn.execute(
        "INSERT INTO atlas_auth.refresh_tokens (id, user_id, family_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4, now() + make_interval(days => $5))",
        token.id,
        uuid.UUID(user_id),
        family_id,
        token.hash,
        lifetime_days,
    )


async def lock_refresh(conn: asyncpg.Connection, token_id: uuid.UUID) -> asyncpg.Record | None:
    """The token's row, locked for this transaction, with its user (inside a transaction)."""
    return await conn.fetchrow(
        "SELECT t.token_hash, t.family_id, t.used_at IS NOT NULL AS used, t.revoked_at IS NOT NULL AS revoked,"
        " t.expires_at <= now() AS expired, u.id AS user_id, u.email, u.disabled"
        " FROM atlas_auth.refresh_tokens t JOIN atlas_auth.users u ON u.id = t.user_id"
        " WHERE t.id = $1 FOR UPDATE OF t",
        token_id,
    )


async def rotate_refresh(
    conn: asyncpg.Connection, old_id: uuid.UUID, new: RefreshToken, row: asyncpg.Record, lifetime_days: int
) -> None:
    await conn.execute(
        "WITH used AS (UPDATE atlas_auth.refresh_tokens SET used_at = now(), replaced_by = $2 WHERE id = $1)"
        " INSERT INTO atlas_auth.refresh_tokens (id, user_id, family_id, token_hash, expires_at)"
        " VALUES ($2, $3, $4, $5, now() + make_interval(days => $6))",
        old_id,
        new.id,
        row["user_id"],
        row["family_id"],
        new.hash,
        lifetime_days,
    )


async def revoke_family(conn: asyncpg.Connection, family_id: uuid.UUID) -> int:
    status = await conn.execute(
        "UPDATE atlas_auth.refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )
    return int(status.split()[-1])


async def revoke_user_tokens(conn: asyncpg.Connection, user_id: str) -> int:
    uid = as_uuid(user_id)
    if uid is None:
        return 0
    status = await conn.execute(
        "UPDATE atlas_auth.refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", uid
    )
    return int(status.split()[-1])


async def delete_expired(conn: asyncpg.Connection, revoked_grace_days: int = 1) -> int:
    """Expired tokens, and families revoked more than ``revoked_grace_days`` ago."""
    status = await conn.execute(
        "DELETE FROM atlas_auth.refresh_tokens WHERE expires_at <= now()"
        " OR revoked_at < now() - make_interval(days => $1)",
        revoked_grace_days,
    )
    return int(status.split()[-1])
