"""Cloudflare Access in front of the dashboard: verify ``Cf-Access-Jwt-Assertion``.

Active only when ``admin.access_team_domain`` is set. The token must be RS256 (``none``, HS256
and anything else are refused before a key is even looked up, so a public key can never be
used as an HMAC secret), signed by a key of the team's JWKS, for our audience tag, issued by
``https://<team domain>``, and within ``nbf``/``exp``. The identity is the ``email`` claim
(``common_name`` for Access service tokens).

The JWKS is cached for an hour; a token naming an unknown ``kid`` triggers a refetch at most
once a minute, so forged tokens with random kids cannot make us hammer Cloudflare.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from appliance.config import AdminConfig
from appliance.dashboard.adminauth import AdminIdentity
from appliance.errors import ServiceUnavailable, Unauthorized
from appliance.web.keys import CORE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

    from appliance.core import Core

log = logging.getLogger(__name__)

HEADER = "Cf-Access-Jwt-Assertion"
ALGORITHM = "RS256"
CACHE_SECONDS = 3600.0
REFETCH_INTERVAL = 60.0
LEEWAY_SECONDS = 10
MAX_JWKS_BYTES = 256 * 1024
FETCH_TIMEOUT = 5.0


def team_host(team_domain: str) -> str:
    host = team_domain.strip()
    for prefix in ("https://", "http://"):
        if host.lower().startswith(prefix):
            host = host[len(prefix) :]
    return host.rstrip("/")


def _reject(message: str) -> Unauthorized:
    return Unauthorized(message, code="invalid_access_token")


def parse_jwks(document: Any) -> dict[str, RSAPublicKey]:
    """RSA signing keys by kid; private, non-RSA and non-RS256 entries are skipped."""
    import jwt  # deferred: PyJWT costs ~2.5 MB of resident memory until the first token
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from jwt.algorithms import RSAAlgorithm

    keys: dict[str, RSAPublicKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("kty") != "RSA" or "d" in entry:
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM or entry.get("use", "sig") != "sig":
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        try:
            key = RSAAlgorithm.from_jwk(json.dumps(entry))
        except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            continue
        if isinstance(key, RSAPublicKey):
            keys[kid] = key
    return keys


class AccessVerifier:
    """One per node (``core.service(AccessVerifier)``); ``aclose()`` closes its HTTP client."""

    def __init__(self, core: Core, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings: AdminConfig = core.config.admin
        host = team_host(self.settings.access_team_domain)
        self.issuer = f"https://{host}"
        self.jwks_url = self.settings.access_jwks_url or f"{self.issuer}/cdn-cgi/access/certs"
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.access_team_domain)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims, or Unauthorized saying what is wrong with the token."""
        import jwt  # deferred: PyJWT costs ~2.5 MB of resident memory until the first token

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _reject("the Cloudflare Access token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise _reject(f"the Cloudflare Access token must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("the Cloudflare Access token names no signing key")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.settings.access_audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _reject("the Cloudflare Access token has expired") from None
        except jwt.ImmatureSignatureError:
            raise _reject("the Cloudflare Access token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise _reject("the Cloudflare Access token is for another application") from None
        except jwt.InvalidIssuerError:
            raise _reject("the Cloudflare Access token was issued by another team") from None
        except jwt.PyJWTError:
            raise _reject("the Cloudflare Access token signature is not valid") from None
        return claims

    async def _key(self, kid: str) -> RSAPublicKey:
        now = self.clock()
        stale = self._fetched_at is None or now - self._fetched_at > CACHE_SECONDS
        if kid not in self._keys or stale:
            async with self._lock:
                now = self.clock()
                if self._attempted_at is None or now - self._attempted_at >= REFETCH_INTERVAL:
                    self._attempted_at = now
                    await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            if self._fetched_at is None:
                raise ServiceUnavailable(
                    "the Cloudflare Access signing keys cannot be fetched", code="access_keys_unavailable"
                )
            raise _reject("the Cloudflare Access token is signed by an unknown key")
        return key

    async def _refresh(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT))
        self.fetches += 1
        try:
            async with self._http.get(self.jwks_url, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
                body = await resp.content.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("document too large")
            keys = parse_jwks(json.loads(body))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("fetching the Cloudflare Access keys from %s failed: %s", self.jwks_url, exc)
            return  # keep the keys we had
        if not keys:
            log.warning("the Cloudflare Access key set at %s holds no RS256 keys", self.jwks_url)
            return
        self._keys = keys
        self._fetched_at = self.clock()


async def resolve(request: web.Request) -> AdminIdentity | None:
    core = request.app[CORE]
    if not core.config.admin.access_team_domain:
        return None
    token = request.headers.get(HEADER)
    if token is None:
        return None
    claims = await core.service(AccessVerifier).verify(token.strip())
    for claim in ("email", "common_name"):
        value = claims.get(claim)
        if isinstance(value, str) and value:
            return AdminIdentity(name=value, via="access")
    raise _reject("the Cloudflare Access token carries no email")
