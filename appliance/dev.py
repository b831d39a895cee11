"""`atlashub dev`: the whole product on one machine with its embedded defaults.

A private PostgreSQL cluster under ``DIR/pg``, fs storage under ``DIR/storage``, the control
plane and master key under ``DIR``, every role. Once ready, ``DIR/dev.json`` tells where it
listens and the dev admin token. Everything it started stops with it.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from appliance import aio
from appliance.config import Config, load_config
from appliance.crypto import MASTER_KEY_FILE, generate_master_key
from appliance.daemon import Daemon, run_until_signalled
from appliance.pg.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)

DEV_JSON = "dev.json"
DEV_STATE = "dev-state.json"


def dev_config(data_dir: Path, pg: EmbeddedPostgres, gateway_port: int, dashboard_port: int) -> Config:
    return load_config(use_file=False).replace(
        node={"name": "dev", "state_dir": str(data_dir)},
        gateway={"listen": f"127.0.0.1:{gateway_port}"},
        dashboard={"listen": f"127.0.0.1:{dashboard_port}", "dev_admin_token_enabled": True},
        postgres={
            # The daemon talks to its private server over the unix socket when it has one;
            # applications get 127.0.0.1 in their connection strings.
            "host": str(pg.socket_dir) if pg.socket_ready else "127.0.0.1",
            "project_host": "127.0.0.1",
            "pool_host": str(pg.socket_dir) if pg.socket_ready else "127.0.0.1",
            "port": pg.port,
            "user": pg.user,
            "password_file": str(pg.password_file),
        },
        storage={"backend": "fs", "fs_root": str(data_dir / "storage")},
    )


def _write_private_json(path: Path, payload: Mapping[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_dev(data_dir: Path, gateway_port: int, dashboard_port: int) -> int:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    (data_dir / DEV_JSON).unlink(missing_ok=True)
    state_path = data_dir / DEV_STATE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if not (data_dir / MASTER_KEY_FILE).exists() and not (data_dir / "control.db").exists():
        generate_master_key(data_dir / MASTER_KEY_FILE)
    pg = EmbeddedPostgres(
        data_dir=data_dir / "pg",
        password_file=data_dir / "pg-superuser.password",
        port=int(state.get("pg_port", 0)),
    )
    pg.ensure_initialized()
    pg.start()
    try:
        _write_private_json(state_path, {"pg_port": pg.port})
        config = dev_config(data_dir, pg, gateway_port, dashboard_port)
        token = os.environ.get("ATLASHUB_DEV_ADMIN_TOKEN") or "ah_adm_" + secrets.token_urlsafe(24)
        daemon = Daemon(config, dev_admin_token=token)

        async def announce(d: Daemon) -> None:
            info = {
                "gateway_url": d.url("gateway"),
                "dashboard_url": d.url("dashboard"),
                "admin_token": token,
            }
            _write_private_json(data_dir / DEV_JSON, info)
            log.info("dev instance ready; details in %s", data_dir / DEV_JSON)

        code = aio.run(run_until_signalled(daemon, on_ready=announce))
    finally:
        (data_dir / DEV_JSON).unlink(missing_ok=True)
        pg.stop()
    return code
