"""`atlashub backup create|list|restore|verify|clone --project ID`: runs on this node directly, with
progress bars on stderr. It opens the node's core itself (the daemon may keep running: the
control plane is SQLite in WAL mode), so it needs the same config and master key as the daemon."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from appliance.backups.clone import CloneService
from appliance.backups.jobs import Progress
from appliance.backups.restore import RestoreService
from appliance.backups.service import BackupService
from appliance.cli_support import (
    EXIT_FAILURE,
    EXIT_OK,
    KEYS_SHOWN_ONCE,
    fail,
    opened_core,
    run_async,
    usage_error,
)
from appliance.config import Config
from appliance.core import Core

PREFIX = "atlashub backup"
BAR_WIDTH = 30


class BarProgress:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    def __init__(self, stream: Any = None) -> None:
        self._out = stream or sys.stderr
        self._name = ""
        self._done = 0
        self._total: int | None = None
        self._unit: str | None = None
        self._drawn = 0.0

    async def phase(self, name: str, *, total: int | None = None, unit: str | None = None) -> None:
        if self._name:
            self._draw(force=True)
            self._out.write("\n")
        self._name, self._done, self._total, self._unit = name, 0, total, unit
        self._draw(force=True)

    async def advance(self, amount: int) -> None:
        self._done += amount
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        amount = _human(self._done) if self._unit == "bytes" else str(self._done)
        if self._total:
            share = min(1.0, self._done / self._total)
            filled = int(share * BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share * 100:5.1f}%"
        else:
            bar = ""
        self._out.write(f"\r{self._name:<9} {bar} {amount}".rstrip() + "   ")
        self._out.flush()

    def close(self) -> None:
        if self._name:
            self._draw(force=True)
            self._out.write("\n")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("backup", help="back up, list, verify and restore project databases")
    sub = parser.add_subparsers(dest="backup_command", required=True)
    for name, helptext in (
        ("create", "back up a project now (then verify it, as configured)"),
        ("list", "list a project's backups"),
        ("verify", "restore a backup into a scratch database and compare"),
        ("restore", "replace a project's database with a backup (undo possible for a while)"),
        ("clone", "restore a backup as a new project, with new keys (printed once)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", type=Path, default=None)
        if name == "clone":
            p.add_argument("project_id", nargs="?", metavar="PROJECT_ID", help="the source project's id")
        p.add_argument("--project", required=name not in ("verify", "clone"), help="project id")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        if name in ("verify", "restore", "clone"):
            p.add_argument(
                "--backup", required=name == "verify", help="backup id (restore, clone: default the newest good)"
            )
        if name == "restore":
            p.add_argument("--yes", action="store_true", help="skip the typed confirmation")
        if name == "clone":
            p.add_argument("--name", required=True, help="the new project's name")
        p.set_defaults(handler=run)


def run(args: argparse.Namespace, config: Config) -> int:
    return run_async(PREFIX, lambda: _run(args, config))


async def _run(args: argparse.Namespace, config: Config) -> int:
    if args.backup_command == "clone":
        if args.project_id and args.project and args.project_id != args.project:
            return usage_error(f"{PREFIX} clone", "give the source project once (PROJECT_ID or --project)")
        args.project = args.project_id or args.project
        if not args.project:
            return usage_error(f"{PREFIX} clone", "the source project's id is required")
    bar = BarProgress()
    async with opened_core(config) as core:
        try:
            result = await _dispatch(core, args, bar)
        finally:
            bar.close()
    if result is None:
        return EXIT_FAILURE
    print(json.dumps(result, indent=2) if args.json else _summary(result))
    if args.backup_command == "clone" and not args.json:
        print(KEYS_SHOWN_ONCE, file=sys.stderr)
    return EXIT_OK


async def _dispatch(core: Core, args: argparse.Namespace, bar: Progress) -> Any:
    backups = core.service(BackupService)
    command: str = args.backup_command
    if command == "list":
        return await backups.list_backups(args.project)
    if command == "create":
        return await backups.create_backup(args.project, bar)
    if command == "verify":
        found = await backups.get(args.backup)
        async with backups.lock(found["project_id"]):
            return await backups.verify(args.backup, bar)
    backup_id = args.backup or _newest_good(await backups.list_backups(args.project))
    if backup_id is None:
        fail(PREFIX, f"this project has no good backup to {command}")
        return None
    if command == "clone":
        return await _clone(core, args.project, backup_id, args.name, bar)
    confirm = (
        args.project if args.yes else await _ask(f"Type the project id ({args.project}) to replace its database: ")
    )
    return await core.service(RestoreService).restore(args.project, backup_id, confirm.strip(), bar)


async def _clone(core: Core, source_id: str, backup_id: str, name: str, bar: Progress) -> dict[str, Any]:
    """The clone runs in this process, not as a daemon job: the new keys never touch the jobs
    table and are printed here once, as the admin API reveals them once. The running daemon adds
    the new project's default daily backup job with its next maintenance pass."""
    result, created = await core.service(CloneService).clone(source_id, backup_id, name, bar)
    await core.project_created(created.project.id)
    return {**result, "publishable_key": created.publishable[1], "secret_key": created.secret[1]}


def _newest_good(rows: list[dict[str, Any]]) -> str | None:
    return next((r["id"] for r in rows if r["status"] in ("completed", "verified")), None)


async def _ask(prompt: str) -> str:
    read: Callable[[str], str] = input
    answer: Awaitable[str] = asyncio.to_thread(read, prompt)
    return await answer


def _summary(result: Any) -> str:
    if isinstance(result, list):
        lines = [f"{'id':<24} {'created_at':<28} {'status':<10} {'size':>10}  verified_at"]
        for r in result:
            size = _human(r["size"] or 0)
            lines.append(f"{r['id']:<24} {r['created_at']:<28} {r['status']:<10} {size:>10}  {r['verified_at'] or '-'}")
        return "\n".join(lines)
    if "source_project_id" in result:
        return _clone_summary(result)
    keys = ("id", "project_id", "backup_id", "status", "size", "sha256", "verified_at", "undo_until")
    return "\n".join(f"{k}: {result[k]}" for k in keys if k in result)


def _clone_summary(result: dict[str, Any]) -> str:
    lines = [
        f"project_id: {result['project_id']}",
        f"name: {result['project']['name']}",
        f"source_project_id: {result['source_project_id']}",
        f"backup_id: {result['backup_id']}",
    ]
    if result["not_applied"]:
        lines.append(f"not_applied: {len(result['not_applied'])} statement(s) naming roles this server lacks")
        lines += [f"  {statement}" for statement in result["not_applied"]]
    lines += [f"publishable_key: {result['publishable_key']}", f"secret_key: {result['secret_key']}"]
    return "\n".join(lines)
