"""Chunked AES-256-GCM for backup files (format described in docs/decisions/0005-backup-format.md).

Layout::

    header  = MAGIC "AHBK" | version (1 byte, 1) | chunk_size (4 bytes BE) | salt (16) | nonce_prefix (8)
    chunk_i = AES-256-GCM(key, nonce = nonce_prefix | i (4 bytes BE), plaintext_i, aad = header | final_flag)

Every chunk but the last holds exactly ``chunk_size`` plaintext bytes; the last holds 0 to
``chunk_size`` bytes and carries final_flag = 1. The file key is
``HMAC-SHA256(backup_key, "atlashub-backup-file" | salt | context)``, so a file only opens under
the context it was written for (``project:<backup id>``): it cannot be swapped for another backup.

Truncation at a chunk boundary fails (the last chunk read was not sealed as final), dropped or
reordered chunks fail (the counter is in the nonce), appended bytes fail (they shift the chunk
boundaries), and a changed header fails (it is in every chunk's associated data). Plaintext is
released only chunk by chunk, after that chunk has been authenticated.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"AHBK"
VERSION = 1
DEFAULT_CHUNK_SIZE = 1 << 20
TAG_SIZE = 16
_HEADER = struct.Struct(">4sBI16s8s")
HEADER_SIZE = _HEADER.size
_MAX_CHUNK = 16 << 20
_MAX_CHUNKS = 1 << 32


class BackupIntegrityError(Exception):
    """The backup file is damaged, truncated, tampered with, or was sealed under another key or context."""


def _file_key(key: bytes, salt: bytes, context: str) -> bytes:
    return hmac.new(key, b"atlashub-backup-file" + salt + context.encode(), hashlib.sha256).digest()


def _nonce(prefix: bytes, counter: int) -> bytes:
    if counter >= _MAX_CHUNKS:
        raise BackupIntegrityError("too many chunks for one backup file")
    return prefix + struct.pack(">I", counter)


def _cipher(key: bytes) -> AESGCM:
    # cryptography loads with the first backup or restore, not with the daemon.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


class StreamEncryptor:
    """Feed plaintext with ``update``; call ``finalize`` once. Output = header + sealed chunks."""

    def __init__(self, key: bytes, context: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if len(key) != 32:
            raise ValueError("backup key must be 32 bytes")
        if not 1 <= chunk_size <= _MAX_CHUNK:
            raise ValueError("chunk size out of range")
        salt, self._prefix = os.urandom(16), os.urandom(8)
        self.header = _HEADER.pack(MAGIC, VERSION, chunk_size, salt, self._prefix)
        self._aead = _cipher(_file_key(key, salt, context))
        self._chunk = chunk_size
        self._buf = bytearray()
        self._counter = 0
        self._started = False
        self._done = False

    def _seal(self, data: bytes, final: bool) -> bytes:
        sealed = self._aead.encrypt(
            _nonce(self._prefix, self._counter), data, self.header + (b"\x01" if final else b"\x00")
        )
        self._counter += 1
        return sealed

    def _take_header(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self.header

    def update(self, data: bytes) -> bytes:
        if self._done:
            raise ValueError("encryptor already finalized")
        self._buf += data
        out = [self._take_header()]
        # Keep at least one byte back: the final chunk must be known before it is sealed.
        while len(self._buf) > self._chunk:
            out.append(self._seal(bytes(self._buf[: self._chunk]), False))
            del self._buf[: self._chunk]
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._done:
            raise ValueError("encryptor already finalized")
        self._done = True
        head = self._take_header()
        last = self._seal(bytes(self._buf), True)
        self._buf.clear()
        return head + last


class StreamDecryptor:
    """Feed ciphertext with ``update`` (returns authenticated plaintext); ``finalize`` at the end."""

    def __init__(self, key: bytes, context: str) -> None:
        self._key = key
        self._context = context
        self._buf = bytearray()
        self._aead: AESGCM | None = None
        self._header = b""
        self._prefix = b""
        self._sealed = 0
        self._counter = 0
        self._done = False

    def _read_header(self) -> None:
        magic, version, chunk_size, salt, prefix = _HEADER.unpack(bytes(self._buf[:HEADER_SIZE]))
        if magic != MAGIC:
            raise BackupIntegrityError("not an AtlasHub backup file")
        if version != VERSION:
            raise BackupIntegrityError(f"unsupported backup format version {version}")
        if not 1 <= chunk_size <= _MAX_CHUNK:
            raise BackupIntegrityError("backup header is damaged")
        self._header = bytes(self._buf[:HEADER_SIZE])
        self._prefix = prefix
        self._sealed = chunk_size + TAG_SIZE
        self._aead = _cipher(_file_key(self._key, salt, self._context))
        del self._buf[:HEADER_SIZE]

    def _open(self, sealed: bytes, final: bool) -> bytes:
        from cryptography.exceptions import InvalidTag

        assert self._aead is not None
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._counter), sealed, self._header + (b"\x01" if final else b"\x00")
            )
        except InvalidTag:
            where = "final chunk" if final else f"chunk {self._counter}"
            raise BackupIntegrityError(
                f"backup failed authentication at {where} (damaged, truncated or tampered)"
            ) from None
        self._counter += 1
        return plain

    def update(self, data: bytes) -> bytes:
        if self._done:
            raise ValueError("decryptor already finalized")
        self._buf += data
        if self._aead is None:
            if len(self._buf) < HEADER_SIZE:
                return b""
            self._read_header()
        out = []
        # A full-size chunk is known to be non-final only once more bytes follow it.
        while len(self._buf) > self._sealed:
            out.append(self._open(bytes(self._buf[: self._sealed]), False))
            del self._buf[: self._sealed]
        return b"".join(out)

    def finalize(self) -> bytes:
        if self._done:
            raise ValueError("decryptor already finalized")
        self._done = True
        if self._aead is None:
            raise BackupIntegrityError("backup file is truncated (no complete header)")
        if len(self._buf) < TAG_SIZE:
            raise BackupIntegrityError("backup file is truncated")
        plain = self._open(bytes(self._buf), True)
        self._buf.clear()
        return plain


async def encrypt_stream(
    chunks: AsyncIterator[bytes], key: bytes, context: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> AsyncIterator[bytes]:
    enc = StreamEncryptor(key, context, chunk_size=chunk_size)
    async for chunk in chunks:
        out = enc.update(chunk)
        if out:
            yield out
    yield enc.finalize()


async def decrypt_stream(chunks: AsyncIterator[bytes], key: bytes, context: str) -> AsyncIterator[bytes]:
    """Authenticated plaintext, chunk by chunk; raises ``BackupIntegrityError`` on any damage."""
    dec = StreamDecryptor(key, context)
    async for chunk in chunks:
        out = dec.update(chunk)
        if out:
            yield out
    last = dec.finalize()
    if last:
        yield last
