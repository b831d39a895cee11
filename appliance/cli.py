"""The `atlashub` command. Only this module exits; everything else raises."""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from appliance import __version__
from appliance.config import DEFAULT_CONFIG_PATH, KNOWN_ROLES, Config, load_config
from appliance.errors import ConfigError, StartupError
from appliance.logs import setup_logging
from appliance.plugins import present
from appliance.resources import resource_root

log = logging.getLogger("appliance")

EXIT_CONFIG = 2
EXIT_STARTUP = 1

# Roles add their own subcommands: each module has ``register(subparsers)``, and its parsers set
# ``handler=fn`` where ``fn(args, config) -> int`` (they must also accept ``--config``).
COMMAND_MODULES = (
    "appliance.projects_cli",
    "appliance.backups.cli",
    "appliance.mesh.cli",
    "appliance.dashboard.cli",
    "appliance.cloud.cli",
)


def build_commit() -> str:
    stamp = resource_root() / "appliance" / "BUILD_COMMIT"
    if stamp.exists():
        return stamp.read_text().strip()
    try:
        out = subprocess.run(
            ["git", "-C", str(resource_root()), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atlashub", description="AtlasHub: a backend platform in one daemon.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("init", help="create the config file, the state dir and the master key")
    p.add_argument("--config", type=Path, default=None, help=f"config file (default {DEFAULT_CONFIG_PATH})")
    p.add_argument("--state-dir", type=Path, default=None, help="state directory (default from config)")

    p = sub.add_parser("serve", help="run the daemon")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--roles", default=None, help=f"comma-separated subset of {','.join(KNOWN_ROLES)}")

    p = sub.add_parser("dev", help="run everything on this machine with embedded defaults")
    p.add_argument("--data-dir", type=Path, default=Path(".atlashub-dev"))
    p.add_argument("--gateway-port", type=int, default=8080)
    p.add_argument("--dashboard-port", type=int, default=8081)

    p = sub.add_parser("migrate", help="apply control-plane migrations, or a project's migrations from a folder")
    p.add_argument("--config", type=Path, default=None)
    p.add_argument("--project", default=None, help="project id: apply DIR/*.sql to its database as its owner")
    p.add_argument("dir", nargs="?", type=Path, help="folder of NNNN_name.sql files (with --project)")

    p = sub.add_parser("doctor", help="check this node's configuration and health")
    p.add_argument("--config", type=Path, default=None)

    sub.add_parser("version", help="print the version and build commit")
    for module in present(COMMAND_MODULES):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging("INFO", "json" if args.command in ("serve",) else "text")
    try:
        if args.command == "version":
            print(f"atlashub {__version__} ({build_commit()})")
            return 0
        if args.command == "dev":
            from appliance.dev import run_dev

            return run_dev(args.data_dir, args.gateway_port, args.dashboard_port)
        if args.command == "init" and not (args.config or DEFAULT_CONFIG_PATH).exists():
            config = load_config(use_file=False)  # init writes the file
        else:
            config = load_config(args.config)
        handler = getattr(args, "handler", None)
        if handler is not None:
            setup_logging(config.logging.level, "text")
            return int(handler(args, config))
        if args.command == "init":
            from appliance.init import run_init

            return run_init(config, args.config, args.state_dir)
        if args.command == "serve":
            return _serve(config, args.config, args.roles)
        if args.command == "migrate":
            if args.project:
                if args.dir is None:
                    print("atlashub migrate --project ID needs a folder of .sql files", file=sys.stderr)
                    return EXIT_CONFIG
                files = sorted(args.dir.glob("*.sql"))
                if not files:
                    print(f"no .sql files in {args.dir}", file=sys.stderr)
                    return EXIT_CONFIG
                body = {"migrations": [{"name": f.name, "sql": f.read_text()} for f in files]}
                return asyncio.run(_migrate_project(config, args.project, body))
            return asyncio.run(_migrate(config))
        if args.command == "doctor":
            from appliance.doctor import run_doctor

            return asyncio.run(run_doctor(config))
    except ConfigError as exc:
        print("atlashub: invalid configuration:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except StartupError as exc:
        print(f"atlashub: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


def _serve(config: Config, config_path: Path | None, roles: str | None) -> int:
    from appliance import aio
    from appliance.daemon import Daemon, run_until_signalled

    if roles is not None:
        config = config.replace(node={"roles": tuple(r.strip() for r in roles.split(",") if r.strip())})
    setup_logging(config.logging.level, config.logging.format)
    return int(aio.run(run_until_signalled(Daemon(config), config_path=config_path)))


async def _migrate(config: Config) -> int:
    from appliance.core import Core

    core = Core(config)
    await core.open()  # opening applies pending migrations
    try:
        status = await core.store.status()
    finally:
        await core.close()
    print(f"control plane at migration {len(status['applied'])} of {status['latest']}")
    return 0


async def _migrate_project(config: Config, project_id: str, body: dict[str, Any]) -> int:
    from appliance.core import Core
    from appliance.errors import AtlasError
    from appliance.projects import migrations

    core = Core(config)
    await core.open(finish_interrupted_work=False)
    try:
        project = await core.projects.get(project_id)
        parsed = migrations.parse_migrations(body)
        async with core.pools.connection(project.id, "owner") as conn:
            result = await migrations.apply(conn, parsed)
    except AtlasError as exc:
        print(f"atlashub: {exc.message}", file=sys.stderr)
        return EXIT_STARTUP
    finally:
        await core.close()
    for name in result["applied"]:
        print(f"applied {name}")
    for name in result["skipped"]:
        print(f"skipped {name} (already applied)")
    return 0
