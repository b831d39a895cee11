"""`atlashub doctor`: pass/warn/fail lines about this node, non-zero exit on any failure.

This module gathers the inputs (files, command outputs, the control plane); the judging is in
:mod:`appliance.doctor_checks`. Two environment variables tune it:

- ``ATLASHUB_DOCTOR_ALLOW_PUBLIC``: comma-separated services (postgres, dashboard, agent) that may
  listen on a public address;
- ``ATLASHUB_DOCTOR_CERTS``: comma-separated certificate files (PEM) to check besides Caddy's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from appliance import doctor_checks as checks
from appliance.config import Config, parse_listen
from appliance.core import CONTROL_DB, check_state_dir
from appliance.crypto import find_master_key
from appliance.doctor_checks import FAIL, PASS, WARN, Result
from appliance.errors import StartupError
from appliance.pg.server import PgServer

CADDY_DATA_DIRS = (
    Path("/var/lib/caddy/.local/share/caddy/certificates"),
    Path("/root/.local/share/caddy/certificates"),
)
DEFAULT_PG_DATA = Path("/var/lib/postgresql")
COMMAND_TIMEOUT_S = 10


def command_output(*argv: str) -> str | None:
    """stdout of a command, or None when it is not installed or fails."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def existing(path: Path) -> Path | None:
    return path if path.exists() else None


def read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def gather_listeners(proc: Path = Path("/proc/net")) -> list[checks.Listener]:
    ss = command_output("ss", "-Htln")
    if ss is not None:
        return checks.parse_ss(ss)
    found = []
    for name, ipv6 in (("tcp", False), ("tcp6", True)):
        text = read_text(proc / name)
        if text:
            found += checks.parse_proc_net_tcp(text, ipv6=ipv6)
    return found


def watched_services(config: Config) -> dict[str, int]:
    services = {"postgres": config.postgres.port, "dashboard": parse_listen(config.dashboard.listen)[1]}
    mesh = config.mesh
    services["agent"] = parse_listen(mesh.agent_listen)[1] if mesh.agent_listen else mesh.agent_port
    return services


def gather_ufw() -> str | None:
    if shutil.which("ufw") is None:
        return None
    try:
        out = subprocess.run(["ufw", "status", "verbose"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ufw failed: {exc}"
    return out.stdout if out.returncode == 0 else out.stderr or out.stdout


def gather_sshd(etc_ssh: Path = Path("/etc/ssh")) -> dict[str, str] | None:
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        return None
    effective = command_output("sshd", "-T") or command_output("/usr/sbin/sshd", "-T")
    if effective:
        return checks.parse_sshd_t(effective)
    files = {
        str(p): text
        for p in [etc_ssh / "sshd_config", *sorted(etc_ssh.glob("sshd_config.d/*"))]
        if (text := read_text(p)) is not None
    }
    return checks.parse_sshd_config(files, str(etc_ssh / "sshd_config"))


def gather_wireguard(interface: str) -> str | None:
    if not Path("/sys/class/net", interface).exists():
        return None
    return command_output("wg", "show", interface, "dump") or ""


def disk_results(config: Config, pg_data: Path | None) -> list[Result]:
    results = []
    for label, path in (("state", config.state_dir), ("postgres", pg_data)):
        if path is None or not path.exists():
            continue
        stat = os.statvfs(path)
        results.append(
            checks.check_disk(label, str(path), stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize)
        )
    return results


def certificate_paths(env: Mapping[str, str]) -> list[Path]:
    paths = [Path(p.strip()) for p in env.get("ATLASHUB_DOCTOR_CERTS", "").split(",") if p.strip()]
    for base in CADDY_DATA_DIRS:
        if base.is_dir():
            paths += sorted(base.rglob("*.crt"))
    return paths


def certificate_expiry(path: Path) -> datetime | None:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return None


async def postgres_results(config: Config) -> tuple[list[Result], Path | None]:
    """Reachability, and the data directory (from the server when it answers)."""
    import asyncpg

    try:
        pg = PgServer.from_config(config.postgres)
    except StartupError as exc:
        return [Result(FAIL, "postgres", str(exc))], None
    fallback = existing(DEFAULT_PG_DATA)
    if not await pg.ping():
        return [Result(FAIL, "postgres", f"not reachable at {pg.host}:{pg.port}")], fallback
    data_dir = fallback
    try:
        conn = await asyncpg.connect(**pg.connect_kwargs(), timeout=5)
        try:
            data_dir = Path(await conn.fetchval("SHOW data_directory"))
        finally:
            await conn.close()
    except (TimeoutError, OSError, asyncpg.PostgresError):
        pass  # not allowed to read it: keep the default
    return [Result(PASS, "postgres", f"reachable at {pg.host}:{pg.port}")], data_dir


async def control_plane_results(config: Config) -> list[Result]:
    from appliance.backups.service import parse_time
    from appliance.control.store import ControlPlane, load_migrations
    from appliance.settings.service import stored_value

    db = config.state_dir / CONTROL_DB
    if not db.exists():
        return [Result(WARN, "control_plane", f"{db} does not exist yet; it is created at first start")]
    store = ControlPlane(db)
    results = []
    try:
        await store.open(migrate=False)
        status = await store.status()
        if status["pending"]:
            results.append(Result(WARN, "control_plane", f"pending migrations: {', '.join(status['pending'])}"))
        else:
            results.append(Result(PASS, "control_plane", f"at the latest migration ({load_migrations()[-1].version})"))
        if "backups" in config.node.roles:
            rows = await store.fetchall(
                "SELECT p.id, p.created_at, max(b.verified_at) AS last FROM projects p"
                " LEFT JOIN backups b ON b.project_id = p.id AND b.status = 'verified'"
                " WHERE p.status = 'active' GROUP BY p.id, p.created_at ORDER BY p.id"
            )
            projects = [
                checks.ProjectBackup(
                    row["id"], parse_time(row["created_at"]), parse_time(row["last"]) if row["last"] else None
                )
                for row in rows
            ]
            # The dashboard may have changed the threshold (a runtime setting); else the file's.
            hours = await stored_value(store, "backups.alert_unverified_hours") or config.backups.alert_unverified_hours
            results.append(checks.check_backups(projects, datetime.now(UTC), hours))
    except StartupError as exc:
        results.append(Result(FAIL, "control_plane", str(exc)))
    finally:
        await store.close()
    return results


async def gather_results(config: Config, env: Mapping[str, str] | None = None) -> list[Result]:
    env = os.environ if env is None else env
    results = [Result(PASS, "config", "configuration is valid")]
    try:
        check_state_dir(config.state_dir)
        results.append(Result(PASS, "state_dir", f"{config.state_dir} is writable"))
    except StartupError as exc:
        results.append(Result(FAIL, "state_dir", str(exc)))
    key = find_master_key(config.state_dir)
    results.append(
        Result(PASS, "master_key", str(key)) if key else Result(FAIL, "master_key", "missing; run atlashub init")
    )
    pg_results, pg_data = await postgres_results(config)
    results += pg_results
    results += await control_plane_results(config)
    allow = [name.strip() for name in env.get("ATLASHUB_DOCTOR_ALLOW_PUBLIC", "").split(",") if name.strip()]
    results += checks.check_listeners(gather_listeners(), watched_services(config), allow)
    results.append(checks.check_ufw(gather_ufw(), config.mesh.wg_listen_port))
    results.append(checks.check_ssh(gather_sshd()))
    mesh = config.mesh
    results.append(
        checks.check_wireguard(
            mesh.wg_interface, gather_wireguard(mesh.wg_interface), time.time(), expect_peers=mesh.role == "worker"
        )
    )
    results += disk_results(config, pg_data)
    results.append(checks.check_clock(command_output("timedatectl", "show", "-p", "NTPSynchronized")))
    certs = {str(path): certificate_expiry(path) for path in certificate_paths(env)}
    results.append(checks.check_certificates(certs, datetime.now(UTC)))
    return results


def render(results: list[Result]) -> str:
    return "\n".join(f"{r.level:<5} {r.name:<16} {r.message}" for r in results)


async def run_doctor(config: Config) -> int:
    results = await gather_results(config)
    print(render(results))
    return 1 if any(r.level == FAIL for r in results) else 0
