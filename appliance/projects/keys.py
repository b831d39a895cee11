"""Project API keys: shown once, stored as SHA-256 hashes, looked up from memory on the hot path.

The in-memory cache holds every usable key (hash → record). It is loaded at start-up and kept
in step by every change made through this service, so revocation takes effect at once.
``last_used_at`` is collected in memory and flushed periodically: no write per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from appliance import audit
from appliance.control.store import ControlPlane, utcnow
from appliance.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

KEY_TYPES = {"publishable": "ah_pub_", "secret": "ah_sec_"}
DISPLAY_PREFIX_LEN = 12


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(key_type: str) -> str:
    return KEY_TYPES[key_type] + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _parse_time(value: str | None) -> float | None:
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def _format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class KeyRecord:
    id: str
    project_id: str
    type: str
    key_hash: str
    prefix: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None

    def status(self, now: float | None = None) -> str:
        if self.revoked_at:
            return "revoked"
        expires = _parse_time(self.expires_at)
        if expires is not None:
            return "expired" if expires <= (now or time.time()) else "expiring"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "type": self.type,
            "prefix": self.prefix,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "status": self.status(),
        }


_COLUMNS = "id, project_id, type, key_hash, prefix, created_at, expires_at, revoked_at, last_used_at"


class KeyService:
    def __init__(self, store: ControlPlane, *, grace_seconds: int = 86400) -> None:
        self._store = store
        self._grace = grace_seconds
        self._by_hash: dict[str, KeyRecord] = {}
        self._expires: dict[str, float] = {}
        self._used: dict[str, float] = {}
        self._changes = 0  # bumped by every change made through this service

    async def load(self) -> None:
        rows = await self._store.fetchall(f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL")
        self._by_hash = {}
        self._expires = {}
        for row in rows:
            self._remember(KeyRecord(**dict(row)))

    async def refresh(self) -> bool:
        """Take in what another process changed (the ``atlashub project`` commands): re-read the
        usable keys and replace the cache when they differ. A change made through this service
        during the read wins; the next call looks again. True when the cache changed."""
        seen = self._changes
        rows = await self._store.fetchall(f"SELECT {_COLUMNS} FROM api_keys WHERE revoked_at IS NULL")
        if seen != self._changes:
            return False
        fresh = [KeyRecord(**dict(row)) for row in rows]
        if {r.key_hash: r.expires_at for r in fresh} == {h: r.expires_at for h, r in self._by_hash.items()}:
            return False
        self._by_hash, self._expires = {}, {}
        for record in fresh:
            self._remember(record)
        return True

    def _remember(self, record: KeyRecord) -> None:
        self._changes += 1
        self._by_hash[record.key_hash] = record
        expires = _parse_time(record.expires_at)
        if expires is not None:
            self._expires[record.key_hash] = expires

    def _forget(self, key_hash: str) -> None:
        self._changes += 1
        self._by_hash.pop(key_hash, None)
        self._expires.pop(key_hash, None)

    # -- hot path --------------------------------------------------------------------------

    def resolve(self, presented: str, now: float | None = None) -> KeyRecord | None:
        """The usable key for this secret, or None. No I/O."""
        if not presented.startswith(("ah_pub_", "ah_sec_")) or len(presented) > 128:
            return None
        digest = hash_key(presented)
        record = self._by_hash.get(digest)
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            return None
        expires = self._expires.get(digest)
        if expires is not None and expires <= (now or time.time()):
            return None
        self._used[record.id] = now or time.time()
        return record

    async def flush_last_used(self) -> int:
        if not self._used:
            return 0
        used, self._used = self._used, {}
        async with self._store.transaction() as tx:
            await tx.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                [(_format_time(ts), key_id) for key_id, ts in used.items()],
            )
        return len(used)

    # -- admin -----------------------------------------------------------------------------

    async def create(self, project_id: str, key_type: str, *, tx: Any = None) -> tuple[KeyRecord, str]:
        if key_type not in KEY_TYPES:
            raise BadRequest(
                "type must be 'publishable' or 'secret'", code="invalid_key_type", details={"field": "type"}
            )
        secret = generate_key(key_type)
        record = KeyRecord(
            id="key_" + secrets.token_hex(8),
            project_id=project_id,
            type=key_type,
            key_hash=hash_key(secret),
            prefix=secret[:DISPLAY_PREFIX_LEN],
            created_at=utcnow(),
        )
        sql = "INSERT INTO api_keys (id, project_id, type, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?, ?)"
        params = (record.id, project_id, key_type, record.key_hash, record.prefix, record.created_at)
        if tx is not None:
            await tx.execute(sql, params)
        else:
            await self._store.execute(sql, params)
        self._remember(record)
        return record, secret

    async def for_project(self, project_id: str) -> list[KeyRecord]:
        rows = await self._store.fetchall(
            f"SELECT {_COLUMNS} FROM api_keys WHERE project_id = ? ORDER BY created_at", (project_id,)
        )
        return [KeyRecord(**dict(row)) for row in rows]

    async def get(self, project_id: str, key_id: str) -> KeyRecord:
        row = await self._store.fetchone(
            f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND project_id = ?", (key_id, project_id)
        )
        if row is None:
            raise NotFound(f"no key {key_id} in project {project_id}", code="key_not_found")
        return KeyRecord(**dict(row))

    async def rotate(
        self, project_id: str, key_id: str, grace_seconds: int | None = None
    ) -> tuple[KeyRecord, str, KeyRecord]:
        old = await self.get(project_id, key_id)
        status = old.status()
        if status in ("revoked", "expired"):
            raise Conflict(f"key {key_id} is {status}; create a new key instead", code="key_not_active")
        if status == "expiring":
            raise Conflict(f"key {key_id} was already rotated", code="key_already_rotated")
        grace = self._grace if grace_seconds is None else grace_seconds
        if grace < 0 or grace > 30 * 86400:
            raise BadRequest(
                "grace_seconds must be between 0 and 2592000",
                code="invalid_parameter",
                details={"field": "grace_seconds"},
            )
        expires_at = _format_time(time.time() + grace)
        async with self._store.transaction() as tx:
            new, secret = await self.create(project_id, old.type, tx=tx)
            await tx.execute(
                "UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?", (expires_at, new.id, old.id)
            )
        old = replace(old, expires_at=expires_at)
        self._remember(old)
        return new, secret, old

    async def revoke(self, project_id: str, key_id: str) -> KeyRecord:
        record = await self.get(project_id, key_id)
        if record.revoked_at:
            return record
        revoked = replace(record, revoked_at=utcnow())
        await self._store.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ?", (revoked.revoked_at, key_id))
        self._forget(record.key_hash)
        return revoked

    def forget_project(self, project_id: str) -> None:
        for digest in [h for h, r in self._by_hash.items() if r.project_id == project_id]:
            self._forget(digest)


async def audit_key_event(
    store: ControlPlane, actor: str, source_ip: str | None, action: str, record: KeyRecord
) -> None:
    await audit.record(
        store,
        actor=actor,
        source_ip=source_ip,
        action=action,
        target=record.id,
        project_id=record.project_id,
        details={"type": record.type, "prefix": record.prefix},
    )
