"""The `atlashub` command as a user runs it: real subprocesses, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from appliance.pg.embedded import EmbeddedPostgres
from tests.fixtures.daemon import running_daemon

ATLASHUB = [sys.executable, "-m", "appliance"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ATLASHUB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def get_json(url: str, headers: dict[str, str] | None = None, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_version() -> None:
    result = run("version")
    assert result.returncode == 0
    assert result.stdout.startswith("atlashub 0.")


def test_invalid_config_exits_2_listing_every_error(tmp_path: Path) -> None:
    config = tmp_path / "atlashub.toml"
    config.write_text("[node]\nroles = ['gateway', 'nope']\n[gateway]\nlisten = 'x'\n[mystery]\na = 1\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "[mystery]: unknown section" in result.stderr
    result = run("serve", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2 and "config file not found" in result.stderr
    config.write_text("[node]\nroles = ['gateway', 'nope']\n[gateway]\nlisten = 'x'\n")
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "node.roles: unknown role 'nope'" in result.stderr and "gateway.listen" in result.stderr


def test_init_is_idempotent_and_never_replaces_the_key(tmp_path: Path) -> None:
    config = tmp_path / "atlashub.toml"
    state = tmp_path / "state"
    env = {"ATLASHUB_NODE_STATE_DIR": str(state)}
    assert run("init", "--config", str(config), env=env).returncode == 0
    key = (state / "master.key").read_bytes()
    assert (state / "master.key").stat().st_mode & 0o777 == 0o600
    assert "state_dir" in config.read_text()
    result = run("init", "--config", str(config), env=env)
    assert result.returncode == 0 and "kept the master key" in result.stdout
    assert (state / "master.key").read_bytes() == key


def test_serve_refuses_a_state_dir_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {"ATLASHUB_NODE_STATE_DIR": str(blocker / "state"), "ATLASHUB_CONFIG": "/dev/null"}
    result = run("serve", env=env)
    assert result.returncode == 1
    assert "state dir" in result.stderr and "cannot be created" in result.stderr


def _start_dev(data: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*ATLASHUB, "dev", "--data-dir", str(data), "--gateway-port", "0", "--dashboard-port", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def _wait_ready(data: Path, proc: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 90
    while not (data / "dev.json").exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "dev.json never appeared"
        time.sleep(0.1)
    return json.loads((data / "dev.json").read_text())


def _stop(proc: subprocess.Popen[str]) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    return time.monotonic() - started


def _processes_under(path: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(path) in line]


def test_dev_end_to_end_restart_keeps_data_and_leaves_nothing_behind() -> None:
    data = Path(tempfile.mkdtemp(prefix="atlashub-dev-test-", dir="/tmp")) / "dev"
    env = {"ATLASHUB_DEV_ADMIN_TOKEN": "ah_adm_cli-test-token-123456"}
    proc = _start_dev(data, env)
    try:
        info = _wait_ready(data, proc)
        assert set(info) == {"gateway_url", "dashboard_url", "admin_token"}
        assert info["admin_token"] == env["ATLASHUB_DEV_ADMIN_TOKEN"]
        for url in (info["gateway_url"], info["dashboard_url"]):
            assert get_json(url + "/readyz")[0] == 200
        admin = {"x-dev-admin-token": info["admin_token"]}
        status, _ = get_json(info["dashboard_url"] + "/admin/api/projects", admin, {"name": "kept"})
        assert status == 201
        assert _stop(proc) < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (data / "dev.json").exists()
    assert _processes_under(data) == [], "no PostgreSQL or other process may outlive atlashub dev"

    proc = _start_dev(data, env)
    try:
        info = _wait_ready(data, proc)
        status, listed = get_json(
            info["dashboard_url"] + "/admin/api/projects", {"x-dev-admin-token": info["admin_token"]}
        )
        assert status == 200
        assert [p["name"] for p in listed["projects"]] == ["kept"]  # type: ignore[index]
        assert _stop(proc) < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _processes_under(data) == []


async def test_migrate_a_project_from_a_folder(tmp_path: Path, pg: EmbeddedPostgres) -> None:
    state = tmp_path / "state"
    async with running_daemon(state, pg) as atlas:
        status, project = await atlas.admin("POST", "/admin/api/projects", json={"name": "cli"})
        assert status == 201
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_init.sql").write_text("CREATE TABLE notes (id serial PRIMARY KEY, body text);")
    (folder / "0002_more.sql").write_text("ALTER TABLE notes ADD COLUMN done boolean DEFAULT false;")
    env = {
        "ATLASHUB_CONFIG": "/dev/null",
        "ATLASHUB_NODE_STATE_DIR": str(state),
        "ATLASHUB_POSTGRES_HOST": "127.0.0.1",
        "ATLASHUB_POSTGRES_PORT": str(pg.port),
        "ATLASHUB_POSTGRES_USER": pg.user,
        "ATLASHUB_POSTGRES_PASSWORD_FILE": str(pg.password_file),
        "ATLASHUB_STORAGE_FS_ROOT": str(state / "storage"),
    }
    result = run("migrate", "--project", project["id"], str(folder), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["applied 0001_init.sql", "applied 0002_more.sql"]
    result = run("migrate", "--project", project["id"], str(folder), env=env)
    assert "skipped 0001_init.sql (already applied)" in result.stdout
    (folder / "0001_init.sql").write_text("CREATE TABLE other (id int);")
    result = run("migrate", "--project", project["id"], str(folder), env=env)
    assert result.returncode == 1 and "0001_init.sql" in result.stderr
    result = run("migrate", "--project", "nosuchproject", str(folder), env=env)
    assert result.returncode == 1 and "no project" in result.stderr
