"""The S3 backend (MinIO or any S3) through miniopy-async; presigned URLs go straight to the store.

Presigned URLs are signed for ``public_endpoint`` — the origin clients will use, which may differ
from ``endpoint`` (the one this node reaches) — because SigV4 signs the Host header. The region is
always set, so presigning never asks the store for a bucket's location (the public host may be
unreachable from here).

Upload limits: a SigV4 presigned PUT signs only the host (miniopy-async cannot sign extra
headers), so S3 accepts any size and Content-Type on it. The limits are enforced afterwards by
``base.verify_upload``: before an uploaded object is recorded or handed out by a download URL,
its size and type are checked and the object is deleted if it breaks them
(docs/decisions/0003-s3-max-size.md).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from miniopy_async.api import Minio
from miniopy_async.deleteobjects import DeleteObject
from miniopy_async.error import S3Error

from appliance.errors import Conflict, NotFound, ServiceUnavailable
from appliance.storage.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    check_expires,
    check_limit,
    check_max_size,
    normalize_content_type,
)
from appliance.storage.paths import validate_bucket_name, validate_object_key, validate_prefix

_PART_SIZE = 16 * 1024 * 1024  # multipart part held in memory while streaming (put_stream)
_READ_BLOCK = 1 << 20
_MISSING = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"}


class _ChunkReader:
    """Adapts an async iterator of chunks to the ``async read(n)`` miniopy-async wants."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = bytearray()
        self._eof = False

    async def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._buf) < size):
            try:
                self._buf += await anext(self._chunks)
            except StopAsyncIteration:
                self._eof = True
        if size < 0:
            size = len(self._buf)
        block = bytes(self._buf[:size])
        del self._buf[:size]
        return block


def _utc(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class S3Backend:
    """Object storage on an S3 server. ``endpoint`` is ``host:port``; ``public_endpoint`` a URL
    such as ``https://s3.example.com`` (defaults to the endpoint itself)."""

    kind = "s3"

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        *,
        region: str = "us-east-1",
        secure: bool = True,
        public_endpoint: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if public_endpoint is None:
            public_endpoint = ("https://" if secure else "http://") + endpoint
        self.public_endpoint = public_endpoint.rstrip("/")
        self._clock = clock
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            server_url=self.public_endpoint,
        )

    def __repr__(self) -> str:  # never show credentials
        return f"S3Backend(public_endpoint={self.public_endpoint!r})"

    @staticmethod
    def _key(key: str) -> str:
        return validate_object_key(key)

    # -- buckets -------------------------------------------------------------------------------

    async def ensure_bucket(self, bucket: str) -> None:
        validate_bucket_name(bucket)
        if await self._client.bucket_exists(bucket):
            return
        try:
            await self._client.make_bucket(bucket)
        except S3Error as e:
            if e.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise ServiceUnavailable("the object store refused to create the bucket") from e

    async def bucket_exists(self, bucket: str) -> bool:
        return bool(await self._client.bucket_exists(validate_bucket_name(bucket)))

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        if not await self.bucket_exists(bucket):
            return
        while True:
            objects, _ = await self.list(bucket, "", limit=1000)
            if not objects:
                break
            if not force:
                raise Conflict("the bucket is not empty", code="bucket_not_empty")
            errors = self._client.remove_objects(bucket, [DeleteObject(o.key) for o in objects])
            async for error in errors:
                raise ServiceUnavailable(f"could not delete an object: {error.code}")
        try:
            await self._client.remove_bucket(bucket)
        except S3Error as e:
            if e.code == "BucketNotEmpty":
                raise Conflict("the bucket is not empty", code="bucket_not_empty") from e
            if e.code != "NoSuchBucket":
                raise

    # -- presigned URLs ------------------------------------------------------------------------

    def _request_date(self) -> datetime:
        return datetime.fromtimestamp(int(self._clock()), UTC)

    async def presign_put(self, bucket: str, key: str, *, content_type: str, max_size: int, expires_s: int) -> str:
        """A presigned PUT. ``content_type`` and ``max_size`` are validated here but enforced
        only by ``verify_upload`` (see the module docstring)."""
        normalize_content_type(content_type)
        check_max_size(max_size)
        return await self._client.get_presigned_url(
            "PUT",
            validate_bucket_name(bucket),
            self._key(key),
            expires=timedelta(seconds=check_expires(expires_s)),
            request_date=self._request_date(),
        )

    async def presign_get(self, bucket: str, key: str, *, expires_s: int) -> str:
        return await self._client.get_presigned_url(
            "GET",
            validate_bucket_name(bucket),
            self._key(key),
            expires=timedelta(seconds=check_expires(expires_s)),
            request_date=self._request_date(),
        )

    # -- objects -------------------------------------------------------------------------------

    async def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        key = self._key(key)
        try:
            obj = await self._client.stat_object(validate_bucket_name(bucket), key)
        except S3Error as e:
            if e.code in _MISSING:
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(obj.size or 0),
            etag=(obj.etag or "").strip('"'),
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
            last_modified=_utc(obj.last_modified),
        )

    async def list(
        self, bucket: str, prefix: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[builtins.list[ObjectInfo], str | None]:
        check_limit(limit)
        objects = self._client.list_objects(
            validate_bucket_name(bucket),
            prefix=validate_prefix(prefix) or None,
            recursive=True,
            start_after=cursor or None,
        )
        found: builtins.list[ObjectInfo] = []
        try:
            async for obj in objects:
                if obj.is_dir or obj.object_name is None:
                    continue
                if len(found) == limit:
                    return found, found[-1].key
                found.append(
                    ObjectInfo(
                        key=obj.object_name,
                        size=int(obj.size or 0),
                        etag=(obj.etag or "").strip('"'),
                        content_type=None,
                        last_modified=_utc(obj.last_modified),
                    )
                )
        except S3Error as e:
            if e.code == "NoSuchBucket":
                raise NotFound("the bucket does not exist", code="bucket_not_found") from e
            raise
        return found, None

    async def delete(self, bucket: str, key: str) -> None:
        try:
            await self._client.remove_object(validate_bucket_name(bucket), self._key(key))
        except S3Error as e:
            if e.code not in _MISSING:
                raise

    async def put_stream(self, bucket: str, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        """Multipart upload, one part (16 MiB) in memory at a time."""
        key = self._key(key)
        await self._client.put_object(
            validate_bucket_name(bucket),
            key,
            _ChunkReader(chunks),  # type: ignore[arg-type]  # miniopy awaits an async read()
            length=-1,
            content_type=normalize_content_type(content_type),
            part_size=_PART_SIZE,
            num_parallel_uploads=1,  # more would read parts ahead into memory without bound
        )
        info = await self.stat(bucket, key)
        if info is None:
            raise NotFound("the object vanished right after it was written", code="object_not_found")
        return info

    async def get_stream(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        try:
            response = await self._client.get_object(validate_bucket_name(bucket), self._key(key))
        except S3Error as e:
            if e.code in _MISSING:
                raise NotFound("no object at this key", code="object_not_found") from e
            raise
        try:
            async for block in response.content.iter_chunked(_READ_BLOCK):
                yield block
        finally:
            response.close()

    async def close(self) -> None:
        """Close the HTTP session. Idempotent."""
        await self._client.close_session()
