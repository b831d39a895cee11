"""Email normalisation, password rules and bcrypt hashing off the event loop."""

from __future__ import annotations

import asyncio
import re
import unicodedata

from appliance.errors import BadRequest

MAX_EMAIL = 254
MAX_LOCAL_PART = 64
# bcrypt only reads the first 72 bytes; longer passwords are refused rather than silently cut.
MAX_PASSWORD_BYTES = 72
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")


def normalize_email(raw: object) -> str:
    """Strip, NFC, lower-case, then a deliberately basic shape check (one @, a dotted domain)."""
    if not isinstance(raw, str):
        raise BadRequest("email must be a string", code="invalid_email", details={"field": "email"})
    email = unicodedata.normalize("NFC", raw).strip().lower()
    local, _, domain = email.rpartition("@")
    if (
        len(email) > MAX_EMAIL
        or len(local) > MAX_LOCAL_PART
        or not _EMAIL.match(email)
        or any(unicodedata.category(ch).startswith("C") for ch in email)
        or domain.startswith("-")
    ):
        raise BadRequest("email is not a valid address", code="invalid_email", details={"field": "email"})
    return email


def check_new_password(raw: object, min_length: int) -> str:
    if not isinstance(raw, str):
        raise BadRequest("password must be a string", code="invalid_password", details={"field": "password"})
    if len(raw) < min_length:
        raise BadRequest(
            f"password must be at least {min_length} characters",
            code="weak_password",
            details={"field": "password", "min_length": min_length},
        )
    if len(raw.encode()) > MAX_PASSWORD_BYTES:
        raise BadRequest(
            f"password must be at most {MAX_PASSWORD_BYTES} bytes",
            code="password_too_long",
            details={"field": "password", "max_bytes": MAX_PASSWORD_BYTES},
        )
    return raw


def presented_password(raw: object) -> str:
    """A password given at login: any string; its length is not checked (rules may have changed)."""
    if not isinstance(raw, str) or not raw:
        raise BadRequest("password is required", code="invalid_password", details={"field": "password"})
    return raw


class PasswordHasher:
    """bcrypt at the configured cost, in a worker thread (bcrypt releases the GIL).

    ``verify`` against ``None`` checks a dummy hash of the same cost, so an unknown email costs
    what a wrong password costs.
    """

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self._dummy: bytes | None = None

    async def hash(self, password: str) -> str:
        import bcrypt  # deferred, as everywhere bcrypt is used: a node starts without it

        digest = await asyncio.to_thread(bcrypt.hashpw, password.encode(), bcrypt.gensalt(self.rounds))
        return digest.decode()

    async def verify(self, password: str, hashed: str | None) -> bool:
        import bcrypt

        target = hashed.encode() if hashed is not None else await self._dummy_hash()
        encoded = password.encode()
        if len(encoded) > MAX_PASSWORD_BYTES:
            # Never accepted at sign-up; still spend the same time before saying no.
            encoded, target = b"x", await self._dummy_hash()
            await asyncio.to_thread(bcrypt.checkpw, encoded, target)
            return False
        ok = await asyncio.to_thread(bcrypt.checkpw, encoded, target)
        return ok and hashed is not None

    async def _dummy_hash(self) -> bytes:
        if self._dummy is None:
            import bcrypt

            salt = bcrypt.gensalt(self.rounds)
            self._dummy = await asyncio.to_thread(bcrypt.hashpw, b"atlashub-dummy-password", salt)
        return self._dummy
