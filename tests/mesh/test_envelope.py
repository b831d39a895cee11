from __future__ import annotations

import hashlib
import json
import logging
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import BadRequest, Unauthorized
from appliance.mesh import envelope
from appliance.mesh.envelope import (
    HEADER_ENVELOPE,
    HEADER_SIGNATURE,
    MESSAGE_TYPES,
    REASONS,
    SIGNING_CONTEXT,
    EnvelopeRejected,
    SealedMessage,
    Verifier,
    b64url_decode_strict,
    b64url_encode,
    canonical_json,
    decode_forwarded_request,
    encode_forwarded_request,
    seal,
)
from appliance.mesh.identity import NodeIdentity

T = TypeVar("T")

# RFC 8032 test keys 1 and 2: fixed ids make the golden vector below reproducible.
ALICE = NodeIdentity.from_private_bytes(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
)
BOB = NodeIdentity.from_private_bytes(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
CAROL = NodeIdentity.generate()
MALLORY = NodeIdentity.generate()
NOW = 1_700_000_000.0
BODY = b'{"health":"ok"}'


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_verifier(clock: Callable[[], float] | None = None, **kw: Any) -> Verifier:
    """Bob's verifier, with Alice and Carol pinned."""
    peers: dict[str, Ed25519PublicKey | str] = {ALICE.node_id: ALICE.public_key, CAROL.node_id: CAROL.public_key_b64()}
    return Verifier(BOB.node_id, peers, clock=clock or Clock(), **kw)


def forge(signer: NodeIdentity, body: bytes = BODY, **overrides: Any) -> SealedMessage:
    """A header of our choosing (overrides, ``None`` deletes a key), validly signed by ``signer``."""
    header: dict[str, Any] = {
        "v": 1,
        "sender": ALICE.node_id,
        "recipient": BOB.node_id,
        "type": "heartbeat",
        "ts": int(NOW * 1000),
        "nonce": b64url_encode(b"\x01" * 16),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    for key, value in overrides.items():
        if value is None:
            header.pop(key)
        else:
            header[key] = value
    raw = canonical_json(header)
    return sign_raw(signer, raw, body)


def sign_raw(signer: NodeIdentity, raw: bytes, body: bytes = BODY) -> SealedMessage:
    return SealedMessage(b64url_encode(raw), b64url_encode(signer.sign(SIGNING_CONTEXT + raw)), body)


def verify(verifier: Verifier, message: SealedMessage) -> envelope.VerifiedMessage:
    return verifier.verify(message.header_b64, message.signature_b64, message.body)


# --- acceptance and wire format ------------------------------------------------------------


def test_sealed_message_is_accepted_with_its_fields() -> None:
    message = seal(ALICE, BOB.node_id, "command", b'{"name":"restart"}', now=NOW)
    got = verify(make_verifier(), message)
    assert (got.sender, got.recipient, got.type, got.ts) == (ALICE.node_id, BOB.node_id, "command", NOW)
    assert got.body == b'{"name":"restart"}' and got.nonce
    assert message.http_headers() == {
        HEADER_ENVELOPE: message.header_b64,
        HEADER_SIGNATURE: message.signature_b64,
    }


def test_golden_vector_pins_the_wire_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same vector is printed in docs/protocol.md for other implementations."""
    monkeypatch.setattr(envelope, "os", types.SimpleNamespace(urandom=lambda n: bytes(n)))
    message = seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW)
    assert b64url_decode_strict(message.header_b64) == (
        b'{"body_sha256":"b07e14b6cf11248777f8df182783b26f47b450f9014fd4dbe25726c327a067a1",'
        b'"nonce":"AAAAAAAAAAAAAAAAAAAAAA","recipient":"n_hh3rhufgiqst6bcs",'
        b'"sender":"n_eh7ddx5bksrgcytl","ts":1700000000000,"type":"heartbeat","v":1}'
    )
    assert message.signature_b64 == (
        "Q-Ah3H8H0b-hbHe6MVzNHnG7YZY9Dxk9eY1iYIodGTBsuKdSZ-jm49CyMuXcbmD8oYWrjj_XoBlC4VxYRphsBQ"
    )
    assert verify(make_verifier(), message).body == BODY


def test_each_seal_has_a_fresh_nonce() -> None:
    nonces = {verify(make_verifier(), seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW)).nonce}
    nonces |= {verify(make_verifier(), seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW)).nonce}
    assert len(nonces) == 2


@pytest.mark.parametrize("kind", sorted(MESSAGE_TYPES))
def test_every_message_type_round_trips(kind: str) -> None:
    assert verify(make_verifier(), seal(ALICE, BOB.node_id, kind, b"", now=NOW)).type == kind


@pytest.mark.parametrize(("recipient", "kind"), [("n_eh7ddx5bksrgcytl", "bogus"), ("bob", "heartbeat"), ("", "join")])
def test_seal_refuses_unknown_type_or_bad_recipient(recipient: str, kind: str) -> None:
    with pytest.raises(ValueError):
        seal(ALICE, recipient, kind, BODY, now=NOW)


def test_rejection_is_an_unauthorized_atlas_error() -> None:
    error = EnvelopeRejected("stale")
    assert isinstance(error, Unauthorized)
    assert error.status == 401 and error.reason == "stale"
    assert error.to_dict() == {
        "error": {"code": "envelope_rejected", "message": "mesh message refused: stale", "details": {"reason": "stale"}}
    }


# --- refusals, one row per reason (and per way to get it) ----------------------------------


@dataclass
class Case:
    reason: str
    build: Callable[[], SealedMessage]
    verifier: dict[str, Any] = field(default_factory=dict)
    clock: float = NOW
    verify_kw: dict[str, Any] = field(default_factory=dict)
    sender_logged: str = ALICE.node_id


def _header_b64(obj: object) -> str:
    return b64url_encode(json.dumps(obj).encode())


CASES: dict[str, Case] = {
    "signed-by-impostor": Case("bad_signature", lambda: forge(MALLORY)),
    "signature-empty": Case("bad_signature", lambda: SealedMessage(forge(ALICE).header_b64, "", BODY)),
    "signature-not-b64": Case("bad_signature", lambda: SealedMessage(forge(ALICE).header_b64, "!" * 86, BODY)),
    "signature-of-other-header": Case(
        "bad_signature",
        lambda: SealedMessage(forge(ALICE).header_b64, forge(ALICE, ts=int(NOW * 1000) + 1).signature_b64, BODY),
    ),
    "unknown-sender": Case(
        "unknown_sender",
        lambda: seal(MALLORY, BOB.node_id, "heartbeat", BODY, now=NOW),
        sender_logged=MALLORY.node_id,
    ),
    "wrong-recipient": Case("wrong_recipient", lambda: seal(ALICE, CAROL.node_id, "heartbeat", BODY, now=NOW)),
    "reflected-to-its-sender": Case("wrong_recipient", lambda: forge(ALICE, recipient=ALICE.node_id)),
    "stale": Case("stale", lambda: seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW - 60.001)),
    "from-future": Case("from_future", lambda: seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW + 60.001)),
    "unknown-type": Case("unknown_type", lambda: forge(ALICE, type="bogus")),
    "type-not-allowed-here": Case(
        "unknown_type",
        lambda: seal(ALICE, BOB.node_id, "command", BODY, now=NOW),
        verifier={"allowed_types": {"heartbeat"}},
    ),
    "not-this-routes-type": Case(
        "unknown_type",
        lambda: seal(ALICE, BOB.node_id, "command", BODY, now=NOW),
        verify_kw={"expected_type": "heartbeat"},
    ),
    "version-2": Case("unsupported_version", lambda: forge(ALICE, v=2), sender_logged="?"),
    "version-0": Case("unsupported_version", lambda: forge(ALICE, v=0), sender_logged="?"),
    "body-changed": Case(
        "body_mismatch",
        lambda: SealedMessage(forge(ALICE).header_b64, forge(ALICE).signature_b64, b'{"health":"bad"}'),
    ),
    "body-empty": Case(
        "body_mismatch", lambda: SealedMessage(forge(ALICE).header_b64, forge(ALICE).signature_b64, b"")
    ),
    "header-not-b64": Case("malformed", lambda: SealedMessage("%%%", "", BODY), sender_logged="?"),
    "header-padded-b64": Case(
        "malformed", lambda: SealedMessage(forge(ALICE).header_b64 + "=", "", BODY), sender_logged="?"
    ),
    "header-not-json": Case("malformed", lambda: SealedMessage(b64url_encode(b"{nope"), "", BODY), sender_logged="?"),
    "header-json-list": Case("malformed", lambda: SealedMessage(_header_b64([1]), "", BODY), sender_logged="?"),
    "header-too-long": Case("malformed", lambda: SealedMessage("A" * 4096, "", BODY), sender_logged="?"),
    "version-missing": Case("malformed", lambda: forge(ALICE, v=None), sender_logged="?"),
    "version-string": Case("malformed", lambda: forge(ALICE, v="1"), sender_logged="?"),
    "version-bool": Case("malformed", lambda: forge(ALICE, v=True), sender_logged="?"),
    "key-missing": Case("malformed", lambda: forge(ALICE, nonce=None), sender_logged="?"),
    "key-extra": Case("malformed", lambda: forge(ALICE, extra="x"), sender_logged="?"),
    "not-canonical-json": Case(
        "malformed",
        lambda: sign_raw(ALICE, json.dumps(json.loads(b64url_decode_strict(forge(ALICE).header_b64))).encode()),
        sender_logged="?",
    ),
    "sender-not-node-id": Case("malformed", lambda: forge(ALICE, sender="alice"), sender_logged="?"),
    "recipient-not-node-id": Case("malformed", lambda: forge(ALICE, recipient=7), sender_logged="?"),
    "type-not-a-word": Case("malformed", lambda: forge(ALICE, type="Heart beat"), sender_logged="?"),
    "ts-float": Case("malformed", lambda: forge(ALICE, ts=NOW * 1000 + 0.5), sender_logged="?"),
    "ts-negative": Case("malformed", lambda: forge(ALICE, ts=-1), sender_logged="?"),
    "ts-huge": Case("malformed", lambda: forge(ALICE, ts=2**60), sender_logged="?"),
    "nonce-short": Case("malformed", lambda: forge(ALICE, nonce=b64url_encode(b"x" * 8)), sender_logged="?"),
    "nonce-non-canonical": Case("malformed", lambda: forge(ALICE, nonce="A" * 21 + "B"), sender_logged="?"),
    "hash-upper-case": Case(
        "malformed", lambda: forge(ALICE, body_sha256=hashlib.sha256(BODY).hexdigest().upper()), sender_logged="?"
    ),
}


def test_cases_cover_every_reason_but_the_stateful_ones() -> None:
    assert {case.reason for case in CASES.values()} | {"replayed", "replay_cache_full"} == set(REASONS)


@pytest.mark.parametrize("name", CASES)
def test_refusal(name: str, caplog: pytest.LogCaptureFixture) -> None:
    case = CASES[name]
    message = case.build()
    verifier = make_verifier(Clock(case.clock), **case.verifier)
    with caplog.at_level(logging.WARNING, logger="appliance.mesh.envelope"):
        with pytest.raises(EnvelopeRejected) as caught:
            verifier.verify(message.header_b64, message.signature_b64, message.body, **case.verify_kw)
    assert caught.value.reason == case.reason
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert f"reason={case.reason}" in record.getMessage()
    assert f"sender={case.sender_logged}" in record.getMessage()
    assert b"health" not in record.getMessage().encode()  # never the body


# --- replay ----------------------------------------------------------------------------------


def test_accepted_once_then_refused_as_replayed(caplog: pytest.LogCaptureFixture) -> None:
    verifier = make_verifier()
    message = seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW)
    verify(verifier, message)
    with caplog.at_level(logging.WARNING, logger="appliance.mesh.envelope"):
        with pytest.raises(EnvelopeRejected, match="replayed"):
            verify(verifier, message)
    assert f"reason=replayed sender={ALICE.node_id}" in caplog.text


def test_refused_message_does_not_consume_its_nonce() -> None:
    verifier = make_verifier()
    good = forge(ALICE)
    with pytest.raises(EnvelopeRejected, match="bad_signature"):
        verify(verifier, forge(MALLORY))  # same nonce, forged signature
    with pytest.raises(EnvelopeRejected, match="body_mismatch"):
        verify(verifier, SealedMessage(good.header_b64, good.signature_b64, b"other"))
    assert verify(verifier, good).sender == ALICE.node_id


def test_same_nonce_from_different_senders_is_not_a_replay() -> None:
    verifier = make_verifier()
    verify(verifier, forge(ALICE))
    verify(verifier, forge(CAROL, sender=CAROL.node_id))


def test_nonces_expire_with_the_window_and_the_cap_refuses_rather_than_forgets() -> None:
    clock = Clock()
    verifier = make_verifier(clock, max_nonces=2)
    first = seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW)
    verify(verifier, first)
    verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW))
    with pytest.raises(EnvelopeRejected, match="replay_cache_full"):
        verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW))
    with pytest.raises(EnvelopeRejected, match="replayed"):
        verify(verifier, first)  # a full cache still remembers
    clock.now = NOW + 60.0  # the first two messages are still fresh: nothing may be dropped yet
    with pytest.raises(EnvelopeRejected, match="replayed"):
        verify(verifier, first)
    with pytest.raises(EnvelopeRejected, match="replay_cache_full"):
        verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=clock.now))
    clock.now = NOW + 60.001  # now they are stale: their nonces go, room comes back
    with pytest.raises(EnvelopeRejected, match="stale"):
        verify(verifier, first)
    verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=clock.now))
    assert len(verifier._nonces) == 1


# --- freshness edges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skew", "reason"),
    [(-60.0, None), (60.0, None), (0.0, None), (-60.001, "stale"), (60.001, "from_future")],
)
def test_freshness_window_is_inclusive_at_exactly_60s(skew: float, reason: str | None) -> None:
    message = seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW + skew)
    verifier = make_verifier(Clock(NOW))
    if reason is None:
        assert verify(verifier, message).ts == pytest.approx(NOW + skew)
    else:
        with pytest.raises(EnvelopeRejected, match=reason):
            verify(verifier, message)


def test_window_is_configurable() -> None:
    message = seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW - 10.5)
    with pytest.raises(EnvelopeRejected, match="stale"):
        verify(make_verifier(window_s=10), message)
    verify(make_verifier(window_s=11), message)


# --- peers -------------------------------------------------------------------------------------


def test_removed_peer_is_refused_at_once_and_can_be_added_back() -> None:
    verifier = make_verifier()
    verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW))
    verifier.remove_peer(ALICE.node_id)
    verifier.remove_peer(ALICE.node_id)  # idempotent
    assert ALICE.node_id not in verifier.peers()
    with pytest.raises(EnvelopeRejected, match="unknown_sender"):
        verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW))
    verifier.add_peer(ALICE.node_id, ALICE.public_key_b64())
    verify(verifier, seal(ALICE, BOB.node_id, "heartbeat", BODY, now=NOW))


def test_add_peer_refuses_a_key_that_is_not_the_node_ids() -> None:
    verifier = make_verifier()
    with pytest.raises(ValueError):
        verifier.add_peer(ALICE.node_id, MALLORY.public_key)
    with pytest.raises(ValueError):
        Verifier(BOB.node_id, {MALLORY.node_id: ALICE.public_key_b64()})
    with pytest.raises(ValueError):
        Verifier("bob")


# --- introductions (join, join-answer) ------------------------------------------------------


def test_join_is_accepted_with_the_key_it_carries_and_only_once() -> None:
    newcomer = NodeIdentity.generate()
    message = seal(newcomer, BOB.node_id, "join", b"{}", now=NOW)
    verifier = make_verifier()
    with pytest.raises(EnvelopeRejected, match="unknown_sender"):
        verify(verifier, message)
    got = verifier.verify_introduction(
        message.header_b64, message.signature_b64, b"{}", newcomer.public_key_b64(), expected_type="join"
    )
    assert (got.sender, got.type) == (newcomer.node_id, "join")
    with pytest.raises(EnvelopeRejected, match="replayed"):
        verifier.verify_introduction(
            message.header_b64, message.signature_b64, b"{}", newcomer.public_key, expected_type="join"
        )


@pytest.mark.parametrize(
    ("kind", "expected_type", "key", "expected", "reason"),
    [
        ("join", "join", lambda n: MALLORY.public_key, None, "bad_signature"),  # key is not the sender's
        ("join", "join", lambda n: "garbage", None, "malformed"),
        ("heartbeat", "heartbeat", lambda n: n.public_key, None, "unknown_type"),  # only join/join-answer
        ("join-answer", "join", lambda n: n.public_key, None, "unknown_type"),  # not what this route takes
        ("join", "join-answer", lambda n: n.public_key, None, "unknown_type"),
        ("join-answer", "join-answer", lambda n: n.public_key, ALICE.node_id, "unknown_sender"),  # not token's
    ],
)
def test_introduction_refusals(
    kind: str, expected_type: str, key: Callable[[NodeIdentity], Any], expected: str | None, reason: str
) -> None:
    newcomer = NodeIdentity.generate()
    message = seal(newcomer, BOB.node_id, kind, b"{}", now=NOW)
    with pytest.raises(EnvelopeRejected) as caught:
        make_verifier().verify_introduction(
            message.header_b64,
            message.signature_b64,
            b"{}",
            key(newcomer),
            expected_type=expected_type,
            expected_sender=expected,
        )
    assert caught.value.reason == reason


def test_join_answer_from_the_expected_master() -> None:
    message = seal(ALICE, BOB.node_id, "join-answer", b"{}", now=NOW)
    got = Verifier(BOB.node_id, clock=Clock()).verify_introduction(
        message.header_b64,
        message.signature_b64,
        b"{}",
        ALICE.public_key_b64(),
        expected_type="join-answer",
        expected_sender=ALICE.node_id,
    )
    assert got.type == "join-answer"


# --- forwarded-request body framing --------------------------------------------------------


def test_forwarded_request_round_trip_keeps_raw_body() -> None:
    descriptor = {
        "project_id": "p1",
        "key_type": "publishable",
        "method": "POST",
        "path": "/v1/db/todos",
        "query": "select=id",
        "headers": [["content-type", "application/json"]],
    }
    raw = b"line1\nline2\n\x00\xff"
    body = encode_forwarded_request(descriptor, raw)
    verified = verify(make_verifier(), seal(ALICE, BOB.node_id, "forwarded-request", body, now=NOW))
    assert decode_forwarded_request(verified.body) == (descriptor, raw)


@pytest.mark.parametrize("body", [b"", b"no newline", b"[]\nx", b'{"method":"GET"}\n', b"{bad\n"])
def test_forwarded_request_without_descriptor_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_forwarded_request(body)


def test_encode_forwarded_request_needs_every_descriptor_key() -> None:
    with pytest.raises(ValueError, match="headers"):
        encode_forwarded_request(
            {"project_id": "p", "key_type": "secret", "method": "GET", "path": "/", "query": ""}, b""
        )


# --- property: any change to a sealed message is refused ----------------------------------

SEALED = seal(ALICE, BOB.node_id, "command", b'{"command_id":"c1","name":"restart","args":{}}', now=NOW)
PARTS = ("header_b64", "signature_b64", "body")


def _mutate_items(items: list[T], data: st.DataObject, unit: st.SearchStrategy[T]) -> list[T]:
    how = data.draw(st.sampled_from(["replace", "truncate", "extend", "insert"]))
    if how == "truncate":
        return items[: data.draw(st.integers(0, len(items) - 1))]
    if how == "extend":
        return items + data.draw(st.lists(unit, min_size=1))
    if how == "insert":
        at = data.draw(st.integers(0, len(items)))
        return [*items[:at], data.draw(unit), *items[at:]]
    at = data.draw(st.integers(0, len(items) - 1))
    return [*items[:at], data.draw(unit.filter(lambda x: x != items[at])), *items[at + 1 :]]


def _mutate(value: str | bytes, data: st.DataObject) -> str | bytes:
    """One replaced, inserted or appended unit, or a truncation: never the same value."""
    if isinstance(value, str):
        return "".join(_mutate_items(list(value), data, st.characters(codec="utf-8")))
    return bytes(_mutate_items(list(value), data, st.integers(0, 255)))


@given(part=st.sampled_from(PARTS), data=st.data())
def test_any_modification_truncation_or_extension_is_refused(part: str, data: st.DataObject) -> None:
    values = {name: getattr(SEALED, name) for name in PARTS}
    values[part] = _mutate(values[part], data)
    assert values[part] != getattr(SEALED, part)
    with pytest.raises(EnvelopeRejected):
        make_verifier().verify(values["header_b64"], values["signature_b64"], values["body"])


@given(data=st.data())
def test_any_byte_change_of_the_decoded_header_is_refused(data: st.DataObject) -> None:
    raw = b64url_decode_strict(SEALED.header_b64)
    changed = _mutate(raw, data)
    assert isinstance(changed, bytes) and changed != raw
    with pytest.raises(EnvelopeRejected):
        make_verifier().verify(b64url_encode(changed), SEALED.signature_b64, SEALED.body)


def test_unmodified_property_fixture_is_accepted() -> None:
    verified = make_verifier().verify(SEALED.header_b64, SEALED.signature_b64, SEALED.body, expected_type="command")
    assert verified.type == "command"
