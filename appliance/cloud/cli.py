"""``atlashub cloud``: the Hetzner token, provisioning and decommissioning from the master's shell.

``node`` belongs to the cluster commands, so these live under ``cloud``. They open the control
plane directly (as ``atlashub node`` does) and run the same step machine as the dashboard, in
this process; the running daemon accepts the new worker's join. Backups before a forced
decommission need the running daemon (use the dashboard); here ``--force`` skips them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from appliance.cli_support import run_async
from appliance.cloud.decommission import Decommissioner
from appliance.cloud.hetzner import DEFAULT_API_URL, HetznerClient, HetznerError
from appliance.cloud.provision import Provisioner
from appliance.cloud.runs import CloudContext
from appliance.cloud.settings import HETZNER, CloudSettings, check_api_url, check_ssh_key, check_token_text
from appliance.config import Config
from appliance.control.store import ControlPlane
from appliance.core import CONTROL_DB, IDENTITY_FILE
from appliance.crypto import SecretBox, find_master_key, load_master_key
from appliance.errors import AtlasError
from appliance.mesh.cli import retire_node
from appliance.mesh.identity import NodeIdentity


def register(subparsers: Any) -> None:
    cloud = subparsers.add_parser("cloud", help="provision and decommission workers on Hetzner Cloud")
    sub = cloud.add_subparsers(dest="cloud_command", required=True)

    token = sub.add_parser("token", help="the provider API token")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    set_token = token_sub.add_parser("set", help="read the API token from stdin, check it, store it sealed")
    set_token.add_argument("--config", type=Path, default=None)
    set_token.add_argument("--provider", choices=[HETZNER], default=HETZNER)
    set_token.add_argument("--api-url", default=DEFAULT_API_URL)
    set_token.add_argument("--ssh-key-file", type=Path, default=None, help="public key put on new servers")
    set_token.set_defaults(handler=token_set)

    prov = sub.add_parser("provision", help="create a worker server, wait until it joined")
    prov.add_argument("--config", type=Path, default=None)
    prov.add_argument("--provider", choices=[HETZNER], default=HETZNER)
    prov.add_argument("--type", dest="server_type", required=True, help="server type, e.g. cx22")
    prov.add_argument("--location", required=True, help="location, e.g. fsn1")
    prov.add_argument("--name", default=None, help="server and node name (default worker-<n>)")
    prov.add_argument("--join-timeout", type=float, default=900.0)
    prov.set_defaults(handler=provision)

    dec = sub.add_parser("decommission", help="remove a provisioned worker from the cluster and delete its server")
    dec.add_argument("--config", type=Path, default=None)
    dec.add_argument("node_id")
    dec.add_argument("--force", action="store_true", help="even if it hosts projects (not backed up from here)")
    dec.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    dec.set_defaults(handler=decommission)


@asynccontextmanager
async def _context(config: Config) -> AsyncIterator[CloudContext]:
    state = config.state_dir
    key_path = find_master_key(state)
    if key_path is None or not (state / IDENTITY_FILE).exists():
        raise AtlasError(
            f"no master key or node identity in {state}; run `atlashub init` first", code="not_initialised"
        )
    store = ControlPlane(state / CONTROL_DB)
    await store.open()

    async def remove_node(node_id: str) -> None:
        await retire_node(store, config, node_id)

    try:
        identity = NodeIdentity.load(state / IDENTITY_FILE)
        yield CloudContext(store, SecretBox(load_master_key(key_path)), identity.node_id, config, remove_node)
    finally:
        await store.close()


def token_set(args: argparse.Namespace, config: Config) -> int:
    line = sys.stdin.readline()

    async def action() -> int:
        token = check_token_text(line.rstrip("\r\n"))  # `echo TOKEN |` and typing end with a newline
        api_url = check_api_url(args.api_url)
        ssh_key = check_ssh_key(args.ssh_key_file.read_text()) if args.ssh_key_file else None
        async with HetznerClient(token, api_url) as api:
            try:
                await api.request("GET", "/servers", params={"per_page": 1})
            except HetznerError as exc:
                if exc.http_status in (401, 403):
                    raise AtlasError("Hetzner Cloud refused the token", code="cloud_token_invalid") from None
                raise
        async with _context(config) as ctx:
            await CloudSettings(ctx.store, ctx.box).save(args.provider, token, api_url, ssh_key)
        print(f"stored the {args.provider} token (sealed; it is not shown again)")
        return 0

    return run_async("atlashub cloud", action, show_code=True)


async def _default_name(store: ControlPlane) -> str:
    rows = await store.fetchall("SELECT name FROM nodes UNION SELECT name FROM provisioning_runs")
    taken = {r["name"] for r in rows}
    return next(f"worker-{n}" for n in range(1, 10_000) if f"worker-{n}" not in taken)


def provision(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        async with _context(config) as ctx:
            provisioner = Provisioner(ctx, join_timeout=args.join_timeout)
            name = args.name or await _default_name(ctx.store)
            body = {"name": name, "server_type": args.server_type, "location": args.location}
            run_id = await provisioner.start(body)
            print(f"provisioning {name} (run {run_id})", file=sys.stderr)
            run = await provisioner.run(run_id)
        print(json.dumps(run, indent=2))
        return 0 if run["state"] == "done" else 1

    return run_async("atlashub cloud", action, show_code=True)


def decommission(args: argparse.Namespace, config: Config) -> int:
    if not args.yes:
        answer = input(f"decommission {args.node_id} and delete its server? type the node id: ")
        if answer.strip() != args.node_id:
            print("not confirmed", file=sys.stderr)
            return 1

    async def action() -> int:
        async with _context(config) as ctx:
            decommissioner = Decommissioner(Provisioner(ctx))
            body = {"node_id": args.node_id, "confirm": args.node_id, "force": bool(args.force)}
            run = await decommissioner.run(await decommissioner.start(body))
        print(json.dumps(run, indent=2))
        return 0 if run["state"] == "done" else 1

    return run_async("atlashub cloud", action, show_code=True)
