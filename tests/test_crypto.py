from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.crypto import DecryptionError, SecretBox, generate_master_key


def test_round_trip_and_context_binding() -> None:
    box = SecretBox(os.urandom(32))
    sealed = box.encrypt_text("postgres://u:p@h/db", context="proj_a/app")
    assert "p@h" not in sealed
    assert box.decrypt_text(sealed, context="proj_a/app") == "postgres://u:p@h/db"
    with pytest.raises(DecryptionError):
        box.decrypt_text(sealed, context="proj_b/app")


@pytest.mark.parametrize("position", [0, 1, 5, 13, 20, -1])
def test_tampering_is_detected_never_garbage(position: int) -> None:
    box = SecretBox(os.urandom(32))
    blob = bytearray(box.encrypt(b"secret value"))
    blob[position] ^= 0x01
    with pytest.raises(DecryptionError):
        box.decrypt(bytes(blob))


def test_other_key_and_truncation_fail() -> None:
    blob = SecretBox(os.urandom(32)).encrypt(b"x")
    with pytest.raises(DecryptionError):
        SecretBox(os.urandom(32)).decrypt(blob)
    with pytest.raises(DecryptionError):
        SecretBox(os.urandom(32)).decrypt(blob[:10])
    with pytest.raises(DecryptionError):
        SecretBox(os.urandom(32)).decrypt_text("not base64 !!")


def test_master_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    key = generate_master_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        generate_master_key(path)
    assert path.read_bytes() == key


def test_derived_keys_differ_by_purpose() -> None:
    box = SecretBox(os.urandom(32))
    assert box.derive("a") != box.derive("b")
    assert len(box.derive("a")) == 32
