"""Node identity keys: the Ed25519 signing key and the WireGuard (X25519) key.

Both are created once by ``atlashub init`` and never overwritten: replacing a node's key
would silently detach it from every peer that pinned it. Key files are written atomically
(temp file, fsync, hard link into place) with mode 0600, and refused on load when other
users can read them.

The node id is derived from the Ed25519 public key, so a peer table entry
``node_id -> public key`` can be checked for consistency by anyone who holds the key.

cryptography (~7 MB resident with its Rust bindings) is imported where a key is first used, so a
node that signs and verifies nothing after start-up never loads it (see NodeIdentity.deferred).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from appliance.errors import AtlasError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

NODE_ID_RE = re.compile(r"^n_[a-z2-7]{16}$")
_KEY_LEN = 32
_PRIVATE_FILE_MODE = 0o600
_DIGEST_CONTEXT = b"atlashub-node-key-digest\n"


class IdentityError(AtlasError):
    """A key file or encoded key is unusable (wrong format, wrong length, too-open mode)."""

    status = 500
    code = "identity_invalid"


def node_id_for(public_key: Ed25519PublicKey | str) -> str:
    """``'n_'`` + lower-case base32 (no padding) of the first 10 bytes of SHA-256(raw key)."""
    from cryptography.hazmat.primitives import serialization

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
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(_decode_key_b64(value, "Ed25519 public key"))


def as_ed25519_public(key: Ed25519PublicKey | str) -> Ed25519PublicKey:
    """Accept a key object or its base64 text (as peer tables store it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return key if isinstance(key, Ed25519PublicKey) else ed25519_public_from_b64(key)


def ed25519_public_b64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

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
    """A node's Ed25519 signing key. Immutable (its key never changes); cheap to share.

    One made by :meth:`deferred` holds the key file's content and parses it on first use.
    """

    __slots__ = ("_file", "_node_id", "_private", "_public")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private: Ed25519PrivateKey | None = private_key
        self._public: Ed25519PublicKey | None = private_key.public_key()
        self._node_id: str | None = node_id_for(self._public)
        self._file: tuple[Path, bytes] | None = None

    @classmethod
    def generate(cls) -> NodeIdentity:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> NodeIdentity:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if len(raw) != _KEY_LEN:
            raise IdentityError(f"Ed25519 private key must be {_KEY_LEN} bytes, got {len(raw)}")
        return cls(Ed25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: Path) -> NodeIdentity:
        """Load a PKCS#8 PEM file (what :meth:`save` writes) or a raw 32-byte seed file."""
        return cls._parse(path, read_private_file(path))

    @classmethod
    def deferred(cls, path: Path) -> NodeIdentity:
        """Read a key file now (its mode is checked as by :meth:`load`) and parse it on first use.

        The daemon starts with one: when its control plane already holds the node id derived
        from this very file (:attr:`key_digest` matches), :meth:`adopt_node_id` spares parsing
        the key, and with it loading cryptography, until something is signed.
        """
        identity = cls.__new__(cls)
        identity._private = identity._public = identity._node_id = None
        identity._file = (Path(path), read_private_file(path))
        return identity

    @classmethod
    def _parse(cls, path: Path, data: bytes) -> NodeIdentity:
        if data.lstrip().startswith(b"-----BEGIN"):
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

            try:
                key = serialization.load_pem_private_key(data, password=None)
            except (ValueError, TypeError) as exc:
                raise IdentityError(f"key file {path} is not an unencrypted PEM private key") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise IdentityError(f"key file {path} does not hold an Ed25519 key")
            return cls(key)
        return cls.from_private_bytes(data)

    def _key(self) -> Ed25519PrivateKey:
        if self._private is None:
            assert self._file is not None
            parsed = NodeIdentity._parse(*self._file)
            if self._node_id is not None and parsed.node_id != self._node_id:
                raise IdentityError(f"key file {self._file[0]} belongs to {parsed.node_id}, not to {self._node_id}")
            self._private, self._public, self._node_id = parsed._private, parsed._public, parsed.node_id
        assert self._private is not None
        return self._private

    def _encoded(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM, mode 0600. Raises FileExistsError if ``path`` exists."""
        write_private_file(path, self._encoded())

    @property
    def key_digest(self) -> str:
        """SHA-256 (hex, domain-separated) of the key file's content, or of the key's PEM if it
        was not read from a file. Equal digests mean the same key; it reveals nothing of it."""
        data = self._file[1] if self._file is not None else self._encoded()
        return hashlib.sha256(_DIGEST_CONTEXT + data).hexdigest()

    def adopt_node_id(self, node_id: str, key_digest: str) -> None:
        """Take ``node_id`` as derived at an earlier start from the key whose digest was
        ``key_digest``; ignored unless that is this identity's key (or the id is malformed). A key
        parsed later is still checked against it."""
        if (
            self._node_id is None
            and is_node_id(node_id)
            and hmac.compare_digest(key_digest.encode(), self.key_digest.encode())
        ):
            self._node_id = node_id

    @property
    def node_id(self) -> str:
        if self._node_id is None:
            self._key()
        assert self._node_id is not None
        return self._node_id

    @property
    def public_key(self) -> Ed25519PublicKey:
        self._key()
        assert self._public is not None
        return self._public

    def public_key_b64(self) -> str:
        """Standard base64 of the 32 raw public-key bytes."""
        return ed25519_public_b64(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self._key().sign(data)

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self.node_id!r})"


def _clamp(raw: bytes) -> bytes:
    # Curve25519 scalar clamping, as `wg genkey` applies before printing; the derived public
    # key is the same either way, but the printed private key then matches wg's exactly.
    scalar = bytearray(raw)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


class WireGuardKeys:
    """A WireGuard key pair in the text format of ``wg genkey`` / ``wg pubkey``.

    Holds the raw private key; the public one is derived (with cryptography) when asked for.
    """

    __slots__ = ("_raw",)

    def __init__(self, private_raw: bytes) -> None:
        if len(private_raw) != _KEY_LEN:
            raise IdentityError(f"WireGuard private key must be {_KEY_LEN} bytes, got {len(private_raw)}")
        self._raw = bytes(private_raw)

    @classmethod
    def generate(cls) -> WireGuardKeys:
        return cls(_clamp(os.urandom(_KEY_LEN)))

    @classmethod
    def from_private_b64(cls, value: str) -> WireGuardKeys:
        return cls(_decode_key_b64(value, "WireGuard private key"))

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
        return _b64(self._raw)

    @property
    def public_b64(self) -> str:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        public = X25519PrivateKey.from_private_bytes(self._raw).public_key()
        return _b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @staticmethod
    def public_from_private(private_b64: str) -> str:
        """What ``echo <private_b64> | wg pubkey`` prints (without the newline)."""
        return WireGuardKeys.from_private_b64(private_b64).public_b64

    def __repr__(self) -> str:
        return f"WireGuardKeys(public={self.public_b64!r})"
