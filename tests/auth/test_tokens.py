"""Access-token verification without I/O: only HS256 with the project's secret, for that project."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from appliance.auth.tokens import RefreshToken, decode_access_token, issue_access_token
from appliance.errors import Unauthorized

SECRET = b"s" * 32
PROJECT = "abcdefghijkl"
USER = str(uuid.uuid4())


def token(**overrides: object) -> str:
    now = overrides.pop("now", None)
    secret = overrides.pop("secret", SECRET)
    assert isinstance(secret, bytes)
    return issue_access_token(
        secret,
        project_id=str(overrides.pop("project_id", PROJECT)),
        user_id=str(overrides.pop("user_id", USER)),
        email="a@example.com",
        session_id=str(uuid.uuid4()),
        lifetime_seconds=900,
        now=now if isinstance(now, int | float) else None,
    )


def b64(data: dict[str, object] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**extra: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": USER,
        "role": "authenticated",
        "aud": PROJECT,
        "iss": "atlashub",
        "iat": now,
        "exp": now + 60,
        **extra,
    }


def refused(raw: str, code: str = "invalid_token") -> None:
    with pytest.raises(Unauthorized) as caught:
        decode_access_token(SECRET, PROJECT, raw)
    assert caught.value.code == code


def test_valid_token_round_trips() -> None:
    got = decode_access_token(SECRET, PROJECT, token())
    assert got["sub"] == USER and got["role"] == "authenticated" and got["aud"] == PROJECT
    assert got["iss"] == "atlashub" and got["exp"] - got["iat"] == 900 and got["email"] == "a@example.com"


def test_expired_token() -> None:
    refused(token(now=time.time() - 1000), "token_expired")


def test_tampered_payload_and_signature() -> None:
    head, body, sig = token().split(".")
    forged = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged["sub"] = str(uuid.uuid4())
    refused(f"{head}.{b64(forged)}.{sig}")
    refused(f"{head}.{body}.{sig[:-4]}AAAA")
    refused("not-a-jwt")
    refused("")


def test_other_project_or_other_secret() -> None:
    refused(token(project_id="zzzzzzzzzzzz"))
    refused(token(secret=b"o" * 32))


def test_alg_none_is_refused() -> None:
    refused(f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}.")
    refused(f"{b64({'alg': 'None', 'typ': 'JWT'})}.{b64(claims())}.")


def test_rsa_hmac_confusion_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # A genuine RS256 token: the algorithm is not HS256, so it never gets to a key.
    refused(jwt.encode(claims(), key, algorithm="RS256"))
    # HS256 keyed with a public key (what a confused verifier would accept): wrong secret.
    # The HMAC by hand: PyJWT itself refuses a PEM as an HMAC key.
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims())}"
    sig = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    refused(f"{signing_input}.{b64(sig)}")
    # An RS256 header over an HMAC signature made with our own secret is refused on the header.
    signing_input = f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims())}"
    sig = hmac.new(SECRET, signing_input.encode(), hashlib.sha256).digest()
    refused(f"{signing_input}.{b64(sig)}")


@pytest.mark.parametrize(
    "bad",
    [
        {"role": "service_role"},
        {"sub": "not-a-uuid"},
        {"iss": "someone-else"},
        {"aud": "zzzzzzzzzzzz"},
    ],
)
def test_claims_must_have_the_right_shape(bad: dict[str, object]) -> None:
    refused(jwt.encode(claims(**bad), SECRET, algorithm="HS256"))


@pytest.mark.parametrize("missing", ["sub", "role", "aud", "iss", "iat", "exp"])
def test_required_claims(missing: str) -> None:
    body = claims()
    del body[missing]
    refused(jwt.encode(body, SECRET, algorithm="HS256"))


def test_refresh_token_format_and_constant_time_match() -> None:
    fresh = RefreshToken.new()
    parsed = RefreshToken.parse(fresh.value)
    assert parsed == fresh and parsed.matches(fresh.hash)
    assert not RefreshToken.parse(f"{fresh.id.hex}.{'x' * 43}").matches(fresh.hash)
    for bad in (None, 42, "", "abc", "x" * 300, f"{'z' * 32}.{'y' * 43}", f"{fresh.id.hex}.short"):
        with pytest.raises(Unauthorized):
            RefreshToken.parse(bad)
