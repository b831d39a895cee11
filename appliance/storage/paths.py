"""Object paths and keys: the one gate between client input and the object store.

An object key is ``<logical bucket>/<path>`` inside the project's bucket ``proj-<id>``. Everything
here is pure: no I/O, no HTTP. A key that passes ``validate_object_key`` cannot climb out of its
logical bucket or the project's bucket on either backend: no ``..`` segment, no leading ``/``, no
backslash, no control character, and it is normalized (NFC, ``//`` and ``./`` collapsed), so two
spellings of the same path name the same object.
"""

from __future__ import annotations

import re
import unicodedata

from appliance.errors import BadRequest

MAX_PATH_BYTES = 1024
# S3 caps a whole key at 1024 bytes; the logical bucket prefix counts against it.
MAX_KEY_BYTES = 1024
# Most filesystems (ext4, xfs, btrfs) cap one name at 255 bytes; the fs backend stores each
# segment as a directory entry, and both backends must accept the same keys.
MAX_SEGMENT_BYTES = 255

_LOGICAL_BUCKET = re.compile(r"[a-z0-9][a-z0-9\-_]{0,62}")
_PROJECT_BUCKET = re.compile(r"proj-[a-z0-9](?:[a-z0-9-]{0,56}[a-z0-9])?")


def _invalid_path(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_path")


def validate_logical_bucket(name: str) -> str:
    """Return ``name`` if it is a valid logical bucket name, else raise ``invalid_bucket``."""
    if not isinstance(name, str) or _LOGICAL_BUCKET.fullmatch(name) is None:
        raise BadRequest(
            "bucket names are 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            code="invalid_bucket",
        )
    return name


def validate_project_bucket(name: str) -> str:
    """Return ``name`` if it is a valid S3 bucket name of the form ``proj-<id>``."""
    if not isinstance(name, str) or _PROJECT_BUCKET.fullmatch(name) is None:
        raise BadRequest("not a project bucket name", code="invalid_bucket")
    return name


_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def validate_bucket_name(name: str) -> str:
    """Any object-store bucket the platform uses (project buckets, backups): S3-valid, no dots."""
    if not isinstance(name, str) or _S3_BUCKET.fullmatch(name) is None:
        raise BadRequest("invalid object-store bucket name", code="invalid_bucket")
    return name


def project_bucket(project_id: str) -> str:
    """The object-store bucket of a project: ``proj-<id>`` (lowercased, S3-valid)."""
    return validate_project_bucket(f"proj-{str(project_id).lower()}")


def validate_object_path(path: str) -> str:
    """Return the normalized form of a path inside a logical bucket, or raise ``invalid_path``."""
    if not isinstance(path, str) or not path:
        raise _invalid_path("path must be a non-empty string")
    if path.startswith("/"):
        raise _invalid_path("path must not start with '/'")
    if "\\" in path:
        raise _invalid_path("path must not contain backslashes")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in path):
        raise _invalid_path("path must not contain control characters")
    path = unicodedata.normalize("NFC", path)
    if path.endswith("/"):
        raise _invalid_path("path must name a file, not end with '/'")
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise _invalid_path("path must not contain '..' segments")
    if not segments:
        raise _invalid_path("path must name a file")
    normalized = "/".join(segments)
    if len(normalized.encode("utf-8")) > MAX_PATH_BYTES:
        raise _invalid_path(f"path is longer than {MAX_PATH_BYTES} bytes")
    if any(len(s.encode("utf-8")) > MAX_SEGMENT_BYTES for s in segments):
        raise _invalid_path(f"a path segment is longer than {MAX_SEGMENT_BYTES} bytes")
    return normalized


def object_key(logical_bucket: str, path: str) -> str:
    """``<logical bucket>/<normalized path>``; raises ``invalid_bucket`` / ``invalid_path``."""
    key = f"{validate_logical_bucket(logical_bucket)}/{validate_object_path(path)}"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise _invalid_path(f"bucket and path together are longer than {MAX_KEY_BYTES} bytes")
    return key


def validate_object_key(key: str) -> str:
    """Validate a full key as returned to clients (``objectKey``); returns its normalized form."""
    if not isinstance(key, str) or "/" not in key:
        raise _invalid_path("object key must be '<bucket>/<path>'")
    logical_bucket, _, path = key.partition("/")
    return object_key(logical_bucket, path)


def split_object_key(key: str) -> tuple[str, str]:
    """``(logical bucket, path)`` of a valid key."""
    logical_bucket, _, path = validate_object_key(key).partition("/")
    return logical_bucket, path


def validate_prefix(prefix: str) -> str:
    """A listing prefix: like a key, but may be empty or end with '/', and is not normalized
    beyond rejecting what a key may not contain (a prefix is matched as a plain string)."""
    if not isinstance(prefix, str):
        raise _invalid_path("prefix must be a string")
    if prefix == "":
        return prefix
    if prefix.startswith("/") or "\\" in prefix:
        raise _invalid_path("prefix must not start with '/' or contain backslashes")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in prefix):
        raise _invalid_path("prefix must not contain control characters")
    if ".." in prefix.split("/") or len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
        raise _invalid_path("invalid prefix")
    return unicodedata.normalize("NFC", prefix)
