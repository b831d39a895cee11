"""Local admin accounts: users, password login with throttling and lockout, TOTP, sessions, setup code.

Free of HTTP (the cookie and CSRF header live in :mod:`appliance.dashboard.sessions`). Built once
per node as ``core.service(AdminAccounts)``. Only hashes of session tokens, CSRF tokens and the
setup code are stored; passwords are bcrypt hashes computed off the event loop; TOTP secrets are
sealed with the node's master key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.control.store import utcnow
from appliance.dashboard import totp
from appliance.errors import BadRequest, Conflict, NotFound, RateLimited, Unauthorized
from appliance.settings.service import RuntimeSettings

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
MIN_PASSWORD = 12
MAX_PASSWORD_BYTES = 72  # bcrypt ignores (bcrypt>=5: refuses) anything longer
SETUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: it is read off a console
SETUP_CODE_LENGTH = 16  # 80 bits
# A setup code chosen before the node first started: the Pi image's first boot copies
# `admin_setup_code` from /boot/firmware/atlashub.toml here (images/firstboot/atlashub-firstboot).
SETUP_CODE_FILE = "admin-setup-code"
EXAMPLE_SETUP_CODE = "ABCDEFGHJKLMNPQR"  # images/atlashub.toml.example's placeholder
MIN_DISTINCT_SETUP_CHARS = 8
# A single address may try this many times the per-account limit before it is slowed down too.
IP_FACTOR = 4
LAST_SEEN_EVERY = timedelta(seconds=60)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def validate_username(raw: object) -> str:
    if not isinstance(raw, str) or not USERNAME.match(raw):
        message = "username must be 1-64 characters: letters, digits and . _ @ + - (starting with a letter or digit)"
        raise BadRequest(message, code="invalid_username", details={"field": "username"})
    return raw


def validate_password(raw: object) -> str:
    if not isinstance(raw, str) or len(raw) < MIN_PASSWORD:
        message = f"password must be at least {MIN_PASSWORD} characters"
        raise BadRequest(message, code="weak_password", details={"field": "password"})
    if len(raw.encode()) > MAX_PASSWORD_BYTES:
        message = f"password must be at most {MAX_PASSWORD_BYTES} bytes"
        raise BadRequest(message, code="invalid_password", details={"field": "password"})
    return raw


def new_setup_code() -> str:
    return format_setup_code("".join(secrets.choice(SETUP_ALPHABET) for _ in range(SETUP_CODE_LENGTH)))


def normalize_setup_code(raw: object) -> str:
    return re.sub(r"[\s-]", "", raw).upper() if isinstance(raw, str) else ""


def format_setup_code(normalized: str) -> str:
    return "-".join(normalized[i : i + 4] for i in range(0, len(normalized), 4))


def provided_setup_code_problem(normalized: str) -> str | None:
    """Why a setup code chosen by a person is refused (None: accepted). Never includes the code."""
    if len(normalized) != SETUP_CODE_LENGTH or any(c not in SETUP_ALPHABET for c in normalized):
        return (
            f"it must be {SETUP_CODE_LENGTH} characters from {SETUP_ALPHABET} (dashes and spaces ignored),"
            " like XXXX-XXXX-XXXX-XXXX"
        )
    if normalized == EXAMPLE_SETUP_CODE:
        return "it is the example from atlashub.toml.example"
    if len(set(normalized)) < MIN_DISTINCT_SETUP_CHARS:
        return f"it is too easy to guess (fewer than {MIN_DISTINCT_SETUP_CHARS} different characters)"
    return None


async def hash_password(password: str, rounds: int = 12) -> str:
    import bcrypt  # deferred: a node starts without it

    salt = bcrypt.gensalt(max(12, rounds))
    return (await asyncio.to_thread(bcrypt.hashpw, password.encode(), salt)).decode()


async def check_password(password: str, hashed: str) -> bool:
    import bcrypt

    try:
        return await asyncio.to_thread(bcrypt.checkpw, password.encode(), hashed.encode())
    except ValueError:
        return False


class Throttle:
    """Failures per key inside a sliding window; in memory, so it also covers unknown usernames."""

    def __init__(self, window_seconds: float) -> None:
        self._window = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        found = self._failures.get(key)
        if found is None:
            return deque()
        while found and found[0] <= now - self._window:
            found.popleft()
        if not found:
            del self._failures[key]
        return found

    def retry_after(self, key: str, limit: int) -> float | None:
        now = time.monotonic()
        recent = self._recent(key, now)
        if len(recent) < limit:
            return None
        return recent[-limit] + self._window - now

    def fail(self, key: str) -> None:
        self._failures.setdefault(key, deque()).append(time.monotonic())

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True)
class AdminUser:
    id: str
    username: str
    totp_enabled: bool


@dataclass(frozen=True)
class NewSession:
    token: str  # the cookie value; never stored
    csrf_token: str
    expires_at: str


@dataclass(frozen=True)
class ActiveSession:
    id: str  # the stored hash
    user: AdminUser
    csrf_token_hash: str
    expires_at: str


def session_hours(core: Core) -> float:
    """The lifetime of a new admin session: a runtime setting (admin.session_hours in the file)."""
    return float(core.service(RuntimeSettings).get("admin.session_hours"))


class AdminAccounts:
    def __init__(self, core: Core) -> None:
        self._core = core  # the master key is read lazily: `atlashub admin create` has none open
        self._store = core.store
        self._admin = core.config.admin
        self._rounds = core.config.auth.bcrypt_rounds
        self._throttle = Throttle(self._admin.lockout_seconds)
        self._dummy_hash: str | None = None
        self._announced = False
        self._code_file: Path = core.config.state_dir / SETUP_CODE_FILE

    # -- setup ------------------------------------------------------------------------------

    async def count(self) -> int:
        row = await self._store.fetchone("SELECT count(*) AS n FROM admin_users")
        return int(row["n"]) if row else 0

    async def setup_required(self) -> bool:
        return await self.count() == 0

    async def announce_setup_code(self) -> str | None:
        """While no admin exists, replace the setup code and print it to the log once.

        Printing it is its purpose: whoever can read this node's log may create the first admin.
        Only its hash is stored. Called at start-up; a restart prints a new one.

        Unless ``<state_dir>/admin-setup-code`` holds a valid code (the Pi image's first boot puts
        the one from the boot partition there): that one is used instead, and never printed. The
        file stays until the first admin exists, so the code still works after a power cut or a
        restart; it lives next to the master key, with the same protection (0600, atlashub).
        """
        self._announced = True
        if not await self.setup_required():
            await self._store.execute("DELETE FROM admin_setup")
            self._forget_provided_code()
            return None
        provided = self._provided_code()
        code = format_setup_code(provided) if provided else new_setup_code()
        await self._store.execute(
            "INSERT INTO admin_setup (id, code_hash, created_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET code_hash = excluded.code_hash, created_at = excluded.created_at",
            (sha256_hex(normalize_setup_code(code)), utcnow()),
        )
        if provided:
            log.warning(
                "no admin account exists yet. Create the first one in the dashboard with the setup code given at "
                "first boot (admin_setup_code in atlashub.toml), or run `atlashub admin create --username NAME`"
            )
        else:
            log.warning(
                "no admin account exists yet. One-time setup code: %s (enter it in the dashboard to create the "
                "first admin, or run `atlashub admin create --username NAME`)",
                code,
            )
        return code

    def _provided_code(self) -> str | None:
        """The normalized code from the setup-code file, or None (no file, or refused: logged)."""
        try:
            raw = self._code_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read the setup code in %s (%s); using a new one instead", self._code_file, exc.strerror)
            return None
        normalized = normalize_setup_code(raw)
        problem = provided_setup_code_problem(normalized)
        if problem is not None:
            log.warning("refusing the setup code in %s: %s; using a new one instead", self._code_file, problem)
            return None
        return normalized

    def _forget_provided_code(self) -> None:
        """Idempotent: the first admin exists, so a setup code chosen in advance has served."""
        try:
            self._code_file.unlink(missing_ok=True)
        except OSError as exc:  # `atlashub admin create` run as another user: the daemon's next start removes it
            log.warning("cannot remove %s: %s", self._code_file, exc.strerror)

    async def ensure_setup_code(self) -> None:
        """Announce a setup code if start-up did not (the dashboard's first visit)."""
        if not self._announced:
            await self.announce_setup_code()

    async def complete_setup(self, code: object, username: object, password: object, ip: str | None) -> AdminUser:
        key = f"setup:{ip}"
        self._check_throttle(key, self._admin.login_max_attempts)
        name, secret = validate_username(username), validate_password(password)
        row = await self._store.fetchone("SELECT code_hash FROM admin_setup WHERE id = 1")
        presented = sha256_hex(normalize_setup_code(code))
        if row is None or not hmac.compare_digest(presented, row["code_hash"]):
            self._throttle.fail(key)
            if not await self.setup_required():
                raise Conflict("an admin account already exists; sign in instead", code="setup_done")
            raise Unauthorized("the setup code is not valid", code="invalid_setup_code")
        hashed = await hash_password(secret, self._rounds)
        async with self._store.transaction() as tx:
            async with tx.execute("SELECT count(*) FROM admin_users") as cur:
                existing = await cur.fetchone()
            if existing and existing[0]:
                raise Conflict("an admin account already exists; sign in instead", code="setup_done")
            user = await self._insert_user(tx, name, hashed)
            await tx.execute("DELETE FROM admin_setup")
        self._throttle.clear(key)
        self._forget_provided_code()
        return user

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, username: object, password: object) -> AdminUser:
        name, secret = validate_username(username), validate_password(password)
        hashed = await hash_password(secret, self._rounds)
        async with self._store.transaction() as tx:
            user = await self._insert_user(tx, name, hashed)
            await tx.execute("DELETE FROM admin_setup")
        self._forget_provided_code()
        return user

    async def _insert_user(self, tx: object, name: str, hashed: str) -> AdminUser:
        user = AdminUser(secrets.token_hex(8), name, False)
        try:
            await tx.execute(  # type: ignore[attr-defined]
                "INSERT INTO admin_users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (user.id, name, hashed, utcnow()),
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"an admin named {name!r} already exists", code="admin_exists") from None
        return user

    # -- login ------------------------------------------------------------------------------

    def _check_throttle(self, key: str, limit: int) -> None:
        wait = self._throttle.retry_after(key, limit)
        if wait is not None:
            raise RateLimited("too many failed attempts; try again later", retry_after=wait, code="login_locked")

    async def login(self, username: object, password: object, code: object, ip: str | None) -> AdminUser:
        """Check password (and TOTP when enrolled). Every failure counts against the address and the
        username; after ``login_max_attempts`` the username is locked for ``lockout_seconds``."""
        limit = self._admin.login_max_attempts
        name = username.strip() if isinstance(username, str) else ""
        user_key, ip_key = f"user:{name.lower()}", f"ip:{ip}"
        self._check_throttle(ip_key, limit * IP_FACTOR)
        self._check_throttle(user_key, limit)
        row = await self._store.fetchone("SELECT * FROM admin_users WHERE lower(username) = lower(?)", (name,))
        if row is not None and row["locked_until"] and row["locked_until"] > utcnow():
            wait = (datetime.fromisoformat(row["locked_until"]) - _now()).total_seconds()
            raise RateLimited("too many failed attempts; try again later", retry_after=wait, code="login_locked")
        if self._dummy_hash is None:
            self._dummy_hash = await hash_password(secrets.token_hex(16), self._rounds)
        presented = password if isinstance(password, str) and len(password.encode()) <= MAX_PASSWORD_BYTES else ""
        ok = await check_password(presented, row["password_hash"] if row else self._dummy_hash)
        if row is None or not ok or not presented:
            await self._failed(row, user_key, ip_key)
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        if row["totp_secret_enc"]:
            if not isinstance(code, str) or not code.strip():
                raise Unauthorized("enter the code from your authenticator app", code="totp_required")
            secret = self._core.box.decrypt_text(row["totp_secret_enc"], f"admin-totp:{row['id']}")
            step = totp.verify(secret, code, after_step=row["totp_last_step"])
            if step is None:
                await self._failed(row, user_key, ip_key)
                raise Unauthorized("the authenticator code is not valid", code="invalid_totp")
            await self._store.execute("UPDATE admin_users SET totp_last_step = ? WHERE id = ?", (step, row["id"]))
        self._throttle.clear(user_key)
        await self._store.execute(
            "UPDATE admin_users SET failed_attempts = 0, locked_until = NULL, last_login_at = ? WHERE id = ?",
            (utcnow(), row["id"]),
        )
        return AdminUser(row["id"], row["username"], bool(row["totp_secret_enc"]))

    async def _failed(self, row: sqlite3.Row | None, user_key: str, ip_key: str) -> None:
        self._throttle.fail(user_key)
        self._throttle.fail(ip_key)
        if row is None:
            return
        attempts = int(row["failed_attempts"]) + 1
        locked = _iso(_now() + timedelta(seconds=self._admin.lockout_seconds))
        lock = locked if attempts >= self._admin.login_max_attempts else None
        await self._store.execute(
            "UPDATE admin_users SET failed_attempts = ?, locked_until = ? WHERE id = ?",
            (0 if lock else attempts, lock, row["id"]),
        )
        if lock:
            log.warning(
                "admin account %s locked for %d s after failed sign-ins", row["username"], self._admin.lockout_seconds
            )

    # -- sessions ---------------------------------------------------------------------------

    def csrf_token_for(self, token: str) -> str:
        """Derived from the session token, so the SPA can fetch it again after a reload."""
        key = self._core.box.derive("admin-session-csrf")
        digest = hmac.new(key, token.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    async def start_session(self, user: AdminUser, ip: str | None) -> NewSession:
        token = secrets.token_urlsafe(32)
        csrf = self.csrf_token_for(token)
        now = _now()
        expires = _iso(now + timedelta(hours=session_hours(self._core)))
        await self._store.execute(
            "INSERT INTO admin_sessions (id, user_id, csrf_token_hash, created_at, expires_at, last_seen_at, ip)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sha256_hex(token), user.id, sha256_hex(csrf), _iso(now), expires, _iso(now), ip),
        )
        await self._store.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", (_iso(now),))
        return NewSession(token, csrf, expires)

    async def session(self, token: str) -> ActiveSession | None:
        """The live session for a cookie value, or None (unknown, expired or signed out)."""
        row = await self._store.fetchone(
            "SELECT s.id, s.csrf_token_hash, s.expires_at, s.last_seen_at, u.id AS user_id, u.username,"
            " u.totp_secret_enc FROM admin_sessions s JOIN admin_users u ON u.id = s.user_id WHERE s.id = ?",
            (sha256_hex(token),),
        )
        now = _now()
        if row is None:
            return None
        if row["expires_at"] <= _iso(now):
            await self._store.execute("DELETE FROM admin_sessions WHERE id = ?", (row["id"],))
            return None
        if row["last_seen_at"] <= _iso(now - LAST_SEEN_EVERY):
            await self._store.execute("UPDATE admin_sessions SET last_seen_at = ? WHERE id = ?", (_iso(now), row["id"]))
        user = AdminUser(row["user_id"], row["username"], bool(row["totp_secret_enc"]))
        return ActiveSession(row["id"], user, row["csrf_token_hash"], row["expires_at"])

    @staticmethod
    def csrf_matches(session: ActiveSession, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(sha256_hex(presented or ""), session.csrf_token_hash)

    async def end_session(self, token: str) -> None:
        await self._store.execute("DELETE FROM admin_sessions WHERE id = ?", (sha256_hex(token),))

    # -- TOTP enrolment ---------------------------------------------------------------------

    async def begin_totp(self, user_id: str, username: str) -> tuple[str, str]:
        """A fresh secret (returned once, stored sealed as pending until confirmed) and its URI."""
        secret = totp.new_secret()
        sealed = self._core.box.encrypt_text(secret, f"admin-totp-pending:{user_id}")
        changed = await self._store.execute(
            "UPDATE admin_users SET totp_pending_enc = ? WHERE id = ?", (sealed, user_id)
        )
        if not changed:
            raise NotFound("no such admin account", code="admin_not_found")
        return secret, totp.provisioning_uri(secret, username)

    async def confirm_totp(self, user_id: str, code: object) -> None:
        row = await self._store.fetchone("SELECT totp_pending_enc FROM admin_users WHERE id = ?", (user_id,))
        if row is None or not row["totp_pending_enc"]:
            raise BadRequest("start the enrolment first", code="totp_not_started")
        secret = self._core.box.decrypt_text(row["totp_pending_enc"], f"admin-totp-pending:{user_id}")
        step = totp.verify(secret, code if isinstance(code, str) else "")
        if step is None:
            raise BadRequest("the authenticator code is not valid", code="invalid_totp", details={"field": "code"})
        await self._store.execute(
            "UPDATE admin_users SET totp_secret_enc = ?, totp_pending_enc = NULL, totp_last_step = ? WHERE id = ?",
            (self._core.box.encrypt_text(secret, f"admin-totp:{user_id}"), step, user_id),
        )
