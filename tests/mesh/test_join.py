"""Join tokens and the join exchange, against real daemons (master and worker) on loopback."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.agent.heartbeat import send_heartbeat
from appliance.control.store import ControlPlane
from appliance.errors import AtlasError, BadRequest, Conflict
from appliance.mesh.envelope import JOIN, b64url_encode, seal
from appliance.mesh.identity import NodeIdentity, WireGuardKeys
from appliance.mesh.join import JOIN_PATH, join_body, join_master
from appliance.mesh.peers import Mesh, allocate_address
from appliance.mesh.tokens import JoinTokenInvalid, JoinTokens, parse_token
from appliance.pg.embedded import EmbeddedPostgres
from tests.agent.cluster import join, node_status, running_node, wait_for

MASTER_ID = NodeIdentity.generate().node_id


@pytest.fixture
async def store(tmp_path: Path):
    control = ControlPlane(tmp_path / "control.db")
    await control.open()
    yield control
    await control.close()


async def _consume(store: ControlPlane, tokens: JoinTokens, token: str, node: str, now: datetime | None = None) -> str:
    _, secret = parse_token(token)
    async with store.transaction() as tx:
        return await tokens.consume(secret, node, tx=tx, now=now)


async def test_token_is_stored_hashed_and_works_once(store: ControlPlane) -> None:
    tokens = JoinTokens(store, MASTER_ID)
    issued = await tokens.create()
    master_id, secret = parse_token(issued.token)
    assert master_id == MASTER_ID
    row = await store.fetchone("SELECT * FROM join_tokens")
    assert row is not None and secret not in json.dumps(dict(row))
    assert await _consume(store, tokens, issued.token, "n_aaaaaaaaaaaaaaaa") == issued.id
    with pytest.raises(JoinTokenInvalid):
        await _consume(store, tokens, issued.token, "n_bbbbbbbbbbbbbbbb")
    assert await tokens.pending() == []


async def test_expired_and_unknown_tokens_are_refused(store: ControlPlane) -> None:
    tokens = JoinTokens(store, MASTER_ID)
    issued = await tokens.create(60)
    with pytest.raises(JoinTokenInvalid):
        await _consume(store, tokens, issued.token, "n_aaaaaaaaaaaaaaaa", now=datetime.now(UTC) + timedelta(minutes=2))
    with pytest.raises(JoinTokenInvalid):
        await _consume(store, tokens, f"{MASTER_ID}.{b64url_encode(os.urandom(32))}", "n_aaaaaaaaaaaaaaaa")


@pytest.mark.parametrize(
    "token",
    ["", "nope", f"{MASTER_ID}.", f"{MASTER_ID}.abc", "n_short.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(BadRequest):
        parse_token(token)


async def test_addresses_are_never_reused(store: ControlPlane) -> None:
    async with store.transaction() as tx:
        first = await allocate_address(tx, "10.100.0.0/29")
        await tx.execute(
            "INSERT INTO nodes (id, name, role, wg_address, created_at, removed_at)"
            " VALUES ('n_x', 'x', 'worker', ?, 't', 't')",
            (first,),
        )
        assert first == "10.100.0.2"
        assert await allocate_address(tx, "10.100.0.0/29") == "10.100.0.3"
        for i, address in enumerate(("10.100.0.3", "10.100.0.4", "10.100.0.5", "10.100.0.6")):
            await tx.execute(
                "INSERT INTO nodes (id, name, role, wg_address, created_at) VALUES (?, 'y', 'worker', ?, 't')",
                (f"n_{i}", address),
            )
        with pytest.raises(Conflict):
            await allocate_address(tx, "10.100.0.0/29")


async def test_join_heartbeat_health_and_removal(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with (
        running_node(tmp_path / "m", pg, "master", "master", heartbeat_seconds=0.3) as master,
        running_node(tmp_path / "w", pg, "worker", "worker-1", heartbeat_seconds=0.3) as worker,
    ):
        answer = await join(master, worker)
        worker_id = worker.daemon.core.node_id
        assert answer["node_id"] == worker_id
        assert answer["wg_address"] == "10.100.0.2/24"
        assert answer["master_id"] == master.daemon.core.node_id
        await wait_for(lambda: _is(node_status(master, worker_id), "healthy"), what="first heartbeat")

        status, body = await master.admin("GET", "/admin/api/nodes")
        assert body["self_id"] == master.daemon.core.node_id
        by_id = {n["id"]: n for n in body["nodes"]}
        seen = by_id[worker_id]
        assert seen["role"] == "worker" and seen["wg_address"] == "10.100.0.2" and seen["version"]
        assert seen["disk"]["total_bytes"] > 0 and "load1" in seen["load"] and seen["last_heartbeat_at"]
        assert by_id[master.daemon.core.node_id]["wg_address"] == "10.100.0.1"

        # The worker stops beating (its agent is gone): unhealthy after three missed beats.
        status, _ = await master.admin("DELETE", f"/admin/api/nodes/{worker_id}")
        assert status == 200
        mesh = master.daemon.core.service(Mesh)
        assert worker_id not in mesh.verifier.peers()
        status, body = await master.admin("GET", "/admin/api/nodes")
        assert worker_id not in {n["id"] for n in body["nodes"]}
        # A removed node's messages are refused, and it cannot join again with its old key.
        wmesh = worker.daemon.core.service(Mesh)
        assert not await send_heartbeat(worker.daemon.core, wmesh)
        status, body = await master.admin("POST", "/admin/api/nodes/tokens", json={})
        core = worker.daemon.core
        with pytest.raises(AtlasError) as refused:
            await join_master(
                core.config, core.store, core.identity, "x" * 43 + "=", master.gateway_url, body["token"], worker.http
            )
        assert (refused.value.status, refused.value.code) == (409, "node_exists")


async def _is(value: object, expected: object) -> bool:
    return (await value) == expected  # type: ignore[misc]


async def test_missed_heartbeats_make_a_node_unhealthy(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_node(tmp_path / "m", pg, "master", "master", heartbeat_seconds=0.2) as master:
        async with running_node(tmp_path / "w", pg, "worker", "w", heartbeat_seconds=0.2) as worker:
            await join(master, worker)
            worker_id = worker.daemon.core.node_id
            await wait_for(lambda: _is(node_status(master, worker_id), "healthy"), what="healthy")
        await wait_for(lambda: _is(node_status(master, worker_id), "unhealthy"), what="unhealthy")


async def test_used_expired_and_forged_joins_are_refused(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    async with running_node(tmp_path / "m", pg, "master", "master") as master:
        status, body = await master.admin("POST", "/admin/api/nodes/tokens", json={"ttl_seconds": 60})
        assert status == 201 and body["join_command"].endswith(body["token"])
        token = body["token"]
        master_id, secret = parse_token(token)
        config = master.daemon.core.config

        async def post(identity: NodeIdentity, recipient: str, secret: str, **override: object) -> tuple[int, dict]:
            payload = {**join_body(config, identity, WireGuardKeys.generate().public_b64, secret), **override}
            sealed = seal(identity, recipient, JOIN, json.dumps(payload).encode())
            async with master.http.post(
                master.gateway_url + JOIN_PATH, data=sealed.body, headers=sealed.http_headers()
            ) as resp:
                return resp.status, await resp.json()

        # Another key than the one announced in the body: refused before the token is looked at.
        status, body = await post(
            NodeIdentity.generate(), master_id, secret, ed25519_public=NodeIdentity.generate().public_key_b64()
        )
        assert (status, body["error"]["details"]["reason"]) == (401, "bad_signature")
        # Addressed to another master.
        status, body = await post(NodeIdentity.generate(), NodeIdentity.generate().node_id, secret)
        assert (status, body["error"]["details"]["reason"]) == (401, "wrong_recipient")
        # A wrong secret.
        status, body = await post(NodeIdentity.generate(), master_id, b64url_encode(os.urandom(32)))
        assert (status, body["error"]["code"]) == (401, "join_token_invalid")
        # The good one, then the same token again.
        status, body = await post(NodeIdentity.generate(), master_id, secret)
        assert status == 200, body
        status, body = await post(NodeIdentity.generate(), master_id, secret)
        assert (status, body["error"]["code"]) == (401, "join_token_invalid")
        # Expired.
        await master.daemon.core.store.execute("UPDATE join_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
        status, body = await master.admin("POST", "/admin/api/nodes/tokens", json={})
        _, fresh = parse_token(body["token"])
        await master.daemon.core.store.execute("UPDATE join_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
        status, body = await post(NodeIdentity.generate(), master_id, fresh)
        assert (status, body["error"]["code"]) == (401, "join_token_invalid")


async def test_cli_join_list_and_remove(
    tmp_path: Path, pg: EmbeddedPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from appliance.mesh.cli import node_join, node_list, node_remove, token_create

    async with (
        running_node(tmp_path / "m", pg, "master", "master", heartbeat_seconds=0.3) as master,
        running_node(tmp_path / "w", pg, "worker", "worker-cli", heartbeat_seconds=0.3) as worker,
    ):
        mconfig, wconfig = master.daemon.config, worker.daemon.config
        assert await asyncio.to_thread(token_create, argparse.Namespace(ttl=600, master_url=""), mconfig) == 0
        token = capsys.readouterr().out.strip()
        args = argparse.Namespace(master=master.gateway_url, token=token)
        assert await asyncio.to_thread(node_join, args, wconfig) == 0
        assert "joined master" in capsys.readouterr().out
        worker_id = worker.daemon.core.node_id
        # The running daemon picks up the join made by the other process and starts beating.
        await wait_for(lambda: _is(node_status(master, worker_id), "healthy"), what="heartbeat after CLI join")
        assert await asyncio.to_thread(node_list, argparse.Namespace(json=True), mconfig) == 0
        listed = json.loads(capsys.readouterr().out)
        assert worker_id in {n["id"] for n in listed["nodes"]}
        assert await asyncio.to_thread(node_remove, argparse.Namespace(node_id=worker_id), mconfig) == 0
        mesh = master.daemon.core.service(Mesh)
        await wait_for(lambda: _async(worker_id not in mesh.verifier.peers()), what="unpinned after CLI remove")
        # Its heartbeats are refused from now on.
        await wait_for(lambda: _is(node_status(master, worker_id), None), what="removed from the list")


async def _async(value: bool) -> bool:
    return value
