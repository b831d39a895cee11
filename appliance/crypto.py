"""The node master key and AES-256-GCM for secrets at rest.

A tampered or foreign ciphertext raises :class:`DecryptionError`; it never yields garbage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.errors import StartupError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASTER_KEY_FILE = "master.key"
CREDENTIAL_NAME = "master-key"
_VERSION = b"\x01"


class DecryptionError(Exception):
    """Ciphertext was tampered with, truncated, or sealed under another key or context."""


class SecretBox:
    """AES-256-GCM with a random 96-bit nonce per message; ``context`` is bound as associated data.

    The cipher (and with it cryptography's bindings, ~7 MB resident) is set up with the first
    message: an idle node that unseals nothing at start-up never loads it.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("master key must be 32 bytes")
        self._key = key
        self._cipher: AESGCM | None = None

    @property
    def _aead(self) -> AESGCM:
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def encrypt(self, plaintext: bytes, context: str = "") -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def decrypt(self, blob: bytes, context: str = "") -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(blob) < 1 + 12 + 16 or blob[:1] != _VERSION:
            raise DecryptionError("malformed ciphertext")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], context.encode())
        except InvalidTag:
            raise DecryptionError("ciphertext failed authentication") from None

    def encrypt_text(self, text: str, context: str = "") -> str:
        return base64.b64encode(self.encrypt(text.encode(), context)).decode()

    def decrypt_text(self, blob: str, context: str = "") -> str:
        try:
            raw = base64.b64decode(blob, validate=True)
        except ValueError:
            raise DecryptionError("malformed ciphertext") from None
        return self.decrypt(raw, context).decode()

    def derive(self, purpose: str) -> bytes:
        """A sub-key for one purpose (HMAC signing of URLs, JWT secrets...), never the master key itself."""
        return hmac.new(self._key, b"atlashub-derive:" + purpose.encode(), hashlib.sha256).digest()

    def check_value(self) -> str:
        """A value stored in the control plane to recognise the right master key at start-up."""
        return hmac.new(self._key, b"atlashub-key-check", hashlib.sha256).hexdigest()


def generate_master_key(path: Path) -> bytes:
    """Write 32 random bytes with mode 0600. Refuses to overwrite: old secrets would become unreadable."""
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def find_master_key(state_dir: Path) -> Path | None:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).exists():
        return Path(creds) / CREDENTIAL_NAME
    path = state_dir / MASTER_KEY_FILE
    return path if path.exists() else None


def load_master_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise StartupError(f"cannot read the master key {path}: {exc.strerror}") from None
    if len(key) != 32:
        raise StartupError(f"the master key {path} is not 32 bytes long; it may be damaged")
    return key
