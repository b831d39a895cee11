"""``atlashub node``: join tokens, joining, removal and the node list, from the node's shell.

These commands open the control plane directly (SQLite allows a second writer, one at a
time); the running daemon picks up their changes within a few seconds (the agent's
reconcile loop re-reads the peer table). They never start PostgreSQL or touch projects.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from appliance.cli_support import run_async
from appliance.config import Config
from appliance.control.store import ControlPlane, utcnow
from appliance.core import CONTROL_DB, IDENTITY_FILE, WG_KEY_FILE
from appliance.errors import AtlasError
from appliance.mesh.identity import NodeIdentity, WireGuardKeys
from appliance.mesh.join import join_master
from appliance.mesh.tokens import DEFAULT_TTL_SECONDS, JoinTokens
from appliance.mesh.wg import WireGuard


def register(subparsers: Any) -> None:
    node = subparsers.add_parser("node", help="cluster membership: join tokens, join, remove, list")
    sub = node.add_subparsers(dest="node_command", required=True)

    token = sub.add_parser("token", help="join tokens (on the master)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a one-time join token and print it once")
    create.add_argument("--config", type=Path, default=None)
    create.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="seconds until it expires")
    create.add_argument("--master-url", default="", help="the URL workers use to reach this master")
    create.set_defaults(handler=token_create)

    join = sub.add_parser("join", help="join this node to a master as a worker")
    join.add_argument("--config", type=Path, default=None)
    join.add_argument("--master", required=True, help="the master's public URL")
    join.add_argument("--token", required=True, help="<master node id>.<secret>, from `node token create`")
    join.set_defaults(handler=node_join)

    remove = sub.add_parser("remove", help="remove a node: unpin its key, drop its WireGuard peer")
    remove.add_argument("--config", type=Path, default=None)
    remove.add_argument("node_id")
    remove.set_defaults(handler=node_remove)

    listing = sub.add_parser("list", help="list the nodes this node knows")
    listing.add_argument("--config", type=Path, default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=node_list)


@asynccontextmanager
async def _control(config: Config) -> AsyncIterator[tuple[ControlPlane, NodeIdentity]]:
    state = config.state_dir
    if not (state / IDENTITY_FILE).exists():
        raise AtlasError(f"no node identity in {state}; run `atlashub init` first", code="not_initialised")
    store = ControlPlane(state / CONTROL_DB)
    await store.open()
    try:
        yield store, NodeIdentity.load(state / IDENTITY_FILE)
    finally:
        await store.close()


def _run(action: Callable[[], Coroutine[Any, Any, int]]) -> int:
    return run_async("atlashub node", action, show_code=True)


def token_create(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        if config.mesh.role != "master":
            raise AtlasError("join tokens are created on the master", code="not_master")
        async with _control(config) as (store, identity):
            issued = await JoinTokens(store, identity.node_id).create(args.ttl)
        url = args.master_url or config.gateway.public_url or "<master URL>"
        print(issued.token)
        print(f"expires {issued.expires_at}; shown once. On the new node run:", file=sys.stderr)
        print(f"  atlashub node join --master {url} --token {issued.token}", file=sys.stderr)
        return 0

    return _run(action)


def node_join(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        if config.mesh.role != "worker":
            raise AtlasError('set mesh.role = "worker" (and mesh.master_url) before joining', code="not_worker")
        async with _control(config) as (store, identity):
            wg_keys = WireGuardKeys.load(config.state_dir / WG_KEY_FILE)
            async with aiohttp.ClientSession() as session:
                answer = await join_master(
                    config, store, identity, wg_keys.public_b64, args.master, args.token, session
                )
        print(f"joined master {answer['master_id']} as {identity.node_id} at {answer['wg_address']}")
        print("the running daemon brings up WireGuard and starts heartbeats within a few seconds")
        return 0

    return _run(action)


async def retire_node(store: ControlPlane, config: Config, node_id: str) -> bool:
    """Mark a node removed and drop its WireGuard peer from this node's interface (the running
    daemon refuses its messages from then on). False when there is no such node left."""
    row = await store.fetchone("SELECT wg_public FROM nodes WHERE id = ? AND removed_at IS NULL", (node_id,))
    if row is None:
        return False
    await store.execute("UPDATE nodes SET removed_at = ?, status = 'removed' WHERE id = ?", (utcnow(), node_id))
    mesh = config.mesh
    wg = WireGuard(mesh.wg_interface, mesh.wg_listen_port, config.state_dir / WG_KEY_FILE)
    if row["wg_public"] and await wg.exists():
        await wg.remove_peer(row["wg_public"])
    return True


def node_remove(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        async with _control(config) as (store, identity):
            if args.node_id == identity.node_id:
                raise AtlasError("a node cannot remove itself", code="node_is_self")
            if not await retire_node(store, config, args.node_id):
                raise AtlasError(f"no node {args.node_id}", code="node_not_found")
        print(f"removed {args.node_id}; the running daemon refuses its messages within a few seconds")
        return 0

    return _run(action)


def node_list(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        async with _control(config) as (store, identity):
            rows = await store.fetchall(
                "SELECT id, name, role, wg_address, status, version, last_heartbeat_at FROM nodes"
                " WHERE removed_at IS NULL ORDER BY created_at, id"
            )
        nodes = [dict(r) for r in rows]
        if args.json:
            print(json.dumps({"nodes": nodes, "self_id": identity.node_id}, indent=2))
            return 0
        print(f"{'ID':<20} {'NAME':<16} {'ROLE':<7} {'WG ADDRESS':<14} {'STATUS':<10} LAST HEARTBEAT")
        for n in nodes:
            mark = "*" if n["id"] == identity.node_id else " "
            print(
                f"{n['id']:<19}{mark} {n['name'][:16]:<16} {n['role']:<7} {n['wg_address'] or '-':<14}"
                f" {n['status']:<10} {n['last_heartbeat_at'] or '-'}"
            )
        return 0

    return _run(action)
