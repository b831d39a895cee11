"""The signed envelope of the cluster protocol (docs/protocol.md). Pure: no I/O, no HTTP.

A message is a header (compact JSON, carried base64url-encoded), an Ed25519 signature over
``SIGNING_CONTEXT + header JSON``, and the body, whose SHA-256 the header pins. Refusals
raise :class:`EnvelopeRejected` and are logged at WARNING (reason, sender; never the body).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from appliance.errors import BadRequest, Unauthorized
from appliance.mesh.identity import IdentityError, NodeIdentity, as_ed25519_public, is_node_id, node_id_for

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 1
SIGNING_CONTEXT: Final = b"atlashub-mesh-v1\n"
HEADER_ENVELOPE: Final = "x-atlas-envelope"
HEADER_SIGNATURE: Final = "x-atlas-signature"
DEFAULT_WINDOW_S: Final = 60.0
DEFAULT_MAX_NONCES: Final = 100_000
NONCE_BYTES: Final = 16
MAX_HEADER_B64_CHARS: Final = 2048

JOIN: Final = "join"
JOIN_ANSWER: Final = "join-answer"
HEARTBEAT: Final = "heartbeat"
COMMAND: Final = "command"
COMMAND_RESULT: Final = "command-result"
FORWARDED_REQUEST: Final = "forwarded-request"
ADMIN_REQUEST: Final = "admin-request"
MESSAGE_TYPES = frozenset({JOIN, JOIN_ANSWER, HEARTBEAT, COMMAND, COMMAND_RESULT, FORWARDED_REQUEST, ADMIN_REQUEST})
# The two messages whose sender cannot be pinned yet: its key travels in the body.
INTRODUCTION_TYPES: Final = frozenset({JOIN, JOIN_ANSWER})

# Refusal reasons, in the order the checks run (docs/protocol.md, "Checks").
REASONS: Final = tuple(
    "malformed unsupported_version unknown_sender bad_signature body_mismatch wrong_recipient"
    " unknown_type stale from_future replayed replay_cache_full".split()
)

_HEADER_KEYS = frozenset({"v", "sender", "recipient", "type", "ts", "nonce", "body_sha256"})
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_SHA256_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
# Canonical unpadded base64url of 16 bytes: 22 characters, the last one's 4 spare bits zero.
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{21}[AQgw]$")
_FORWARD_KEYS = frozenset({"project_id", "key_type", "method", "path", "query", "headers"})


class EnvelopeRejected(Unauthorized):
    """A mesh message was refused. ``reason`` is one of :data:`REASONS`."""

    code = "envelope_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(f"mesh message refused: {reason}", details={"reason": reason})
        self.reason = reason


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def b64url_decode_strict(text: str) -> bytes:
    """Decode unpadded base64url, accepting only the one canonical encoding of the bytes.

    Lenient decoders ignore stray characters and non-zero trailing bits, which would let
    several distinct strings stand for the same signed bytes.
    """
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(raw) != text:
        raise ValueError("non-canonical base64url")
    return raw


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, ASCII only: one byte string per header."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def signing_bytes(header_json: bytes) -> bytes:
    """The exact bytes an Ed25519 signature covers."""
    return SIGNING_CONTEXT + header_json


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """A signed message ready for transport: two HTTP headers and the HTTP body."""

    header_b64: str
    signature_b64: str
    body: bytes

    def http_headers(self) -> dict[str, str]:
        return {HEADER_ENVELOPE: self.header_b64, HEADER_SIGNATURE: self.signature_b64}


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    sender: str
    recipient: str
    type: str
    ts: float  # seconds since the epoch (the header carries integer milliseconds)
    nonce: str
    body: bytes


def seal(
    identity: NodeIdentity, recipient_id: str, type: str, body: bytes, *, now: float | None = None
) -> SealedMessage:
    """Sign ``body`` from ``identity`` to ``recipient_id``. A fresh random nonce every call."""
    if type not in MESSAGE_TYPES:
        raise ValueError(f"unknown mesh message type {type!r}")
    if not is_node_id(recipient_id):
        raise ValueError(f"not a node id: {recipient_id!r}")
    header = {
        "v": PROTOCOL_VERSION,
        "sender": identity.node_id,
        "recipient": recipient_id,
        "type": type,
        "ts": round((time.time() if now is None else now) * 1000),
        "nonce": b64url_encode(os.urandom(NONCE_BYTES)),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    header_json = canonical_json(header)
    signature = identity.sign(signing_bytes(header_json))
    return SealedMessage(b64url_encode(header_json), b64url_encode(signature), bytes(body))


@dataclass(frozen=True, slots=True)
class _Header:
    raw: bytes
    sender: str
    recipient: str
    type: str
    ts_ms: int
    nonce: str
    body_sha256: str


def encode_forwarded_request(descriptor: Mapping[str, Any], body: bytes, keys: frozenset[str] = _FORWARD_KEYS) -> bytes:
    """The ``forwarded-request`` (and ``admin-request``) body: canonical descriptor JSON, one newline, the raw body.

    Canonical JSON never contains a raw newline, so the first ``\\n`` ends the descriptor and
    the request body travels unencoded (no base64 inflation of uploads).
    """
    if missing := keys - set(descriptor):
        raise ValueError(f"forwarded-request descriptor lacks {sorted(missing)}")
    return canonical_json(descriptor) + b"\n" + body


def decode_forwarded_request(body: bytes, keys: frozenset[str] = _FORWARD_KEYS) -> tuple[dict[str, Any], bytes]:
    """Split a verified ``forwarded-request`` body into (descriptor, raw request body)."""
    head, sep, rest = body.partition(b"\n")
    try:
        descriptor = json.loads(head) if sep else None
    except ValueError:
        descriptor = None
    if not isinstance(descriptor, dict) or not keys <= set(descriptor):
        raise BadRequest("forwarded-request body has no valid descriptor line")
    return descriptor, rest


def _parse_header(header_b64: str) -> _Header:
    """Structural checks only; nothing here is trusted until the signature is checked."""
    if not isinstance(header_b64, str) or len(header_b64) > MAX_HEADER_B64_CHARS:
        raise EnvelopeRejected("malformed")
    try:
        raw = b64url_decode_strict(header_b64)
        parsed = json.loads(raw.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise EnvelopeRejected("malformed") from None
    if not isinstance(parsed, dict):
        raise EnvelopeRejected("malformed")
    version = parsed.get("v")
    if type(version) is not int:
        raise EnvelopeRejected("malformed")
    if version != PROTOCOL_VERSION:
        raise EnvelopeRejected("unsupported_version")
    if set(parsed) != _HEADER_KEYS or canonical_json(parsed) != raw:
        raise EnvelopeRejected("malformed")
    sender, recipient, kind = parsed["sender"], parsed["recipient"], parsed["type"]
    ts_ms, nonce, body_sha256 = parsed["ts"], parsed["nonce"], parsed["body_sha256"]
    if not (is_node_id(sender) and is_node_id(recipient)):
        raise EnvelopeRejected("malformed")
    if not isinstance(kind, str) or not _TYPE_RE.fullmatch(kind):
        raise EnvelopeRejected("malformed")
    if type(ts_ms) is not int or not 0 <= ts_ms < 2**53:
        raise EnvelopeRejected("malformed")
    if not isinstance(body_sha256, str) or not _SHA256_HEX_RE.fullmatch(body_sha256):
        raise EnvelopeRejected("malformed")
    if not isinstance(nonce, str) or not _NONCE_RE.fullmatch(nonce):
        raise EnvelopeRejected("malformed")
    return _Header(raw, sender, recipient, kind, ts_ms, nonce, body_sha256)


class NonceCache:
    """Nonces seen within the freshness window, keyed by (sender, nonce).

    An entry is needed only until its message would be refused as stale anyway
    (``ts + window``), so memory is bounded by the message rate over one window. When
    ``max_entries`` live entries exist, new messages are refused (``replay_cache_full``)
    rather than old nonces dropped: forgetting a nonce early would let that message be
    replayed, while refusing fails closed and the sender simply retries later. Only
    messages with a valid signature reach the cache, so only a pinned peer can fill it.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_NONCES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._expiry: dict[tuple[str, str], int] = {}
        self._heap: list[tuple[int, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def prune(self, now_ms: int) -> None:
        """Forget nonces whose messages would now be refused as stale anyway."""
        while self._heap and self._heap[0][0] < now_ms:
            _, key = heapq.heappop(self._heap)
            self._expiry.pop(key, None)

    def check_and_add(self, sender: str, nonce: str, expires_at_ms: int, now_ms: int) -> None:
        """Record the nonce, or raise ``replayed`` / ``replay_cache_full``.

        Times are integer milliseconds, the same unit the freshness check uses, so an entry
        is never pruned while its message could still pass that check.
        """
        self.prune(now_ms)
        key = (sender, nonce)
        if key in self._expiry:
            raise EnvelopeRejected("replayed")
        if len(self._expiry) >= self.max_entries:
            raise EnvelopeRejected("replay_cache_full")
        self._expiry[key] = expires_at_ms
        heapq.heappush(self._heap, (expires_at_ms, key))


class Verifier:
    """Checks incoming envelopes addressed to ``self_id``.

    One instance per node process, shared by every listener, so that a nonce accepted on
    one route cannot be replayed on another. Not thread-safe: use from the event loop.
    """

    def __init__(
        self,
        self_id: str,
        peers: Mapping[str, Ed25519PublicKey | str] | None = None,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.time,
        allowed_types: Iterable[str] = MESSAGE_TYPES,
        max_nonces: int = DEFAULT_MAX_NONCES,
    ) -> None:
        if not is_node_id(self_id):
            raise ValueError(f"not a node id: {self_id!r}")
        if not (window_s > 0 and math.isfinite(window_s)):
            raise ValueError("window_s must be a positive number")
        self.self_id = self_id
        self.window_ms = round(window_s * 1000)
        self.allowed_types = frozenset(allowed_types)
        self._clock = clock
        self._peers: dict[str, Ed25519PublicKey] = {}
        self._nonces = NonceCache(max_nonces)
        # Anyone can produce a self-signed join, so introductions get their own, smaller cache:
        # flooding it can delay joins but never refuse traffic from pinned peers.
        self._introduction_nonces = NonceCache(max(1, max_nonces // 100))
        for node_id, key in (peers or {}).items():
            self.add_peer(node_id, key)

    def add_peer(self, node_id: str, public_key: Ed25519PublicKey | str) -> None:
        """Pin ``public_key`` for ``node_id``; the id must be the one derived from the key."""
        key = as_ed25519_public(public_key)
        if node_id_for(key) != node_id:
            raise ValueError(f"node id {node_id!r} does not belong to this public key")
        self._peers[node_id] = key

    def remove_peer(self, node_id: str) -> None:
        """Unpin ``node_id``; its messages are refused from the next call on. Idempotent."""
        self._peers.pop(node_id, None)

    def peers(self) -> frozenset[str]:
        return frozenset(self._peers)

    def verify(
        self, header_b64: str, signature_b64: str, body: bytes, *, expected_type: str | None = None
    ) -> VerifiedMessage:
        """Accept a message from a pinned peer, or raise :class:`EnvelopeRejected`.

        ``expected_type`` narrows the accepted types to the one a route serves.
        """
        header: _Header | None = None
        try:
            header = _parse_header(header_b64)
            key = self._peers.get(header.sender)
            if key is None:
                raise EnvelopeRejected("unknown_sender")
            allowed = self.allowed_types if expected_type is None else self.allowed_types & {expected_type}
            return self._check(header, key, signature_b64, body, allowed, self._nonces)
        except EnvelopeRejected as exc:
            _log_refusal(exc.reason, header)
            raise

    def verify_introduction(
        self,
        header_b64: str,
        signature_b64: str,
        body: bytes,
        public_key: Ed25519PublicKey | str,
        *,
        expected_type: str,
        expected_sender: str | None = None,
    ) -> VerifiedMessage:
        """Accept a ``join`` or ``join-answer`` (``expected_type``) signed by a key not pinned yet.

        ``public_key`` comes from the (still unverified) body; the sender must be the node id derived
        from it, which proves the sender holds the key it announces. The caller still has to authenticate
        the introduction: the master checks the one-time join token; the joining node passes the master
        id embedded in its token as ``expected_sender``.
        """
        header: _Header | None = None
        try:
            header = _parse_header(header_b64)
            try:
                key = as_ed25519_public(public_key)
            except IdentityError:
                raise EnvelopeRejected("malformed") from None
            if node_id_for(key) != header.sender:
                raise EnvelopeRejected("bad_signature")
            if expected_sender is not None and header.sender != expected_sender:
                raise EnvelopeRejected("unknown_sender")
            allowed = self.allowed_types & INTRODUCTION_TYPES & {expected_type}
            return self._check(header, key, signature_b64, body, allowed, self._introduction_nonces)
        except EnvelopeRejected as exc:
            _log_refusal(exc.reason, header)
            raise

    def _check(
        self,
        header: _Header,
        key: Ed25519PublicKey,
        signature_b64: str,
        body: bytes,
        allowed_types: frozenset[str],
        nonces: NonceCache,
    ) -> VerifiedMessage:
        from cryptography.exceptions import InvalidSignature  # loaded by the peer's key already

        # Signature first: every later reason then describes a message the peer really sent,
        # and nothing unauthenticated ever reaches the nonce cache.
        try:
            signature = b64url_decode_strict(signature_b64) if isinstance(signature_b64, str) else b""
        except ValueError:
            signature = b""
        if len(signature) != 64:
            raise EnvelopeRejected("bad_signature")
        try:
            key.verify(signature, signing_bytes(header.raw))
        except InvalidSignature:
            raise EnvelopeRejected("bad_signature") from None
        if hashlib.sha256(body).hexdigest() != header.body_sha256:
            raise EnvelopeRejected("body_mismatch")
        if header.recipient != self.self_id:
            raise EnvelopeRejected("wrong_recipient")
        if header.type not in MESSAGE_TYPES or header.type not in allowed_types:
            raise EnvelopeRejected("unknown_type")
        now_ms = round(self._clock() * 1000)
        age_ms = now_ms - header.ts_ms
        if age_ms > self.window_ms:
            raise EnvelopeRejected("stale")
        if age_ms < -self.window_ms:
            raise EnvelopeRejected("from_future")
        nonces.check_and_add(header.sender, header.nonce, header.ts_ms + self.window_ms, now_ms)
        ts = header.ts_ms / 1000
        return VerifiedMessage(header.sender, header.recipient, header.type, ts, header.nonce, bytes(body))


def _log_refusal(reason: str, header: _Header | None) -> None:
    # The sender is only echoed once the header parsed, i.e. it is a well-formed node id.
    sender = header.sender if header is not None else "?"
    kind = header.type if header is not None else "?"
    log.warning("mesh message refused: reason=%s sender=%s type=%s", reason, sender, kind)
