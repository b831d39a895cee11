"""Project storage as the public and admin APIs see it: logical buckets, signed URLs, listings.

Everything a request can name is checked here, against the project it came with: the logical
bucket must exist in ``buckets``, paths and keys go through ``paths``, and every object lives in
the project's own store bucket ``proj-<id>``, so a key of one project never reaches another's.

Uploads are recorded in ``file_metadata`` (unconfirmed, with the content type and size limit the
URL was signed with). Before an object is handed out or listed, ``_checked`` runs
``verify_upload`` against that record: on s3 this is where ``maxSize`` and ``contentType`` are
enforced (the object is deleted if it breaks them, docs/decisions/0003-s3-max-size.md); on fs
the gateway enforced them on the way in and the check is one stat. Then the row is confirmed
with the object's real size and checksum.

No HTTP here; handlers in ``public_routes`` / ``admin_routes`` parse, call and render.
"""

from __future__ import annotations

import builtins
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from appliance.control.store import utcnow
from appliance.errors import AtlasError, BadRequest, Conflict, Forbidden, NotFound
from appliance.projects.keys import KeyRecord
from appliance.projects.model import Project
from appliance.storage.base import ObjectInfo, check_limit, normalize_content_type, verify_upload
from appliance.storage.paths import object_key, validate_logical_bucket, validate_object_key, validate_prefix

if TYPE_CHECKING:
    from appliance.core import Core

log = logging.getLogger(__name__)

PUBLISHABLE_SETTING = "storage_publishable"
ENDPOINTS = ("signed-upload", "signed-download", "list", "delete")
SECRET_ONLY = frozenset({"list", "delete"})
DEFAULT_PUBLISHABLE = ("signed-download",)
_DELETE_PAGE = 1000


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str  # the full object key, ``<logical bucket>/<path>``
    size: int
    etag: str
    content_type: str | None
    last_modified: datetime


StorageObjectList = tuple[list[StoredObject], str | None]  # a page and the cursor of the next one


def publishable_endpoints(project: Project) -> list[str]:
    """The endpoints a publishable key of ``project`` may call (secret-only ones never count)."""
    raw = project.settings.get(PUBLISHABLE_SETTING)
    if not isinstance(raw, list):
        return list(DEFAULT_PUBLISHABLE)
    return [e for e in ENDPOINTS if e in raw and e not in SECRET_ONLY]


def _bucket_not_found(bucket: str) -> NotFound:
    return NotFound(f"no bucket {bucket!r} in this project", code="bucket_not_found", details={"bucket": bucket})


class StorageService:
    """Shared per node through ``core.service(StorageService)``. Stateless beyond the core."""

    def __init__(self, core: Core) -> None:
        self._core = core

    @property
    def max_upload_bytes(self) -> int:
        return self._core.config.storage.max_upload_bytes

    @property
    def expires_s(self) -> int:
        return int(self._core.config.storage.url_expires_seconds)

    # -- who may call what -----------------------------------------------------------------

    def authorize(self, project: Project, key: KeyRecord, endpoint: str) -> None:
        """Raise ``Forbidden`` unless ``key`` may call ``endpoint`` (one of ``ENDPOINTS``)."""
        if key.project_id != project.id:  # pragma: no cover - callers resolve the project from the key
            raise Forbidden("the key belongs to another project", code="forbidden")
        if key.type == "secret":
            return
        if endpoint in SECRET_ONLY:
            raise Forbidden(f"storage {endpoint} needs the secret key", code="secret_key_required")
        if endpoint not in publishable_endpoints(project):
            raise Forbidden(
                f"this project does not let publishable keys call storage {endpoint}; use the secret key "
                "server-side, or allow it in the project's storage settings",
                code="publishable_key_not_allowed",
                details={"endpoint": endpoint},
            )

    async def set_publishable_endpoints(self, project: Project, endpoints: object) -> builtins.list[str]:
        if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
            raise BadRequest("publishable must be a list of endpoint names", code="invalid_setting")
        unknown = sorted(set(endpoints) - set(ENDPOINTS))
        if unknown:
            raise BadRequest(f"unknown storage endpoints: {unknown}", code="invalid_setting", details=list(ENDPOINTS))
        secret_only = sorted(set(endpoints) & SECRET_ONLY)
        if secret_only:
            raise BadRequest(f"{secret_only} always need the secret key", code="secret_only_endpoint")
        chosen = [e for e in ENDPOINTS if e in endpoints]
        async with self._core.store.transaction() as tx:
            async with tx.execute("SELECT settings_json FROM projects WHERE id = ?", (project.id,)) as cur:
                row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no project {project.id!r}", code="project_not_found")
            settings = json.loads(row[0] or "{}")
            settings[PUBLISHABLE_SETTING] = chosen
            await tx.execute("UPDATE projects SET settings_json = ? WHERE id = ?", (json.dumps(settings), project.id))
        return chosen

    # -- buckets ---------------------------------------------------------------------------

    async def require_bucket(self, project: Project, bucket: object) -> str:
        name = validate_logical_bucket(bucket)  # type: ignore[arg-type]  # validates the type too
        row = await self._core.store.fetchone(
            "SELECT 1 FROM buckets WHERE project_id = ? AND name = ?", (project.id, name)
        )
        if row is None:
            raise _bucket_not_found(name)
        return name

    async def buckets(self, project: Project) -> builtins.list[dict[str, Any]]:
        """Each logical bucket with its object count (counted up to one listing page)."""
        rows = await self._core.store.fetchall(
            "SELECT name, created_at FROM buckets WHERE project_id = ? ORDER BY name", (project.id,)
        )
        found = []
        for row in rows:
            objects, more = await self._core.storage.list(project.names.bucket, f"{row['name']}/", limit=_DELETE_PAGE)
            found.append(
                {
                    "name": row["name"],
                    "created_at": row["created_at"],
                    "object_count": len(objects),
                    "object_count_capped": more is not None,
                }
            )
        return found

    async def create_bucket(self, project: Project, name: object) -> dict[str, Any]:
        bucket = validate_logical_bucket(name)  # type: ignore[arg-type]
        now = utcnow()
        try:
            await self._core.store.execute(
                "INSERT INTO buckets (project_id, name, created_at) VALUES (?, ?, ?)", (project.id, bucket, now)
            )
        except sqlite3.IntegrityError:
            raise Conflict(f"the bucket {bucket!r} already exists", code="bucket_exists") from None
        return {"name": bucket, "created_at": now, "object_count": 0}

    async def delete_bucket(self, project: Project, name: object, confirm: object = None) -> int:
        """Delete a logical bucket; one holding objects only with ``confirm == name`` (else
        ``Conflict(bucket_not_empty)``, nothing deleted). Returns the number of objects deleted."""
        bucket = await self.require_bucket(project, name)
        store_bucket = project.names.bucket
        objects, _ = await self._core.storage.list(store_bucket, f"{bucket}/", limit=1)
        if objects and confirm != bucket:
            raise Conflict(
                f'the bucket {bucket!r} is not empty; send {{"confirm": "{bucket}"}} to delete it with its objects',
                code="bucket_not_empty",
            )
        deleted = await self._delete_all(store_bucket, bucket)
        async with self._core.store.transaction() as tx:
            await tx.execute("DELETE FROM buckets WHERE project_id = ? AND name = ?", (project.id, bucket))
            await tx.execute("DELETE FROM file_metadata WHERE project_id = ? AND bucket = ?", (project.id, bucket))
        # An upload signed just before the row went may have landed meanwhile: sweep once more.
        return deleted + await self._delete_all(store_bucket, bucket)

    async def _delete_all(self, store_bucket: str, bucket: str) -> int:
        deleted = 0
        while True:
            objects, _ = await self._core.storage.list(store_bucket, f"{bucket}/", limit=_DELETE_PAGE)
            if not objects:
                return deleted
            for obj in objects:
                await self._core.storage.delete(store_bucket, obj.key)
            deleted += len(objects)

    # -- objects ---------------------------------------------------------------------------

    async def signed_upload(
        self,
        project: Project,
        key: KeyRecord | None,
        bucket: object,
        path: object,
        content_type: object,
        max_size: object,
        *,
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        """A presigned PUT for ``<bucket>/<path>``; records the pending upload with its limits."""
        name = await self.require_bucket(project, bucket)
        if not isinstance(path, str):
            raise BadRequest("path must be a string", code="invalid_path")
        if not isinstance(content_type, str):
            raise BadRequest("contentType must be a string like 'image/png'", code="invalid_content_type")
        ctype = normalize_content_type(content_type)
        minimum, cap = (0 if allow_empty else 1), self.max_upload_bytes
        if not isinstance(max_size, int) or isinstance(max_size, bool) or not minimum <= max_size <= cap:
            raise BadRequest(
                f"maxSize must be an integer from {minimum} to {cap} bytes",
                code="invalid_max_size",
                details={"min": minimum, "max": cap},
            )
        full_key = object_key(name, path)
        await self._core.store.execute(
            "INSERT INTO file_metadata (project_id, object_key, bucket, size, content_type, checksum,"
            " uploader_key_id, created_at, confirmed_at, max_size) VALUES (?, ?, ?, NULL, ?, NULL, ?, ?, NULL, ?)"
            " ON CONFLICT (project_id, object_key) DO UPDATE SET bucket = excluded.bucket, size = NULL,"
            " content_type = excluded.content_type, checksum = NULL, uploader_key_id = excluded.uploader_key_id,"
            " created_at = excluded.created_at, confirmed_at = NULL, max_size = excluded.max_size",
            (project.id, full_key, name, ctype, key.id if key else None, utcnow(), max_size),
        )
        url = await self._core.storage.presign_put(
            project.names.bucket, full_key, content_type=ctype, max_size=max_size, expires_s=self.expires_s
        )
        return {"objectKey": full_key, "uploadUrl": url, "expiresIn": self.expires_s}

    async def _object_key_in(self, project: Project, bucket: object, key: object) -> str:
        name = await self.require_bucket(project, bucket)
        if not isinstance(key, str):
            raise BadRequest("objectKey must be a string", code="invalid_path")
        full_key = validate_object_key(key)
        if not full_key.startswith(f"{name}/"):
            raise BadRequest(
                f"objectKey must start with '{name}/' (keys are '<bucket>/<path>')",
                code="object_key_mismatch",
                details={"bucket": name},
            )
        return full_key

    async def signed_download(self, project: Project, bucket: object, key: object) -> dict[str, Any]:
        """A presigned GET for an existing object, after its upload limits were checked."""
        full_key = await self._object_key_in(project, bucket, key)
        await self._checked(project, full_key)
        url = await self._core.storage.presign_get(project.names.bucket, full_key, expires_s=self.expires_s)
        return {"downloadUrl": url, "expiresIn": self.expires_s}

    async def delete(self, project: Project, bucket: object, key: object) -> None:
        """Delete an object and its record. Deleting a missing object is not an error."""
        full_key = await self._object_key_in(project, bucket, key)
        await self._core.storage.delete(project.names.bucket, full_key)
        await self._core.store.execute(
            "DELETE FROM file_metadata WHERE project_id = ? AND object_key = ?", (project.id, full_key)
        )

    async def list(
        self, project: Project, bucket: object, prefix: object = "", *, limit: int = 100, cursor: str | None = None
    ) -> StorageObjectList:
        """Objects under ``<bucket>/<prefix>`` (``prefix`` is relative to the bucket); the cursor
        is opaque to clients (it is the last key of the page). Uploads that break their limits
        are deleted and left out, so a page may be shorter than ``limit``."""
        name = await self.require_bucket(project, bucket)
        if not isinstance(prefix, str):
            raise BadRequest("prefix must be a string", code="invalid_path")
        full_prefix = f"{name}/{validate_prefix(prefix)}"
        if cursor is not None and (not isinstance(cursor, str) or not cursor.startswith(f"{name}/")):
            raise BadRequest("cursor is not one this listing returned", code="invalid_cursor")
        check_limit(limit)
        objects, next_cursor = await self._core.storage.list(
            project.names.bucket, full_prefix, limit=limit, cursor=cursor
        )
        rows = await self._rows(project, [o.key for o in objects])
        listed: builtins.list[StoredObject] = []
        for obj in objects:
            row = rows.get(obj.key)
            info: ObjectInfo | None = obj
            if row is not None and row["max_size"] is not None and not _confirmed_as(row, obj):
                try:
                    info = await self._checked(project, obj.key, row)
                except AtlasError:
                    info = None  # deleted (broke its limits) or gone meanwhile
            if info is None:
                continue
            ctype = info.content_type or (row["content_type"] if row is not None else None)
            listed.append(StoredObject(info.key, info.size, info.etag, ctype, info.last_modified))
        return listed, next_cursor

    # -- upload verification ---------------------------------------------------------------

    async def _rows(self, project: Project, keys: Sequence[str]) -> dict[str, sqlite3.Row]:
        if not keys:
            return {}
        marks = ", ".join("?" for _ in keys)
        rows = await self._core.store.fetchall(
            "SELECT object_key, size, content_type, checksum, confirmed_at, max_size FROM file_metadata"
            f" WHERE project_id = ? AND object_key IN ({marks})",
            (project.id, *keys),
        )
        return {r["object_key"]: r for r in rows}

    async def _checked(self, project: Project, key: str, row: sqlite3.Row | None = None) -> ObjectInfo:
        """The object's info once it is known to respect the limits it was uploaded with.

        Raises ``NotFound(object_not_found)``, or deletes the object (and its record) and raises
        ``PayloadTooLarge(object_too_large)`` / ``BadRequest(content_type_mismatch)``."""
        if row is None:
            row = (await self._rows(project, [key])).get(key)
        store_bucket = project.names.bucket
        if row is None or row["max_size"] is None:
            info = await self._core.storage.stat(store_bucket, key)
            if info is None:
                raise NotFound("no object at this key", code="object_not_found")
            return info
        try:
            info = await verify_upload(
                self._core.storage, store_bucket, key, max_size=row["max_size"], content_type=row["content_type"]
            )
        except NotFound:
            raise
        except AtlasError as exc:
            log.warning("deleted upload %s of project %s: %s", key, project.id, exc.code)
            await self._forget(project, [key])
            raise
        if not _confirmed_as(row, info):
            await self._core.store.execute(
                "UPDATE file_metadata SET size = ?, checksum = ?, confirmed_at = ?"
                " WHERE project_id = ? AND object_key = ?",
                (info.size, info.etag, utcnow(), project.id, key),
            )
        return info

    async def _forget(self, project: Project, keys: Iterable[str]) -> None:
        for key in keys:
            await self._core.store.execute(
                "DELETE FROM file_metadata WHERE project_id = ? AND object_key = ?", (project.id, key)
            )


def _confirmed_as(row: sqlite3.Row, info: ObjectInfo) -> bool:
    """The record was confirmed for exactly this object (not overwritten since)."""
    return row["confirmed_at"] is not None and row["size"] == info.size and row["checksum"] == info.etag
