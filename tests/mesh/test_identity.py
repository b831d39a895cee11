from __future__ import annotations

import base64
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.mesh.identity import (
    IdentityError,
    NodeIdentity,
    WireGuardKeys,
    ed25519_public_from_b64,
    is_node_id,
    node_id_for,
)

# RFC 8032, section 7.1, test 1.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# RFC 7748, section 6.1 (Alice).
RFC7748_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")

WG = shutil.which("wg")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- NodeIdentity -------------------------------------------------------------------------


def test_node_id_is_pinned_derivation_of_public_key() -> None:
    identity = NodeIdentity.from_private_bytes(RFC8032_SECRET)
    assert identity.public_key_b64() == base64.b64encode(RFC8032_PUBLIC).decode()
    assert identity.node_id == "n_eh7ddx5bksrgcytl"
    assert node_id_for(identity.public_key) == node_id_for(identity.public_key_b64()) == identity.node_id


def test_generated_identities_have_distinct_well_formed_ids() -> None:
    ids = {NodeIdentity.generate().node_id for _ in range(20)}
    assert len(ids) == 20
    assert all(is_node_id(node_id) for node_id in ids)
    assert not is_node_id("n_EH7DDX5BKSRGCYTL")
    assert not is_node_id(None)


def test_sign_verifies_with_public_key_from_b64() -> None:
    identity = NodeIdentity.generate()
    signature = identity.sign(b"hello")
    ed25519_public_from_b64(identity.public_key_b64()).verify(signature, b"hello")


def test_save_then_load_round_trips_with_mode_0600(tmp_path: Path) -> None:
    identity = NodeIdentity.generate()
    path = tmp_path / "keys" / "node.key"
    identity.save(path)
    assert mode_of(path) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert NodeIdentity.load(path).node_id == identity.node_id
    assert sorted(p.name for p in path.parent.iterdir()) == ["node.key"]  # no temp file left


def test_save_refuses_to_overwrite_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    first = NodeIdentity.generate()
    first.save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        NodeIdentity.generate().save(path)
    assert path.read_bytes() == before
    assert NodeIdentity.load(path).node_id == first.node_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["node.key"]


def test_load_accepts_raw_32_byte_seed(tmp_path: Path) -> None:
    path = tmp_path / "node.raw"
    path.write_bytes(RFC8032_SECRET)
    path.chmod(0o600)
    assert NodeIdentity.load(path).node_id == "n_eh7ddx5bksrgcytl"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o666])
def test_load_refuses_key_readable_by_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    NodeIdentity.generate().save(path)
    path.chmod(mode)
    with pytest.raises(IdentityError, match="chmod 600"):
        NodeIdentity.load(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"short",
        RFC8032_SECRET + b"\n",
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n",
        X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    ],
    ids=["empty", "short", "raw-with-newline", "bad-pem", "x25519-pem"],
)
def test_load_refuses_unusable_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(IdentityError):
        NodeIdentity.load(path)


def test_deferred_identity_is_the_loaded_one(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    saved = NodeIdentity.generate()
    saved.save(path)
    deferred = NodeIdentity.deferred(path)
    assert deferred.key_digest == saved.key_digest  # the file is the key's PEM
    assert deferred.node_id == saved.node_id
    assert deferred.public_key_b64() == saved.public_key_b64()
    ed25519_public_from_b64(saved.public_key_b64()).verify(deferred.sign(b"hello"), b"hello")


def test_deferred_identity_checks_the_file_mode_at_once_and_the_content_on_use(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"short")
    path.chmod(0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        NodeIdentity.deferred(path)
    path.chmod(0o600)
    deferred = NodeIdentity.deferred(path)
    with pytest.raises(IdentityError):
        deferred.node_id  # noqa: B018


def test_adopted_node_id_is_taken_only_for_the_same_key_file(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    saved = NodeIdentity.generate()
    saved.save(path)
    other = NodeIdentity.generate()

    deferred = NodeIdentity.deferred(path)
    deferred.adopt_node_id(other.node_id, other.key_digest)  # another key's digest: ignored
    assert deferred.node_id == saved.node_id

    deferred = NodeIdentity.deferred(path)
    deferred.adopt_node_id("not-a-node-id", saved.key_digest)  # malformed: ignored
    assert deferred.node_id == saved.node_id

    deferred = NodeIdentity.deferred(path)
    deferred.adopt_node_id(saved.node_id, saved.key_digest)
    assert deferred.node_id == saved.node_id
    assert deferred.public_key_b64() == saved.public_key_b64()  # parsed now, and it agrees


def test_an_adopted_node_id_that_the_key_contradicts_is_refused_on_use(tmp_path: Path) -> None:
    # Only a tampered control plane can pair a key file's digest with another node id.
    path = tmp_path / "node.key"
    saved = NodeIdentity.generate()
    saved.save(path)
    deferred = NodeIdentity.deferred(path)
    deferred.adopt_node_id(NodeIdentity.generate().node_id, saved.key_digest)
    with pytest.raises(IdentityError, match=f"belongs to {saved.node_id}"):
        deferred.sign(b"hello")


@pytest.mark.parametrize("value", ["", "not base64!", base64.b64encode(b"x" * 31).decode()])
def test_public_key_from_b64_refuses_garbage(value: str) -> None:
    with pytest.raises(IdentityError):
        ed25519_public_from_b64(value)


# --- WireGuardKeys ------------------------------------------------------------------------


def test_public_from_private_matches_rfc7748_vector() -> None:
    private_b64 = base64.b64encode(RFC7748_PRIVATE).decode()
    assert WireGuardKeys.public_from_private(private_b64) == base64.b64encode(RFC7748_PUBLIC).decode()


def test_generated_key_looks_like_wg_genkey_output() -> None:
    keys = WireGuardKeys.generate()
    for text in (keys.private_b64, keys.public_b64):
        assert len(text) == 44 and text.endswith("=")
        assert len(base64.b64decode(text, validate=True)) == 32
    raw = base64.b64decode(keys.private_b64)
    assert raw[0] & 7 == 0 and raw[31] & 0x80 == 0 and raw[31] & 0x40  # clamped, as wg genkey
    assert WireGuardKeys.public_from_private(keys.private_b64) == keys.public_b64
    assert WireGuardKeys.from_private_b64(keys.private_b64 + "\n").public_b64 == keys.public_b64


def test_wireguard_key_file_round_trip(tmp_path: Path) -> None:
    keys = WireGuardKeys.generate()
    path = tmp_path / "wg.key"
    keys.save(path)
    assert mode_of(path) == 0o600
    assert path.read_text() == keys.private_b64 + "\n"
    assert WireGuardKeys.load(path).public_b64 == keys.public_b64
    with pytest.raises(FileExistsError):
        WireGuardKeys.generate().save(path)


@pytest.mark.parametrize("value", ["", "AAAA", "é" * 44, base64.b64encode(b"k" * 33).decode()])
def test_wireguard_private_refuses_garbage(value: str) -> None:
    with pytest.raises(IdentityError):
        WireGuardKeys.from_private_b64(value)


@pytest.mark.skipif(WG is None, reason="wg (wireguard-tools) is not installed; cannot cross-check")
def test_wg_pubkey_agrees_with_our_public_key() -> None:
    assert WG is not None
    keys = WireGuardKeys.generate()
    ours = subprocess.run([WG, "pubkey"], input=keys.private_b64 + "\n", capture_output=True, text=True, check=True)
    assert ours.stdout.strip() == keys.public_b64
    genkey = subprocess.run([WG, "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    theirs = subprocess.run([WG, "pubkey"], input=genkey + "\n", capture_output=True, text=True, check=True)
    assert WireGuardKeys.public_from_private(genkey) == theirs.stdout.strip()
