"""Access tokens (JWT, HS256 with the project's secret) and opaque refresh tokens.

Only HS256 is ever accepted: ``alg: none``, RS*/ES* headers (the RSA/HMAC confusion) and any
other algorithm are refused before the signature is looked at. A token is valid for exactly
one project: ``aud`` is the project id and the secret is the project's own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appliance.errors import Unauthorized

if TYPE_CHECKING:
    from appliance.core import Core

ISSUER = "atlashub"
ALGORITHM = "HS256"
ROLE = "authenticated"
REQUIRED_CLAIMS = ("sub", "role", "aud", "iss", "iat", "exp")


def _invalid(message: str = "invalid access token") -> Unauthorized:
    return Unauthorized(message, code="invalid_token")


def issue_access_token(
    secret: bytes,
    *,
    project_id: str,
    user_id: str,
    email: str,
    session_id: str,
    lifetime_seconds: int,
    now: float | None = None,
) -> str:
    import jwt  # deferred: PyJWT costs ~2.5 MB of resident memory until the first token

    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "role": ROLE,
        "email": email,
        "session_id": session_id,
        "aud": project_id,
        "iss": ISSUER,
        "iat": issued,
        "exp": issued + lifetime_seconds,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def decode_access_token(secret: bytes, project_id: str, token: str) -> dict[str, Any]:
    """Verify signature, algorithm, audience, issuer, expiry and claim shapes; raise Unauthorized."""
    import jwt  # deferred: PyJWT costs ~2.5 MB of resident memory until the first token

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid() from None
    if header.get("alg") != ALGORITHM:
        raise _invalid()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=project_id,
            issuer=ISSUER,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise _invalid() from None
    if claims.get("role") != ROLE or not isinstance(claims.get("iat"), int):
        raise _invalid()
    try:
        claims["sub"] = str(uuid.UUID(claims["sub"]))
    except (TypeError, ValueError, AttributeError):
        raise _invalid() from None
    return claims


async def verify_access_token(core: Core, project_id: str, token: str) -> dict[str, Any]:
    """The gateway's check of ``Authorization: Bearer``: the claims, or Unauthorized."""
    from appliance.auth.service import AuthService

    return await core.service(AuthService).verify_access(project_id, token)


# -- refresh tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshToken:
    """``<row id hex>.<secret>``: the id finds the row, the secret's SHA-256 is compared in constant time."""

    id: uuid.UUID
    secret: str

    @classmethod
    def new(cls) -> RefreshToken:
        return cls(uuid.uuid4(), secrets.token_urlsafe(32))

    @property
    def value(self) -> str:
        return f"{self.id.hex}.{self.secret}"

    @property
    def hash(self) -> bytes:
        return hashlib.sha256(self.secret.encode()).digest()

    def matches(self, stored_hash: bytes) -> bool:
        return hmac.compare_digest(self.hash, bytes(stored_hash))

    @classmethod
    def parse(cls, raw: object) -> RefreshToken:
        if not isinstance(raw, str) or len(raw) > 200:
            raise Unauthorized("invalid refresh token", code="invalid_token")
        ident, _, secret = raw.partition(".")
        if len(ident) != 32 or len(secret) < 32:
            raise Unauthorized("invalid refresh token", code="invalid_token")
        try:
            return cls(uuid.UUID(hex=ident), secret)
        except ValueError:
            raise Unauthorized("invalid refresh token", code="invalid_token") from None
