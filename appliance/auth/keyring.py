"""Per-project JWT signing secrets: 32 random bytes, sealed in the control plane, cached in memory."""

from __future__ import annotations

import asyncio
import secrets

from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import SecretBox

SECRET_BYTES = 32


def _context(project_id: str) -> str:
    return f"auth-jwt:{project_id}"


class Keyring:
    def __init__(self, store: ControlPlane, box: SecretBox) -> None:
        self._store = store
        self._box = box
        self._cache: dict[str, bytes] = {}
        self._lock = asyncio.Lock()

    async def get(self, project_id: str, *, create: bool = True) -> bytes | None:
        """The project's secret; created on first use unless ``create`` is False. Idempotent."""
        found = self._cache.get(project_id)
        if found is not None:
            return found
        async with self._lock:
            found = self._cache.get(project_id) or await self._load(project_id)
            if found is None and create:
                sealed = self._box.encrypt_text(secrets.token_hex(SECRET_BYTES), context=_context(project_id))
                await self._store.execute(
                    "INSERT OR IGNORE INTO project_auth (project_id, jwt_secret_enc, created_at) VALUES (?, ?, ?)",
                    (project_id, sealed, utcnow()),
                )
                found = await self._load(project_id)
            if found is not None:
                self._cache[project_id] = found
            return found

    async def _load(self, project_id: str) -> bytes | None:
        row = await self._store.fetchone("SELECT jwt_secret_enc FROM project_auth WHERE project_id = ?", (project_id,))
        if row is None:
            return None
        return bytes.fromhex(self._box.decrypt_text(row["jwt_secret_enc"], context=_context(project_id)))

    def forget(self, project_id: str) -> None:
        self._cache.pop(project_id, None)
