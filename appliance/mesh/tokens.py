"""One-time join tokens: ``<master_node_id>.<secret>``, shown once, stored as SHA-256 of the secret.

A token is consumed inside the transaction that adds the node (``consume(..., tx=tx)``), so a
token can admit at most one node even when two joins race. Unknown, expired and used tokens
are refused with the same client-facing error; only the log says which.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from appliance.control.store import ControlPlane, utcnow
from appliance.errors import BadRequest, Unauthorized
from appliance.mesh.envelope import b64url_decode_strict, b64url_encode
from appliance.mesh.identity import is_node_id

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 3600
MAX_TTL_SECONDS = 7 * 86400
SECRET_BYTES = 32
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class JoinTokenInvalid(Unauthorized):
    code = "join_token_invalid"

    def __init__(self) -> None:
        super().__init__("the join token is unknown, expired or already used")


@dataclass(frozen=True)
class IssuedToken:
    id: str
    token: str
    expires_at: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(text: str) -> tuple[str, str]:
    """Split ``<master_node_id>.<secret>``; the secret must be 32 bytes of strict base64url."""
    master_id, sep, secret = text.strip().partition(".")
    try:
        ok = bool(sep) and is_node_id(master_id) and len(b64url_decode_strict(secret)) == SECRET_BYTES
    except ValueError:
        ok = False
    if not ok:
        raise BadRequest("a join token looks like <master node id>.<secret>", code="join_token_malformed")
    return master_id, secret


def _format(ts: datetime) -> str:
    return ts.strftime(_TIME_FORMAT)


class JoinTokens:
    def __init__(self, store: ControlPlane, master_id: str) -> None:
        self._store = store
        self._master_id = master_id

    async def create(self, ttl_seconds: int = DEFAULT_TTL_SECONDS, *, now: datetime | None = None) -> IssuedToken:
        if not 60 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise BadRequest(
                f"ttl must be between 60 and {MAX_TTL_SECONDS} seconds",
                code="invalid_parameter",
                details={"field": "ttl_seconds"},
            )
        secret = b64url_encode(secrets.token_bytes(SECRET_BYTES))
        token_id = "jt_" + secrets.token_hex(6)
        created = now or datetime.now(UTC)
        expires_at = _format(created + timedelta(seconds=ttl_seconds))
        await self._store.execute(
            "INSERT INTO join_tokens (id, secret_hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
            (token_id, hash_secret(secret), _format(created), expires_at),
        )
        log.info("join token %s created, expires %s", token_id, expires_at)
        return IssuedToken(token_id, f"{self._master_id}.{secret}", expires_at)

    async def consume(self, secret: str, node_id: str, *, tx: Any, now: datetime | None = None) -> str:
        """Mark the token used by ``node_id`` within ``tx``; return its id or raise JoinTokenInvalid."""
        digest = hash_secret(secret)
        async with tx.execute("SELECT id, secret_hash, expires_at, used_at FROM join_tokens") as cursor:
            rows = list(await cursor.fetchall())
        # Compare every stored hash in constant time rather than asking SQLite to find one.
        match = None
        for row in rows:
            if hmac.compare_digest(row["secret_hash"], digest):
                match = row
        if match is None:
            log.warning("join refused: unknown token (node %s)", node_id)
            raise JoinTokenInvalid()
        if match["used_at"] is not None:
            log.warning("join refused: token %s was already used (node %s)", match["id"], node_id)
            raise JoinTokenInvalid()
        if match["expires_at"] <= _format(now or datetime.now(UTC)):
            log.warning("join refused: token %s expired at %s (node %s)", match["id"], match["expires_at"], node_id)
            raise JoinTokenInvalid()
        await tx.execute(
            "UPDATE join_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL",
            (utcnow(), node_id, match["id"]),
        )
        return str(match["id"])

    async def pending(self) -> list[dict[str, Any]]:
        now = _format(datetime.now(UTC))
        rows = await self._store.fetchall(
            "SELECT id, created_at, expires_at FROM join_tokens WHERE used_at IS NULL AND expires_at > ?"
            " ORDER BY created_at",
            (now,),
        )
        return [dict(r) for r in rows]
