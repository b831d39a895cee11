"""The storage interface both backends implement, and the rules they share.

One object-store bucket per project (``proj-<id>``); keys are ``<logical bucket>/<path>``
(see ``paths``). Callers validate keys with ``paths.object_key`` before they get here; backends
validate again, so a bad key never reaches a filesystem path or an S3 request.

Upload limits. A presigned PUT carries a ``max_size`` and a ``content_type``. The fs backend
enforces both while receiving the bytes (413 / 400, nothing kept). A plain S3 presigned PUT can
enforce neither, so whoever hands out a download URL for an uploaded object (or records it as
uploaded) calls ``verify_upload`` first: it stats the object and deletes it if it is too large or
of another type (docs/decisions/0003-s3-max-size.md). On fs the call is a cheap stat.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from appliance.errors import BadRequest, NotFound, PayloadTooLarge

MAX_EXPIRES_S = 7 * 24 * 3600  # SigV4's limit; the fs signer uses the same
MAX_LIST_LIMIT = 1000
DEFAULT_CONTENT_TYPE = "application/octet-stream"

_TCHARS = r"[A-Za-z0-9!#$&^_.+\-]+"
_CONTENT_TYPE = re.compile(
    rf"{_TCHARS}/{_TCHARS}(?:[ \t]*;[ \t]*{_TCHARS}=(?:{_TCHARS}|\"[^\"\\\x00-\x1f\x7f]*\"))*[ \t]*"
)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # hex digest, unquoted (fs: sha256; s3: what the store reports, md5 for single-part)
    content_type: str | None  # None where the store does not say (S3 listings)
    last_modified: datetime  # timezone-aware, UTC


def normalize_content_type(value: str) -> str:
    """Canonical form of a Content-Type value (media type lowercased, parameters trimmed).

    Raises ``BadRequest(invalid_content_type)`` for anything that is not ``type/subtype[; k=v]``.
    """
    if not isinstance(value, str) or len(value) > 255 or _CONTENT_TYPE.fullmatch(value.strip()) is None:
        raise BadRequest("content type must look like 'type/subtype'", code="invalid_content_type")
    media, *params = (part.strip() for part in value.strip().split(";"))
    return "; ".join([media.lower(), *params])


def check_expires(expires_s: int) -> int:
    if not isinstance(expires_s, int) or not 1 <= expires_s <= MAX_EXPIRES_S:
        raise BadRequest(f"expiry must be 1 to {MAX_EXPIRES_S} seconds", code="invalid_expiry")
    return expires_s


def check_max_size(max_size: int) -> int:
    if not isinstance(max_size, int) or max_size < 0:
        raise BadRequest("maxSize must be a non-negative integer", code="invalid_max_size")
    return max_size


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise BadRequest(f"limit must be 1 to {MAX_LIST_LIMIT}", code="invalid_limit")
    return limit


@runtime_checkable
class StorageBackend(Protocol):
    """Object storage for project buckets. Every method is safe to call concurrently."""

    kind: str

    async def ensure_bucket(self, bucket: str) -> None:
        """Create the bucket if missing. Idempotent."""

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        """Delete the bucket; ``Conflict(bucket_not_empty)`` if it holds objects and not ``force``.
        A missing bucket is not an error."""

    async def bucket_exists(self, bucket: str) -> bool: ...

    async def presign_put(self, bucket: str, key: str, *, content_type: str, max_size: int, expires_s: int) -> str:
        """URL for one ``PUT`` with header ``Content-Type: <content_type>``."""

    async def presign_get(self, bucket: str, key: str, *, expires_s: int) -> str:
        """URL for ``GET`` (fs also accepts ``HEAD``). Does not check that the object exists."""

    async def stat(self, bucket: str, key: str) -> ObjectInfo | None: ...

    async def list(
        self, bucket: str, prefix: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[list[ObjectInfo], str | None]:
        """Objects whose key starts with ``prefix``, after ``cursor``; the second item is the
        cursor of the next page, or None when this page is the last. Order is the store's: fs
        and S3 proper sort keys bytewise, SeaweedFS lists directory by directory; either way,
        following the cursors visits every object exactly once."""

    async def delete(self, bucket: str, key: str) -> None:
        """Delete an object. Deleting a missing object is not an error."""

    async def put_stream(self, bucket: str, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        """Store an object from a stream of chunks, never holding it whole in memory."""

    def get_stream(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """Stream an object's bytes; raises ``NotFound(object_not_found)`` when missing."""

    async def close(self) -> None:
        """Release connections. Idempotent."""


async def verify_upload(
    backend: StorageBackend, bucket: str, key: str, *, max_size: int, content_type: str | None
) -> ObjectInfo:
    """Confirm an object uploaded through a presigned PUT respects the limits it was signed with.

    Deletes the object and raises ``PayloadTooLarge(object_too_large)`` or
    ``BadRequest(content_type_mismatch)`` if not; ``NotFound(object_not_found)`` if it is absent.
    """
    info = await backend.stat(bucket, key)
    if info is None:
        raise NotFound("no object at this key", code="object_not_found")
    if info.size > max_size:
        await backend.delete(bucket, key)
        raise PayloadTooLarge(
            "the uploaded object was larger than allowed and has been deleted",
            code="object_too_large",
            details={"maxSize": max_size, "size": info.size},
        )
    if content_type is not None:
        stored = info.content_type or DEFAULT_CONTENT_TYPE
        try:
            matches = normalize_content_type(stored) == normalize_content_type(content_type)
        except BadRequest:
            matches = False
        if not matches:
            await backend.delete(bucket, key)
            raise BadRequest(
                "the uploaded object has another content type than allowed and has been deleted",
                code="content_type_mismatch",
                details={"expected": content_type},
            )
    return info


def make_backend(kind: Literal["fs", "s3"], **settings: Any) -> StorageBackend:
    """Build a backend from its settings (see ``FsBackend`` and ``S3Backend`` for the keywords)."""
    if kind == "fs":
        from appliance.storage.fs import FsBackend

        return FsBackend(**settings)
    if kind == "s3":
        from appliance.storage.s3 import S3Backend

        return S3Backend(**settings)
    raise ValueError(f"unknown storage backend {kind!r}")
