"""Signed, expiring download links for backups: a browser can follow one without the admin header.

``sig = HMAC-SHA256(key, "backup-download" | backup_id | expires)`` in URL-safe base64, where
``key = SecretBox.derive("backup-download")`` and ``expires`` is a Unix time in seconds. The link
is checked in constant time and refused once ``expires`` has passed. It names one backup only;
it cannot be turned into another backup's link or outlive its time without the node's master key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

from appliance.errors import BadRequest, Forbidden

DEFAULT_TTL_S = 600
MAX_TTL_S = 24 * 3600
PATH = "/admin/backups/download/{backup_id}"


def _signature(key: bytes, backup_id: str, expires: int) -> str:
    message = b"backup-download\x00" + backup_id.encode() + b"\x00" + str(expires).encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def ttl_from(raw: object) -> int:
    if raw is None:
        return DEFAULT_TTL_S
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_TTL_S:
        raise BadRequest(
            f"expires_in must be a whole number of seconds from 1 to {MAX_TTL_S}",
            code="invalid_value",
            details={"field": "expires_in"},
        )
    return raw


def signed_path(key: bytes, backup_id: str, ttl_s: int, *, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + ttl_s
    query = urlencode({"expires": expires, "sig": _signature(key, backup_id, expires)})
    return PATH.format(backup_id=backup_id) + "?" + query


def check(key: bytes, backup_id: str, expires_raw: str | None, sig: str | None, *, now: float | None = None) -> None:
    """Raise ``Forbidden`` unless ``sig`` signs this backup id and ``expires`` is still ahead."""
    refused = Forbidden("this download link is invalid or has expired", code="download_link_invalid")
    if not expires_raw or not sig or not expires_raw.isdigit() or len(expires_raw) > 12:
        raise refused
    expires = int(expires_raw)
    expected = _signature(key, backup_id, expires)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise refused
    if (now if now is not None else time.time()) >= expires:
        raise refused
