"""AuthService: sign-up, sign-in, refresh rotation with theft detection, logout, and the
admin operations. Free of HTTP; the caller passes the client address for rate limits and audit.

Lifecycle: one instance per node via ``core.service(AuthService)``; it holds only in-memory
caches and counters, so ``aclose`` has nothing to release.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from appliance import audit
from appliance.auth import users
from appliance.auth.guard import Lockout, RateLimits, Revocations
from appliance.auth.keyring import Keyring
from appliance.auth.passwords import PasswordHasher, check_new_password, normalize_email, presented_password
from appliance.auth.tokens import RefreshToken, decode_access_token, issue_access_token
from appliance.core import Core
from appliance.errors import Conflict, Forbidden, NotFound, Unauthorized

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    user_id: str
    email: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "user": {"id": self.user_id, "email": self.email},
        }


def _bad_credentials() -> Unauthorized:
    return Unauthorized("invalid email or password", code="invalid_credentials")


class AuthService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.config = core.config.auth
        self.keyring = Keyring(core.store, core.box)
        self.hasher = PasswordHasher(self.config.bcrypt_rounds)
        self.limits = RateLimits(self.config)
        self.lockout = Lockout()
        self.revocations = Revocations(ttl_seconds=self.config.access_token_seconds + 60)

    async def aclose(self) -> None:
        """Nothing to release: state is in memory only."""

    # -- the public flows ------------------------------------------------------------------

    async def signup(self, project_id: str, raw_email: object, raw_password: object, *, ip: str | None) -> Session:
        email = normalize_email(raw_email)
        self.limits.signup(project_id, ip, email)
        password = check_new_password(raw_password, self.config.min_password_length)
        hashed = await self.hasher.hash(password)
        async with self.core.pools.connection(project_id, "app") as conn, conn.transaction():
            user = await users.insert_user(conn, email, hashed)
            if user is None:
                raise Conflict("a user with this email already exists", code="user_exists", details={"field": "email"})
            session = await self._open_session(conn, project_id, user.id, user.email)
        await self._audit(project_id, "auth.signup", user_id=user.id, ip=ip)
        return session

    async def login(self, project_id: str, raw_email: object, raw_password: object, *, ip: str | None) -> Session:
        email = normalize_email(raw_email)
        password = presented_password(raw_password)
        self.limits.login(project_id, ip, email)
        lock_key = f"{project_id}|{email}"
        self.lockout.check(lock_key)
        async with self.core.pools.connection(project_id, "app") as conn:
            found = await users.credentials(conn, email)
        user, hashed = found if found else (None, None)
        if not await self.hasher.verify(password, hashed) or user is None:
            locked = self.lockout.failed(lock_key)
            await self._audit(
                project_id,
                "auth.login",
                user_id=user.id if user else None,
                ip=ip,
                outcome="failure",
                details={"email": email, "reason": "invalid_credentials"},
            )
            if locked:
                await self._audit(project_id, "auth.lockout", user_id=None, ip=ip, details={"email": email})
            raise _bad_credentials()
        self.lockout.succeeded(lock_key)
        if user.disabled:
            await self._audit(
                project_id, "auth.login", user_id=user.id, ip=ip, outcome="failure", details={"reason": "user_disabled"}
            )
            raise Forbidden("this user is disabled", code="user_disabled")
        async with self.core.pools.connection(project_id, "app") as conn, conn.transaction():
            await users.mark_signed_in(conn, user.id)
            session = await self._open_session(conn, project_id, user.id, user.email)
        await self._audit(project_id, "auth.login", user_id=user.id, ip=ip)
        return session

    async def refresh(self, project_id: str, raw_token: object, *, ip: str | None) -> Session:
        """Single use: a new pair each time; a token presented twice revokes its whole family."""
        self.limits.refresh(project_id, ip)
        presented = RefreshToken.parse(raw_token)
        new = RefreshToken.new()
        async with self.core.pools.connection(project_id, "app") as conn:
            async with conn.transaction():
                row = await users.lock_refresh(conn, presented.id)
                if row is None or not presented.matches(row["token_hash"]):
                    raise Unauthorized("invalid refresh token", code="invalid_token")
                outcome = self._refresh_verdict(row)
                if outcome == "ok":
                    await users.rotate_refresh(conn, presented.id, new, row, self.config.refresh_token_days)
                elif outcome == "reused":
                    await users.revoke_family(conn, row["family_id"])
        user_id, family = str(row["user_id"]), str(row["family_id"])
        if outcome == "reused":
            self.revocations.revoke_session(project_id, family)
            log.warning("project %s: a used refresh token was presented again; session revoked", project_id)
            await self._audit(
                project_id, "auth.refresh_reuse", user_id=user_id, ip=ip, outcome="failure", details={"session": family}
            )
            raise Unauthorized("refresh token already used; the session has been revoked", code="refresh_token_reused")
        if outcome == "revoked":
            raise Unauthorized("the session has been revoked", code="invalid_token")
        if outcome == "expired":
            raise Unauthorized("the refresh token has expired", code="token_expired")
        if outcome == "disabled":
            raise Forbidden("this user is disabled", code="user_disabled")
        access = await self._access_token(project_id, user_id, row["email"], family)
        return Session(access, new.value, self.config.access_token_seconds, user_id, row["email"])

    @staticmethod
    def _refresh_verdict(row: Any) -> str:
        if row["revoked"]:
            return "revoked"
        if row["used"]:
            return "reused"
        if row["expired"]:
            return "expired"
        if row["disabled"]:
            return "disabled"
        return "ok"

    async def logout(
        self, project_id: str, *, refresh_token: object = None, claims: dict[str, Any] | None = None, ip: str | None
    ) -> None:
        """Revoke one session, named by a refresh token of it or by the bearer token's claims. Idempotent."""
        family: uuid.UUID | None = None
        user_id: str | None = None
        if refresh_token is not None:
            presented = RefreshToken.parse(refresh_token)
            async with self.core.pools.connection(project_id, "app") as conn, conn.transaction():
                row = await users.lock_refresh(conn, presented.id)
                if row is None or not presented.matches(row["token_hash"]):
                    raise Unauthorized("invalid refresh token", code="invalid_token")
                family, user_id = row["family_id"], str(row["user_id"])
                await users.revoke_family(conn, family)
        elif claims is not None and users.as_uuid(str(claims.get("session_id"))) is not None:
            family, user_id = uuid.UUID(str(claims["session_id"])), claims["sub"]
            async with self.core.pools.connection(project_id, "app") as conn:
                await users.revoke_family(conn, family)
        else:
            raise Unauthorized("logout needs a refresh_token or a bearer access token", code="token_required")
        self.revocations.revoke_session(project_id, str(family))
        await self._audit(project_id, "auth.logout", user_id=user_id, ip=ip, details={"session": str(family)})

    async def me(self, project_id: str, claims: dict[str, Any]) -> users.User:
        async with self.core.pools.connection(project_id, "app") as conn:
            user = await users.get_user(conn, claims["sub"])
        if user is None or user.disabled:
            raise Unauthorized("the user of this token no longer exists or is disabled", code="invalid_token")
        return user

    async def verify_access(self, project_id: str, token: str) -> dict[str, Any]:
        secret = await self.keyring.get(project_id, create=False)
        if secret is None:
            raise Unauthorized("invalid access token", code="invalid_token")
        claims = decode_access_token(secret, project_id, token)
        if self.revocations.is_revoked(project_id, claims["sub"], claims.get("session_id"), claims["iat"]):
            raise Unauthorized("the session of this token has been revoked", code="invalid_token")
        return claims

    # -- admin -----------------------------------------------------------------------------

    async def list_users(
        self, project_id: str, search: str | None, limit: int, offset: int
    ) -> tuple[list[users.User], int]:
        async with self.core.pools.connection(project_id, "app") as conn:
            return await users.list_users(conn, search, limit, offset)

    async def set_disabled(self, project_id: str, user_id: str, disabled: bool) -> users.User:
        async with self.core.pools.connection(project_id, "app") as conn, conn.transaction():
            user = await users.set_disabled(conn, user_id, disabled)
            if user is None:
                raise NotFound("no such user", code="user_not_found")
            if disabled:
                await users.revoke_user_tokens(conn, user_id)
        if disabled:
            self.revocations.revoke_user(project_id, user.id)
        return user

    async def revoke_sessions(self, project_id: str, user_id: str) -> int:
        async with self.core.pools.connection(project_id, "app") as conn:
            if await users.get_user(conn, user_id) is None:
                raise NotFound("no such user", code="user_not_found")
            revoked = await users.revoke_user_tokens(conn, user_id)
        self.revocations.revoke_user(project_id, user_id)
        return revoked

    async def delete_user(self, project_id: str, user_id: str) -> None:
        async with self.core.pools.connection(project_id, "app") as conn:
            if not await users.delete_user(conn, user_id):
                raise NotFound("no such user", code="user_not_found")
        self.revocations.revoke_user(project_id, user_id)

    # -- helpers ---------------------------------------------------------------------------

    async def _access_token(self, project_id: str, user_id: str, email: str, session_id: str) -> str:
        secret = await self.keyring.get(project_id)
        assert secret is not None
        return issue_access_token(
            secret,
            project_id=project_id,
            user_id=user_id,
            email=email,
            session_id=session_id,
            lifetime_seconds=self.config.access_token_seconds,
        )

    async def _open_session(self, conn: Any, project_id: str, user_id: str, email: str) -> Session:
        token, family = RefreshToken.new(), uuid.uuid4()
        await users.insert_refresh(conn, token, user_id, family, self.config.refresh_token_days)
        access = await self._access_token(project_id, user_id, email, str(family))
        return Session(access, token.value, self.config.access_token_seconds, user_id, email)

    async def _audit(
        self,
        project_id: str,
        action: str,
        *,
        user_id: str | None,
        ip: str | None,
        outcome: str = "success",
        details: dict[str, Any] | None = None,
    ) -> None:
        await audit.record(
            self.core.store,
            actor=f"user:{user_id}" if user_id else "anonymous",
            action=action,
            project_id=project_id,
            target=user_id,
            outcome=outcome,
            source_ip=ip,
            details=details,
        )


async def clean_expired_tokens(core: Core) -> int:
    """Platform action: drop expired refresh tokens (and long-revoked sessions) in every local project."""
    removed = 0
    for project in await core.projects.all():
        if project.node_id not in (None, core.node_id):
            continue
        try:
            async with core.pools.connection(project.id, "app") as conn:
                removed += await users.delete_expired(conn)
        except Exception as exc:
            log.warning("project %s: cleaning expired tokens failed: %r", project.id, exc)
    return removed
