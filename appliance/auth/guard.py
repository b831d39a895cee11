"""In-memory defences of /v1/auth: rate limits, per-email lockout, and early revocation of
access tokens (disabled users, revoked sessions) until the tokens expire on their own.

All state is per node and bounded; a restart forgets it (access tokens live minutes, not days).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from appliance.config import AuthConfig
from appliance.errors import RateLimited
from appliance.gateway.ratelimit import TokenBuckets

REFRESH_PER_MINUTE = 120
SIGNUP_PER_EMAIL_PER_HOUR = 5
LOCKOUT_FAILURES = 5
LOCKOUT_SECONDS = 900.0
MAX_TRACKED = 100_000


class RateLimits:
    """Token buckets per IP and per email, keyed by project so one app cannot starve another."""

    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        per_minute = config.login_per_minute
        self.login_ip = TokenBuckets(per_minute / 60, per_minute, clock=clock)
        self.login_email = TokenBuckets(per_minute / 60, per_minute, clock=clock)
        self.signup_ip = TokenBuckets(config.signup_per_hour / 3600, config.signup_per_hour, clock=clock)
        self.signup_email = TokenBuckets(SIGNUP_PER_EMAIL_PER_HOUR / 3600, SIGNUP_PER_EMAIL_PER_HOUR, clock=clock)
        self.refresh_ip = TokenBuckets(REFRESH_PER_MINUTE / 60, REFRESH_PER_MINUTE, clock=clock)

    @staticmethod
    def _check(buckets: TokenBuckets, project_id: str, key: str | None, what: str) -> None:
        if key:
            buckets.check(f"{project_id}|{key}", what)

    def signup(self, project_id: str, ip: str | None, email: str) -> None:
        self._check(self.signup_ip, project_id, ip, "sign-ups from this address")
        self._check(self.signup_email, project_id, email, "sign-ups for this email")

    def login(self, project_id: str, ip: str | None, email: str) -> None:
        self._check(self.login_ip, project_id, ip, "sign-in attempts from this address")
        self._check(self.login_email, project_id, email, "sign-in attempts for this email")

    def refresh(self, project_id: str, ip: str | None) -> None:
        self._check(self.refresh_ip, project_id, ip, "token refreshes from this address")


@dataclass
class _Failures:
    count: int
    locked_until: float


class Lockout:
    """After ``threshold`` failed sign-ins in a row for one email, refuse it for ``seconds``.

    Counted whether or not the email exists, so the lockout reveals nothing about accounts.
    """

    def __init__(
        self,
        threshold: int = LOCKOUT_FAILURES,
        seconds: float = LOCKOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.seconds = seconds
        self._clock = clock
        self._state: OrderedDict[str, _Failures] = OrderedDict()

    def check(self, key: str) -> None:
        state = self._state.get(key)
        if state is None:
            return
        wait = state.locked_until - self._clock()
        if wait > 0:
            raise RateLimited("too many failed sign-ins for this email; retry later", retry_after=wait)
        if state.locked_until:
            del self._state[key]  # the lock expired: a fresh start

    def failed(self, key: str) -> bool:
        """Count one failure; True when this failure locks the email."""
        state = self._state.setdefault(key, _Failures(0, 0.0))
        self._state.move_to_end(key)
        state.count += 1
        if len(self._state) > MAX_TRACKED:
            self._state.popitem(last=False)
        if state.count >= self.threshold:
            state.locked_until = self._clock() + self.seconds
            return True
        return False

    def succeeded(self, key: str) -> None:
        self._state.pop(key, None)


class Revocations:
    """Access tokens stay valid until ``exp``; these lists refuse them earlier.

    A user cut-off refuses tokens issued at or before it (disable, delete, revoke sessions); a
    revoked session refuses the tokens of that sign-in (logout). Entries expire with the longest
    access-token lifetime.
    """

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._users: OrderedDict[str, float] = OrderedDict()
        self._sessions: OrderedDict[str, float] = OrderedDict()

    def revoke_user(self, project_id: str, user_id: str) -> None:
        self._add(self._users, f"{project_id}|{user_id}")

    def revoke_session(self, project_id: str, session_id: str) -> None:
        self._add(self._sessions, f"{project_id}|{session_id}")

    def _add(self, table: OrderedDict[str, float], key: str) -> None:
        now = self._clock()
        table[key] = now
        table.move_to_end(key)
        while table and (len(table) > MAX_TRACKED or next(iter(table.values())) < now - self._ttl):
            table.popitem(last=False)

    def is_revoked(self, project_id: str, user_id: str, session_id: str | None, issued_at: int) -> bool:
        if not self._users and not self._sessions:
            return False
        cut = self._users.get(f"{project_id}|{user_id}")
        if cut is not None and issued_at <= int(cut):
            return True
        return session_id is not None and f"{project_id}|{session_id}" in self._sessions
