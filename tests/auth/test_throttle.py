"""Brute force is throttled: per-IP and per-email rate limits, and a lockout per email."""

from __future__ import annotations

from appliance.auth.guard import Lockout, RateLimits, Revocations
from appliance.auth.service import AuthService
from appliance.errors import RateLimited
from tests.auth.helpers import PASSWORD, create_project, signup
from tests.fixtures.daemon import RunningDaemon


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_after_repeated_failures_then_expires() -> None:
    clock = Clock()
    lockout = Lockout(threshold=3, seconds=60, clock=clock)
    assert [lockout.failed("p|a") for _ in range(3)] == [False, False, True]
    try:
        lockout.check("p|a")
        raise AssertionError("not locked")
    except RateLimited as exc:
        assert exc.headers["Retry-After"] == "60"
    lockout.check("p|b")  # other emails are unaffected
    clock.now += 61
    lockout.check("p|a")
    assert lockout.failed("p|a") is False  # a fresh count after the lock
    lockout.succeeded("p|a")


def test_revocations_cut_off_and_expire() -> None:
    clock = Clock()
    revoked = Revocations(ttl_seconds=100, clock=clock)
    assert not revoked.is_revoked("p", "u", "s", 999)
    revoked.revoke_user("p", "u")
    assert revoked.is_revoked("p", "u", None, 1000) and not revoked.is_revoked("p", "u", None, 1001)
    revoked.revoke_session("p", "s")
    assert revoked.is_revoked("p", "other", "s", 2000) and not revoked.is_revoked("q", "other", "s", 2000)
    clock.now += 500
    revoked.revoke_session("p", "t")  # adding prunes what expired
    assert not revoked.is_revoked("p", "other", "s", 2000)


async def test_login_brute_force_is_throttled(atlas: RunningDaemon) -> None:
    project = await create_project(atlas)
    key = project["publishable_key"]
    await signup(atlas, key, "hal@example.com")
    codes = []
    for _ in range(7):
        status, body = await atlas.public(
            "POST", "/v1/auth/login", key, json={"email": "hal@example.com", "password": "guess guess guess"}
        )
        codes.append(status)
    # Five failures lock the email; then even the right password waits.
    assert codes == [401] * 5 + [429] * 2
    status, body = await atlas.public(
        "POST", "/v1/auth/login", key, json={"email": "hal@example.com", "password": PASSWORD}
    )
    assert status == 429 and body["error"]["code"] == "rate_limited"
    assert int(body["error"]["details"]["retry_after"]) > 0
    rows = await atlas.daemon.core.store.fetchall("SELECT details_json FROM audit_logs WHERE action = 'auth.lockout'")
    assert len(rows) == 1 and "hal@example.com" in rows[0]["details_json"]


async def test_login_rate_limit_per_ip(atlas: RunningDaemon) -> None:
    key = (await create_project(atlas))["publishable_key"]
    service = atlas.daemon.core.service(AuthService)
    service.limits = RateLimits(service.config, clock=Clock())  # time stands still: no refill mid-test
    statuses = []
    headers: dict[str, str] = {}
    for i in range(11):  # login_per_minute = 10: different emails, same address
        async with atlas.http.post(
            atlas.gateway_url + "/v1/auth/login",
            json={"email": f"user{i}@example.com", "password": "whatever pass"},
            headers={"x-api-key": key},
        ) as resp:
            statuses.append(resp.status)
            headers = dict(resp.headers)
    assert statuses == [401] * 10 + [429]
    assert int(headers["Retry-After"]) >= 1


async def test_signup_rate_limit_per_email(atlas: RunningDaemon) -> None:
    key = (await create_project(atlas))["publishable_key"]
    statuses = []
    for _ in range(6):
        status, _ = await atlas.public(
            "POST", "/v1/auth/signup", key, json={"email": "ivy@example.com", "password": "x"}
        )
        statuses.append(status)
    assert statuses == [400] * 5 + [429]
