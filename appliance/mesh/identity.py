"""Node identity keys: the Ed25519 signing key and the WireGuard (X25519) key.

Both are created once by ``atlashub init`` and never overwritten: replacing a node's key
would silently detach it from every peer that pinned it. Key files are written atomically
(temp file, fsync, hard link into place) with mode 0600, and refused on load when other
users can read them.

The node id is derived from the Ed25519 public key, so a peer table entry
``node_id -> public key`` can be checked for consistency by anyone who holds the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import TypeGuard

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import AtlasError

NODE_ID_RE = re.compile(r"^n_[a-z2-7]{16}$")
_KEY_LEN = 32
_PRIVATE_FILE_MODE = 0o600


class IdentityError(AtlasError):
    """A key file or encoded key is unusable (wrong format, wrong length, too-open mode)."""

    status = 500
    code = "identity_invalid"


def node_id_for(public_key: Ed25519PublicKey | str) -> str:
    """``'n_'`` + lower-case base32 (no padding) of the first 10 bytes of SHA-256(raw key)."""
    raw = as_ed25519_public(public_key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = hashlib.sha256(raw).digest()[:10]
    return "n_" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def is_node_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and NODE_ID_RE.fullmatch(value) is not None


def _decode_key_b64(value: str, what: str) -> bytes:
    """Strict standard base64 of exactly 32 bytes (the ``wg`` and our own public-key format)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError) as exc:
        raise IdentityError(f"{what} is not valid base64") from exc
    if len(raw) != _KEY_LEN:
        raise IdentityError(f"{what} must encode {_KEY_LEN} bytes, got {len(raw)}")
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def ed25519_public_from_b64(value: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_decode_key_b64(value, "Ed25519 public key"))


def as_ed25519_public(key: Ed25519PublicKey | str) -> Ed25519PublicKey:
    """Accept a key object or its base64 text (as peer tables store it)."""
    return key if isinstance(key, Ed25519PublicKey) else ed25519_public_from_b64(key)


def ed25519_public_b64(key: Ed25519PublicKey) -> str:
    return _b64(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` and mode 0600, atomically; never replace an existing file.

    The content is written to a temp file in the same directory and fsynced, then
    hard-linked to the final name (``link`` fails if the name exists, unlike ``rename``,
    so there is no check-then-act race), then the directory is fsynced.
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise FileExistsError(f"refusing to overwrite existing key file {path}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, _PRIVATE_FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp_name, path)
        except FileExistsError:
            raise FileExistsError(f"refusing to overwrite existing key file {path}") from None
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_private_file(path: Path) -> bytes:
    """Read a key file, refusing one that group or others can access (as ssh does)."""
    path = Path(path)
    with path.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise IdentityError(
                f"key file {path} has mode {stat.S_IMODE(mode):04o}; it must not be readable "
                "by group or others (chmod 600)"
            )
        return handle.read()


class NodeIdentity:
    """A node's Ed25519 signing key. Immutable; cheap to share."""

    __slots__ = ("_node_id", "_private", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._public = private_key.public_key()
        self._node_id = node_id_for(self._public)

    @classmethod
    def generate(cls) -> NodeIdentity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> NodeIdentity:
        if len(raw) != _KEY_LEN:
            raise IdentityError(f"Ed25519 private key must be {_KEY_LEN} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: Path) -> NodeIdentity:
        """Load a PKCS#8 PEM file (what :meth:`save` writes) or a raw 32-byte seed file."""
        data = read_private_file(path)
        if data.lstrip().startswith(b"-----BEGIN"):
            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise IdentityError(f"key file {path} is not an unencrypted PEM private key") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise IdentityError(f"key file {path} does not hold an Ed25519 key")
            return cls(key)
        return cls.from_private_bytes(data)

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM, mode 0600. Raises FileExistsError if ``path`` exists."""
        pem = self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_private_file(path, pem)

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def public_key_b64(self) -> str:
        """Standard base64 of the 32 raw public-key bytes."""
        return ed25519_public_b64(self._public)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self._node_id!r})"


def _clamp(raw: bytes) -> bytes:
    # Curve25519 scalar clamping, as `wg genkey` applies before printing; the derived public
    # key is the same either way, but the printed private key then matches wg's exactly.
    scalar = bytearray(raw)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


class WireGuardKeys:
    """A WireGuard key pair in the text format of ``wg genkey`` / ``wg pubkey``."""

    __slots__ = ("_private",)

    def __init__(self, private_key: X25519PrivateKey) -> None:
        self._private = private_key

    @classmethod
    def generate(cls) -> WireGuardKeys:
        return cls(X25519PrivateKey.from_private_bytes(_clamp(os.urandom(_KEY_LEN))))

    @classmethod
    def from_private_b64(cls, value: str) -> WireGuardKeys:
        return cls(X25519PrivateKey.from_private_bytes(_decode_key_b64(value, "WireGuard private key")))

    @classmethod
    def load(cls, path: Path) -> WireGuardKeys:
        """Read a file holding the base64 private key (``wg genkey > file`` format)."""
        try:
            text = read_private_file(path).decode("ascii")
        except UnicodeDecodeError as exc:
            raise IdentityError(f"key file {path} is not a base64 WireGuard key") from exc
        return cls.from_private_b64(text)

    def save(self, path: Path) -> None:
        """Write ``<private_b64>\\n`` with mode 0600. Raises FileExistsError if ``path`` exists."""
        write_private_file(path, (self.private_b64 + "\n").encode("ascii"))

    @property
    def private_b64(self) -> str:
        return _b64(
            self._private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    @property
    def public_b64(self) -> str:
        return _b64(self._private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @staticmethod
    def public_from_private(private_b64: str) -> str:
        """What ``echo <private_b64> | wg pubkey`` prints (without the newline)."""
        return WireGuardKeys.from_private_b64(private_b64).public_b64

    def __repr__(self) -> str:
        return f"WireGuardKeys(public={self.public_b64!r})"
