"""`atlashub admin create --username U`: a local admin account, the password read from stdin or a prompt."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

from appliance.config import Config
from appliance.control.store import ControlPlane
from appliance.core import CONTROL_DB
from appliance.dashboard.accounts import AdminAccounts
from appliance.errors import AtlasError


def register(subparsers: Any) -> None:
    admin = subparsers.add_parser("admin", help="manage local admin accounts of the dashboard")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    create = sub.add_parser("create", help="create a local admin account (password from stdin or a prompt)")
    create.add_argument("--config", type=Path, default=None)
    create.add_argument("--username", required=True)
    create.set_defaults(handler=run_create)


def read_password(stdin: TextIO | None = None) -> str:
    """Prompted twice on a terminal; otherwise the first line of stdin (for scripts)."""
    stdin = stdin or sys.stdin
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise ValueError("the passwords do not match")
        return first
    return stdin.readline().rstrip("\r\n")


class _CliCore:
    """What AdminAccounts needs of the core to create a user: no PostgreSQL, no master key."""

    def __init__(self, config: Config, store: ControlPlane) -> None:
        self.config = config
        self.store = store


async def create_admin(config: Config, username: str, password: str) -> str:
    store = ControlPlane(config.state_dir / CONTROL_DB)
    await store.open()  # applies pending migrations, like the daemon would
    try:
        user = await AdminAccounts(_CliCore(config, store)).create_user(username, password)  # type: ignore[arg-type]
    finally:
        await store.close()
    return user.username


def run_create(args: argparse.Namespace, config: Config) -> int:
    try:
        password = read_password()
        name = asyncio.run(create_admin(config, args.username, password))
    except ValueError as exc:
        print(f"atlashub: {exc}", file=sys.stderr)
        return 1
    except AtlasError as exc:
        print(f"atlashub: {exc.message}", file=sys.stderr)
        return 1
    print(f"admin account {name!r} created; sign in on the dashboard")
    return 0
