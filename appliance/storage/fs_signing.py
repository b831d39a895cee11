"""Signed, expiring URLs for the fs backend's objects: ``FsSigner`` makes and checks them.

Format: ``{public_base_url}/v1/storage/object/{bucket}/{key}?X-Atlas-Expires=<unix s>
&X-Atlas-Max-Size=<bytes>&X-Atlas-Content-Type=<type>&X-Atlas-Signature=<hex>`` (size and type
on upload URLs only). The signature is HMAC-SHA256, under a per-node key, over
``atlas-fs-v1\n<METHOD>\n<bucket>\n<key>\n<expires>\n<max size>\n<content type>``; none of
the fields can hold a newline. Pure: no I/O, no HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from appliance.errors import Forbidden
from appliance.storage.base import check_expires, check_max_size, normalize_content_type

SIGNED_PATH_PREFIX = "/v1/storage/object"
_DIGITS = re.compile(r"[0-9]{1,15}")


@dataclass(frozen=True, slots=True)
class SignedGrant:
    """What a verified URL allows: one method on one object, with the limits it was signed with."""

    method: str
    bucket: str
    key: str
    expires: int
    max_size: int | None
    content_type: str | None


class FsSigner:
    """HMAC-SHA256 signed, expiring object URLs, verified by this node's gateway.

    The signature covers method, bucket, key, expiry, max size and content type; the key is
    per node and never leaves it. ``HEAD`` is allowed wherever ``GET`` is.
    """

    def __init__(self, key: bytes, public_base_url: str, *, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the signing key must be at least 32 bytes")
        self._key = key
        self._clock = clock
        self.public_base_url = ""
        self.set_public_base_url(public_base_url)

    def set_public_base_url(self, url: str) -> None:
        """Set the origin clients reach the gateway at (the daemon learns its port late)."""
        self.public_base_url = url.rstrip("/")

    def _signature(self, method: str, bucket: str, key: str, expires: int, max_size: str, ctype: str) -> str:
        message = "\n".join(("atlas-fs-v1", method, bucket, key, str(expires), max_size, ctype))
        return hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def sign_url(
        self,
        method: str,
        bucket: str,
        key: str,
        *,
        expires_s: int,
        max_size: int | None = None,
        content_type: str | None = None,
    ) -> str:
        expires = int(self._clock()) + check_expires(expires_s)
        size = "" if max_size is None else str(check_max_size(max_size))
        ctype = "" if content_type is None else normalize_content_type(content_type)
        query = {"X-Atlas-Expires": str(expires)}
        if size:
            query["X-Atlas-Max-Size"] = size
        if ctype:
            query["X-Atlas-Content-Type"] = ctype
        query["X-Atlas-Signature"] = self._signature(method.upper(), bucket, key, expires, size, ctype)
        path = f"{SIGNED_PATH_PREFIX}/{quote(bucket, safe='')}/{quote(key, safe='/')}"
        return f"{self.public_base_url}{path}?{urlencode(query, quote_via=quote)}"

    def verify(
        self, method: str, bucket: str, key: str, query: Mapping[str, str], now: float | None = None
    ) -> SignedGrant:
        """Check a request against its URL's signature; raise ``Forbidden`` with a precise code."""
        method = "GET" if method.upper() == "HEAD" else method.upper()
        expires_raw = query.get("X-Atlas-Expires", "")
        size = query.get("X-Atlas-Max-Size", "")
        ctype = query.get("X-Atlas-Content-Type", "")
        given = query.get("X-Atlas-Signature", "")
        if not _DIGITS.fullmatch(expires_raw) or (size and not _DIGITS.fullmatch(size)) or not given:
            raise Forbidden("the URL is not a valid signed URL", code="signature_invalid")
        expires, given_b = int(expires_raw), given.encode("utf-8", "replace")

        def matches(for_method: str) -> bool:
            expected = self._signature(for_method, bucket, key, expires, size, ctype)
            return hmac.compare_digest(given_b, expected.encode())

        if not matches(method):
            for other in ("GET", "PUT"):
                if other != method and matches(other):
                    raise Forbidden(f"this URL was signed for {other}", code="method_mismatch")
            raise Forbidden("the URL's signature does not match", code="signature_invalid")
        if (self._clock() if now is None else now) > expires:
            raise Forbidden("the signed URL has expired", code="url_expired")
        return SignedGrant(method, bucket, key, expires, int(size) if size else None, ctype or None)


_SIGNATURE_PARAM = re.compile(r"((?:X-Atlas-Signature|X-Amz-Signature|X-Amz-Credential)=)[^&\s\"']*", re.I)


def redact_signatures(text: str) -> str:
    """Blank out signatures (fs and S3) in a URL or log line; access logs must go through this."""
    return _SIGNATURE_PARAM.sub(r"\1REDACTED", text)
