"""Cloud provider settings: the API token (sealed with the master key, never shown again),
the API base URL and the SSH public key put on new servers."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from appliance.cloud.cloudinit import valid_ssh_key
from appliance.cloud.hetzner import DEFAULT_API_URL
from appliance.control.store import ControlPlane, utcnow
from appliance.crypto import DecryptionError, SecretBox
from appliance.errors import BadRequest, Conflict

HETZNER = "hetzner"
MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class ProviderSettings:
    provider: str
    token: str
    api_url: str
    ssh_public_key: str | None

    def __repr__(self) -> str:  # the token must not reach a log line through a repr
        return f"ProviderSettings(provider={self.provider!r}, api_url={self.api_url!r})"


def token_context(provider: str) -> str:
    return f"cloud-token:{provider}"


def check_token_text(token: object) -> str:
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH or not token.isprintable():
        raise BadRequest("token must be a non-empty API token", code="invalid_parameter", details={"field": "token"})
    return token.strip()


def check_api_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 300:
        raise BadRequest("api_url must be an http(s) URL", code="invalid_parameter", details={"field": "api_url"})
    return url.rstrip("/")


def check_ssh_key(key: object) -> str:
    if not isinstance(key, str) or not valid_ssh_key(key):
        raise BadRequest(
            "ssh_public_key must be one OpenSSH public key line (ssh-ed25519 …)",
            code="invalid_parameter",
            details={"field": "ssh_public_key"},
        )
    return key.strip()


def ssh_fingerprint(public_key: str) -> str:
    """The MD5 fingerprint Hetzner shows and filters by (``aa:bb:…``)."""
    try:
        blob = base64.b64decode(public_key.split()[1], validate=True)
    except (IndexError, binascii.Error, ValueError):
        raise BadRequest("ssh_public_key is not an OpenSSH public key", code="invalid_parameter") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class CloudSettings:
    def __init__(self, store: ControlPlane, box: SecretBox) -> None:
        self._store = store
        self._box = box

    async def save(self, provider: str, token: str, api_url: str, ssh_public_key: str | None) -> None:
        sealed = self._box.encrypt_text(token, token_context(provider))
        await self._store.execute(
            "INSERT INTO cloud_settings (provider, token_enc, api_url, ssh_public_key, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (provider) DO UPDATE SET token_enc = excluded.token_enc,"
            " api_url = excluded.api_url, ssh_public_key = coalesce(excluded.ssh_public_key,"
            " cloud_settings.ssh_public_key), updated_at = excluded.updated_at",
            (provider, sealed, api_url or DEFAULT_API_URL, ssh_public_key, utcnow()),
        )

    async def load(self, provider: str) -> ProviderSettings:
        row = await self._store.fetchone(
            "SELECT token_enc, api_url, ssh_public_key FROM cloud_settings WHERE provider = ?", (provider,)
        )
        if row is None:
            raise Conflict(
                f"no {provider} API token is set: PUT /admin/api/cloud/{provider}/token or `atlashub cloud token set`",
                code="cloud_token_missing",
            )
        try:
            token = self._box.decrypt_text(row["token_enc"], token_context(provider))
        except DecryptionError:
            raise Conflict(
                f"the stored {provider} token cannot be decrypted with this node's master key; set it again",
                code="cloud_token_unreadable",
            ) from None
        return ProviderSettings(provider, token, row["api_url"], row["ssh_public_key"])

    async def describe(self, provider: str) -> dict[str, object]:
        """What the dashboard may show: whether a token is set, never the token."""
        row = await self._store.fetchone(
            "SELECT api_url, ssh_public_key, updated_at FROM cloud_settings WHERE provider = ?", (provider,)
        )
        if row is None:
            return {"provider": provider, "token_set": False}
        return {"provider": provider, "token_set": True, **dict(row)}
