"""TOTP second factor (RFC 6238 over RFC 4226 HOTP), HMAC-SHA1, 6 digits, 30-second steps.

Pure functions: the secret store, replay protection and rate limits belong to the caller.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

DIGITS = 6
STEP_SECONDS = 30
# One step either side tolerates a phone clock that is up to ~30 s off.
WINDOW = 1
SECRET_BYTES = 20


def new_secret() -> str:
    """A random 160-bit secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded, casefold=True)


def hotp(secret: str, counter: int) -> str:
    digest = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def code_at(secret: str, now: float) -> str:
    return hotp(secret, current_step(now))


def verify(secret: str, code: str, *, now: float | None = None, after_step: int | None = None) -> int | None:
    """The time step ``code`` belongs to, or None. Steps at or before ``after_step`` are refused
    (a code already used cannot be replayed). Every candidate is compared in constant time."""
    code = (code or "").strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    step = current_step(now)
    found: int | None = None
    for candidate in range(step - WINDOW, step + WINDOW + 1):
        if hmac.compare_digest(hotp(secret, candidate), code) and (after_step is None or candidate > after_step):
            found = candidate
    return found


def provisioning_uri(secret: str, account: str, issuer: str = "AtlasHub") -> str:
    """The ``otpauth://`` URI authenticator apps read from a QR code."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_SECONDS}
    )
    return f"otpauth://totp/{label}?{query}"
