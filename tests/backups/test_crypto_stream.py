"""The backup stream format: round trips at every size, and every kind of damage is detected."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from appliance.backups.crypto_stream import (
    HEADER_SIZE,
    TAG_SIZE,
    BackupIntegrityError,
    StreamDecryptor,
    StreamEncryptor,
    decrypt_stream,
    encrypt_stream,
)

KEY = bytes(range(32))
CTX = "backup:bk_test"


def seal(data: bytes, chunk: int = 64, ctx: str = CTX) -> bytes:
    enc = StreamEncryptor(KEY, ctx, chunk_size=chunk)
    out = b""
    for i in range(0, len(data), 7):
        out += enc.update(data[i : i + 7])
    return out + enc.finalize()


def open_(blob: bytes, ctx: str = CTX, step: int = 5) -> bytes:
    dec = StreamDecryptor(KEY, ctx)
    out = b""
    for i in range(0, len(blob), step):
        out += dec.update(blob[i : i + step])
    return out + dec.finalize()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_round_trip_at_chunk_edges(size: int) -> None:
    data = os.urandom(size)
    blob = seal(data)
    chunks = max(1, -(-size // 64))
    assert len(blob) == HEADER_SIZE + size + TAG_SIZE * chunks
    assert open_(blob) == data


def _damaged(blob: bytes) -> dict[str, bytes]:
    sealed = 64 + TAG_SIZE
    first = HEADER_SIZE
    return {
        "flipped byte": blob[:100] + bytes([blob[100] ^ 1]) + blob[101:],
        "flipped header": blob[:10] + bytes([blob[10] ^ 1]) + blob[11:],
        "truncated at a chunk boundary": blob[: first + sealed],
        "truncated mid-chunk": blob[:-5],
        "appended bytes": blob + b"x" * 20,
        "reordered chunks": blob[:first]
        + blob[first + sealed : first + 2 * sealed]
        + blob[first : first + sealed]
        + blob[first + 2 * sealed :],
        "dropped chunk": blob[:first] + blob[first + sealed :],
        "empty": b"",
        "header only": blob[:HEADER_SIZE],
    }


@pytest.mark.parametrize("kind", list(_damaged(b"\0" * 400).keys()))
def test_damage_is_detected(kind: str) -> None:
    data = os.urandom(300)
    blob = _damaged(seal(data))[kind]
    with pytest.raises(BackupIntegrityError):
        open_(blob)


def test_another_context_or_key_does_not_open() -> None:
    blob = seal(b"secret rows")
    with pytest.raises(BackupIntegrityError):
        open_(blob, ctx="backup:bk_other")
    dec = StreamDecryptor(bytes(32), CTX)
    dec.update(blob)
    with pytest.raises(BackupIntegrityError):
        dec.finalize()


def test_not_a_backup() -> None:
    with pytest.raises(BackupIntegrityError, match="not an AtlasHub backup"):
        open_(b"PGDMP" + b"\0" * 100)


async def test_async_streams() -> None:
    data = os.urandom(5000)

    async def source(blob: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(blob), 333):
            yield blob[i : i + 333]

    sealed = b"".join([c async for c in encrypt_stream(source(data), KEY, CTX, chunk_size=256)])
    assert b"".join([c async for c in decrypt_stream(source(sealed), KEY, CTX)]) == data
    with pytest.raises(BackupIntegrityError):
        _ = [c async for c in decrypt_stream(source(sealed[:-1]), KEY, CTX)]
