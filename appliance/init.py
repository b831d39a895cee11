"""`atlashub init`: the config file, the state dir and the master key. Idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from appliance.config import DEFAULT_CONFIG_PATH, Config
from appliance.core import check_state_dir, ensure_node_keys
from appliance.crypto import MASTER_KEY_FILE, find_master_key, generate_master_key

DEFAULT_CONFIG = """\
# AtlasHub configuration. Every key can be overridden from the environment as
# ATLASHUB_<SECTION>_<KEY> (lists comma-separated). Unknown keys are errors.

[node]
name = "{name}"
state_dir = "{state_dir}"
roles = ["gateway", "dashboard", "scheduler", "backups", "agent"]

[gateway]
listen = "0.0.0.0:8080"

[dashboard]
# The admin UI and API: keep it local, or behind Cloudflare Access.
listen = "127.0.0.1:8081"

[postgres]
host = "/var/run/postgresql"
port = 5432
user = "postgres"

[storage]
backend = "fs"

[logging]
level = "INFO"
format = "json"
"""


def run_init(config: Config, config_path: Path | None, state_dir: Path | None) -> int:
    state = state_dir or config.state_dir
    check_state_dir(state)
    path = config_path or DEFAULT_CONFIG_PATH
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "w") as f:
            f.write(DEFAULT_CONFIG.format(name=os.uname().nodename, state_dir=state))
        print(f"wrote {path}")
    else:
        print(f"kept {path}")
    existing = find_master_key(state)
    if existing is None:
        generate_master_key(state / MASTER_KEY_FILE)
        print(f"created the master key {state / MASTER_KEY_FILE} (mode 0600); back it up, it seals every secret")
    else:
        print(f"kept the master key {existing}")
    identity = ensure_node_keys(state)
    print(f"node id {identity.node_id}")
    return 0
