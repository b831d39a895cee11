"""The embedded storage backend: files under a root directory, served by the gateway itself.

Layout: ``root/<bucket>/<key>`` holds the bytes; ``root/<bucket>/.meta/<hh>/<sha256(key)>.json``
holds ``{"content_type", "etag", "size"}``; ``root/<bucket>/.tmp/`` receives uploads in progress.
Keys always start with a logical bucket name (``[a-z0-9]...``), so they never meet the dot
directories. Writes go to a temp file on the same filesystem, are fsynced, then renamed over the
target and the directory fsynced, so a reader sees the old object or the new one, never a part.
If the daemon dies between the sidecar's rename and the data's, ``stat`` notices the size differs
and reports a weak etag and the default content type instead of wrong ones.

Limitation (S3 has none): a key cannot be both an object and a prefix of another object's key
(``a/b`` and ``a/b/c``); the second write fails with ``Conflict(path_conflict)``.

URLs are signed by ``fs_signing.FsSigner`` and served by ``fs_routes``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

from appliance.errors import Conflict, NotFound, PayloadTooLarge
from appliance.storage.base import (
    DEFAULT_CONTENT_TYPE,
    ObjectInfo,
    check_limit,
    normalize_content_type,
)
from appliance.storage.fs_signing import FsSigner
from appliance.storage.paths import validate_bucket_name, validate_object_key, validate_prefix

_WRITE_BLOCK = 1 << 20  # bytes handed to the writer thread at a time
_READ_BLOCK = 1 << 20
_FLUSH_LAG = 8 << 20
_T = TypeVar("_T")


class _TempWriter:
    """An upload in progress: a temp file plus a running sha256. Methods block (run in a thread)."""

    def __init__(self, tmp_dir: Path) -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        self.path = tmp_dir / f"{secrets.token_hex(16)}.part"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, blocks: list[bytes]) -> None:
        for block in blocks:
            view = memoryview(block)
            while view:
                view = view[os.write(self._fd, view) :]
            self.size += len(block)
        # Stream to disk instead of piling the whole upload up as dirty page cache: start
        # writeback of what lies a few blocks behind, and drop it once written. Fresh pages are
        # what made big uploads slow (and evict hotter data); recycled ones are cheap.
        behind = self.size - _FLUSH_LAG
        if behind > 0:
            start = max(0, behind - _FLUSH_LAG)
            os.posix_fadvise(self._fd, start, behind - start, os.POSIX_FADV_DONTNEED)

    def digest(self, blocks: list[bytes]) -> None:
        for block in blocks:
            self.hash.update(block)

    async def consume(self, blocks: list[bytes]) -> None:
        """Hash and write in two threads at once (both release the GIL): the slower one sets
        the pace, not their sum. Awaited in order, so the hash sees the blocks in order."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            loop.run_in_executor(None, self.digest, blocks), loop.run_in_executor(None, self.write, blocks)
        )

    def finish(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FsBackend:
    """Objects as files under ``root``; URLs signed by ``signer`` and served by ``fs_routes``."""

    kind = "fs"

    def __init__(
        self,
        root: str | Path,
        signing_key: bytes,
        public_base_url: str = "",
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.signer = FsSigner(signing_key, public_base_url, clock=clock)
        # Renames into the tree and removals of empty directories must not interleave.
        self._tree_lock = threading.Lock()

    # -- paths ---------------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        return self.root / validate_bucket_name(bucket)

    def _paths(self, bucket: str, key: str) -> tuple[str, Path, Path]:
        key = validate_object_key(key)
        bucket_dir = self._bucket_dir(bucket)
        data = bucket_dir / key
        if os.path.commonpath([bucket_dir, os.path.normpath(data)]) != str(bucket_dir):
            raise NotFound("no object at this key", code="object_not_found")
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return key, data, bucket_dir / ".meta" / digest[:2] / f"{digest}.json"

    @staticmethod
    def _check_real(bucket_dir: Path, data: Path) -> None:
        """Blocking: refuse a path that a symlink (never created by us) leads out of the bucket."""
        if not data.resolve().is_relative_to(bucket_dir.resolve()):
            raise NotFound("no object at this key", code="object_not_found")

    @staticmethod
    async def _run(fn: Callable[..., _T], *args: object) -> _T:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    # -- buckets -------------------------------------------------------------------------------

    async def ensure_bucket(self, bucket: str) -> None:
        await self._run(lambda: self._bucket_dir(bucket).mkdir(exist_ok=True))

    async def bucket_exists(self, bucket: str) -> bool:
        return await self._run(self._bucket_dir(bucket).is_dir)

    async def delete_bucket(self, bucket: str, *, force: bool = False) -> None:
        bucket_dir = self._bucket_dir(bucket)
        if not await self._run(bucket_dir.is_dir):
            return
        if not force:
            objects, _ = await self.list(bucket, "", limit=1)
            if objects:
                raise Conflict("the bucket is not empty", code="bucket_not_empty")
        await self._run(shutil.rmtree, bucket_dir)

    # -- signed URLs ---------------------------------------------------------------------------

    async def presign_put(self, bucket: str, key: str, *, content_type: str, max_size: int, expires_s: int) -> str:
        key, _, _ = self._paths(bucket, key)
        return self.signer.sign_url(
            "PUT", bucket, key, expires_s=expires_s, max_size=max_size, content_type=content_type
        )

    async def presign_get(self, bucket: str, key: str, *, expires_s: int) -> str:
        key, _, _ = self._paths(bucket, key)
        return self.signer.sign_url("GET", bucket, key, expires_s=expires_s)

    # -- objects -------------------------------------------------------------------------------

    def _info(self, key: str, st: os.stat_result, meta_path: Path) -> ObjectInfo:
        try:
            meta = json.loads(meta_path.read_bytes())
            if meta.get("size") != st.st_size:
                raise ValueError("stale sidecar")
            etag, ctype = str(meta["etag"]), str(meta["content_type"])
        except (OSError, ValueError, KeyError, TypeError):
            etag, ctype = f"W/{st.st_mtime_ns:x}-{st.st_size:x}", DEFAULT_CONTENT_TYPE
        modified = datetime.fromtimestamp(st.st_mtime, UTC)
        return ObjectInfo(key=key, size=st.st_size, etag=etag, content_type=ctype, last_modified=modified)

    def _stat_sync(self, bucket: str, key: str) -> ObjectInfo | None:
        key, data, meta = self._paths(bucket, key)
        try:
            self._check_real(self._bucket_dir(bucket), data)
            st = data.stat()
        except (NotFound, FileNotFoundError, NotADirectoryError):
            return None
        if not data.is_file():
            return None
        return self._info(key, st, meta)

    async def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        return await self._run(self._stat_sync, bucket, key)

    def open_sync(self, bucket: str, key: str) -> tuple[BinaryIO, ObjectInfo]:
        """Open an object for reading (blocking); the caller closes the file."""
        key, data, meta = self._paths(bucket, key)
        self._check_real(self._bucket_dir(bucket), data)
        try:
            f = data.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound("no object at this key", code="object_not_found") from None
        try:
            return f, self._info(key, os.fstat(f.fileno()), meta)
        except BaseException:
            f.close()
            raise

    async def get_stream(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        f, _ = await self._run(self.open_sync, bucket, key)
        try:
            while block := await self._run(f.read, _READ_BLOCK):
                yield block
        finally:
            f.close()

    async def delete(self, bucket: str, key: str) -> None:
        key, data, meta = self._paths(bucket, key)
        await self._run(self._delete_sync, self._bucket_dir(bucket), data, meta)

    def _delete_sync(self, bucket_dir: Path, data: Path, meta: Path) -> None:
        with self._tree_lock:
            try:
                self._check_real(bucket_dir, data)
            except NotFound:
                return
            for path in (data, meta):
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    path.unlink()
            parent = data.parent
            while parent != bucket_dir and parent.is_relative_to(bucket_dir):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    async def put_stream(self, bucket: str, key: str, chunks: AsyncIterator[bytes], *, content_type: str) -> ObjectInfo:
        return await self.receive(bucket, key, chunks, content_type=content_type, max_size=None)

    async def receive(
        self,
        bucket: str,
        key: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str,
        max_size: int | None,
    ) -> ObjectInfo:
        """Stream ``chunks`` into the object; past ``max_size`` bytes raise ``PayloadTooLarge``
        and keep nothing. Disk writes run in a thread, overlapped with receiving the next block."""
        content_type = normalize_content_type(content_type)
        key, data, meta = self._paths(bucket, key)
        bucket_dir = self._bucket_dir(bucket)
        if not await self._run(bucket_dir.is_dir):
            raise NotFound("the bucket does not exist", code="bucket_not_found")
        writer = await self._run(_TempWriter, bucket_dir / ".tmp")
        pending: asyncio.Task[None] | None = None
        buf: list[bytes] = []
        buffered = received = 0
        try:
            async for chunk in chunks:
                received += len(chunk)
                if max_size is not None and received > max_size:
                    raise PayloadTooLarge(
                        f"the upload is larger than the allowed {max_size} bytes",
                        code="payload_too_large",
                        details={"maxSize": max_size},
                    )
                buf.append(chunk)
                buffered += len(chunk)
                if buffered >= _WRITE_BLOCK:
                    if pending is not None:
                        await pending
                    pending = asyncio.create_task(writer.consume(buf))
                    buf, buffered = [], 0
            if pending is not None:
                await pending
                pending = None
            await writer.consume(buf)
            await self._run(writer.finish)
            record = {"content_type": content_type, "etag": writer.hash.hexdigest(), "size": writer.size}
            await self._run(self._commit, bucket_dir, writer.path, data, meta, record)
        except BaseException:
            if pending is not None:
                with contextlib.suppress(BaseException):
                    await pending
            await asyncio.shield(self._run(writer.discard))
            raise
        info = await self.stat(bucket, key)
        if info is None:  # deleted concurrently, right after it was written
            raise NotFound("the object was deleted while it was being written", code="object_not_found")
        return info

    def _commit(self, bucket_dir: Path, tmp: Path, data: Path, meta: Path, record: dict[str, object]) -> None:
        meta_tmp = tmp.with_suffix(".json")
        with meta_tmp.open("w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            with self._tree_lock:
                self._check_real(bucket_dir, data)
                meta.parent.mkdir(parents=True, exist_ok=True)
                try:
                    data.parent.mkdir(parents=True, exist_ok=True)
                except (FileExistsError, NotADirectoryError):
                    raise Conflict("an object exists at a prefix of this path", code="path_conflict") from None
                if data.is_dir():
                    raise Conflict("objects exist under this path", code="path_conflict")
                os.replace(meta_tmp, meta)
                os.replace(tmp, data)
            _fsync_dir(data.parent)
            _fsync_dir(meta.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                meta_tmp.unlink()

    # -- listing -------------------------------------------------------------------------------

    async def list(
        self, bucket: str, prefix: str, *, limit: int = 100, cursor: str | None = None
    ) -> tuple[builtins.list[ObjectInfo], str | None]:
        prefix = validate_prefix(prefix)
        check_limit(limit)
        bucket_dir = self._bucket_dir(bucket)
        keys = await self._run(_walk_keys, bucket_dir, prefix, cursor or "", limit + 1)
        infos: builtins.list[ObjectInfo] = []
        for key in keys[:limit]:
            info = await self.stat(bucket, key)
            if info is not None:
                infos.append(info)
        return infos, (keys[limit - 1] if len(keys) > limit else None)

    async def close(self) -> None:
        """Nothing to release. Idempotent."""


def _walk_keys(bucket_dir: Path, prefix: str, after: str, want: int) -> list[str]:
    """Up to ``want`` keys starting with ``prefix`` and greater than ``after``, in key order.

    Siblings are visited sorted by ``name`` for files and ``name + "/"`` for directories, which
    is exactly the lexicographic order of the full keys; subtrees wholly before ``after`` or
    outside ``prefix`` are skipped without being read.
    """
    found: list[str] = []

    def visit(directory: Path, base: str) -> None:
        try:
            with os.scandir(directory) as it:
                entries = [(e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e) for e in it]
        except (FileNotFoundError, NotADirectoryError):
            return
        for sort_name, entry in sorted(entries, key=lambda pair: pair[0]):
            if len(found) >= want:
                return
            if not base and entry.name.startswith("."):
                continue  # .meta, .tmp
            full = base + sort_name
            if sort_name.endswith("/"):
                if not (full.startswith(prefix) or prefix.startswith(full)):
                    continue
                if full < after and not after.startswith(full):
                    continue
                visit(Path(entry.path), full)
            elif entry.is_file(follow_symlinks=False) and full.startswith(prefix) and full > after:
                found.append(full)

    visit(bucket_dir, "")
    return found
