"""Cloudflare Access verification against a local JWKS server with generated RSA keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from appliance.config import AdminConfig
from appliance.dashboard.access import AccessVerifier, parse_jwks
from appliance.errors import ServiceUnavailable, Unauthorized
from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import running_daemon

TEAM = "example.cloudflareaccess.com"
AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    entry = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**entry, "kid": kid, "alg": "RS256", "use": "sig"}


@dataclass
class JwksServer:
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    hits: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({"keys": [jwk(k, kid) for kid, k in self.keys.items()]})


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    server = JwksServer(keys={"k1": new_key()})
    app = web.Application()
    app.router.add_get("/cdn-cgi/access/certs", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}/cdn-cgi/access/certs"
    try:
        yield server
    finally:
        await runner.cleanup()


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": [AUD],
        "iss": f"https://{TEAM}",
        "email": "ops@example.com",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: rsa.RSAPrivateKey, kid: str, **over: Any) -> str:
    return jwt.encode(claims(**over), key, algorithm="RS256", headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(header: dict[str, Any], body: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def verifier(server: JwksServer, clock: Clock | None = None) -> AccessVerifier:
    admin = AdminConfig(access_team_domain=TEAM, access_audience=AUD, access_jwks_url=server.url)
    fake_core: Any = SimpleNamespace(config=SimpleNamespace(admin=admin))
    return AccessVerifier(fake_core, clock=clock or Clock())


async def test_a_valid_token_is_accepted(jwks: JwksServer) -> None:
    v = verifier(jwks)
    try:
        got = await v.verify(sign(jwks.keys["k1"], "k1"))
        assert got["email"] == "ops@example.com"
        await v.verify(sign(jwks.keys["k1"], "k1"))
        assert jwks.hits == 1  # cached
    finally:
        await v.aclose()


def forged_tokens(key: rsa.RSAPrivateKey) -> dict[str, tuple[str, str]]:
    """case -> (token, words expected in the message)."""
    other = new_key()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_head = unsigned({"alg": "HS256", "typ": "JWT", "kid": "k1"}, claims())
    hs_token = f"{hs_head}.{b64(hmac.new(public_pem, hs_head.encode(), hashlib.sha256).digest())}"
    valid = sign(key, "k1")
    head, body, sig = valid.split(".")
    tampered_body = b64(json.dumps(claims(email="root@evil.example")).encode())
    return {
        "expired": (sign(key, "k1", exp=int(time.time()) - 120, iat=int(time.time()) - 600), "expired"),
        "not-yet-valid": (sign(key, "k1", nbf=int(time.time()) + 600), "not valid yet"),
        "wrong-audience": (sign(key, "k1", aud=["someone-else"]), "another application"),
        "no-audience": (sign(key, "k1", aud=None), "signature"),
        "wrong-issuer": (sign(key, "k1", iss="https://evil.cloudflareaccess.com"), "another team"),
        "forged-signature": (sign(other, "k1"), "signature"),
        "unknown-key": (sign(other, "k9"), "unknown key"),
        "alg-none": (unsigned({"alg": "none", "kid": "k1"}, claims()) + ".", "RS256"),
        "hs256-with-public-key": (hs_token, "RS256"),
        "tampered-claims": (f"{head}.{tampered_body}.{sig}", "signature"),
        "no-signature": (f"{head}.{body}.", "signature"),
        "no-kid": (jwt.encode(claims(), key, algorithm="RS256"), "no signing key"),
        "garbage": ("not-a-jwt", "malformed"),
    }


async def test_forged_and_invalid_tokens_are_refused(jwks: JwksServer) -> None:
    v = verifier(jwks)
    try:
        for case, (token, words) in forged_tokens(jwks.keys["k1"]).items():
            with pytest.raises(Unauthorized) as caught:
                await v.verify(token)
            assert caught.value.code == "invalid_access_token", case
            assert words in caught.value.message, (case, caught.value.message)
    finally:
        await v.aclose()


async def test_unknown_kid_refetches_at_most_once_a_minute(jwks: JwksServer) -> None:
    clock = Clock()
    v = verifier(jwks, clock)
    try:
        await v.verify(sign(jwks.keys["k1"], "k1"))
        assert jwks.hits == 1
        jwks.keys["k2"] = new_key()  # Cloudflare rotates its keys
        rotated = sign(jwks.keys["k2"], "k2")
        for _ in range(5):
            with pytest.raises(Unauthorized):
                await v.verify(sign(new_key(), "random-kid"))
        with pytest.raises(Unauthorized):
            await v.verify(rotated)
        assert jwks.hits == 1
        clock.now += 61
        assert (await v.verify(rotated))["email"] == "ops@example.com"
        assert jwks.hits == 2
        with pytest.raises(Unauthorized):
            await v.verify(sign(new_key(), "another-kid"))
        assert jwks.hits == 2
    finally:
        await v.aclose()


async def test_unreachable_jwks_is_a_503(jwks: JwksServer) -> None:
    v = verifier(jwks)
    v.jwks_url = "http://127.0.0.1:9/cdn-cgi/access/certs"
    try:
        with pytest.raises(ServiceUnavailable):
            await v.verify(sign(jwks.keys["k1"], "k1"))
    finally:
        await v.aclose()


def test_parse_jwks_skips_unusable_entries() -> None:
    key = new_key()
    private = json.loads(RSAAlgorithm.to_jwk(key))
    document = {
        "keys": [
            jwk(key, "good"),
            {**private, "kid": "private"},
            {**jwk(key, "hs"), "alg": "HS256"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {**jwk(key, "enc"), "use": "enc"},
            {"kty": "RSA", "kid": "broken", "n": "x", "e": "y"},
            "junk",
        ]
    }
    assert set(parse_jwks(document)) == {"good"}
    assert parse_jwks({"keys": "nope"}) == {} and parse_jwks([]) == {}


async def test_access_through_the_admin_api(tmp_path: Path, pg: EmbeddedPostgres, jwks: JwksServer) -> None:
    admin = {"access_team_domain": TEAM, "access_audience": AUD, "access_jwks_url": jwks.url}
    async with running_daemon(tmp_path / "state", pg, admin=admin, node={"roles": ("gateway", "dashboard")}) as atlas:
        url = atlas.dashboard_url
        good = {"Cf-Access-Jwt-Assertion": sign(jwks.keys["k1"], "k1")}
        async with atlas.http.get(url + "/admin/api/overview", headers=good) as resp:
            assert resp.status == 200
        async with atlas.http.get(url + "/admin/api/session", headers=good) as resp:
            body = await resp.json()
        assert body["authenticated"] and body["mode"] == "access" and body["user"] == {"name": "ops@example.com"}
        assert body["setup_required"] is False
        async with atlas.http.get(url + "/admin/api/session") as resp:
            assert (await resp.json())["mode"] == "dev"  # dev token enabled in tests; Access still verified first
        # A Cf header without a valid signature is refused, and never falls back to a weaker way in.
        forged = {"Cf-Access-Jwt-Assertion": sign(new_key(), "k1"), **atlas.admin_headers}
        async with atlas.http.get(url + "/admin/api/overview", headers=forged) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_access_token"
        async with atlas.http.post(url + "/admin/api/projects", headers=good, json={"name": "via access"}) as resp:
            assert resp.status == 201
        _, audit = await atlas.admin("GET", "/admin/api/audit")
        assert any(e["actor"] == "ops@example.com" and e["action"] == "project.create" for e in audit["entries"])


async def test_cf_header_is_ignored_when_access_is_not_configured(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_daemon(tmp_path / "state", pg, node={"roles": ("gateway", "dashboard")}) as atlas:
        headers = {"Cf-Access-Jwt-Assertion": sign(new_key(), "k1")}
        async with atlas.http.get(atlas.dashboard_url + "/admin/api/overview", headers=headers) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "admin_auth_required"
