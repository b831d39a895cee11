"""``atlashub project list|create|delete|keys``: projects from the node's shell.

The commands run on this node directly, through the services the admin API uses
(``ProjectService``, ``KeyService``) and with the same audit entries, the actor being
``cli:<unix user>``. A new project's keys are printed once and never logged. The daemon may
keep running: its gateway re-reads the keys every few seconds (``KeyService.refresh``).

In a cluster, projects live where the master placed them. ``create`` provisions on this node;
``--node`` names the node and is checked as the admin API checks it, but placing on a worker
needs the worker's answer, which comes back to the running daemon: that goes through the admin
API. ``delete`` refuses a project hosted on another node for the same reason, and a worker
leaves creating and deleting to its master.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance import audit
from appliance.cli_support import (
    EXIT_OK,
    KEYS_SHOWN_ONCE,
    fail,
    opened_core,
    run_async,
    shell_actor,
    table,
    usage_error,
)
from appliance.config import Config
from appliance.core import Core
from appliance.errors import BadRequest, Conflict
from appliance.projects.model import validate_name

PREFIX = "atlashub project"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("project", help="list, create and delete projects; list their keys")
    sub = parser.add_subparsers(dest="project_command", required=True)

    listing = sub.add_parser("list", help="list the projects")
    listing.add_argument("--json", action="store_true", help="print the result as JSON")
    listing.set_defaults(handler=project_list)

    create = sub.add_parser("create", help="create a project on this node and print its keys once")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--node", metavar="NODE_ID", default=None, help="the node to host it (default this one)")
    create.add_argument("--json", action="store_true", help="print the result as JSON")
    create.set_defaults(handler=project_create)

    delete = sub.add_parser("delete", help="drop a project: its database, files and keys, for good")
    delete.add_argument("project_id", metavar="PROJECT_ID")
    delete.add_argument("--confirm", metavar="PROJECT_ID", default=None, help="the project id again")
    delete.set_defaults(handler=project_delete)

    keys = sub.add_parser("keys", help="list a project's API keys (prefixes only; keys are stored hashed)")
    keys.add_argument("project_id", metavar="PROJECT_ID")
    keys.add_argument("--json", action="store_true", help="print the result as JSON")
    keys.set_defaults(handler=project_keys)

    for p in (listing, create, delete, keys):
        p.add_argument("--config", type=Path, default=None)


# -- list ----------------------------------------------------------------------------------


def project_list(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        async with opened_core(config) as core:
            projects = [p.to_dict() for p in await core.projects.all()]
            for p in projects:
                p["node_id"] = p["node_id"] or core.node_id
        if args.json:
            print(json.dumps({"projects": projects}, indent=2))
            return EXIT_OK
        rows = [(p["id"], p["name"], p["node_id"], p["status"], p["created_at"]) for p in projects]
        print(table(("ID", "NAME", "NODE", "STATUS", "CREATED"), rows))
        return EXIT_OK

    return run_async(PREFIX, action)


# -- create --------------------------------------------------------------------------------


def project_create(args: argparse.Namespace, config: Config) -> int:
    try:
        name = validate_name(args.name)  # the service checks it again; a typo needs no node
    except BadRequest as exc:
        return usage_error(f"{PREFIX} create", exc.message)
    if config.mesh.role == "worker":
        return fail(f"{PREFIX} create", "on a worker, projects are created by the master")

    async def action() -> int:
        async with opened_core(config) as core:
            if args.node is not None:
                await _check_placement(core, args.node)
            created = await _create(core, name)
        if args.json:
            print(json.dumps(created, indent=2))
        else:
            print("\n".join(f"{k}: {created[k]}" for k in ("id", "name", "node_id", "created_at")))
            print(f"publishable_key: {created['publishable_key']}")
            print(f"secret_key: {created['secret_key']}")
        print(KEYS_SHOWN_ONCE, file=sys.stderr)
        return EXIT_OK

    return run_async(f"{PREFIX} create", action)


async def _check_placement(core: Core, requested: str) -> None:
    """The admin API's placement check; only this node can provision from here."""
    from appliance.mesh.peers import Mesh
    from appliance.mesh.placement import choose_node

    if requested == core.node_id:
        return  # before the daemon's first start, this node has no row of its own yet
    mesh = core.service(Mesh)
    node_id = await choose_node(mesh, requested)
    if node_id != mesh.self_id:
        raise Conflict(
            f"node {node_id} is another node: the running daemon places projects there (the dashboard, or"
            ' POST /admin/api/projects with {"node_id": ...}); this command creates them on this node',
            code="placement_needs_daemon",
        )


async def _create(core: Core, name: str) -> dict[str, Any]:
    """As ``POST /admin/api/projects`` does it: the service, the audit entry, the roles' defaults."""
    actor = shell_actor()
    try:
        created = await core.projects.create(name)
    except Exception as exc:
        await audit.record(
            core.store, actor=actor, action="project.create", outcome="failure", details={"error": type(exc).__name__}
        )
        raise
    project = created.project
    await audit.record(
        core.store,
        actor=actor,
        action="project.create",
        target=project.id,
        project_id=project.id,
        details={"name": project.name},
    )
    await core.project_created(project.id)
    return {
        "id": project.id,
        "name": project.name,
        "db_name": project.db_name,
        "node_id": project.node_id or core.node_id,
        "created_at": project.created_at,
        "publishable_key": created.publishable[1],
        "secret_key": created.secret[1],
    }


# -- delete --------------------------------------------------------------------------------


def project_delete(args: argparse.Namespace, config: Config) -> int:
    command = f"{PREFIX} delete"
    if args.confirm is None:
        return usage_error(
            command, f"this drops the project's database, files and keys for good; add --confirm {args.project_id}"
        )
    if args.confirm != args.project_id:
        return usage_error(command, f"--confirm {args.confirm!r} is not the project id {args.project_id!r}")
    if config.mesh.role == "worker":
        return fail(command, "on a worker, projects are deleted by the master")

    async def action() -> int:
        async with opened_core(config) as core:
            name = await _delete(core, args.project_id, args.confirm)
        print(f"deleted project {args.project_id} ({name}): its database, files and keys are gone")
        return EXIT_OK

    return run_async(command, action)


async def _delete(core: Core, project_id: str, confirm: str) -> str:
    """As ``DELETE /admin/api/projects/{id}`` does it, for a project this node hosts."""
    actor = shell_actor()
    try:
        project = await core.projects.get(project_id)
        if project.node_id not in (None, core.node_id):
            raise Conflict(
                f"project {project_id} is hosted on node {project.node_id}: delete it through the running"
                " daemon (the dashboard), which asks that node to drop it",
                code="project_on_other_node",
            )
        await core.projects.delete(project_id, confirm)
    except Exception as exc:
        await audit.record(
            core.store,
            actor=actor,
            action="project.delete",
            target=project_id,
            project_id=project_id,
            outcome="failure",
            details={"error": type(exc).__name__},
        )
        raise
    await audit.record(core.store, actor=actor, action="project.delete", target=project_id, project_id=project_id)
    return project.name


# -- keys ----------------------------------------------------------------------------------


def project_keys(args: argparse.Namespace, config: Config) -> int:
    async def action() -> int:
        async with opened_core(config) as core:
            project = await core.projects.get(args.project_id)
            keys = [k.to_dict() for k in await core.keys.for_project(project.id)]
        if args.json:
            print(json.dumps({"keys": keys}, indent=2))
            return EXIT_OK
        rows = [(k["id"], k["type"], k["prefix"] + "…", k["created_at"], k["revoked_at"], k["status"]) for k in keys]
        print(table(("ID", "TYPE", "PREFIX", "CREATED", "REVOKED", "STATUS"), rows))
        return EXIT_OK

    return run_async(f"{PREFIX} keys", action)
