"""`atlashub doctor`: pass/warn/fail lines about this node, non-zero exit on any failure."""

from __future__ import annotations

from appliance.config import Config
from appliance.core import CONTROL_DB, check_state_dir
from appliance.crypto import find_master_key
from appliance.errors import StartupError
from appliance.pg.server import PgServer


async def run_doctor(config: Config) -> int:
    from appliance.control.store import ControlPlane, load_migrations

    results: list[tuple[str, str, str]] = [("pass", "config", "configuration is valid")]
    try:
        check_state_dir(config.state_dir)
        results.append(("pass", "state_dir", f"{config.state_dir} is writable"))
    except StartupError as exc:
        results.append(("fail", "state_dir", str(exc)))
    key = find_master_key(config.state_dir)
    results.append(("pass", "master_key", str(key)) if key else ("fail", "master_key", "missing; run atlashub init"))
    try:
        pg = PgServer.from_config(config.postgres)
        ok = await pg.ping()
        results.append(
            ("pass", "postgres", f"reachable at {pg.host}:{pg.port}")
            if ok
            else ("fail", "postgres", f"not reachable at {pg.host}:{pg.port}")
        )
    except StartupError as exc:
        results.append(("fail", "postgres", str(exc)))
    db = config.state_dir / CONTROL_DB
    if not db.exists():
        results.append(("warn", "control_plane", f"{db} does not exist yet; it is created at first start"))
    else:
        store = ControlPlane(db)
        try:
            await store.open(migrate=False)
            status = await store.status()
            latest = load_migrations()[-1].version
            if status["pending"]:
                results.append(("warn", "control_plane", f"pending migrations: {', '.join(status['pending'])}"))
            else:
                results.append(("pass", "control_plane", f"at the latest migration ({latest})"))
        except StartupError as exc:
            results.append(("fail", "control_plane", str(exc)))
        finally:
            await store.close()
    for level, name, message in results:
        print(f"{level:<5} {name:<14} {message}")
    return 1 if any(level == "fail" for level, _, _ in results) else 0
