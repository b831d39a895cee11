"""Joining a worker to the master (docs/protocol.md, section 6): both sides of the exchange.

Master: :func:`accept_join` checks the self-signed ``join``, consumes the one-time token and
adds the node in one transaction, pins its key, adds the WireGuard peer and answers with a
signed ``join-answer``. Worker: :func:`join_master` sends the ``join``, checks that the answer
is signed by the master named in the token, and records the master as its only peer.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

import aiohttp

from appliance import __version__
from appliance.config import Config, parse_listen
from appliance.control.store import ControlPlane, utcnow
from appliance.errors import AtlasError, BadRequest, Conflict, Forbidden, ServiceUnavailable
from appliance.mesh.envelope import HEADER_ENVELOPE, HEADER_SIGNATURE, JOIN, JOIN_ANSWER, SealedMessage, Verifier, seal
from appliance.mesh.identity import NodeIdentity, is_node_id
from appliance.mesh.peers import Mesh, allocate_address, first_host
from appliance.mesh.tokens import JoinTokens, parse_token

log = logging.getLogger(__name__)

JOIN_PATH = "/mesh/v1/join"
JOIN_TIMEOUT = 20.0


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        raise BadRequest("a mesh message body must be a JSON object", code="invalid_body")
    return value


def _text(payload: dict[str, Any], key: str, *, max_len: int = 200, optional: bool = False) -> str | None:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_len or not value.isprintable():
        raise BadRequest(f"join field {key!r} is missing or invalid", code="invalid_join", details={"field": key})
    return value


def _wg_public(payload: dict[str, Any]) -> str:
    value = _text(payload, "wg_public", max_len=64)
    assert value is not None
    try:
        ok = len(base64.b64decode(value, validate=True)) == 32
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise BadRequest("wg_public is not a WireGuard public key", code="invalid_join", details={"field": "wg_public"})
    return value


def _port(payload: dict[str, Any], key: str, default: int) -> int:
    value = payload.get(key, default)
    if type(value) is not int or not 1 <= value <= 65535:
        raise BadRequest(f"join field {key!r} must be a port", code="invalid_join", details={"field": key})
    return value


def agent_url_of(config: Config, wg_address: str | None) -> str | None:
    """Where this node's agent listens: ``mesh.agent_listen`` if set, else its WireGuard address."""
    listen = config.mesh.agent_listen
    if listen:
        host, port = parse_listen(listen)
        return f"http://{host}:{port}"
    return f"http://{wg_address}:{config.mesh.agent_port}" if wg_address else None


async def accept_join(mesh: Mesh, header_b64: str, signature_b64: str, body: bytes) -> SealedMessage:
    """Admit a new worker, or raise (EnvelopeRejected, JoinTokenInvalid, BadRequest, Conflict)."""
    if mesh.role != "master":
        raise Forbidden("this node is a worker; join the master", code="not_master")
    payload = _json_object(body)
    announced = payload.get("ed25519_public")
    if not isinstance(announced, str):
        raise BadRequest("join lacks ed25519_public", code="invalid_join", details={"field": "ed25519_public"})
    message = mesh.verifier.verify_introduction(header_b64, signature_b64, body, announced, expected_type=JOIN)
    node_id = message.sender
    secret = _text(payload, "token", max_len=100)
    name = _text(payload, "node_name", max_len=64)
    wg_public = _wg_public(payload)
    endpoint = _text(payload, "endpoint", optional=True)
    version = _text(payload, "version", max_len=40, optional=True)
    config = mesh.core.config
    explicit = bool(config.mesh.agent_listen)
    tokens = JoinTokens(mesh.store, mesh.self_id)
    async with mesh.store.transaction() as tx:
        await tokens.consume(str(secret), node_id, tx=tx)
        async with tx.execute("SELECT removed_at FROM nodes WHERE id = ?", (node_id,)) as cursor:
            existing = await cursor.fetchone()
        if existing is not None:
            what = "was removed; join again with a new key" if existing[0] else "has already joined"
            raise Conflict(f"node {node_id} {what}", code="node_exists")
        address = await allocate_address(tx, config.mesh.wg_network)
        # Explicit URLs are accepted only when the master itself is not addressed over WireGuard (tests).
        gateway_url = (explicit and payload.get("gateway_url")) or (
            f"http://{address}:{_port(payload, 'gateway_port', 8080)}"
        )
        agent_url = (explicit and payload.get("agent_url")) or f"http://{address}:{_port(payload, 'agent_port', 8082)}"
        await tx.execute(
            "INSERT INTO nodes (id, name, role, ed25519_public, wg_public, wg_address, endpoint, gateway_url,"
            " agent_url, status, version, created_at) VALUES (?, ?, 'worker', ?, ?, ?, ?, ?, ?, 'unknown', ?, ?)",
            (node_id, name, announced, wg_public, address, endpoint, gateway_url, agent_url, version, utcnow()),
        )
    await mesh.load()  # pins the new key and refreshes the in-memory peer table
    try:
        if not await mesh.wg.exists():
            await mesh.wireguard_up()
        node = await mesh.get(node_id)
        spec = node.peer_spec()
        if spec is not None:
            await mesh.wg.set_peer(spec)
    except Exception as exc:  # the agent's reconcile loop retries
        log.error("WireGuard peer for %s not added yet: %r", node_id, exc)
    log.info("node %s (%s) joined at %s", node_id, name, address)
    me = await mesh.get(mesh.self_id)
    master_address = first_host(config.mesh.wg_network)
    answer: dict[str, Any] = {
        "node_id": node_id,
        "wg_address": f"{address}/{config.mesh.wg_network.rsplit('/', 1)[1]}",
        "master_id": mesh.self_id,
        "master_name": config.node.name,
        "master_ed25519_public": mesh.identity.public_key_b64(),
        "master_wg_public": me.wg_public,
        "master_endpoint": config.mesh.endpoint or None,
        "master_wg_address": master_address,
        "master_agent_url": agent_url_of(config, master_address),
        "peers": [],
    }
    return seal(mesh.identity, node_id, JOIN_ANSWER, json.dumps(answer).encode())


def join_body(config: Config, identity: NodeIdentity, wg_public: str, secret: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "token": secret,
        "node_name": config.node.name,
        "ed25519_public": identity.public_key_b64(),
        "wg_public": wg_public,
        "endpoint": config.mesh.endpoint or None,
        "version": __version__,
        "agent_port": config.mesh.agent_port,
        "gateway_port": parse_listen(config.gateway.listen)[1] or 8080,
    }
    listen = config.mesh.agent_listen
    if listen:
        host, _ = parse_listen(listen)
        body["agent_url"] = agent_url_of(config, None)
        body["gateway_url"] = f"http://{host}:{body['gateway_port']}"
    return body


async def join_master(
    config: Config,
    store: ControlPlane,
    identity: NodeIdentity,
    wg_public: str,
    master_url: str,
    token: str,
    session: aiohttp.ClientSession,
) -> dict[str, Any]:
    """Join the master at ``master_url`` and record it as this node's pinned peer; return the answer."""
    master_id, secret = parse_token(token)
    sealed = seal(identity, master_id, JOIN, json.dumps(join_body(config, identity, wg_public, secret)).encode())
    url = master_url.rstrip("/") + JOIN_PATH
    try:
        async with session.post(
            url, data=sealed.body, headers=sealed.http_headers(), timeout=aiohttp.ClientTimeout(total=JOIN_TIMEOUT)
        ) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise _refusal(resp.status, raw)
            header_b64 = resp.headers.get(HEADER_ENVELOPE, "")
            signature_b64 = resp.headers.get(HEADER_SIGNATURE, "")
    except aiohttp.ClientError as exc:
        raise ServiceUnavailable(
            f"the master at {master_url} is unreachable: {exc}", code="master_unreachable"
        ) from None
    answer = _json_object(raw)
    master_key = answer.get("master_ed25519_public")
    if not isinstance(master_key, str):
        raise BadRequest("the join answer lacks the master key", code="invalid_join_answer")
    # The master key must hash to the id the operator copied with the token.
    Verifier(identity.node_id).verify_introduction(
        header_b64, signature_b64, raw, master_key, expected_type=JOIN_ANSWER, expected_sender=master_id
    )
    await record_master(store, identity, config, answer, wg_public)
    return answer


def _refusal(status: int, raw: bytes) -> AtlasError:
    try:
        error = json.loads(raw)["error"]
        return AtlasError(str(error["message"]), code=str(error["code"]), status=status)
    except (ValueError, KeyError, TypeError):
        return AtlasError(f"the master answered HTTP {status}", code="join_failed", status=status)


async def record_master(
    store: ControlPlane, identity: NodeIdentity, config: Config, answer: dict[str, Any], wg_public: str
) -> None:
    master_id = answer.get("master_id")
    address = str(answer.get("wg_address", "")).split("/")[0]
    if not is_node_id(master_id) or not address:
        raise BadRequest("the join answer is incomplete", code="invalid_join_answer")
    now = utcnow()
    async with store.transaction() as tx:
        await tx.execute(
            "INSERT INTO nodes (id, name, role, ed25519_public, wg_public, wg_address, status, version, created_at)"
            " VALUES (?, ?, 'worker', ?, ?, ?, 'healthy', ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET wg_address = excluded.wg_address, removed_at = NULL",
            (identity.node_id, config.node.name, identity.public_key_b64(), wg_public, address, __version__, now),
        )
        await tx.execute(
            "INSERT INTO nodes (id, name, role, ed25519_public, wg_public, wg_address, endpoint, agent_url,"
            " status, created_at) VALUES (?, ?, 'master', ?, ?, ?, ?, ?, 'unknown', ?)"
            " ON CONFLICT (id) DO UPDATE SET ed25519_public = excluded.ed25519_public,"
            " wg_public = excluded.wg_public, wg_address = excluded.wg_address, endpoint = excluded.endpoint,"
            " agent_url = excluded.agent_url, removed_at = NULL",
            (
                master_id,
                str(answer.get("master_name") or "master"),
                answer["master_ed25519_public"],
                answer.get("master_wg_public"),
                answer.get("master_wg_address"),
                answer.get("master_endpoint"),
                answer.get("master_agent_url"),
                now,
            ),
        )
    log.info("joined master %s as %s at %s", master_id, identity.node_id, address)
